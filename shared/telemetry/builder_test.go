package telemetry

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func at(sec float64) time.Time { return t0.Add(time.Duration(sec * float64(time.Second))) }

func podA() types.NamespacedName { return types.NamespacedName{Namespace: "ns", Name: "pod-a"} }
func podB() types.NamespacedName { return types.NamespacedName{Namespace: "ns", Name: "pod-b"} }

func ctr(pod types.NamespacedName, container, field string, sec, v float64) Point {
	return Point{Pod: pod, Node: "node-1", Container: container, Measurement: MeasurementPodContainer, Field: field, Time: at(sec), Value: v}
}

func netPt(pod types.NamespacedName, field string, sec, v float64) Point {
	return Point{Pod: pod, Node: "node-1", Measurement: MeasurementPodNetwork, Field: field, Time: at(sec), Value: v}
}

func mustBuilder(t testing.TB, step time.Duration, opts ...BuilderOption) *Builder {
	t.Helper()
	b, err := NewBuilder(step, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func addAll(t testing.TB, b *Builder, pts []Point) {
	t.Helper()
	for _, p := range pts {
		if err := b.Add(p); err != nil {
			t.Fatalf("Add(%+v): %v", p, err)
		}
	}
}

const nan = -1e300 // placeholder for NaN in expectations, so tables stay readable

// equalVals compares with a relative tolerance; nan in want means NaN.
func equalVals(got, want []float64) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if want[i] == nan {
			if !math.IsNaN(got[i]) {
				return false
			}
			continue
		}
		if math.IsNaN(got[i]) || math.Abs(got[i]-want[i]) > 1e-9*math.Max(1, math.Abs(want[i])) {
			return false
		}
	}
	return true
}

