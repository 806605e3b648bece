package features

import (
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/podtype/podtype/shared/telemetry"
)

var nan = math.NaN()

// series builds a window of n samples at step; metrics not in vals are absent (empty).
func series(n int, step time.Duration, vals map[telemetry.Metric][]float64) *telemetry.Series {
	s := &telemetry.Series{
		Pod:   types.NamespacedName{Namespace: "ns", Name: "web-0"},
		Start: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
		Step:  step,
	}
	for m, v := range vals {
		s.Values[m] = v
	}
	return s
}

// nameIndex maps feature names to vector positions.
func nameIndex(t *testing.T) map[string]int {
	t.Helper()
	idx := make(map[string]int)
	for i, n := range Names() {
		idx[n] = i
	}
	return idx
}

func approx(a, b float64) bool {
	return math.Abs(a-b) <= 1e-12*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}

func TestExtractMaths(t *testing.T) {
	const step = 10 * time.Second
	cpu, mem := telemetry.CPUCores, telemetry.MemoryUsageBytes
	tests := []struct {
		name  string
		vals  map[telemetry.Metric][]float64
		extra Extra
		// want lists the features to check; every feature not listed must be 0.
		want map[string]float64
	}{
		{
			name: "ramp",
			vals: map[telemetry.Metric][]float64{cpu: {1, 2, 3, 4, 5}},
			want: map[string]float64{
				"cpu_cores_mean": 3, "cpu_cores_std": math.Sqrt2, "cpu_cores_min": 1, "cpu_cores_max": 5,
				"cpu_cores_p25": 2, "cpu_cores_p75": 4, "cpu_cores_iqr": 2, "cpu_cores_slope": 0.1,
				"cpu_cores_present": 1, "availability": 1,
			},
		},
		{
			name: "quantiles between samples",
			vals: map[telemetry.Metric][]float64{cpu: {4, 1, 3, 2}},
			want: map[string]float64{
				"cpu_cores_mean": 2.5, "cpu_cores_std": math.Sqrt(1.25), "cpu_cores_min": 1, "cpu_cores_max": 4,
				"cpu_cores_p25": 1.75, "cpu_cores_p75": 3.25, "cpu_cores_iqr": 1.5,
				// t = 0,10,20,30 s; sxy = -15*1.5 + -5*-1.5 + 5*0.5 + 15*-0.5 = -20; sxx = 500.
				"cpu_cores_slope": -0.04, "cpu_cores_present": 1, "availability": 1,
			},
		},
		{
			name: "gap of two interpolated",
			vals: map[telemetry.Metric][]float64{cpu: {1, nan, nan, 4, 5}},
			want: map[string]float64{
				"cpu_cores_mean": 3, "cpu_cores_std": math.Sqrt2, "cpu_cores_min": 1, "cpu_cores_max": 5,
				"cpu_cores_p25": 2, "cpu_cores_p75": 4, "cpu_cores_iqr": 2, "cpu_cores_slope": 0.1,
				"cpu_cores_present": 1, "availability": 3.0 / 5,
			},
		},
		{
			name: "gap of three left missing",
			vals: map[telemetry.Metric][]float64{cpu: {1, nan, nan, nan, 5, 6}},
			// Samples {1,5,6} at t = 0,40,50 s: sxy = 140, sxx = 1400.
			want: map[string]float64{
				"cpu_cores_mean": 4, "cpu_cores_std": math.Sqrt(14.0 / 3), "cpu_cores_min": 1, "cpu_cores_max": 6,
				"cpu_cores_p25": 3, "cpu_cores_p75": 5.5, "cpu_cores_iqr": 2.5, "cpu_cores_slope": 0.1,
				"cpu_cores_present": 1, "availability": 0.5,
			},
		},
		{
			name: "edge gaps not extrapolated",
			vals: map[telemetry.Metric][]float64{cpu: {nan, 2, 4, 6, nan, nan}},
			want: map[string]float64{
				"cpu_cores_mean": 4, "cpu_cores_std": math.Sqrt(8.0 / 3), "cpu_cores_min": 2, "cpu_cores_max": 6,
				"cpu_cores_p25": 3, "cpu_cores_p75": 5, "cpu_cores_iqr": 2, "cpu_cores_slope": 0.2,
				"cpu_cores_present": 1, "availability": 0.5,
			},
		},
		{
			name: "negative and infinite samples are missing",
			vals: map[telemetry.Metric][]float64{cpu: {1, -7, 3, math.Inf(1), 5}},
			want: map[string]float64{
				"cpu_cores_mean": 3, "cpu_cores_std": math.Sqrt2, "cpu_cores_min": 1, "cpu_cores_max": 5,
				"cpu_cores_p25": 2, "cpu_cores_p75": 4, "cpu_cores_iqr": 2, "cpu_cores_slope": 0.1,
				"cpu_cores_present": 1, "availability": 3.0 / 5,
			},
		},
		{
			name: "all-zero metric is absent, zeros of a present metric are real",
			vals: map[telemetry.Metric][]float64{
				cpu: {0, 0, 3},
				mem: {0, nan, 0},
				// NaN and zeros only: absent as well.
				telemetry.MemoryRSSBytes: {nan, nan, 0},
			},
			want: map[string]float64{
				"cpu_cores_mean": 1, "cpu_cores_std": math.Sqrt2, "cpu_cores_min": 0, "cpu_cores_max": 3,
				"cpu_cores_p25": 0, "cpu_cores_p75": 1.5, "cpu_cores_iqr": 1.5, "cpu_cores_slope": 0.15,
				"cpu_cores_present": 1, "availability": 1,
			},
		},
		{
			name: "availability counts points where any present metric has a sample",
			vals: map[telemetry.Metric][]float64{
				cpu: {1, 2, nan, nan, nan, nan},
				mem: {nan, nan, nan, 7, 9, nan},
				// Absent metrics do not make points count.
				telemetry.RootfsUsedBytes: {0, 0, 0, 0, 0, 0},
			},
			want: map[string]float64{
				"cpu_cores_mean": 1.5, "cpu_cores_std": 0.5, "cpu_cores_min": 1, "cpu_cores_max": 2,
				"cpu_cores_p25": 1.25, "cpu_cores_p75": 1.75, "cpu_cores_iqr": 0.5, "cpu_cores_slope": 0.1,
				"cpu_cores_present":       1,
				"memory_usage_bytes_mean": 8, "memory_usage_bytes_std": 1, "memory_usage_bytes_min": 7,
				"memory_usage_bytes_max": 9, "memory_usage_bytes_p25": 7.5, "memory_usage_bytes_p75": 8.5,
				"memory_usage_bytes_iqr": 1, "memory_usage_bytes_slope": 0.2, "memory_usage_bytes_present": 1,
				"availability": 4.0 / 6,
			},
		},
		{
			name:  "image size",
			vals:  map[telemetry.Metric][]float64{cpu: {2, 2, 2}},
			extra: Extra{ImageSizeBytes: 1 << 30},
			want: map[string]float64{
				"cpu_cores_mean": 2, "cpu_cores_min": 2, "cpu_cores_max": 2, "cpu_cores_p25": 2, "cpu_cores_p75": 2,
				"cpu_cores_present": 1, "image_size_log2": 30, "availability": 1,
			},
		},
	}
	idx := nameIndex(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := 0
			for _, v := range tc.vals {
				n = len(v)
			}
			got, err := Extract(series(n, step, tc.vals), tc.extra)
			if err != nil {
				t.Fatalf("Extract: %v", err)
			}
			for name, want := range tc.want {
				i, ok := idx[name]
				if !ok {
					t.Fatalf("test names unknown feature %q", name)
				}
				if !approx(got[i], want) {
					t.Errorf("%s = %v, want %v", name, got[i], want)
				}
			}
			for i, name := range Names() {
				if _, listed := tc.want[name]; !listed && got[i] != 0 {
					t.Errorf("%s = %v, want 0", name, got[i])
				}
			}
		})
	}
}

