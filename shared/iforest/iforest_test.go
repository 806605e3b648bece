package iforest

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// gaussian returns n points of a standard normal in d dimensions, then the outliers: points
// at distance far along alternating axes.
func gaussian(r *rand.Rand, n, d, outliers int, far float64) [][]float64 {
	x := make([][]float64, 0, n+outliers)
	for range n {
		row := make([]float64, d)
		for j := range row {
			row[j] = r.NormFloat64()
		}
		x = append(x, row)
	}
	for i := range outliers {
		row := make([]float64, d)
		for j := range row {
			row[j] = 0.1 * r.NormFloat64()
		}
		sign := 1.0
		if i%2 == 1 {
			sign = -1
		}
		row[i%d] = sign * far * (1 + 0.1*float64(i))
		x = append(x, row)
	}
	return x
}

func mean(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

func TestSeparatesOutliers(t *testing.T) {
	x := gaussian(rand.New(rand.NewPCG(1, 1)), 1000, 2, 20, 6)
	f, err := Train(x, Config{Seed: 42})
	if err != nil {
		t.Fatal(err)
	}
	scores, err := f.ScoreBatch(x)
	if err != nil {
		t.Fatal(err)
	}
	in, out := mean(scores[:1000]), mean(scores[1000:])
	t.Logf("mean score: inliers %.3f, outliers %.3f", in, out)
	if in >= 0.5 {
		t.Errorf("mean inlier score %.3f, want < 0.5", in)
	}
	if out <= 0.6 {
		t.Errorf("mean outlier score %.3f, want > 0.6", out)
	}
	for i, s := range scores[1000:] {
		if s <= 0.5 {
			t.Errorf("outlier %d %v scores %.3f, want > 0.5", i, x[1000+i], s)
		}
	}
	for i, s := range scores {
		if s <= 0 || s > 1 {
			t.Errorf("score of row %d = %v, outside (0,1]", i, s)
		}
	}
}

func TestDeterministic(t *testing.T) {
	x := gaussian(rand.New(rand.NewPCG(2, 2)), 500, 5, 5, 8)
	a, err := Train(x, Config{Trees: 50, SampleSize: 128, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Train(x, Config{Trees: 50, SampleSize: 128, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if string(ja) != string(jb) {
		t.Error("two trainings with the same seed produced different forests")
	}
	c, err := Train(x, Config{Trees: 50, SampleSize: 128, Seed: 8})
	if err != nil {
		t.Fatal(err)
	}
	jc, _ := json.Marshal(c)
	if string(ja) == string(jc) {
		t.Error("different seeds produced the same forest")
	}
}

func TestJSONRoundTrip(t *testing.T) {
	x := gaussian(rand.New(rand.NewPCG(3, 3)), 400, 4, 10, 7)
	f, err := Train(x, Config{Trees: 30, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	var g Forest
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	if err := g.Validate(); err != nil {
		t.Fatalf("decoded forest invalid: %v", err)
	}
	want, err := f.ScoreBatch(x)
	if err != nil {
		t.Fatal(err)
	}
	got, err := g.ScoreBatch(x)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Error("scores differ after a JSON round trip")
	}
}

func TestShape(t *testing.T) {
	x := gaussian(rand.New(rand.NewPCG(4, 4)), 100, 3, 0, 0)
	tests := []struct {
		name             string
		cfg              Config
		wantPsi, wantHL  int
		wantTrees        int
		wantMaxNodeCount int
	}{
		{name: "defaults, psi capped at rows", cfg: Config{}, wantPsi: 100, wantHL: 7, wantTrees: 100, wantMaxNodeCount: 199},
		{name: "psi 64", cfg: Config{Trees: 3, SampleSize: 64}, wantPsi: 64, wantHL: 6, wantTrees: 3, wantMaxNodeCount: 127},
		{name: "psi 2", cfg: Config{Trees: 1, SampleSize: 2}, wantPsi: 2, wantHL: 1, wantTrees: 1, wantMaxNodeCount: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Train(x, tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if f.SampleSize != tc.wantPsi || f.HeightLimit != tc.wantHL || len(f.Trees) != tc.wantTrees {
				t.Errorf("psi, height limit, trees = %d, %d, %d, want %d, %d, %d",
					f.SampleSize, f.HeightLimit, len(f.Trees), tc.wantPsi, tc.wantHL, tc.wantTrees)
			}
			if err := f.Validate(); err != nil {
				t.Errorf("trained forest invalid: %v", err)
			}
			for i, tr := range f.Trees {
				if len(tr.Feature) > tc.wantMaxNodeCount {
					t.Errorf("tree %d has %d nodes, at most %d possible", i, len(tr.Feature), tc.wantMaxNodeCount)
				}
				leafRows := int32(0)
				for j, feat := range tr.Feature {
					if feat < 0 {
						leafRows += tr.Size[j]
					}
				}
				if int(leafRows) != tc.wantPsi {
					t.Errorf("tree %d: external nodes hold %d rows, want psi=%d", i, leafRows, tc.wantPsi)
				}
			}
		})
	}
}

// A constant column must never be split on, and all-identical rows give a single leaf.
func TestConstantFeatures(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	x := make([][]float64, 200)
	for i := range x {
		x[i] = []float64{3, r.NormFloat64(), 3}
	}
	f, err := Train(x, Config{Trees: 20, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i, tr := range f.Trees {
		for j, feat := range tr.Feature {
			if feat == 0 || feat == 2 {
				t.Fatalf("tree %d node %d splits on constant feature %d", i, j, feat)
			}
		}
	}

	same := [][]float64{{1, 2}, {1, 2}, {1, 2}, {1, 2}}
	f, err = Train(same, Config{Trees: 5, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i, tr := range f.Trees {
		if len(tr.Feature) != 1 || tr.Size[0] != 4 {
			t.Errorf("tree %d on identical rows = %+v, want one external node of size 4", i, tr)
		}
	}
	// h = c(4) = c(psi) for every point, so the score is exactly 1/2.
	if s, err := f.Score([]float64{1, 2}); err != nil || s != 0.5 {
		t.Errorf("Score on identical training rows = %v, %v, want 0.5", s, err)
	}
}

func TestC(t *testing.T) {
	tests := []struct {
		n    int
		want float64
	}{
		{0, 0}, {1, 0}, {2, 1},
		{3, 2*(math.Log(2)+eulerGamma) - 4.0/3},
		{256, 2*(math.Log(255)+eulerGamma) - 2*255.0/256}, // ≈ 10.24, the paper's c(256)
	}
	for _, tc := range tests {
		if got := c(tc.n); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("c(%d) = %v, want %v", tc.n, got, tc.want)
		}
	}
}

func TestTrainErrors(t *testing.T) {
	tests := []struct {
		name string
		x    [][]float64
		cfg  Config
		want string
	}{
		{name: "empty", x: nil, want: "0 rows"},
		{name: "one row", x: [][]float64{{1}}, want: "1 rows"},
		{name: "no columns", x: [][]float64{{}, {}}, want: "row 0 has no columns"},
		{name: "ragged", x: [][]float64{{1, 2}, {1, 2}, {3}}, want: "row 2 has 1 columns, row 0 has 2"},
		{name: "NaN", x: [][]float64{{1, 2}, {1, math.NaN()}}, want: "row 1 column 1: value NaN"},
		{name: "Inf", x: [][]float64{{math.Inf(-1), 2}, {1, 2}}, want: "row 0 column 0: value -Inf"},
		{name: "negative trees", x: [][]float64{{1}, {2}}, cfg: Config{Trees: -1}, want: "Trees -1"},
		{name: "absurd tree count", x: [][]float64{{1}, {2}}, cfg: Config{Trees: 1 << 30}, want: "Trees 1073741824"},
		{name: "negative sample size", x: [][]float64{{1}, {2}}, cfg: Config{SampleSize: -5}, want: "SampleSize -5"},
		{name: "negative range margin", x: [][]float64{{1}, {2}}, cfg: Config{RangeMargin: -1}, want: "RangeMargin -1"},
		{name: "NaN box margin", x: [][]float64{{1}, {2}}, cfg: Config{BoxMargin: math.NaN()}, want: "BoxMargin NaN"},
		{name: "infinite tolerance", x: [][]float64{{1}, {2}}, cfg: Config{Tolerance: math.Inf(1)}, want: "Tolerance +Inf"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Train(tc.x, tc.cfg)
			if err == nil {
				t.Fatalf("Train = %v, want error", f)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestScoreErrors(t *testing.T) {
	good, err := Train([][]float64{{1, 2}, {3, 4}, {5, 0}}, Config{Trees: 3, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	corrupt := func(mut func(f *Forest)) *Forest {
		data, _ := json.Marshal(good)
		var f Forest
		if err := json.Unmarshal(data, &f); err != nil {
			t.Fatal(err)
		}
		mut(&f)
		return &f
	}
	tests := []struct {
		name string
		f    *Forest
		x    []float64
		want string
	}{
		{name: "nil forest", f: nil, x: []float64{1, 2}, want: "no trees"},
		{name: "short vector", f: good, x: []float64{1}, want: "1 values, forest expects 2"},
		{name: "NaN", f: good, x: []float64{1, math.NaN()}, want: "column 1: value NaN"},
		{name: "Inf", f: good, x: []float64{math.Inf(1), 1}, want: "column 0: value +Inf"},
		{name: "bad sample size", f: corrupt(func(f *Forest) { f.SampleSize = 1 }), x: []float64{1, 2}, want: "sample_size 1"},
		{name: "ragged node arrays", f: corrupt(func(f *Forest) { f.Trees[0].Size = nil }), x: []float64{1, 2}, want: "tree 0: node arrays"},
		{name: "child loops back", f: corrupt(func(f *Forest) {
			f.Trees[1].Feature[0], f.Trees[1].Threshold[0], f.Trees[1].Right[0] = 0, math.Inf(-1), 0
		}), x: []float64{1, 2}, want: "tree 1: node 0: child 0 out of range"},
		{name: "feature out of range", f: corrupt(func(f *Forest) { f.Trees[2].Feature[0] = 9 }), x: []float64{1, 2}, want: "tree 2: node 0: feature 9"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := tc.f.Score(tc.x)
			if err == nil {
				t.Fatalf("Score = %v, want error", s)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
	if _, err := good.ScoreBatch([][]float64{{1, 2}, {1}}); err == nil || !strings.Contains(err.Error(), "row 1:") {
		t.Errorf("ScoreBatch error = %v, want one naming row 1", err)
	}
}

func TestValidate(t *testing.T) {
	good, err := Train(gaussian(rand.New(rand.NewPCG(6, 6)), 50, 2, 0, 0), Config{Trees: 2, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := good.Validate(); err != nil {
		t.Fatalf("trained forest invalid: %v", err)
	}
	tests := []struct {
		name string
		mut  func(f *Forest)
		want string
	}{
		{name: "no trees", mut: func(f *Forest) { f.Trees = nil }, want: "no trees"},
		{name: "features", mut: func(f *Forest) { f.Features = 0 }, want: "features 0"},
		{name: "sample size", mut: func(f *Forest) { f.SampleSize = 0 }, want: "sample_size 0"},
		{name: "lengths", mut: func(f *Forest) { f.Trees[1].Threshold = f.Trees[1].Threshold[:1] }, want: "tree 1: node arrays"},
		{name: "right child skips nodes", mut: func(f *Forest) { f.Trees[0].Right[0]++ }, want: "tree 0: node"},
		{name: "unreachable tail", mut: func(f *Forest) {
			t := &f.Trees[0]
			t.Feature, t.Threshold, t.Right, t.Size = append(t.Feature, -1), append(t.Threshold, 0), append(t.Right, 0), append(t.Size, 1)
			t.Min, t.Max = append(t.Min, 0), append(t.Max, 0)
		}, want: "1 of"},
		{name: "feature range", mut: func(f *Forest) { f.Trees[0].Feature[0] = 2 }, want: "feature 2 out of range"},
		{name: "NaN threshold", mut: func(f *Forest) { f.Trees[0].Threshold[0] = math.NaN() }, want: "threshold is NaN"},
		{name: "node range", mut: func(f *Forest) { f.Trees[0].Min[0], f.Trees[0].Max[0] = 2, 1 }, want: "node 0: range [2, 1]"},
		{name: "node range NaN", mut: func(f *Forest) { f.Trees[0].Max[0] = math.NaN() }, want: "node 0: range"},
		{name: "node range arrays", mut: func(f *Forest) { f.Trees[1].Min = nil }, want: "tree 1: node arrays"},
		{name: "box length", mut: func(f *Forest) { f.Max = f.Max[:1] }, want: "box has 2 min and 1 max values, want 2"},
		{name: "box order", mut: func(f *Forest) { f.Min[1] = f.Max[1] + 1 }, want: "box of feature 1"},
		{name: "box infinite", mut: func(f *Forest) { f.Min[0] = math.Inf(-1) }, want: "box of feature 0"},
		{name: "range margin", mut: func(f *Forest) { f.RangeMargin = -0.5 }, want: "range_margin -0.5"},
		{name: "box margin", mut: func(f *Forest) { f.BoxMargin = math.Inf(1) }, want: "box_margin +Inf"},
		{name: "tolerance", mut: func(f *Forest) { f.Tolerance = 0 }, want: "tolerance 0"},
		{name: "negative size", mut: func(f *Forest) {
			last := len(f.Trees[0].Size) - 1
			f.Trees[0].Size[last] = -1
		}, want: "size -1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data, _ := json.Marshal(good)
			var f Forest
			if err := json.Unmarshal(data, &f); err != nil {
				t.Fatal(err)
			}
			tc.mut(&f)
			err := f.Validate()
			if err == nil {
				t.Fatal("Validate accepted a corrupt forest")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

// Points inside every range they meet (here: the training rows of a forest whose trees all
// see every row) get exactly the paper's score; the range rules only ever shorten paths.
func TestRangeAwareKeepsPaperScoreInRange(t *testing.T) {
	x := gaussian(rand.New(rand.NewPCG(7, 7)), 200, 3, 5, 6)
	for _, cfg := range []Config{
		{Trees: 50, SampleSize: 256, Seed: 1},
		{Trees: 50, SampleSize: 256, Seed: 2, RangeMargin: 0.5, BoxMargin: 0.1},
	} {
		ranged, err := Train(x, cfg)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Plain = true
		plain, err := Train(x, cfg)
		if err != nil {
			t.Fatal(err)
		}
		for i, row := range x {
			a, err := ranged.Score(row)
			if err != nil {
				t.Fatal(err)
			}
			b, err := plain.Score(row)
			if err != nil {
				t.Fatal(err)
			}
			if a != b {
				t.Fatalf("%+v: row %d scores %v range-aware, %v plain; want equal for a training row", cfg, i, a, b)
			}
		}
	}
}

// The size of a deviation counts: the plain forest scores every point beyond the training
// data alike, the range-aware one scores farther points higher.
func TestFartherScoresHigher(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 8))
	x := make([][]float64, 300)
	for i := range x {
		x[i] = []float64{r.NormFloat64(), r.NormFloat64(), 10 + r.NormFloat64()}
	}
	ranged, err := Train(x, Config{Trees: 100, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := Train(x, Config{Trees: 100, Seed: 3, Plain: true})
	if err != nil {
		t.Fatal(err)
	}
	width := ranged.Max[2] - ranged.Min[2]
	tests := []struct {
		name      string
		beyond    float64 // distance past the training maximum of feature 2, in widths
		wantAbove float64 // range-aware score must exceed this
	}{
		{name: "just past the edge", beyond: 0.01, wantAbove: 0.5},
		{name: "half a width out", beyond: 0.5, wantAbove: 0.65},
		{name: "two widths out", beyond: 2, wantAbove: 0.9},
		{name: "ten widths out", beyond: 10, wantAbove: 0.999},
	}
	prev, prevPlain := 0.0, -1.0
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := []float64{0, 0, ranged.Max[2] + tc.beyond*width}
			s, err := ranged.Score(p)
			if err != nil {
				t.Fatal(err)
			}
			sp, err := plain.Score(p)
			if err != nil {
				t.Fatal(err)
			}
			if s <= tc.wantAbove || s <= prev {
				t.Errorf("range-aware score %v, want above %v and above the nearer point's %v", s, tc.wantAbove, prev)
			}
			if prevPlain >= 0 && sp != prevPlain {
				t.Errorf("plain score %v differs from the nearer point's %v: beyond the data the paper's score is flat", sp, prevPlain)
			}
			prev, prevPlain = s, sp
		})
	}
}

// A feature that never varied in training cannot be split on; a change of it must still
// count, and a change within the tolerance must not.
func TestConstantFeatureChanges(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	x := make([][]float64, 200)
	for i := range x {
		x[i] = []float64{r.NormFloat64(), 65536}
	}
	f, err := Train(x, Config{Trees: 50, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := Train(x, Config{Trees: 50, Seed: 1, Plain: true})
	if err != nil {
		t.Fatal(err)
	}
	// A training row is inside every range it meets, so only the constant can matter.
	row := x[0][0]
	base, err := plain.Score([]float64{row, 65536})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		value    float64
		wantHigh bool
	}{
		{name: "unchanged", value: 65536},
		{name: "within tolerance", value: 65536 * (1 + DefaultTolerance/2)},
		{name: "grown by a page", value: 65536 + 4096, wantHigh: true},
		{name: "shrunk to zero", value: 0, wantHigh: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := f.Score([]float64{row, tc.value})
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.wantHigh && s < 0.999:
				t.Errorf("score %v after the constant changed, want > 0.999", s)
			case !tc.wantHigh && s != base:
				t.Errorf("score %v, want the unchanged point's %v", s, base)
			}
		})
	}
}

func TestScoreDoesNotAllocate(t *testing.T) {
	x := benchData(500, 20)
	f, err := Train(x, Config{Trees: 20, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	far := slices.Clone(x[0])
	far[3] = 1e6
	for _, p := range [][]float64{x[0], far} {
		if n := testing.AllocsPerRun(100, func() { _, _ = f.Score(p) }); n != 0 {
			t.Errorf("Score allocates %v times per call, want 0", n)
		}
	}
}

func benchData(n, d int) [][]float64 {
	return gaussian(rand.New(rand.NewPCG(9, 9)), n, d, 0, 0)
}

// BenchmarkTrain is a type's training set at full size: 5,000 windows of 137 features.
func BenchmarkTrain(b *testing.B) {
	x := benchData(5000, 137)
	b.ReportAllocs()
	var f *Forest
	for b.Loop() {
		var err error
		if f, err = Train(x, Config{Seed: 1}); err != nil {
			b.Fatal(err)
		}
	}
	// The serialised size is what each pod type adds to a model bundle.
	data, err := json.Marshal(f)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(len(data)), "json-bytes")
}

func BenchmarkScore(b *testing.B) {
	x := benchData(5000, 137)
	f, err := Train(x, Config{Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.Score(x[0]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkScoreBatch1000(b *testing.B) {
	x := benchData(5000, 137)
	f, err := Train(x, Config{Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.ScoreBatch(x[:1000]); err != nil {
			b.Fatal(err)
		}
	}
}