func TestBuilderSeries(t *testing.T) {
	const step = 10 * time.Second
	tests := []struct {
		name   string
		points []Point
		pod    types.NamespacedName
		start  time.Time
		want   map[Metric][]float64
	}{
		{
			// Telegraf's samples wander within the interval; the bucket, not the position in the
			// input, decides the grid point. 19.2 s and 10.9 s share a bucket: the later wins.
			name: "gauge aligned by timestamp with jitter, shuffled",
			points: []Point{
				ctr(podA(), "app", "memory_usage_bytes", 39.99, 400),
				ctr(podA(), "app", "memory_usage_bytes", 0.3, 100),
				ctr(podA(), "app", "memory_usage_bytes", 19.2, 250),
				ctr(podA(), "app", "memory_usage_bytes", 10.9, 200),
				ctr(podA(), "app", "memory_usage_bytes", 21.0, 300),
			},
			pod: podA(), start: t0,
			want: map[Metric][]float64{MemoryUsageBytes: {100, 250, 300, 400}},
		},
		{
			name: "missing bucket is NaN, other pods do not shift it",
			points: []Point{
				ctr(podB(), "app", "memory_usage_bytes", 1.7, 10),
				ctr(podA(), "app", "memory_usage_bytes", 5, 1),
				ctr(podA(), "app", "memory_usage_bytes", 15, 1),
				ctr(podA(), "app", "memory_usage_bytes", 25, 1),
				ctr(podB(), "app", "memory_usage_bytes", 12.1, 20),
				ctr(podB(), "app", "memory_usage_bytes", 38, 40),
			},
			pod: podB(), start: t0,
			want: map[Metric][]float64{MemoryUsageBytes: {10, 20, nan, 40}},
		},
		{
			// First sample: no rate. 1e9->3e9 ns over 10 s = 0.2 cores; 8e9: 0.5; the drop to 1e9
			// is a restart from 0, so 1e9 ns in 10 s = 0.1; then 0.1.
			name: "counter rate with reset and first sample",
			points: []Point{
				ctr(podA(), "app", "cpu_usage_core_nanoseconds", 0, 1e9),
				ctr(podA(), "app", "cpu_usage_core_nanoseconds", 10, 3e9),
				ctr(podA(), "app", "cpu_usage_core_nanoseconds", 20, 8e9),
				ctr(podA(), "app", "cpu_usage_core_nanoseconds", 30, 1e9),
				ctr(podA(), "app", "cpu_usage_core_nanoseconds", 40, 2e9),
			},
			pod: podA(), start: t0,
			// The CPU counter's decrease is also the container's restart.
			want: map[Metric][]float64{CPUCores: {nan, 0.2, 0.5, 0.1, 0.1}, ContainerRestarts: {nan, 0, 0, 1, 0}},
		},
		{
			// Restarts are counted per container and summed; only the CPU counter counts, so
			// a restart that resets every container counter is seen once.
			name: "restarts of two containers",
			points: []Point{
				ctr(podA(), "a", "cpu_usage_core_nanoseconds", 0, 5e9),
				ctr(podA(), "a", "cpu_usage_core_nanoseconds", 10, 1e9),
				ctr(podA(), "a", "memory_page_faults", 0, 500),
				ctr(podA(), "a", "memory_page_faults", 10, 100),
				ctr(podA(), "b", "cpu_usage_core_nanoseconds", 0, 9e9),
				ctr(podA(), "b", "cpu_usage_core_nanoseconds", 10, 2e9),
				ctr(podA(), "b", "cpu_usage_core_nanoseconds", 20, 4e9),
			},
			pod: podA(), start: t0,
			want: map[Metric][]float64{
				CPUCores:            {nan, 0.3, 0.2},
				PageFaultsPerSecond: {nan, 10, nan},
				ContainerRestarts:   {nan, 2, 0},
			},
		},
		{
			name: "cpu falls back to nanocores where the counter has no rate",
			points: []Point{
				ctr(podA(), "app", "cpu_usage_core_nanoseconds", 0, 1e9),
				ctr(podA(), "app", "cpu_usage_nanocores", 0, 150e6),
				ctr(podA(), "app", "cpu_usage_core_nanoseconds", 10, 3e9),
				ctr(podA(), "app", "cpu_usage_nanocores", 10, 999e6), // ignored: the counter has a rate
				// Telegraf writes 0 for a counter the kubelet did not report: not a sample.
				ctr(podA(), "app", "cpu_usage_core_nanoseconds", 20, 0),
				ctr(podA(), "app", "cpu_usage_nanocores", 20, 300e6),
			},
			pod: podA(), start: t0,
			want: map[Metric][]float64{CPUCores: {0.15, 0.2, 0.3}, ContainerRestarts: {nan, 0, nan}},
		},
		{
			// Rates per container first, then the sum; a container without value at a grid point
			// is skipped, NaN only when no container has one.
			name: "containers, volumes and pod network summed",
			points: []Point{
				ctr(podA(), "a", "memory_usage_bytes", 0, 100),
				ctr(podA(), "a", "memory_usage_bytes", 10, 100),
				ctr(podA(), "a", "memory_usage_bytes", 20, 100),
				ctr(podA(), "b", "memory_usage_bytes", 0, 50),
				ctr(podA(), "b", "memory_usage_bytes", 20, 50),
				ctr(podA(), "a", "memory_page_faults", 0, 0),
				ctr(podA(), "a", "memory_page_faults", 10, 100),
				ctr(podA(), "a", "memory_page_faults", 20, 200),
				// b's counter is far higher: summing raw counters before the rate would
				// mix levels, summing rates does not.
				ctr(podA(), "b", "memory_page_faults", 0, 1e6),
				ctr(podA(), "b", "memory_page_faults", 10, 1e6+50),
				ctr(podA(), "b", "memory_page_faults", 20, 1e6+100),
				{Pod: podA(), Container: "data", Measurement: MeasurementPodVolume, Field: "used_bytes", Time: at(0), Value: 10},
				{Pod: podA(), Container: "logs", Measurement: MeasurementPodVolume, Field: "used_bytes", Time: at(0), Value: 20},
				netPt(podA(), "rx_bytes", 0, 1000),
				netPt(podA(), "rx_bytes", 10, 3000),
				netPt(podA(), "rx_bytes", 20, 3000),
				{Pod: podA(), Node: "n", Container: "k8s_a_pod-a_ns_uid_0", Measurement: MeasurementDockerBlkio, Field: "io_service_bytes_recursive_read", Time: at(0), Value: 0},
				{Pod: podA(), Node: "n", Container: "k8s_a_pod-a_ns_uid_0", Measurement: MeasurementDockerBlkio, Field: "io_service_bytes_recursive_read", Time: at(10), Value: 4096},
			},
			pod: podA(), start: t0,
			want: map[Metric][]float64{
				MemoryUsageBytes:        {150, 100, 150},
				PageFaultsPerSecond:     {nan, 15, 15},
				VolumeUsedBytes:         {30, nan, nan},
				NetworkRxBytesPerSecond: {nan, 200, 0},
				BlkioReadBytesPerSecond: {nan, 409.6, nan},
				CPUCores:                {nan, nan, nan},
			},
		},
		{
			// Two samples in one bucket: the bucket's rate is the increase ending in it over the time
			// those increases cover, (100+500)/(10+5) s.
			name: "counter with two samples in a bucket",
			points: []Point{
				netPt(podA(), "tx_bytes", 0, 0),
				netPt(podA(), "tx_bytes", 10, 100),
				netPt(podA(), "tx_bytes", 15, 600),
			},
			pod: podA(), start: t0,
			want: map[Metric][]float64{NetworkTxBytesPerSecond: {nan, 40}},
		},
		{
			name: "no rate across a gap longer than MaxRateGap",
			points: []Point{
				netPt(podA(), "tx_bytes", 0, 0),
				netPt(podA(), "tx_bytes", 10, 100),
				netPt(podA(), "tx_bytes", 200, 5000), // 190 s later, more than 10 steps
				netPt(podA(), "tx_bytes", 210, 5100),
			},
			pod: podA(), start: t0,
			want: map[Metric][]float64{NetworkTxBytesPerSecond: append(append([]float64{nan, 10}, nanN(19)...), 10)},
		},
		{
			name: "duplicate timestamp: last added wins; out of order insertion",
			points: []Point{
				netPt(podA(), "rx_errors", 20, 40),
				netPt(podA(), "rx_errors", 0, 0),
				netPt(podA(), "rx_errors", 10, 999),
				netPt(podA(), "rx_errors", 10, 10), // replaces 999
			},
			pod: podA(), start: t0,
			want: map[Metric][]float64{NetworkRxErrorsPerSecond: {nan, 1, 3}},
		},
		{
			name: "grid is epoch aligned: series starts at the bucket of the first sample",
			points: []Point{
				ctr(podA(), "app", "rootfs_used_bytes", 27, 7),
				ctr(podA(), "app", "rootfs_used_bytes", 33, 8),
			},
			pod: podA(), start: at(20),
			want: map[Metric][]float64{RootfsUsedBytes: {7, 8}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := mustBuilder(t, step)
			addAll(t, b, tt.points)
			s, ok := b.Series(tt.pod)
			if !ok {
				t.Fatalf("no series for %s", tt.pod)
			}
			if !s.Start.Equal(tt.start) || s.Step != step || s.Pod != tt.pod {
				t.Errorf("series %s start %v step %v, want %s %v %v", s.Pod, s.Start, s.Step, tt.pod, tt.start, step)
			}
			for _, m := range Metrics() {
				want, ok := tt.want[m]
				if !ok {
					want = nanN(s.Len()) // metrics without input are missing throughout
				}
				if len(s.Values[m]) != s.Len() {
					t.Errorf("%v has %d values, series has %d", m, len(s.Values[m]), s.Len())
				}
				if !equalVals(s.Values[m], want) {
					t.Errorf("%v = %v, want %v", m, s.Values[m], show(want))
				}
			}
		})
	}
}

