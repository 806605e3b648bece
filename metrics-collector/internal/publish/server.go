package publish

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/podtype/podtype/shared/httpserve"
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
	mux.Handle("GET /metrics", httpserve.MetricsHandler(gatherer, logger))
	return mux
}
