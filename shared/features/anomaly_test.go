package features

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/podtype/podtype/shared/telemetry"
)

func anomalyIndex(t *testing.T) map[string]int {
	t.Helper()
	idx := map[string]int{}
	for i, n := range AnomalyNames() {
		idx[n] = i
	}
	return idx
}

func TestAnomalyNames(t *testing.T) {
	names := AnomalyNames()
	seen := map[string]bool{}
	for i, n := range names {
		if n == "" || seen[n] || strings.ToLower(n) != n || strings.ContainsAny(n, " -") {
			t.Errorf("anomaly name %d %q: want unique, non-empty snake_case", i, n)
		}
		seen[n] = true
		// Present flags, image size and availability describe the runtime, not behaviour.
		for _, banned := range []string{"present", "image_size", "availability", "error"} {
			if strings.Contains(n, banned) {
				t.Errorf("anomaly feature %q: the vector must not depend on %s", n, banned)
			}
		}
	}
	names[0] = "changed"
	if AnomalyNames()[0] == "changed" {
		t.Error("AnomalyNames returns a shared slice")
	}
}

// busyWindow is a window with every metric the simulator reports, at the given load
// (traffic, CPU, faults) and memory scale.
func busyWindow(r *rand.Rand, load, mem float64) *telemetry.Series {
	const n = 20
	vals := map[telemetry.Metric][]float64{}
	set := func(m telemetry.Metric, f func(i int) float64) {
		v := make([]float64, n)
		for i := range v {
			v[i] = f(i)
		}
		vals[m] = v
	}
	noise := func() float64 { return math.Exp(0.1 * r.NormFloat64()) }
	set(telemetry.CPUCores, func(int) float64 { return 0.2 * load * noise() })
	set(telemetry.MemoryUsageBytes, func(i int) float64 { return mem * (300e6 + 1e5*float64(i)) })
	set(telemetry.MemoryWorkingSetBytes, func(i int) float64 { return mem * (250e6 + 1e5*float64(i)) })
	set(telemetry.MemoryRSSBytes, func(i int) float64 { return mem * (200e6 + 5e4*float64(i)) })
	set(telemetry.PageFaultsPerSecond, func(int) float64 { return 900 * load * noise() })
	set(telemetry.MajorPageFaultsPerSecond, func(int) float64 { return 2 * load * noise() })
	set(telemetry.RootfsUsedBytes, func(int) float64 { return 3 << 20 })
	set(telemetry.LogsfsUsedBytes, func(i int) float64 { return 1e5 + 100*float64(i) })
	set(telemetry.NetworkRxBytesPerSecond, func(int) float64 { return 4e5 * load * noise() })
	set(telemetry.NetworkTxBytesPerSecond, func(int) float64 { return 1.6e6 * load * noise() })
	set(telemetry.VolumeUsedBytes, func(i int) float64 { return mem*2e9 + 1e4*load*float64(i) })
	set(telemetry.ContainerRestarts, func(int) float64 { return 0 })
	return series(n, time.Second, vals)
}

// The vector describes behaviour, not size: a pod twice as busy (or with twice the data)
// that behaves alike has the same anomaly vector except for the few log levels, which move
// by exactly log(2).
func TestAnomalyVectorIsLoadInvariant(t *testing.T) {
	idx := anomalyIndex(t)
	tests := []struct {
		name       string
		load, mem  float64
		wantLevels []string // levels that move by log(2)
	}{
		{name: "twice the load", load: 2, mem: 1, wantLevels: []string{"log_network_rx_bytes_per_second"}},
		{name: "twice the data", load: 1, mem: 2, wantLevels: []string{"log_memory_usage_bytes"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, name := range tc.wantLevels {
				if _, ok := idx[name]; !ok {
					t.Fatalf("no anomaly feature %q", name)
				}
			}
			// The same noise for both windows: only the scale differs.
			base, err := Extract(busyWindow(rand.New(rand.NewPCG(1, 1)), 1, 1), Extra{})
			if err != nil {
				t.Fatal(err)
			}
			scaled, err := Extract(busyWindow(rand.New(rand.NewPCG(1, 1)), tc.load, tc.mem), Extra{})
			if err != nil {
				t.Fatal(err)
			}
			a, err := AnomalyVector(base)
			if err != nil {
				t.Fatal(err)
			}
			b, err := AnomalyVector(scaled)
			if err != nil {
				t.Fatal(err)
			}
			for name, j := range idx {
				want := a[j]
				if slices.Contains(tc.wantLevels, name) {
					want += math.Ln2
				}
				// Floors and the volume's growth per network byte keep a little of the scale.
				tol := 0.01
				if strings.HasPrefix(name, "volume_") || strings.Contains(name, "rootfs_growth") {
					tol = 0.75
				}
				if math.Abs(b[j]-want) > tol {
					t.Errorf("%s = %v, want %v", name, b[j], want)
				}
			}
		})
	}
}

