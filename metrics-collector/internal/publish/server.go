package publish

import (
	"bytes"
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

// BundleContentType is the media type of a bundle: a gzip-compressed JSON document.
const BundleContentType = "application/gzip"

// retryAfterSeconds tells a watcher that asks before the first training when to come back.
const retryAfterSeconds = "30"

// Handler serves:
//
//	GET /model    the current bundle; ETag and If-None-Match (304), Last-Modified, HEAD and Range
//	              via http.ServeContent; 503 with Retry-After until there is a bundle
//	GET /healthz  200 while the process runs (liveness)
//	GET /readyz   200 once a bundle is served, else 503 (readiness)
//	GET /metrics  Prometheus exposition of gatherer
func Handler(store *Store, gatherer prometheus.Gatherer, logger *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /model", func(w http.ResponseWriter, r *http.Request) {
		snap, err := store.Current()
		if err != nil {
			w.Header().Set("Retry-After", retryAfterSeconds)
			http.Error(w, "no model bundle has been trained yet", http.StatusServiceUnavailable)
			return
		}
		h := w.Header()
		h.Set("ETag", snap.ETag)
		h.Set("Content-Type", BundleContentType)
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Model-Version", snap.Version)
		http.ServeContent(w, r, "", snap.ModTime, bytes.NewReader(snap.Data))
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if _, err := store.Current(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(logger.Handler(), slog.LevelError),
		ErrorHandling: promhttp.ContinueOnError,
	}))
	return mux
}

// Serve runs an HTTP server for h on addr until ctx is done, then shuts it down gracefully.
// ready, when not nil, receives the bound address once the listener is up (useful with ":0").
func Serve(ctx context.Context, addr string, h http.Handler, logger *slog.Logger, ready chan<- net.Addr) error {
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
	if ready != nil {
		ready <- ln.Addr()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http serve %s: %w", addr, err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("http shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http serve %s: %w", addr, err)
	}
	return nil
}