func nanN(n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = nan
	}
	return v
}

func show(v []float64) []float64 {
	out := slices.Clone(v)
	for i := range out {
		if out[i] == nan {
			out[i] = math.NaN()
		}
	}
	return out
}

func TestBuilderAddRejects(t *testing.T) {
	good := ctr(podA(), "app", "memory_usage_bytes", 0, 1)
	tests := []struct {
		name   string
		mutate func(p *Point)
	}{
		{"NaN", func(p *Point) { p.Value = math.NaN() }},
		{"+Inf", func(p *Point) { p.Value = math.Inf(1) }},
		{"negative", func(p *Point) { p.Value = -1 }},
		{"unknown field", func(p *Point) { p.Field = "memory_available_bytes" }},
		{"unknown measurement", func(p *Point) { p.Measurement = "kubernetes_node" }},
		{"no namespace", func(p *Point) { p.Pod.Namespace = "" }},
		{"no pod name", func(p *Point) { p.Pod.Name = "" }},
		{"no time", func(p *Point) { p.Time = time.Time{} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := mustBuilder(t, time.Second)
			p := good
			tt.mutate(&p)
			if err := b.Add(p); err == nil {
				t.Fatalf("Add(%+v) succeeded", p)
			}
			if len(b.Pods()) != 0 {
				t.Errorf("rejected point left state behind: %v", b.Pods())
			}
		})
	}
}

