package dataset

import (
	"math"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/podtype/podtype/shared/telemetry"
)

var t0 = time.Date(2026, 1, 2, 15, 0, 0, 0, time.UTC)

func nn(ns, name string) types.NamespacedName { return types.NamespacedName{Namespace: ns, Name: name} }

// series returns n samples of plausible, slowly varying signals for pod, scaled by level so
// different pods differ, and no container restarts; values at the indices in gaps are NaN for
// every metric.
func series(pod types.NamespacedName, n int, level float64, gaps ...int) *telemetry.Series {
	s := &telemetry.Series{Pod: pod, Node: "node-1", Start: t0, Step: 10 * time.Second}
	missing := map[int]bool{}
	for _, g := range gaps {
		missing[g] = true
	}
	for _, m := range telemetry.Metrics() {
		v := make([]float64, n)
		for i := range v {
			switch {
			case missing[i]:
				v[i] = math.NaN()
			case m == telemetry.BlkioReadBytesPerSecond || m == telemetry.BlkioWriteBytesPerSecond:
				v[i] = 0 // absent, as on containerd
			case m == telemetry.ContainerRestarts:
				v[i] = 0
			default:
				v[i] = level * float64(int(m)+1) * (1 + 0.1*math.Sin(float64(i)))
			}
		}
		s.Values[m] = v
	}
	return s
}

// withRestarts sets the container restart count of s to 1 at the given grid points.
func withRestarts(s *telemetry.Series, at ...int) *telemetry.Series {
	for _, i := range at {
		s.Values[telemetry.ContainerRestarts][i] = 1
	}
	return s
}

func opts(faults ...Fault) Options {
	return Options{Classes: []string{"mysql", "nginx"}, WindowSamples: 6, WindowStep: 10 * time.Second, Faults: faults}
}

func build(t *testing.T, inv []Pod, opt Options, ss ...*telemetry.Series) *Dataset {
	t.Helper()
	b, err := NewBuilder(inv, opt)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Add(ss); err != nil {
		t.Fatal(err)
	}
	return b.Finish(t0, t0.Add(time.Hour))
}

func withOverlap(o Options, v float64) Options {
	o.FaultMinOverlap = v
	return o
}

func TestBuilderWindows(t *testing.T) {
	a, b := nn("ns", "db-0"), nn("ns", "web-0")
	inv := []Pod{{Name: a, Type: "mysql", ImageSizeBytes: 1 << 28}, {Name: b, Type: "nginx"}}
	leak := Fault{Pod: a, Name: "memory_leak", Start: t0.Add(55 * time.Second), End: t0.Add(100 * time.Second)}
	crashes := Fault{Pod: a, Name: "restart_loop", Start: t0, End: t0.Add(60 * time.Second)}

	tests := []struct {
		name          string
		opt           Options
		series        []*telemetry.Series
		normal, fault int
		boundary      int
		aftermath     int
		faultStarts   []time.Time
	}{
		// 25 samples, windows of 6: 4 windows, the 1-sample tail is dropped.
		{name: "tail dropped", opt: opts(), series: []*telemetry.Series{series(a, 25, 1)}, normal: 4},
		{name: "two pods", opt: opts(), series: []*telemetry.Series{series(a, 12, 1), series(b, 12, 2)}, normal: 4},
		// [60s,120s) is covered by the fault [55s,100s) for 40 of 60 s; [0,60s) for 5 s only,
		// which makes it a boundary window, neither normal nor fault; [120s,180s) is its
		// aftermath, [180s,240s) normal.
		{name: "fault window kept apart", opt: opts(leak), series: []*telemetry.Series{series(a, 24, 1)},
			normal: 1, fault: 1, boundary: 1, aftermath: 1, faultStarts: []time.Time{t0.Add(60 * time.Second)}},
		{name: "lower overlap threshold", opt: withOverlap(opts(leak), 0.05), series: []*telemetry.Series{series(a, 24, 1)},
			normal: 1, fault: 2, aftermath: 1, faultStarts: []time.Time{t0, t0.Add(60 * time.Second)}},
		// A fault ending exactly at a window's start does not overlap it (intervals are half-open),
		// but the window is its aftermath; one ending a window earlier leaves it normal.
		{name: "touching fault", opt: opts(Fault{Pod: a, Name: "cpu_saturation", Start: t0.Add(-time.Minute), End: t0}),
			series: []*telemetry.Series{series(a, 6, 1)}, aftermath: 1},
		{name: "fault a window before", opt: opts(Fault{Pod: a, Name: "cpu_saturation", Start: t0.Add(-2 * time.Minute), End: t0.Add(-time.Minute)}),
			series: []*telemetry.Series{series(a, 6, 1)}, normal: 1},
		{name: "fault of another pod", opt: opts(Fault{Pod: b, Name: "cpu_saturation", Start: t0, End: t0.Add(time.Hour)}),
			series: []*telemetry.Series{series(a, 6, 1)}, normal: 1},
		// The window after a crash loop still counts its last restart (the counts look a window
		// back): neither normal nor fault. The window after that is normal again, and so is a
		// restart that no labelled fault explains.
		{name: "crash loop aftermath", opt: opts(crashes), series: []*telemetry.Series{withRestarts(series(a, 24, 1), 4, 6, 7, 20)},
			normal: 2, fault: 1, aftermath: 1, faultStarts: []time.Time{t0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds := build(t, inv, tt.opt, tt.series...)
			if len(ds.Normal) != tt.normal || len(ds.Faults) != tt.fault {
				t.Fatalf("normal %d, fault %d windows; want %d, %d", len(ds.Normal), len(ds.Faults), tt.normal, tt.fault)
			}
			if got := ds.Excluded.Windows[ReasonFaultBoundary]; got != tt.boundary {
				t.Errorf("boundary windows = %d, want %d", got, tt.boundary)
			}
			if got := ds.Excluded.Windows[ReasonFaultAftermath]; got != tt.aftermath {
				t.Errorf("aftermath windows = %d, want %d", got, tt.aftermath)
			}
			for i, w := range ds.Faults {
				if !w.Start.Equal(tt.faultStarts[i]) || w.Fault == "" {
					t.Errorf("fault window %d: start %s fault %q, want start %s", i, w.Start, w.Fault, tt.faultStarts[i])
				}
			}
			for _, w := range append(ds.Normal, ds.Faults...) {
				if len(w.Features) != len(ds.FeatureNames) {
					t.Fatalf("window has %d features, want %d", len(w.Features), len(ds.FeatureNames))
				}
				if want := map[types.NamespacedName]string{a: "mysql", b: "nginx"}[w.Pod]; w.Type != want {
					t.Errorf("pod %s labelled %q, want %q", w.Pod, w.Type, want)
				}
			}
		})
	}
}

