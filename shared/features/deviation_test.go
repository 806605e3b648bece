package features

import (
	"math"
	"testing"
)

func TestBaseline(t *testing.T) {
	tests := []struct {
		name           string
		x              [][]float64
		wantM, wantStd []float64
	}{
		{name: "empty", x: nil},
		{
			name:  "columns",
			x:     [][]float64{{1, 10}, {3, 10}, {5, 10}},
			wantM: []float64{3, 10}, wantStd: []float64{math.Sqrt(8.0 / 3), 0},
		},
		{
			name:  "ragged rows and non-finite values skipped",
			x:     [][]float64{{1, 2}, {100}, {3, nan}, {math.Inf(1), 4}},
			wantM: []float64{2, 3}, wantStd: []float64{1, 1},
		},
		{
			name:  "no usable value",
			x:     [][]float64{{nan}, {math.Inf(-1)}},
			wantM: []float64{0}, wantStd: []float64{0},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, s := Baseline(tc.x)
			if len(m) != len(tc.wantM) || len(s) != len(tc.wantStd) {
				t.Fatalf("Baseline lengths = %d,%d, want %d,%d", len(m), len(s), len(tc.wantM), len(tc.wantStd))
			}
			for j := range m {
				if !approx(m[j], tc.wantM[j]) || !approx(s[j], tc.wantStd[j]) {
					t.Errorf("feature %d: mean, std = %v, %v, want %v, %v", j, m[j], s[j], tc.wantM[j], tc.wantStd[j])
				}
			}
		})
	}
}

func TestDeviations(t *testing.T) {
	names := Names()
	n := len(names)
	x, mean, std := make([]float64, n), make([]float64, n), make([]float64, n)
	for i := range n {
		mean[i], std[i], x[i] = 10, 2, 10 // z = 0 everywhere by default
	}
	x[3] = 16                        // z = +3
	x[7] = 2                         // z = -4
	std[9], x[9] = 0, 11             // never varied, now differs: capped
	std[11], x[11] = 0, 10           // never varied, unchanged: 0
	x[12], mean[12] = nan, 10        // corrupt: left out
	std[13], x[13] = math.Inf(1), 50 // corrupt std counts as "never varied"

	devs := Deviations(x, mean, std)
	if len(devs) != n-1 {
		t.Fatalf("len(Deviations) = %d, want %d", len(devs), n-1)
	}
	want := []Deviation{
		{Feature: names[9], Value: 11, Mean: 10, Z: 1000},
		{Feature: names[13], Value: 50, Mean: 10, Z: 1000},
		{Feature: names[7], Value: 2, Mean: 10, Z: -4},
		{Feature: names[3], Value: 16, Mean: 10, Z: 3},
		{Feature: names[0], Value: 10, Mean: 10, Z: 0},
	}
	for i, w := range want {
		if devs[i] != w {
			t.Errorf("Deviations[%d] = %+v, want %+v", i, devs[i], w)
		}
	}
	for _, d := range devs {
		if d.Feature == names[12] {
			t.Errorf("feature with NaN value reported: %+v", d)
		}
		if math.IsNaN(d.Z) || math.IsInf(d.Z, 0) {
			t.Errorf("non-finite Z: %+v", d)
		}
	}

	if got := Deviations(x[:3], mean, std); got != nil {
		t.Errorf("Deviations with short x = %v, want nil", got)
	}
}
