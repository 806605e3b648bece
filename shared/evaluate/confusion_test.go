package evaluate

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/sjwhitworth/golearn/base"
	"github.com/sjwhitworth/golearn/evaluation"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-12 }

func TestMetrics(t *testing.T) {
	tests := []struct {
		name      string
		classes   []string
		m         [][]int
		wantAcc   float64
		wantMacro float64
		want      []ClassMetrics
	}{
		{
			name:    "two classes",
			classes: []string{"a", "b"},
			m:       [][]int{{75, 5}, {10, 10}},
			wantAcc: 0.85,
			want: []ClassMetrics{
				{Class: "a", Precision: 75.0 / 85, Recall: 75.0 / 80, F1: 2 * 75.0 / (85 + 80), Support: 80},
				{Class: "b", Precision: 10.0 / 15, Recall: 0.5, F1: 2 * 10.0 / (15 + 20), Support: 20},
			},
			wantMacro: (2*75.0/165 + 2*10.0/35) / 2,
		},
		{
			name:    "never-predicted class has precision 0 and counts in macro-F1",
			classes: []string{"a", "b"},
			m:       [][]int{{5, 0}, {3, 0}},
			wantAcc: 5.0 / 8,
			want: []ClassMetrics{
				{Class: "a", Precision: 5.0 / 8, Recall: 1, F1: 2 * (5.0 / 8) / (5.0/8 + 1), Support: 5},
				{Class: "b", Precision: 0, Recall: 0, F1: 0, Support: 3},
			},
			wantMacro: (2 * (5.0 / 8) / (5.0/8 + 1)) / 2,
		},
		{
			name:    "class without support is left out of macro-F1",
			classes: []string{"a", "b", "c"},
			m:       [][]int{{4, 0, 1}, {0, 5, 0}, {0, 0, 0}},
			wantAcc: 9.0 / 10,
			want: []ClassMetrics{
				{Class: "a", Precision: 1, Recall: 0.8, F1: 1.6 / 1.8, Support: 5},
				{Class: "b", Precision: 1, Recall: 1, F1: 1, Support: 5},
				{Class: "c", Precision: 0, Recall: 0, F1: 0, Support: 0},
			},
			wantMacro: (1.6/1.8 + 1) / 2,
		},
		{
			name:    "empty matrix",
			classes: []string{"a", "b"},
			m:       [][]int{{0, 0}, {0, 0}},
			want:    []ClassMetrics{{Class: "a"}, {Class: "b"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &Confusion{Classes: tc.classes, Matrix: tc.m}
			got := c.Metrics()
			if !near(got.Accuracy, tc.wantAcc) || !near(got.MacroF1, tc.wantMacro) {
				t.Errorf("accuracy, macro-F1 = %v, %v, want %v, %v", got.Accuracy, got.MacroF1, tc.wantAcc, tc.wantMacro)
			}
			if len(got.PerClass) != len(tc.want) {
				t.Fatalf("%d per-class rows, want %d", len(got.PerClass), len(tc.want))
			}
			for i, w := range tc.want {
				g := got.PerClass[i]
				if g.Class != w.Class || g.Support != w.Support || !near(g.Precision, w.Precision) || !near(g.Recall, w.Recall) || !near(g.F1, w.F1) {
					t.Errorf("class %d = %+v, want %+v", i, g, w)
				}
			}
		})
	}
}

func TestConfusionErrors(t *testing.T) {
	if _, err := NewConfusion(nil); err == nil {
		t.Error("NewConfusion(nil) succeeded")
	}
	if _, err := NewConfusion([]string{"a", "b", "a"}); err == nil || !strings.Contains(err.Error(), `class 2 "a" appears twice`) {
		t.Errorf("NewConfusion with duplicate = %v", err)
	}
	c, err := NewConfusion([]string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name         string
		c            *Confusion
		actual, pred int
		want         string
	}{
		{name: "negative actual", c: c, actual: -1, pred: 0, want: "actual class -1 out of range [0,2)"},
		{name: "predicted too large", c: c, actual: 0, pred: 2, want: "predicted class 2 out of range [0,2)"},
		{name: "nil matrix", c: nil, want: "nil confusion matrix"},
		{name: "ragged matrix", c: &Confusion{Classes: []string{"a", "b"}, Matrix: [][]int{{0, 0}, {0}}}, want: "row 1 (b) has 1 columns"},
		{name: "missing rows", c: &Confusion{Classes: []string{"a", "b"}}, want: "0 rows for 2 classes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.Add(tc.actual, tc.pred)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Add(%d, %d) = %v, want error containing %q", tc.actual, tc.pred, err, tc.want)
			}
		})
	}
	if c.Total() != 0 {
		t.Errorf("failed Adds counted: total %d", c.Total())
	}
	if m := (&Confusion{Classes: []string{"a"}, Matrix: [][]int{{-1}}}).Metrics(); m.Accuracy != 0 || m.PerClass != nil {
		t.Errorf("Metrics of a negative-count matrix = %+v, want zero", m)
	}
}