func TestExtractImageSizeUnknown(t *testing.T) {
	idx := nameIndex(t)["image_size_log2"]
	for _, b := range []float64{0, nan, -1024, math.Inf(1), math.Inf(-1), 0.5} {
		got, err := Extract(series(3, time.Second, map[telemetry.Metric][]float64{telemetry.CPUCores: {1, 1, 1}}), Extra{ImageSizeBytes: b})
		if err != nil {
			t.Fatalf("image size %v: %v", b, err)
		}
		if got[idx] != 0 {
			t.Errorf("image size %v: image_size_log2 = %v, want 0", b, got[idx])
		}
	}
}

// Values at the ends of the float64 range must not overflow any statistic.
func TestExtractExtremeValues(t *testing.T) {
	const big = math.MaxFloat64
	tiny := math.SmallestNonzeroFloat64
	for _, step := range []time.Duration{time.Nanosecond, time.Hour} {
		s := series(4, step, map[telemetry.Metric][]float64{
			telemetry.CPUCores:         {tiny, tiny, 0, tiny},
			telemetry.MemoryUsageBytes: {big, big / 2, big, 0},
			telemetry.RootfsUsedBytes:  {0, big, nan, big},
		})
		got, err := Extract(s, Extra{ImageSizeBytes: big})
		if err != nil {
			t.Fatalf("step %v: %v", step, err)
		}
		for i, x := range got {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				t.Errorf("step %v: %s = %v", step, Names()[i], x)
			}
		}
	}
}

