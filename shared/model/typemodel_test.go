package model

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/podtype/podtype/shared/features"
	"github.com/podtype/podtype/shared/iforest"
	"github.com/podtype/podtype/shared/telemetry"
)

// podWindow describes one simulated pod window: its load (traffic multiplier, lognormal
// between pods like real ones), whether the runtime reports the working set, and a fault.
type podWindow struct {
	load, memScale float64
	noWorkingSet   bool
	fault          string // "", "cpu", "flood", "disk"
}

// window returns the classification vector of 20 one-second samples of w, computed by
// features.Extract like the real pipeline does.
func (w podWindow) vector(t testing.TB, rng *rand.Rand) []float64 {
	t.Helper()
	const n = 20
	s := telemetry.NewSeries(types.NamespacedName{Namespace: "ns", Name: "p"}, "node", time.Unix(0, 0), time.Second, n)
	noise := func(sd float64) float64 { return math.Exp(sd * rng.NormFloat64()) }
	for i := range n {
		demand := w.load * noise(0.15)
		cpu := 0.2 * demand * noise(0.05)
		rx := 1e5 * demand * noise(0.05)
		tx := 3.5 * rx * noise(0.05)
		rootfs := 1 << 20
		switch w.fault {
		case "cpu":
			cpu = 2 * noise(0.01) // pinned at the limit
		case "flood":
			rx *= 30
		case "disk":
			rootfs += i * 8 << 20
		}
		rss := 60e6 * w.memScale * noise(0.01)
		s.Values[telemetry.CPUCores][i] = cpu
		s.Values[telemetry.MemoryUsageBytes][i] = rss + 40e6*w.memScale
		s.Values[telemetry.MemoryWorkingSetBytes][i] = rss + 20e6*w.memScale
		if w.noWorkingSet {
			s.Values[telemetry.MemoryWorkingSetBytes][i] = 0
		}
		s.Values[telemetry.MemoryRSSBytes][i] = rss
		s.Values[telemetry.PageFaultsPerSecond][i] = 900 * cpu * noise(0.1)
		s.Values[telemetry.RootfsUsedBytes][i] = float64(rootfs)
		s.Values[telemetry.NetworkRxBytesPerSecond][i] = rx
		s.Values[telemetry.NetworkTxBytesPerSecond][i] = tx
	}
	x, err := features.Extract(s, features.Extra{})
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// pods draws n pods' load and memory scale, spread as much as real pods of one type.
func pods(rng *rand.Rand, n int) []podWindow {
	out := make([]podWindow, n)
	for i := range out {
		out[i] = podWindow{load: math.Exp(0.5 * rng.NormFloat64()), memScale: math.Exp(0.4 * rng.NormFloat64())}
	}
	return out
}

// trainedTypeModel fits a type model on 10 pods and calibrates its threshold on the scores of
// 10 other pods' windows, as the trainer does with pods the forest did not see.
func trainedTypeModel(t *testing.T, rng *rand.Rand) *TypeModel {
	t.Helper()
	var x [][]float64
	for _, p := range pods(rng, 10) {
		for range 20 {
			x = append(x, p.vector(t, rng))
		}
	}
	tm, err := FitTypeModel(x, iforest.Config{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	var scores []float64
	for _, p := range pods(rng, 10) {
		for range 20 {
			s, err := tm.Score(p.vector(t, rng))
			if err != nil {
				t.Fatal(err)
			}
			scores = append(scores, s)
		}
	}
	slices.Sort(scores)
	tm.Threshold = scores[int(0.99*float64(len(scores)-1))]
	return tm
}

func TestTypeModelFlagsFaultsOfNewPods(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tm := trainedTypeModel(t, rng)
	if n := len(features.AnomalyNames()); tm.Forest.Features != n || len(tm.Mean) != n || len(tm.Std) != n {
		t.Fatalf("forest over %d features, baseline %d/%d, want %d", tm.Forest.Features, len(tm.Mean), len(tm.Std), n)
	}
	tests := []struct {
		name          string
		fault         string
		maxFlagged    float64 // share of windows
		minFlagged    float64
		wantTopReason string // a feature among the three Explain puts first
	}{
		// New pods are as busy as any: their level differs, their behaviour does not.
		{name: "normal windows of new pods", maxFlagged: 0.05},
		{name: "CPU pinned at the limit", fault: "cpu", minFlagged: 1, wantTopReason: "cpu"},
		{name: "network flood", fault: "flood", minFlagged: 1, wantTopReason: "rx"},
		{name: "disk fill", fault: "disk", minFlagged: 1, wantTopReason: "rootfs"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			flagged, total := 0, 0
			for _, p := range pods(rng, 10) {
				p.fault = tc.fault
				for range 10 {
					x := p.vector(t, rng)
					s, err := tm.Score(x)
					if err != nil {
						t.Fatal(err)
					}
					if !(s > 0 && s <= 1) {
						t.Fatalf("score %v outside (0,1]", s)
					}
					total++
					if tm.Anomalous(s) {
						flagged++
					}
					if tc.wantTopReason != "" {
						top := tm.Explain(x, 3)
						if !slices.ContainsFunc(top, func(d features.Deviation) bool { return strings.Contains(d.Feature, tc.wantTopReason) }) {
							t.Errorf("Explain = %+v, want a %s feature among the first three", top, tc.wantTopReason)
						}
					}
				}
			}
			share := float64(flagged) / float64(total)
			t.Logf("%d of %d windows flagged (threshold %.3f)", flagged, total, tm.Threshold)
			if share > tc.maxFlagged && tc.fault == "" {
				t.Errorf("%.3f of windows flagged, want <= %.2f", share, tc.maxFlagged)
			}
			if share < tc.minFlagged {
				t.Errorf("%.3f of windows flagged, want >= %.2f", share, tc.minFlagged)
			}
		})
	}
}

// A runtime that does not report a metric is no anomaly: the model scores the metric's
// features at its baseline, and Explain leaves them out.
func TestTypeModelImputesAbsentMetrics(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	tm := trainedTypeModel(t, rng)
	p := podWindow{load: 1, memScale: 1, noWorkingSet: true}
	seed := rng.Uint64()
	x := p.vector(t, rand.New(rand.NewPCG(seed, 0)))
	p.noWorkingSet = false
	withWorkingSet := p.vector(t, rand.New(rand.NewPCG(seed, 0)))
	known, err := features.AnomalyKnown(x)
	if err != nil {
		t.Fatal(err)
	}
	v, err := tm.Vector(x)
	if err != nil {
		t.Fatal(err)
	}
	names := features.AnomalyNames()
	unknown := 0
	for j, ok := range known {
		if !ok {
			unknown++
			if v[j] != tm.Mean[j] {
				t.Errorf("%s is unknown but scored as %v, want the baseline %v", names[j], v[j], tm.Mean[j])
			}
		}
	}
	if unknown == 0 {
		t.Fatal("no feature depends on the working set")
	}
	for _, d := range tm.Explain(x, 0) {
		if strings.Contains(d.Feature, "working_set") {
			t.Errorf("Explain reports %s, which the window does not have", d.Feature)
		}
	}
	// The same window with and without working set scores about the same.
	s, err := tm.Score(x)
	if err != nil {
		t.Fatal(err)
	}
	sw, err := tm.Score(withWorkingSet)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(s-sw) > 0.05 || tm.Anomalous(s) {
		t.Errorf("score %v without working set, %v with it (threshold %v): want about equal and not anomalous", s, sw, tm.Threshold)
	}
}

func TestTypeModelAnomalousIsStrict(t *testing.T) {
	tm := &TypeModel{Threshold: 0.6}
	tests := []struct {
		score float64
		want  bool
	}{
		{0.59, false}, {0.6, false}, {0.6000001, true}, {1, true}, {math.NaN(), false},
	}
	for _, tc := range tests {
		if got := tm.Anomalous(tc.score); got != tc.want {
			t.Errorf("Anomalous(%v) with threshold 0.6 = %v, want %v", tc.score, got, tc.want)
		}
	}
}

func TestTypeModelErrors(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	good := podWindow{load: 1, memScale: 1}.vector(t, rng)
	tm, err := FitTypeModel([][]float64{good, podWindow{load: 2, memScale: 1}.vector(t, rng)}, iforest.Config{Trees: 3})
	if err != nil {
		t.Fatal(err)
	}
	bad := slices.Clone(good)
	bad[4] = math.Inf(1)
	tests := []struct {
		name string
		run  func() error
		want string
	}{
		{"fit without windows", func() error { _, err := FitTypeModel(nil, iforest.Config{}); return err }, "no windows"},
		{"fit on a short window", func() error { _, err := FitTypeModel([][]float64{good, good[:5]}, iforest.Config{}); return err }, "window 1: features: anomaly vector: classification vector has 5 values"},
		{"score a short vector", func() error { _, err := tm.Score(good[:10]); return err }, "has 10 values"},
		{"score an infinite value", func() error { _, err := tm.Score(bad); return err }, features.Names()[4] + " = +Inf"},
		{"nil model", func() error { _, err := (*TypeModel)(nil).Score(good); return err }, "nil type model"},
		{"no forest", func() error { _, err := (&TypeModel{Mean: tm.Mean}).Score(good); return err }, "no forest"},
		{"baseline of another layout", func() error { _, err := (&TypeModel{Forest: tm.Forest, Mean: tm.Mean[:3]}).Score(good); return err }, "baseline of 3 features"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
	if got := tm.Explain(good[:10], 3); got != nil {
		t.Errorf("Explain of a short vector = %v, want nil", got)
	}
	if got := tm.Explain(good, 2); len(got) != 2 {
		t.Errorf("Explain(x, 2) returned %d deviations", len(got))
	}
}
