package sim

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// discardWriter is a ResponseWriter that only counts, so the benchmarks measure the simulator.
type discardWriter struct {
	h http.Header
	n int64
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) {
	w.n += int64(len(b))
	return len(b), nil
}
func (w *discardWriter) WriteHeader(int) {}

func newBenchCluster(b *testing.B) *Cluster {
	b.Helper()
	return newTestCluster(b, func(c *Config) { c.PodsPerType = 1250; c.Nodes = 3 }) // 10,000 pods
}

// BenchmarkSummary10kPods is one tick of a 10,000-pod cluster as Telegraf sees it: Advance by a second,
// then every node's /stats/summary served once (built and encoded, since Advance invalidated it).
func BenchmarkSummary10kPods(b *testing.B) {
	c := newBenchCluster(b)
	h := c.Handler()
	reqs := make([]*http.Request, 0, len(c.Nodes()))
	for _, n := range c.Nodes() {
		reqs = append(reqs, httptest.NewRequest(http.MethodGet, "/nodes/"+n+"/stats/summary", nil))
	}
	now := testStart
	var bytes int64
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Second)
		c.Advance(now)
		for _, r := range reqs {
			w := &discardWriter{h: http.Header{}}
			h.ServeHTTP(w, r)
			bytes += w.n
		}
	}
	b.ReportMetric(float64(bytes)/float64(b.N), "bytes/tick")
}

// BenchmarkSummaryCached10kPods is a scrape between two ticks: the cached encoding is written out.
func BenchmarkSummaryCached10kPods(b *testing.B) {
	c := newBenchCluster(b)
	h := c.Handler()
	r := httptest.NewRequest(http.MethodGet, "/nodes/sim-node-1/stats/summary", nil)
	h.ServeHTTP(&discardWriter{h: http.Header{}}, r)
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(&discardWriter{h: http.Header{}}, r)
	}
}

// BenchmarkAdvance10kPods is the model alone: one second for 10,000 pods.
func BenchmarkAdvance10kPods(b *testing.B) {
	c := newBenchCluster(b)
	now := testStart
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Second)
		c.Advance(now)
	}
}

// BenchmarkPods10kPods serves every node's /pods once after the pod set changed.
func BenchmarkPods10kPods(b *testing.B) {
	c := newBenchCluster(b)
	h := c.Handler()
	b.ReportAllocs()
	for b.Loop() {
		for _, n := range c.nodes {
			c.mu.Lock()
			n.podsGen++
			c.mu.Unlock()
			h.ServeHTTP(&discardWriter{h: http.Header{}}, httptest.NewRequest(http.MethodGet, "/nodes/"+n.name+"/pods", nil))
		}
	}
}