func TestExtractErrors(t *testing.T) {
	cpu := telemetry.CPUCores
	tests := []struct {
		name      string
		s         *telemetry.Series
		noData    bool
		errSubstr string
	}{
		{name: "nil series", s: nil, errSubstr: "nil series"},
		{name: "empty window", s: series(0, time.Second, nil), noData: true, errSubstr: "ns/web-0"},
		{name: "two samples", s: series(2, time.Second, map[telemetry.Metric][]float64{cpu: {1, 2}}), noData: true, errSubstr: "ns/web-0: 2 of 2 samples"},
		{name: "availability below half", s: series(8, time.Second, map[telemetry.Metric][]float64{cpu: {1, nan, nan, nan, nan, nan, 2, 3}}), noData: true, errSubstr: "availability 0.375"},
		{name: "all metrics zero", s: series(4, time.Second, map[telemetry.Metric][]float64{cpu: {0, 0, 0, 0}, telemetry.MemoryUsageBytes: {0, 0, 0, 0}}), noData: true, errSubstr: "0 of 4"},
		{name: "ragged metrics", s: series(3, time.Second, map[telemetry.Metric][]float64{cpu: {1, 2, 3}, telemetry.MemoryUsageBytes: {1, 2}}), errSubstr: "metric memory_usage_bytes has 2 samples, want 3"},
		{name: "zero step", s: series(3, 0, map[telemetry.Metric][]float64{cpu: {1, 2, 3}}), errSubstr: "step 0s"},
		{name: "negative step", s: series(3, -time.Second, map[telemetry.Metric][]float64{cpu: {1, 2, 3}}), errSubstr: "step -1s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Extract(tc.s, Extra{})
			if err == nil {
				t.Fatalf("Extract = %v, want error", got)
			}
			if errors.Is(err, ErrNoData) != tc.noData {
				t.Errorf("errors.Is(%q, ErrNoData) = %v, want %v", err, !tc.noData, tc.noData)
			}
			if !strings.Contains(err.Error(), tc.errSubstr) {
				t.Errorf("error %q does not contain %q", err, tc.errSubstr)
			}
		})
	}
}

func TestExtractWithOptions(t *testing.T) {
	s := series(6, time.Second, map[telemetry.Metric][]float64{telemetry.CPUCores: {1, nan, nan, nan, 5, 6}})
	idx := nameIndex(t)["cpu_cores_mean"]
	opt := DefaultOptions()
	opt.MaxGap = 3
	got, err := ExtractWith(s, Extra{}, opt)
	if err != nil {
		t.Fatal(err)
	}
	// 1,2,3,4,5,6 after interpolating the gap of three.
	if got[idx] != 3.5 {
		t.Errorf("mean with MaxGap 3 = %v, want 3.5", got[idx])
	}
	for _, bad := range []Options{
		{MaxGap: -1, MinAvailability: 0.5, MinSamples: 3},
		{MaxGap: 2, MinAvailability: 1.5, MinSamples: 3},
		{MaxGap: 2, MinAvailability: nan, MinSamples: 3},
		{MaxGap: 2, MinAvailability: 0.5, MinSamples: 0},
	} {
		if _, err := ExtractWith(s, Extra{}, bad); err == nil {
			t.Errorf("ExtractWith(%+v) accepted invalid options", bad)
		}
	}
}