func TestBuilderImageSizeFeature(t *testing.T) {
	a := nn("ns", "db-0")
	idx := -1
	ds := build(t, []Pod{{Name: a, Type: "mysql", ImageSizeBytes: 1 << 20}}, opts(), series(a, 6, 1))
	for i, n := range ds.FeatureNames {
		if n == "image_size_log2" {
			idx = i
		}
	}
	if idx < 0 {
		t.Skip("feature set has no image_size_log2")
	}
	if got := ds.Normal[0].Features[idx]; got != 20 {
		t.Errorf("image_size_log2 = %v, want 20 (the inventory's image size reaches the features)", got)
	}
}

func TestBuilderExclusions(t *testing.T) {
	db, web, cache, gone, empty := nn("ns", "db-0"), nn("ns", "web-0"), nn("ns", "cache-0"), nn("ns", "old-0"), nn("ns", "db-1")
	inv := []Pod{
		{Name: db, Type: "mysql"},
		{Name: web, Type: "nginx"},
		{Name: cache, Type: "redis"},
		{Name: empty, Type: "mysql"},
		{Name: nn("ns", "untyped"), Type: ""},
	}
	allGaps := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}
	ds := build(t, inv, opts(),
		series(db, 12, 1),
		series(web, 12, 1, 1, 2, 3, 4), // second window full, first 4/6 missing: too little data
		series(cache, 12, 1),
		series(gone, 12, 1),
		series(empty, 12, 1, allGaps...),
		series(nn("ns", "untyped"), 6, 1),
	)
	want := map[string]map[string]int{
		ReasonOtherType:      {"redis": 1, UnknownType: 1},
		ReasonNotInInventory: {UnknownType: 1},
		ReasonNoUsableWindow: {"mysql": 1},
	}
	if !equalNested(ds.Excluded.Pods, want) {
		t.Errorf("excluded pods = %v, want %v", ds.Excluded.Pods, want)
	}
	if got := ds.Excluded.Windows[ReasonTooLittleData]; got != 3 {
		t.Errorf("windows with too little data = %d, want 3 (1 of web-0, 2 of db-1)", got)
	}
	if len(ds.Normal) != 3 {
		t.Errorf("normal windows = %d, want 3 (2 of db-0, 1 of web-0)", len(ds.Normal))
	}
	if got := ds.PodsByType(); len(got["mysql"]) != 1 || len(got["nginx"]) != 1 || len(got) != 2 {
		t.Errorf("pods by type = %v, want one mysql and one nginx pod", got)
	}
}

func TestBuilderErrors(t *testing.T) {
	a := nn("ns", "db-0")
	s := series(a, 6, 1)
	s.Step = time.Second
	b, err := NewBuilder([]Pod{{Name: a, Type: "mysql"}}, opts())
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Add([]*telemetry.Series{s}); err == nil || !strings.Contains(err.Error(), "step") {
		t.Errorf("series with another step: err = %v, want a step mismatch", err)
	}
	for _, o := range []Options{
		{Classes: nil, WindowSamples: 6, WindowStep: time.Second},
		{Classes: []string{"a"}, WindowSamples: 1, WindowStep: time.Second},
		{Classes: []string{"a"}, WindowSamples: 6, WindowStep: 0},
	} {
		if _, err := NewBuilder(nil, o); err == nil {
			t.Errorf("NewBuilder(%+v) accepted invalid options", o)
		}
	}
}

func equalNested(a, b map[string]map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, av := range a {
		bv, ok := b[k]
		if !ok || len(av) != len(bv) {
			return false
		}
		for k2, v := range av {
			if bv[k2] != v {
				return false
			}
		}
	}
	return true
}