func TestNewBuilderRejects(t *testing.T) {
	for _, c := range []struct {
		step time.Duration
		opts []BuilderOption
	}{
		{0, nil}, {-time.Second, nil}, {time.Second, []BuilderOption{KeepLast(-1)}}, {time.Second, []BuilderOption{MaxRateGap(0)}},
		{time.Second, []BuilderOption{RestartWindow(0)}},
	} {
		if _, err := NewBuilder(c.step, c.opts...); err == nil {
			t.Errorf("NewBuilder(%v, %d opts) succeeded", c.step, len(c.opts))
		}
	}
}

// telegrafLike generates what Telegraf would write for a few pods over n intervals: jittered
// timestamps, two containers, counters with occasional restarts, a volume, network, blkio.
func telegrafLike(seed uint64, n int, interval time.Duration) []Point {
	rng := rand.New(rand.NewPCG(seed, 42))
	var pts []Point
	pods := []types.NamespacedName{{Namespace: "a", Name: "p1"}, {Namespace: "a", Name: "p2"}, {Namespace: "b", Name: "p1"}}
	for _, pod := range pods {
		counters := map[string]float64{}
		for i := range n {
			ts := t0.Add(time.Duration(i)*interval + time.Duration(rng.Float64()*0.3*float64(interval)))
			for _, c := range []string{"app", "sidecar"} {
				for _, s := range Sources() {
					if s.Measurement != MeasurementPodContainer {
						continue
					}
					if rng.IntN(20) == 0 {
						continue // a missed scrape
					}
					v := rng.Float64() * 1e6
					if s.Counter {
						key := c + s.Field
						if rng.IntN(30) == 0 {
							counters[key] = 0 // restart
						}
						counters[key] += 1 + rng.Float64()*1e9
						v = counters[key]
					}
					pts = append(pts, Point{Pod: pod, Node: "n1", Container: c, Measurement: s.Measurement, Field: s.Field, Time: ts, Value: v})
				}
			}
			for _, f := range []string{"rx_bytes", "tx_bytes", "rx_errors", "tx_errors"} {
				counters[f] += rng.Float64() * 1e5
				pts = append(pts, Point{Pod: pod, Node: "n1", Measurement: MeasurementPodNetwork, Field: f, Time: ts, Value: counters[f]})
			}
			pts = append(pts, Point{Pod: pod, Node: "n1", Container: "data", Measurement: MeasurementPodVolume, Field: "used_bytes", Time: ts, Value: float64(i)})
			counters["blk"] += rng.Float64() * 1e4
			pts = append(pts, Point{Pod: pod, Node: "n1", Container: "k8s_app", Measurement: MeasurementDockerBlkio, Field: "io_service_bytes_recursive_write", Time: ts, Value: counters["blk"]})
		}
	}
	return pts
}

func sameSeries(t *testing.T, label string, got, want *Series) {
	t.Helper()
	if got.Pod != want.Pod || got.Node != want.Node || !got.Start.Equal(want.Start) || got.Step != want.Step || got.Len() != want.Len() {
		t.Fatalf("%s: header %s %s %v %v len %d, want %s %s %v %v len %d", label,
			got.Pod, got.Node, got.Start, got.Step, got.Len(), want.Pod, want.Node, want.Start, want.Step, want.Len())
	}
	for m := range got.Values {
		for i := range got.Values[m] {
			g, w := got.Values[m][i], want.Values[m][i]
			if math.Float64bits(g) != math.Float64bits(w) && !(math.IsNaN(g) && math.IsNaN(w)) {
				t.Fatalf("%s: %v[%d] = %v, want %v", label, Metric(m), i, g, w)
			}
		}
	}
}

// The watcher feeds each interval's points (re-reading an overlap) and must get exactly the
// trainer's one-batch result, rates across every boundary included.
func TestBuilderIncrementalEqualsBatch(t *testing.T) {
	// The restart window reaches back before a KeepLast buffer's oldest grid point.
	for _, window := range []int{1, 5} {
		t.Run(fmt.Sprintf("RestartWindow(%d)", window), func(t *testing.T) { testIncrementalEqualsBatch(t, RestartWindow(window)) })
	}
}