func TestNames(t *testing.T) {
	names := Names()
	if want := int(telemetry.NumMetrics)*9 + 2; len(names) != want {
		t.Fatalf("len(Names()) = %d, want %d", len(names), want)
	}
	seen := make(map[string]bool)
	for _, n := range names {
		if seen[n] {
			t.Errorf("duplicate feature name %q", n)
		}
		seen[n] = true
	}
	if names[0] != "cpu_cores_mean" || names[len(names)-1] != "availability" {
		t.Errorf("Names() = [%s ... %s], want [cpu_cores_mean ... availability]", names[0], names[len(names)-1])
	}
	got, err := Extract(randomSeries(rand.New(rand.NewPCG(1, 2)), 30), Extra{ImageSizeBytes: 1e8})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(names) {
		t.Errorf("len(Extract()) = %d, len(Names()) = %d", len(got), len(names))
	}
}

func TestExtractDeterministicAndPure(t *testing.T) {
	s := randomSeries(rand.New(rand.NewPCG(3, 4)), 30)
	before := s.Slice(0, s.Len())
	a, err := Extract(s, Extra{ImageSizeBytes: 123456789})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Extract(s, Extra{ImageSizeBytes: 123456789})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a, b) {
		t.Error("two Extract calls on the same window differ")
	}
	for m := range s.Values {
		if !slices.EqualFunc(s.Values[m], before.Values[m], func(x, y float64) bool {
			return x == y || (math.IsNaN(x) && math.IsNaN(y))
		}) {
			t.Errorf("Extract modified metric %s of its input", telemetry.Metric(m))
		}
	}
}

// randomSeries is a plausible window: every metric present, 10% of samples missing.
func randomSeries(r *rand.Rand, n int) *telemetry.Series {
	vals := make(map[telemetry.Metric][]float64)
	for _, m := range telemetry.Metrics() {
		level := math.Pow(10, r.Float64()*9)
		v := make([]float64, n)
		for i := range v {
			if r.Float64() < 0.1 {
				v[i] = nan
				continue
			}
			v[i] = level * (1 + 0.2*r.NormFloat64())
		}
		vals[m] = v
	}
	return series(n, 10*time.Second, vals)
}

func FuzzExtract(f *testing.F) {
	f.Add([]byte{}, int64(time.Second), 0.0)
	seed := make([]byte, 0, 8*12)
	for _, v := range []float64{1, nan, -3, math.Inf(1), 0, math.MaxFloat64, 5, math.Inf(-1), 5e-324, math.MaxFloat64, 0, 2} {
		seed = binary.LittleEndian.AppendUint64(seed, math.Float64bits(v))
	}
	f.Add(seed, int64(time.Nanosecond), math.Inf(1))
	f.Add(seed, int64(10*time.Second), nan)
	f.Fuzz(func(t *testing.T, data []byte, step int64, image float64) {
		// The bytes fill metrics round-robin, so short inputs give few metrics of the same
		// length and every float64 bit pattern (NaN payloads included) can appear.
		n := len(data) / 8 / int(telemetry.NumMetrics)
		if n == 0 {
			n = len(data) / 8
		}
		vals := make(map[telemetry.Metric][]float64)
		for i := 0; i+8 <= len(data); i += 8 {
			m := telemetry.Metric((i / 8) % int(telemetry.NumMetrics))
			if len(vals[m]) < n {
				vals[m] = append(vals[m], math.Float64frombits(binary.LittleEndian.Uint64(data[i:])))
			}
		}
		for m, v := range vals {
			if len(v) != n {
				delete(vals, m)
			}
		}
		got, err := Extract(series(n, time.Duration(step), vals), Extra{ImageSizeBytes: image})
		if err != nil {
			return
		}
		if len(got) != len(Names()) {
			t.Fatalf("len = %d, want %d", len(got), len(Names()))
		}
		for i, x := range got {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				t.Fatalf("%s = %v", Names()[i], x)
			}
		}
	})
}

func BenchmarkExtract(b *testing.B) {
	s := randomSeries(rand.New(rand.NewPCG(5, 6)), 30)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Extract(s, Extra{ImageSizeBytes: 1e8}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkExtract10kWindows is one training pass over a large cluster's history.
func BenchmarkExtract10kWindows(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 8))
	windows := make([]*telemetry.Series, 10_000)
	for i := range windows {
		windows[i] = randomSeries(r, 30)
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, w := range windows {
			if _, err := Extract(w, Extra{ImageSizeBytes: 1e8}); err != nil {
				b.Fatal(err)
			}
		}
	}
}
