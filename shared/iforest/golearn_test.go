package iforest

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/sjwhitworth/golearn/base"
	"github.com/sjwhitworth/golearn/trees"
)

// TestAgreesWithGolearn checks our forest against golearn's trees.IsolationForest, the
// implementation this package replaces. golearn draws from the global math/rand source, so
// its scores cannot be reproduced; the test compares rankings (Spearman) and mean levels.
//
// How golearn differs from the paper (and from us), read from trees/isolation.go:
//   - subsamples are drawn with replacement (the paper: without);
//   - its maxDepth counts split levels from the root, the same as our height limit, so both
//     get ceil(log2 256) = 8;
//   - c(2) uses ln(1)+γ and is ≈ 0.15 instead of 1;
//   - it treats the class attribute as one more feature, so the grid gets a constant class
//     column, which can never be split on and only costs golearn rejected draws.
//
// None of these change which points are easy to isolate, so the rankings must agree. Our
// forest scores with Plain here: golearn implements the paper, not the range-aware rule.
func TestAgreesWithGolearn(t *testing.T) {
	tests := []struct {
		name        string
		n, d, outl  int
		far         float64
		minSpearman float64
	}{
		{name: "2-D gaussian with far points", n: 300, d: 2, outl: 20, far: 6, minSpearman: 0.9},
		{name: "5-D gaussian with far points", n: 400, d: 5, outl: 20, far: 6, minSpearman: 0.9},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := gaussian(rand.New(rand.NewPCG(11, uint64(tc.d))), tc.n, tc.d, tc.outl, tc.far)

			f, err := Train(x, Config{Trees: 200, SampleSize: 256, Seed: 3, Plain: true})
			if err != nil {
				t.Fatal(err)
			}
			ours, err := f.ScoreBatch(x)
			if err != nil {
				t.Fatal(err)
			}

			grid, err := denseInstances(x)
			if err != nil {
				t.Fatal(err)
			}
			gl := trees.NewIsolationForest(200, f.HeightLimit, f.SampleSize)
			gl.Fit(grid)
			theirs := gl.Predict(grid)
			if len(theirs) != len(x) {
				t.Fatalf("golearn returned %d scores for %d rows", len(theirs), len(x))
			}

			rho := spearman(ours, theirs)
			t.Logf("Spearman %.3f; mean inlier/outlier score: ours %.3f/%.3f, golearn %.3f/%.3f",
				rho, mean(ours[:tc.n]), mean(ours[tc.n:]), mean(theirs[:tc.n]), mean(theirs[tc.n:]))
			if rho < tc.minSpearman {
				t.Errorf("Spearman correlation with golearn = %.3f, want >= %.2f", rho, tc.minSpearman)
			}
			// Both must put the planted outliers on top: compare the overlap of the top-k sets.
			if ov := topOverlap(ours, theirs, tc.outl); ov < 0.8 {
				t.Errorf("top-%d overlap with golearn = %.2f, want >= 0.8", tc.outl, ov)
			}
		})
	}
}

// denseInstances builds golearn's input: one float attribute per column plus the float
// class attribute its isolation forest insists on (constant 0 here).
func denseInstances(x [][]float64) (*base.DenseInstances, error) {
	inst := base.NewDenseInstances()
	d := len(x[0])
	specs := make([]base.AttributeSpec, d)
	for j := range d {
		specs[j] = inst.AddAttribute(base.NewFloatAttribute(fmt.Sprintf("f%d", j)))
	}
	class := base.NewFloatAttribute("class")
	classSpec := inst.AddAttribute(class)
	if err := inst.AddClassAttribute(class); err != nil {
		return nil, err
	}
	if err := inst.Extend(len(x)); err != nil {
		return nil, err
	}
	for i, row := range x {
		for j, v := range row {
			inst.Set(specs[j], i, base.PackFloatToBytes(v))
		}
		inst.Set(classSpec, i, base.PackFloatToBytes(0))
	}
	return inst, nil
}

// spearman is the Pearson correlation of the (tie-averaged) ranks of a and b.
func spearman(a, b []float64) float64 {
	ra, rb := ranks(a), ranks(b)
	ma, mb := mean(ra), mean(rb)
	var sab, saa, sbb float64
	for i := range ra {
		da, db := ra[i]-ma, rb[i]-mb
		sab += da * db
		saa += da * da
		sbb += db * db
	}
	return sab / math.Sqrt(saa*sbb)
}

func ranks(v []float64) []float64 {
	idx := make([]int, len(v))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(i, j int) int { return cmp.Compare(v[i], v[j]) })
	r := make([]float64, len(v))
	for i := 0; i < len(idx); {
		j := i
		for j < len(idx) && v[idx[j]] == v[idx[i]] {
			j++
		}
		avg := float64(i+j-1) / 2
		for k := i; k < j; k++ {
			r[idx[k]] = avg
		}
		i = j
	}
	return r
}

// topOverlap is the share of the k highest-scoring rows of a that are also among b's.
func topOverlap(a, b []float64, k int) float64 {
	top := func(v []float64) []int {
		idx := make([]int, len(v))
		for i := range idx {
			idx[i] = i
		}
		slices.SortStableFunc(idx, func(i, j int) int { return cmp.Compare(v[j], v[i]) })
		return idx[:k]
	}
	tb := top(b)
	n := 0
	for _, i := range top(a) {
		if slices.Contains(tb, i) {
			n++
		}
	}
	return float64(n) / float64(k)
}

func TestSpearman(t *testing.T) {
	tests := []struct {
		a, b []float64
		want float64
	}{
		{[]float64{1, 2, 3, 4}, []float64{10, 20, 30, 40}, 1},
		{[]float64{1, 2, 3, 4}, []float64{4, 3, 2, 1}, -1},
		{[]float64{1, 2, 3, 4}, []float64{1, 4, 9, 1000}, 1}, // monotone, not linear
		{[]float64{1, 1, 2}, []float64{1, 1, 2}, 1},          // ties
	}
	for _, tc := range tests {
		if got := spearman(tc.a, tc.b); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("spearman(%v, %v) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}
