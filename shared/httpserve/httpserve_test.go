package httpserve

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestServeAndShutdown(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "test_requests_total", Help: "Requests."})
	reg.MustRegister(c)
	c.Add(3)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", MetricsHandler(reg, slog.New(slog.DiscardHandler)))

	ctx, cancel := context.WithCancel(context.Background())
	listening := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, "127.0.0.1:0", mux, slog.New(slog.DiscardHandler), listening) }()
	var addr net.Addr
	select {
	case addr = <-listening:
	case err := <-done:
		t.Fatalf("Serve ended before listening: %v", err)
	}
	resp, err := http.Get("http://" + addr.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "test_requests_total 3") {
		t.Errorf("GET /metrics: %d\n%s", resp.StatusCode, body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve after cancel: %v", err)
		}
	case <-time.After(ShutdownTimeout):
		t.Fatal("Serve did not return after its context ended")
	}
}

func TestServeBadAddress(t *testing.T) {
	tests := []struct{ name, addr string }{
		{"no port", "127.0.0.1"},
		{"port out of range", "127.0.0.1:70000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Serve(context.Background(), tt.addr, http.NotFoundHandler(), slog.New(slog.DiscardHandler), nil)
			if err == nil || !strings.Contains(err.Error(), "http listen "+tt.addr) {
				t.Errorf("Serve(%q) = %v, want a listen error naming the address", tt.addr, err)
			}
		})
	}
}