func TestAnomalyVectorValues(t *testing.T) {
	idx := anomalyIndex(t)
	r := rand.New(rand.NewPCG(2, 2))
	steady, err := Extract(busyWindow(r, 1, 1), Extra{})
	if err != nil {
		t.Fatal(err)
	}
	pinned := slices.Clone(steady)
	// CPU at its limit: mean 1 core, almost no spread.
	base := int(telemetry.CPUCores) * numStats
	copy(pinned[base:base+numStats], []float64{1, 0.001, 0.998, 1.002, 0.999, 1.001, 0.002, 0, 1})
	restartedWin := busyWindow(r, 1, 1)
	restartedWin.Values[telemetry.ContainerRestarts][12] = 1
	restarted, err := Extract(restartedWin, Extra{})
	if err != nil {
		t.Fatal(err)
	}
	noWorkingSet := slices.Clone(steady)
	ws := int(telemetry.MemoryWorkingSetBytes) * numStats
	clear(noWorkingSet[ws : ws+numStats])

	tests := []struct {
		name    string
		x       []float64
		feature string
		want    float64
		known   bool
	}{
		{name: "CPU spread of a pinned pod", x: pinned, feature: "log_cpu_cores_cv", want: math.Log(0.001 + floorRel), known: true},
		{name: "CPU per network byte of a pinned pod", x: pinned, feature: "log_cpu_per_network_byte",
			want: math.Log(1+floorCores) - math.Log(steady[int(telemetry.NetworkRxBytesPerSecond)*numStats]+steady[int(telemetry.NetworkTxBytesPerSecond)*numStats]+floorBytesPerSec), known: true},
		{name: "flat rootfs", x: steady, feature: "log_rootfs_used_bytes_cv", want: math.Log(floorRel), known: true},
		{name: "rootfs level", x: steady, feature: "log_rootfs_used_bytes", want: math.Log(3<<20 + floorBytes), known: true},
		{name: "absent working set is neutral", x: noWorkingSet, feature: "working_set_share_of_usage", want: 1, known: false},
		{name: "absent working set spread is neutral", x: noWorkingSet, feature: "log_memory_working_set_bytes_cv", want: math.Log(floorRel), known: false},
		{name: "no restart", x: steady, feature: "container_restarts_max", want: 0, known: false},
		{name: "a restart", x: restarted, feature: "container_restarts_max", want: 1, known: true},
		{name: "absent blkio", x: steady, feature: "log_blkio_write_bytes_per_cpu_second", want: 0, known: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			j, ok := idx[tc.feature]
			if !ok {
				t.Fatalf("no anomaly feature %q", tc.feature)
			}
			v, err := AnomalyVector(tc.x)
			if err != nil {
				t.Fatal(err)
			}
			known, err := AnomalyKnown(tc.x)
			if err != nil {
				t.Fatal(err)
			}
			if !approx(v[j], tc.want) || known[j] != tc.known {
				t.Errorf("%s = %v (known %v), want %v (known %v)", tc.feature, v[j], known[j], tc.want, tc.known)
			}
		})
	}
}

