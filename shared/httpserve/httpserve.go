// Package httpserve is the HTTP plumbing both services share: a server that shuts down with its
// context, and the Prometheus /metrics handler.
package httpserve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// ShutdownTimeout bounds how long Serve waits for requests in flight once its context ends:
// shorter than a Pod's default termination grace period of 30 s.
const ShutdownTimeout = 10 * time.Second

// Serve serves h on addr until ctx ends, then shuts down gracefully. listening, when not nil,
// receives the bound address once the listener is up (useful with ":0"); it must have room
// for one value or a reader.
func Serve(ctx context.Context, addr string, h http.Handler, logger *slog.Logger, listening chan<- net.Addr) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("http listen %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	logger.InfoContext(ctx, "http server listening", "addr", ln.Addr().String())
	if listening != nil {
		listening <- ln.Addr()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http serve %s: %w", addr, err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("http shutdown %s: %w", addr, err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http serve %s: %w", addr, err)
	}
	return nil
}

// MetricsHandler serves what g gathers in the Prometheus exposition format. A collector that
// fails is logged and the others are still served: one broken metric must not blind the
// dashboards to the rest.
func MetricsHandler(g prometheus.Gatherer, logger *slog.Logger) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(logger.Handler(), slog.LevelError),
		ErrorHandling: promhttp.ContinueOnError,
	})
}
