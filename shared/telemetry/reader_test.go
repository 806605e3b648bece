package telemetry

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/podtype/podtype/shared/config"
)

// fakeInflux serves /api/v2/query with a canned annotated-CSV body, as InfluxDB 1.8 answers, and
// records the requests. It stands in for the client library's peer; the real server is covered by
// the integration test.
type fakeInflux struct {
	mu       sync.Mutex
	csv      string
	requests []fakeRequest
}

type fakeRequest struct {
	auth, org, query string
}

func (f *fakeInflux) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/ping":
		w.WriteHeader(http.StatusNoContent)
	case "/api/v2/query":
		var body struct{ Query string }
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &body)
		f.mu.Lock()
		f.requests = append(f.requests, fakeRequest{r.Header.Get("Authorization"), r.URL.Query().Get("org"), body.Query})
		f.mu.Unlock()
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		_, _ = io.WriteString(w, f.csv)
	default:
		http.NotFound(w, r)
	}
}

func newFake(t *testing.T) (*fakeInflux, config.InfluxDB) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "response.csv"))
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeInflux{csv: strings.ReplaceAll(string(b), "\n", "\r\n")}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, config.InfluxDB{
		URL: srv.URL, Database: "k3s_telegraf_ds", RetentionPolicy: "autogen",
		Username: "reader", Password: "pw", Timeout: 5 * time.Second,
	}
}

func TestReaderRead(t *testing.T) {
	fake, cfg := newFake(t)
	var stats []QueryStats
	r, err := NewReader(cfg, WithQueryHook(func(s QueryStats) { stats = append(stats, s) }))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx := context.Background()
	if err := r.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	q := Query{Start: t0, Stop: t0.Add(time.Minute), Namespaces: []string{"ns"}}
	var got []Point
	if err := r.Read(ctx, q, func(p Point) error { got = append(got, p); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 9 {
		t.Fatalf("read %d points, want 9: %+v", len(got), got)
	}
	want0 := Point{Pod: types.NamespacedName{Namespace: "ns", Name: "pod-a"}, Node: "node-1", Container: "app",
		Measurement: MeasurementPodContainer, Field: "cpu_usage_core_nanoseconds", Time: t0.Add(time.Second), Value: 1e9}
	if got[0] != want0 {
		t.Errorf("first point %+v, want %+v", got[0], want0)
	}
	wantFlux, _ := q.Flux(cfg.FluxBucket(), 0)
	req := fake.requests[0]
	if req.auth != "Token reader:pw" || req.query != wantFlux {
		t.Errorf("request auth %q query\n%s\nwant Token reader:pw and\n%s", req.auth, req.query, wantFlux)
	}
	if r.Queries() != 1 || len(stats) != 1 || stats[0].Rows != 9 || stats[0].Err != nil {
		t.Errorf("Queries() = %d, stats %+v", r.Queries(), stats)
	}

	// A callback error stops the read and comes back unchanged.
	stop := errors.New("enough")
	n := 0
	err = r.Read(ctx, q, func(Point) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("Read with failing callback: err %v after %d calls", err, n)
	}

	// More pods than the Flux filter may name: rows of other pods are dropped in Go.
	r2, err := NewReader(cfg, WithMaxPodFilter(1))
	if err != nil {
		t.Fatal(err)
	}
	q.Pods = []types.NamespacedName{{Namespace: "ns", Name: "pod-b"}, {Namespace: "ns", Name: "pod-x"}}
	var pods []string
	if err := r2.Read(ctx, q, func(p Point) error { pods = append(pods, p.Pod.Name); return nil }); err != nil {
		t.Fatal(err)
	}
	if strings.Join(pods, ",") != "pod-b,pod-b" {
		t.Errorf("pods read with Go-side filter = %v, want pod-b twice", pods)
	}
}

func TestReaderSeries(t *testing.T) {
	_, cfg := newFake(t)
	r, err := NewReader(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := r.Series(context.Background(), Query{Start: t0, Stop: t0.Add(time.Minute)}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	a := got[types.NamespacedName{Namespace: "ns", Name: "pod-a"}]
	if a == nil || len(got) != 3 {
		t.Fatalf("series for %d pods, pod-a %v", len(got), a)
	}
	// Samples at -2 s (look-back, read but not returned), 1, 11, 21 s: (1e9-0.25e9)/3 s = 0.25
	// cores in the first bucket thanks to the look-back, then 0.2 and 0.1.
	if !a.Start.Equal(t0) || a.Node != "node-1" || !equalVals(a.Values[CPUCores], []float64{0.25, 0.2, 0.1}) {
		t.Errorf("pod-a start %v node %s cpu %v", a.Start, a.Node, a.Values[CPUCores])
	}
	if !equalVals(a.Values[MemoryUsageBytes], []float64{100, nan, nan}) {
		t.Errorf("pod-a memory %v", a.Values[MemoryUsageBytes])
	}
	b := got[types.NamespacedName{Namespace: "ns", Name: "pod-b"}]
	if b == nil || !math.IsNaN(b.Values[NetworkRxBytesPerSecond][0]) || b.Values[NetworkRxBytesPerSecond][1] != 100 {
		t.Errorf("pod-b %+v", b)
	}
	c := got[types.NamespacedName{Namespace: "ns", Name: "pod-c"}]
	if c == nil || c.Node != "node-3" || !equalVals(c.Values[BlkioReadBytesPerSecond], []float64{nan, 0}) {
		t.Errorf("pod-c (Docker blkio) %+v", c)
	}
}

func TestReaderFailures(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"code":"unauthorized","message":"authorization failed"}`)
	}))
	defer srv.Close()
	r, err := NewReader(config.InfluxDB{URL: srv.URL, Database: "db", Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	err = r.Read(context.Background(), Query{Start: t0, Stop: t0.Add(time.Minute)}, func(Point) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "authorization failed") || !strings.Contains(err.Error(), "INFLUXDB_PASSWORD") {
		t.Errorf("Read error = %v, want the server's message", err)
	}
	if _, err := NewReader(config.InfluxDB{URL: "ftp://x", Database: "db", Timeout: time.Second}); err == nil {
		t.Error("NewReader accepted an invalid configuration")
	}
	if err := r.Read(context.Background(), Query{}, func(Point) error { return nil }); err == nil {
		t.Error("Read accepted an empty query")
	}
	if r.Queries() != 1 {
		t.Errorf("Queries() = %d, want 1 (invalid queries are not sent)", r.Queries())
	}
}
