package model

import (
	"math"
	"reflect"
	"strings"
	"testing"
)

// stump is a hand-made classifier: x[0] <= 1 is mostly "a", above is "b".
func stump() *Classifier {
	return &Classifier{
		Algorithm:    AlgorithmBaggedID3,
		FeatureNames: []string{"cpu", "mem"},
		Classes:      []string{"a", "b"},
		Trees: []Tree{
			{Nodes: []Node{
				{Feature: 0, Threshold: 1, Left: 1, Right: 2},
				{Feature: leafFeature, Counts: []int{3, 1}},
				{Feature: leafFeature, Counts: []int{0, 5}},
			}},
			{Nodes: []Node{{Feature: leafFeature, Counts: []int{1, 1}}}},
		},
	}
}

func TestPredict(t *testing.T) {
	tests := []struct {
		x         []float64
		wantClass int
		wantProbs []float64
	}{
		{[]float64{0, 0}, 0, []float64{(0.75 + 0.5) / 2, (0.25 + 0.5) / 2}},
		{[]float64{1, 0}, 0, []float64{(0.75 + 0.5) / 2, (0.25 + 0.5) / 2}}, // equal goes left
		{[]float64{1.0000001, 0}, 1, []float64{0.25, 0.75}},
	}
	for _, tt := range tests {
		class, probs, err := stump().Predict(tt.x)
		if err != nil {
			t.Fatal(err)
		}
		if class != tt.wantClass || !reflect.DeepEqual(probs, tt.wantProbs) {
			t.Errorf("Predict(%v) = %d, %v; want %d, %v", tt.x, class, probs, tt.wantClass, tt.wantProbs)
		}
	}
}

func TestPredictTieGoesToLowestClass(t *testing.T) {
	c := stump()
	c.Trees = c.Trees[1:] // only the 1:1 leaf
	class, _, err := c.Predict([]float64{0, 0})
	if err != nil || class != 0 {
		t.Fatalf("Predict = %d, %v; want 0", class, err)
	}
}

func TestPredictRejectsBadInputWithoutPanicking(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Classifier)
		x      []float64
		want   string
	}{
		{"short vector", nil, []float64{1}, "has 1 values, want 2"},
		{"NaN", nil, []float64{1, math.NaN()}, `feature "mem" (x[1]) is NaN`},
		{"Inf", nil, []float64{math.Inf(1), 0}, `feature "cpu" (x[0]) is +Inf`},
		{"no trees", func(c *Classifier) { c.Trees = nil }, []float64{0, 0}, "no trees"},
		{"child before parent", func(c *Classifier) { c.Trees[0].Nodes[0].Left = 0 }, []float64{0, 0}, "does not come after"},
		{"child out of range", func(c *Classifier) { c.Trees[0].Nodes[0].Right = 9 }, []float64{5, 0}, "out of range"},
		{"feature out of range", func(c *Classifier) { c.Trees[0].Nodes[0].Feature = 7 }, []float64{0, 0}, "feature 7 out of range"},
		{"short counts", func(c *Classifier) { c.Trees[0].Nodes[1].Counts = []int{1} }, []float64{0, 0}, "1 class counts, want 2"},
		{"empty leaf", func(c *Classifier) { c.Trees[0].Nodes[1].Counts = []int{0, 0} }, []float64{0, 0}, "no rows"},
		{"empty tree", func(c *Classifier) { c.Trees[0].Nodes = nil }, []float64{0, 0}, "out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := stump()
			if tt.modify != nil {
				tt.modify(c)
			}
			_, _, err := c.Predict(tt.x)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
	if _, _, err := (*Classifier)(nil).Predict(nil); err == nil {
		t.Error("nil classifier: no error")
	}
}

func TestClassifierValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Classifier)
		want   string // "" = valid
	}{
		{"valid", func(*Classifier) {}, ""},
		{"no features", func(c *Classifier) { c.FeatureNames = nil }, "feature_names is empty"},
		{"duplicate class", func(c *Classifier) { c.Classes = []string{"a", "a"} }, `classes[1] = "a" duplicates classes[0]`},
		{"no trees", func(c *Classifier) { c.Trees = nil }, "trees is empty"},
		{"empty tree", func(c *Classifier) { c.Trees[1].Nodes = nil }, "trees[1]: nodes is empty"},
		{"bad feature", func(c *Classifier) { c.Trees[0].Nodes[0].Feature = 2 }, "trees[0]: nodes[0].feature = 2"},
		{"negative feature", func(c *Classifier) { c.Trees[0].Nodes[0].Feature = -3 }, "nodes[0].feature = -3"},
		{"NaN threshold", func(c *Classifier) { c.Trees[0].Nodes[0].Threshold = math.NaN() }, "nodes[0].threshold = NaN"},
		{"left loops", func(c *Classifier) { c.Trees[0].Nodes[0].Left = 0 }, "nodes[0].left = 0"},
		{"right out of range", func(c *Classifier) { c.Trees[0].Nodes[0].Right = 3 }, "nodes[0].right = 3"},
		{"counts on split", func(c *Classifier) { c.Trees[0].Nodes[0].Counts = []int{1, 1} }, "counts is set on a split"},
		{"negative count", func(c *Classifier) { c.Trees[0].Nodes[2].Counts = []int{-1, 5} }, "nodes[2]: leaf count for class 0 is -1"},
		{"class count mismatch", func(c *Classifier) { c.Trees[1].Nodes[0].Counts = []int{1, 1, 1} }, "3 class counts, want 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := stump()
			tt.modify(c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Validate() = %v, want error containing %q", err, tt.want)
			}
		})
	}
}
