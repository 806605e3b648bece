package dataset

import (
	"fmt"
	"testing"

	"github.com/podtype/podtype/shared/telemetry"
)

// BenchmarkBuilder cuts 100 pods x 100 windows of 12 samples into windows and extracts their
// features: 10,000 windows per op.
func BenchmarkBuilder(b *testing.B) {
	var inv []Pod
	var ss []*telemetry.Series
	for p := range 100 {
		pod := nn("ns", fmt.Sprintf("db-%d", p))
		inv = append(inv, Pod{Name: pod, Type: "mysql", ImageSizeBytes: 1 << 28})
		ss = append(ss, series(pod, 1200, 1+float64(p)/100))
	}
	opt := Options{Classes: []string{"mysql", "nginx"}, WindowSamples: 12, WindowStep: ss[0].Step}
	b.ReportAllocs()
	for b.Loop() {
		bl, err := NewBuilder(inv, opt)
		if err != nil {
			b.Fatal(err)
		}
		if err := bl.Add(ss); err != nil {
			b.Fatal(err)
		}
		if ds := bl.Finish(t0, t0); len(ds.Normal) != 10000 {
			b.Fatalf("%d windows, want 10000", len(ds.Normal))
		}
	}
}