func TestAnomalyVectorErrors(t *testing.T) {
	good := make([]float64, len(Names()))
	tests := []struct {
		name string
		x    []float64
		want string
	}{
		{name: "empty", x: nil, want: fmt.Sprintf("classification vector has 0 values, want %d", len(Names()))},
		{name: "anomaly vector passed by mistake", x: make([]float64, len(AnomalyNames())), want: fmt.Sprintf("want %d", len(Names()))},
		{name: "NaN", x: func() []float64 { x := slices.Clone(good); x[10] = math.NaN(); return x }(), want: Names()[10] + " = NaN"},
		{name: "Inf", x: func() []float64 { x := slices.Clone(good); x[len(x)-1] = math.Inf(-1); return x }(), want: "availability = -Inf"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := AnomalyVector(tc.x); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("AnomalyVector error = %v, want it to contain %q", err, tc.want)
			}
			if _, err := AnomalyKnown(tc.x); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("AnomalyKnown error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
	// An all-zero vector (every metric absent) is valid: every feature neutral and unknown.
	v, err := AnomalyVector(good)
	if err != nil {
		t.Fatal(err)
	}
	known, err := AnomalyKnown(good)
	if err != nil {
		t.Fatal(err)
	}
	for j, ok := range known {
		if ok {
			t.Errorf("%s is known without any metric", AnomalyNames()[j])
		}
		if math.IsNaN(v[j]) || math.IsInf(v[j], 0) {
			t.Errorf("%s = %v", AnomalyNames()[j], v[j])
		}
	}
}

func TestAnomalyDeviations(t *testing.T) {
	n := len(AnomalyNames())
	a, mean, std := make([]float64, n), make([]float64, n), make([]float64, n)
	for j := range n {
		std[j] = 1
	}
	a[2], a[5] = 3, -7
	a[9] = math.NaN() // unknown in the window: left out
	devs := AnomalyDeviations(a, mean, std)
	if len(devs) != n-1 {
		t.Fatalf("%d deviations, want %d (the NaN one left out)", len(devs), n-1)
	}
	if devs[0].Feature != AnomalyNames()[5] || devs[0].Z != -7 || devs[1].Feature != AnomalyNames()[2] {
		t.Errorf("first deviations %+v, want %s then %s", devs[:2], AnomalyNames()[5], AnomalyNames()[2])
	}
	if AnomalyDeviations(a[:3], mean, std) != nil {
		t.Error("AnomalyDeviations accepted a short vector")
	}
}

func FuzzAnomalyVector(f *testing.F) {
	seed := make([]byte, 0, 8*8)
	for _, v := range []float64{1, 0, -3, math.MaxFloat64, 5e-324, -math.MaxFloat64, 1e-300, 1} {
		seed = binary.LittleEndian.AppendUint64(seed, math.Float64bits(v))
	}
	f.Add(seed)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		// Any finite classification vector, even one Extract cannot produce (negative
		// means, a std above the max, present flags of 7), must give finite features.
		x := make([]float64, len(Names()))
		for i := 0; i+8 <= len(data); i += 8 {
			v := math.Float64frombits(binary.LittleEndian.Uint64(data[i:]))
			if math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			x[(i/8)%len(x)] = v
		}
		v, err := AnomalyVector(x)
		if err != nil {
			t.Fatal(err)
		}
		if len(v) != len(AnomalyNames()) {
			t.Fatalf("len = %d, want %d", len(v), len(AnomalyNames()))
		}
		for j, a := range v {
			if math.IsNaN(a) || math.IsInf(a, 0) {
				t.Fatalf("%s = %v for input %v", AnomalyNames()[j], a, x)
			}
		}
	})
}

func BenchmarkAnomalyVector(b *testing.B) {
	x, err := Extract(busyWindow(rand.New(rand.NewPCG(3, 3)), 1, 1), Extra{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := AnomalyVector(x); err != nil {
			b.Fatal(err)
		}
	}
}