func testIncrementalEqualsBatch(t *testing.T, restarts BuilderOption) {
	const step = 10 * time.Second
	pts := telegrafLike(1, 200, step)
	batch := mustBuilder(t, step, restarts)
	// The batch sees the points in random order.
	shuffled := slices.Clone(pts)
	rand.New(rand.NewPCG(7, 7)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	addAll(t, batch, shuffled)

	slices.SortStableFunc(pts, func(x, y Point) int { return x.Time.Compare(y.Time) })
	const keep = 30
	inc := mustBuilder(t, step, restarts)
	bounded := mustBuilder(t, step, KeepLast(keep), restarts)
	for from := t0; from.Before(t0.Add(201 * step)); from = from.Add(step) {
		// Each call re-sends the previous interval too (an overlapping read): duplicates.
		lo, hi := from.Add(-step), from.Add(step)
		for _, p := range pts {
			if !p.Time.Before(lo) && p.Time.Before(hi) {
				if err := inc.Add(p); err != nil {
					t.Fatal(err)
				}
				if err := bounded.Add(p); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if !slices.Equal(batch.Pods(), inc.Pods()) || len(batch.Pods()) != 3 {
		t.Fatalf("pods: batch %v, incremental %v", batch.Pods(), inc.Pods())
	}
	for _, pod := range batch.Pods() {
		want, _ := batch.Series(pod)
		got, _ := inc.Series(pod)
		sameSeries(t, fmt.Sprintf("%s incremental", pod), got, want)

		last, ok := bounded.Series(pod)
		if !ok || last.Len() != keep {
			t.Fatalf("%s: KeepLast(%d) series has %d points", pod, keep, last.Len())
		}
		sameSeries(t, fmt.Sprintf("%s KeepLast", pod), last, want.Slice(want.Len()-keep, want.Len()))
	}
}

func TestBuilderRestartWindow(t *testing.T) {
	const step = 10 * time.Second
	b := mustBuilder(t, step, RestartWindow(3))
	if got, want := b.Lead(), 3*step; got != want {
		t.Errorf("Lead() = %v, want %v: a counter's previous sample and 2 earlier grid points", got, want)
	}
	// The counter restarts at 30 s and at 40 s; no sample at 70 s.
	for i, v := range []float64{5e9, 6e9, 7e9, 1e9, 1e8, 2e8, 3e8, -1, 5e8, 6e8} {
		if v >= 0 {
			addAll(t, b, []Point{ctr(podA(), "app", "cpu_usage_core_nanoseconds", float64(10*i), v)})
		}
	}
	s, _ := b.Series(podA())
	// Each grid point counts the restarts in itself and the two before it; the grid point without
	// a rate stays unknown (and at 80 s the rate spans the missing sample, 20 s, in one bucket).
	want := []float64{nan, 0, 0, 1, 2, 2, 1, nan, 0, 0}
	if !equalVals(s.Values[ContainerRestarts], want) {
		t.Errorf("ContainerRestarts = %v, want %v", s.Values[ContainerRestarts], show(want))
	}
	// A range that begins after the restarts still counts them from the samples before it.
	r, err := b.Range(podA(), at(50), at(70))
	if err != nil {
		t.Fatal(err)
	}
	if want := []float64{2, 1}; !equalVals(r.Values[ContainerRestarts], want) {
		t.Errorf("Range from 50 s: ContainerRestarts = %v, want %v", r.Values[ContainerRestarts], want)
	}
}

func TestBuilderKeepLastBoundsMemory(t *testing.T) {
	const keep = 10
	b := mustBuilder(t, time.Second, KeepLast(keep))
	for i := range 5000 {
		addAll(t, b, []Point{
			netPt(podA(), "rx_bytes", float64(i), float64(i)),
			ctr(podA(), "app", "memory_usage_bytes", float64(i), 1),
		})
		if i == 100 {
			// A container that stops reporting must not be kept forever.
			addAll(t, b, []Point{ctr(podA(), "old", "memory_usage_bytes", float64(i), 1)})
		}
	}
	ps := b.pods[podA()]
	if len(ps.streams) != 2 {
		t.Errorf("%d streams kept, want 2 (the stopped container dropped)", len(ps.streams))
	}
	for k, s := range ps.streams {
		if len(s.t) > keep+1 || cap(s.t) > 4*(keep+1)+8 {
			t.Errorf("stream %v holds %d samples (cap %d), want <= %d", k, len(s.t), cap(s.t), keep+1)
		}
	}
	s, _ := b.Series(podA())
	if s.Len() != keep || !s.Start.Equal(at(5000-keep)) {
		t.Errorf("series len %d start %v, want %d from %v", s.Len(), s.Start, keep, at(5000-keep))
	}
	if r := s.Values[NetworkRxBytesPerSecond]; math.IsNaN(r[0]) || r[0] != 1 {
		t.Errorf("first rate in window = %v, want 1 (predecessor kept)", r[0])
	}
	// Points from before the window are dropped, not resurrected.
	addAll(t, b, []Point{ctr(podA(), "app", "memory_usage_bytes", 3, 1)})
	if s2, _ := b.Series(podA()); s2.Len() != keep {
		t.Errorf("old point changed the window: len %d", s2.Len())
	}
}

func TestBuilderForgetAndRange(t *testing.T) {
	b := mustBuilder(t, 10*time.Second)
	addAll(t, b, []Point{
		ctr(podA(), "app", "memory_usage_bytes", 15, 5),
		ctr(podB(), "app", "memory_usage_bytes", 15, 6),
	})
	b.Forget(podA())
	if got := b.Pods(); !slices.Equal(got, []types.NamespacedName{podB()}) {
		t.Errorf("Pods after Forget = %v", got)
	}
	if _, ok := b.Series(podA()); ok {
		t.Error("Series of forgotten pod")
	}
	tests := []struct {
		name        string
		pod         types.NamespacedName
		start, stop time.Time
		wantStart   time.Time
		want        []float64
	}{
		{"covers buckets overlapping the range", podB(), at(5), at(30), t0, []float64{nan, 6, nan}},
		{"stop on the grid is exclusive", podB(), at(10), at(20), at(10), []float64{6}},
		{"unknown pod is all NaN", podA(), at(0), at(20), t0, []float64{nan, nan}},
		{"empty range", podB(), at(20), at(20), at(20), []float64{}},
		{"inverted range", podB(), at(30), at(20), at(30), []float64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := b.Range(tt.pod, tt.start, tt.stop)
			if err != nil {
				t.Fatal(err)
			}
			if !s.Start.Equal(tt.wantStart) || !equalVals(s.Values[MemoryUsageBytes], tt.want) {
				t.Errorf("Range = start %v %v, want %v %v", s.Start, s.Values[MemoryUsageBytes], tt.wantStart, show(tt.want))
			}
		})
	}
	if _, err := b.Range(podB(), t0, t0.Add(24*365*time.Hour)); err == nil {
		t.Error("Range over a year of 10 s points succeeded, want a size error")
	}
}

func TestFloorDiv(t *testing.T) {
	for _, c := range [][3]int64{{7, 2, 3}, {-7, 2, -4}, {-8, 2, -4}, {0, 5, 0}, {-1, 10, -1}} {
		if got := floorDiv(c[0], c[1]); got != c[2] {
			t.Errorf("floorDiv(%d, %d) = %d, want %d", c[0], c[1], got, c[2])
		}
	}
}

func BenchmarkBuilder(b *testing.B) {
	pts := telegrafLike(3, 360, 10*time.Second)
	for b.Loop() {
		bl := mustBuilder(b, 10*time.Second)
		addAll(b, bl, pts)
		for _, p := range bl.Pods() {
			bl.Series(p)
		}
	}
}

// BenchmarkBuilderWatcherSeries is the watcher's use: a buffer of two 12-point windows per pod,
// whose Series is built after every read, with restarts counted per grid point (as before
// RestartWindow) and over the window, as the fetcher does.
func BenchmarkBuilderWatcherSeries(b *testing.B) {
	const step, window = 10 * time.Second, 12
	pts := telegrafLike(3, 360, step)
	for _, restarts := range []int{1, window} {
		b.Run(fmt.Sprintf("RestartWindow=%d", restarts), func(b *testing.B) {
			bl := mustBuilder(b, step, KeepLast(2*window), RestartWindow(restarts))
			addAll(b, bl, pts)
			pods := bl.Pods()
			b.ReportAllocs()
			for b.Loop() {
				for _, p := range pods {
					bl.Series(p)
				}
			}
		})
	}
}
