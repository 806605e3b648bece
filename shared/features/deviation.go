package features

import (
	"math"
	"slices"
)

// maxZ bounds |Z| in Deviations. A feature that never varied in the baseline (std 0) and
// now differs has an infinite z-score; capping it keeps the value printable and JSON-safe
// while still sorting it first.
const maxZ = 1000

// Deviation explains how far one feature of a window is from a type's baseline.
type Deviation struct {
	Feature string  `json:"feature"`
	Value   float64 `json:"value"`
	Mean    float64 `json:"mean"`
	// Z is (Value-Mean)/Std, clamped to ±1000.
	Z float64 `json:"z"`
}

// Deviations returns, for every feature of x, its z-score against the baseline mean and
// std (as returned by Baseline), sorted by |Z| descending, ties in vector order. The
// watcher uses the first few to say why a window looks anomalous.
//
// x, mean and std must all have len(Names()) entries; otherwise the feature names would
// not apply and Deviations returns nil. Features whose value or mean is NaN/Inf (a corrupt
// baseline) are left out rather than reported with a meaningless score. A std that is 0,
// negative or not finite counts as "never varied": Z is 0 when Value equals Mean and ±1000
// otherwise.
func Deviations(x, mean, std []float64) []Deviation {
	return deviations(Names(), x, mean, std)
}

// AnomalyDeviations is Deviations in anomaly-vector space: a is an anomaly vector (see
// AnomalyVector), mean and std a type's baseline over anomaly vectors, all with
// len(AnomalyNames()) entries (otherwise it returns nil). A NaN entry of a (how callers
// mark a feature that is unknown for the window) is left out.
func AnomalyDeviations(a, mean, std []float64) []Deviation {
	return deviations(AnomalyNames(), a, mean, std)
}

func deviations(names []string, x, mean, std []float64) []Deviation {
	if len(x) != len(names) || len(mean) != len(names) || len(std) != len(names) {
		return nil
	}
	devs := make([]Deviation, 0, len(x))
	for i, v := range x {
		if !isFinite(v) || !isFinite(mean[i]) {
			continue
		}
		d := v - mean[i]
		var z float64
		switch {
		case d == 0:
			z = 0
		case !isFinite(std[i]) || std[i] <= 0:
			z = math.Copysign(maxZ, d)
		default:
			z = max(-maxZ, min(maxZ, d/std[i]))
		}
		devs = append(devs, Deviation{Feature: names[i], Value: v, Mean: mean[i], Z: z})
	}
	slices.SortStableFunc(devs, func(a, b Deviation) int {
		// Descending |Z|; the stable sort keeps vector order among equals.
		switch za, zb := math.Abs(a.Z), math.Abs(b.Z); {
		case za > zb:
			return -1
		case za < zb:
			return 1
		}
		return 0
	})
	return devs
}

// Baseline returns the per-feature mean and population standard deviation of the rows of
// x (one feature vector per row), the reference Deviations compares against.
//
// The row length is taken from the first row; rows of another length are skipped, as are
// NaN/Inf entries (per feature), because one corrupt vector must not poison a type's
// whole baseline. A feature with no usable value gets mean 0 and std 0. Returns nil, nil
// for empty x.
func Baseline(x [][]float64) (mean, std []float64) {
	if len(x) == 0 {
		return nil, nil
	}
	d := len(x[0])
	mean = make([]float64, d)
	std = make([]float64, d)
	count := make([]float64, d)
	// Welford's update: one pass, no catastrophic cancellation on large byte counts.
	m2 := make([]float64, d)
	for _, row := range x {
		if len(row) != d {
			continue
		}
		for j, v := range row {
			if !isFinite(v) {
				continue
			}
			count[j]++
			delta := v - mean[j]
			mean[j] += delta / count[j]
			m2[j] += delta * (v - mean[j])
		}
	}
	for j := range d {
		if count[j] > 0 {
			std[j] = math.Sqrt(m2[j] / count[j])
		}
		// Welford on values near ±MaxFloat64 can overflow; keep the output finite.
		mean[j], std[j] = finite(mean[j]), finite(std[j])
	}
	return mean, std
}

func isFinite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
