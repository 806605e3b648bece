package sim

import (
	"crypto/subtle"
	"net/http"
	"strconv"
	"strings"
)

// Handler returns the fake kubelets of all nodes on one listener:
//
//	GET /nodes/{node}/stats/summary   stats/v1alpha1 Summary, as the kubelet's /stats/summary
//	GET /nodes/{node}/pods            v1 PodList of the node's pods, as the kubelet's /pods
//	GET /healthz                      ok
//
// so Telegraf's inputs.kubernetes url for a node is http://ADDR/nodes/<node>. Unknown nodes get 404; with
// Config.KubeletToken set, requests without "Authorization: Bearer <token>" get 401.
func (c *Cluster) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /nodes/{node}/stats/summary", c.auth(c.serveNode(c.summaryJSON)))
	mux.Handle("GET /nodes/{node}/pods", c.auth(c.serveNode(c.podsJSON)))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok"))
	})
	return mux
}

// NodeURLs returns each node's base URL under base (e.g. "http://127.0.0.1:10255"), the url to give
// Telegraf's inputs.kubernetes.
func (c *Cluster) NodeURLs(base string) []string {
	base = strings.TrimSuffix(base, "/")
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = base + "/nodes/" + n.name
	}
	return out
}

func (c *Cluster) serveNode(body func(*simNode) ([]byte, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		n := c.node(r.PathValue("node"))
		if n == nil {
			http.Error(w, "node not found", http.StatusNotFound)
			return
		}
		b, err := body(n)
		if err != nil {
			http.Error(w, "node "+n.name+": "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		_, _ = w.Write(b)
	}
}

func (c *Cluster) node(name string) *simNode {
	for _, n := range c.nodes {
		if n.name == name {
			return n
		}
	}
	return nil
}

// auth requires the configured bearer token, if any.
func (c *Cluster) auth(next http.Handler) http.Handler {
	if c.cfg.KubeletToken == "" {
		return next
	}
	want := []byte("Bearer " + c.cfg.KubeletToken)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="kubelet"`)
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}