func TestMerge(t *testing.T) {
	a, _ := NewConfusion([]string{"x", "y"})
	b, _ := NewConfusion([]string{"x", "y"})
	for _, p := range [][2]int{{0, 0}, {0, 1}, {1, 1}} {
		if err := a.Add(p[0], p[1]); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range [][2]int{{1, 0}, {1, 1}} {
		if err := b.Add(p[0], p[1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Merge(b); err != nil {
		t.Fatal(err)
	}
	want := [][]int{{1, 1}, {1, 2}}
	for i := range want {
		for j := range want[i] {
			if a.Matrix[i][j] != want[i][j] {
				t.Fatalf("merged matrix = %v, want %v", a.Matrix, want)
			}
		}
	}
	other, _ := NewConfusion([]string{"x", "z"})
	if err := a.Merge(other); err == nil || !strings.Contains(err.Error(), `class 1 is "z", want "y"`) {
		t.Errorf("Merge with other classes = %v", err)
	}
	three, _ := NewConfusion([]string{"x", "y", "z"})
	if err := a.Merge(three); err == nil {
		t.Error("Merge of 3 classes into 2 succeeded")
	}
	if err := a.Merge(nil); err == nil {
		t.Error("Merge(nil) succeeded")
	}
}

// TestAgreesWithGolearn feeds the same predictions through golearn's evaluation package.
// golearn returns NaN where precision or recall is 0/0 (we return 0, see the package
// comment), so those cells are compared only where golearn defines them.
func TestAgreesWithGolearn(t *testing.T) {
	classes := []string{"mysql", "nginx", "redis", "postgres", "never-predicted", "no-support"}
	r := rand.New(rand.NewPCG(1, 2))
	var actual, predicted []int
	for range 500 {
		a := r.IntN(5) // "no-support" never occurs as actual class
		p := a
		if r.Float64() < 0.3 {
			p = r.IntN(len(classes))
		}
		if p == 4 { // "never-predicted" is never predicted
			p = 0
		}
		actual, predicted = append(actual, a), append(predicted, p)
	}

	c, err := NewConfusion(classes)
	if err != nil {
		t.Fatal(err)
	}
	for i := range actual {
		if err := c.Add(actual[i], predicted[i]); err != nil {
			t.Fatal(err)
		}
	}
	ours := c.Metrics()

	ref, err := classGrid(classes, actual)
	if err != nil {
		t.Fatal(err)
	}
	gen, err := classGrid(classes, predicted)
	if err != nil {
		t.Fatal(err)
	}
	cm, err := evaluation.GetConfusionMatrix(ref, gen)
	if err != nil {
		t.Fatal(err)
	}
	if g := evaluation.GetAccuracy(cm); !near(g, ours.Accuracy) {
		t.Errorf("accuracy = %v, golearn %v", ours.Accuracy, g)
	}
	compared := 0
	for k, name := range classes {
		for _, m := range []struct {
			what       string
			ours, gole float64
		}{
			{"precision", ours.PerClass[k].Precision, evaluation.GetPrecision(name, cm)},
			{"recall", ours.PerClass[k].Recall, evaluation.GetRecall(name, cm)},
			{"F1", ours.PerClass[k].F1, evaluation.GetF1Score(name, cm)},
		} {
			if math.IsNaN(m.gole) {
				if m.ours != 0 {
					t.Errorf("%s %s: golearn undefined (NaN), ours %v, want 0", name, m.what, m.ours)
				}
				continue
			}
			compared++
			if !near(m.ours, m.gole) {
				t.Errorf("%s %s = %v, golearn %v", name, m.what, m.ours, m.gole)
			}
		}
		for a := range classes {
			if got, want := c.Matrix[a][k], cm[classes[a]][name]; got != want {
				t.Errorf("cell [%s][%s] = %d, golearn %d", classes[a], name, got, want)
			}
		}
	}
	if compared < 12 {
		t.Errorf("only %d numbers compared with golearn, want at least 12", compared)
	}
}

// classGrid is a golearn instance set holding only a categorical class attribute.
func classGrid(classes []string, labels []int) (*base.DenseInstances, error) {
	attr := base.NewCategoricalAttribute()
	attr.SetName("type")
	for _, c := range classes {
		attr.GetSysValFromString(c) // registers the value, fixing its order
	}
	inst := base.NewDenseInstances()
	spec := inst.AddAttribute(attr)
	if err := inst.AddClassAttribute(attr); err != nil {
		return nil, err
	}
	if err := inst.Extend(len(labels)); err != nil {
		return nil, err
	}
	for i, l := range labels {
		inst.Set(spec, i, attr.GetSysValFromString(classes[l]))
	}
	return inst, nil
}

func TestNewAnomalyResult(t *testing.T) {
	above := func(threshold float64) func(float64) bool { return func(s float64) bool { return s > threshold } }
	// A score equal to the threshold is not flagged: the rule is strictly above.
	got := NewAnomalyResult("redis", 0.6, above(0.6), []float64{0.7, 0.6, 0.65, 0.5, math.NaN()}, []float64{0.4, 0.61, 0.3, 0.2, 0.6})
	want := AnomalyResult{Type: "redis", Threshold: 0.6, Recall: 0.4, FalsePositiveRate: 0.2, FaultWindows: 5, NormalWindows: 5}
	if got != want {
		t.Errorf("NewAnomalyResult = %+v, want %+v", got, want)
	}
	// The rule, not the threshold, decides: a rule that flags everything flags every window.
	all := NewAnomalyResult("redis", 0.6, func(float64) bool { return true }, []float64{0.1}, []float64{0.2, 0.3})
	if all.Recall != 1 || all.FalsePositiveRate != 1 {
		t.Errorf("NewAnomalyResult with an always-true rule = %+v, want rates 1", all)
	}
	if got := NewAnomalyResult("x", 0.5, above(0.5), nil, nil); got.Recall != 0 || got.FalsePositiveRate != 0 {
		t.Errorf("NewAnomalyResult without windows = %+v, want zero rates", got)
	}
}
