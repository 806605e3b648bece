package model

import (
	"context"
	"errors"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/sjwhitworth/golearn/base"
	"github.com/sjwhitworth/golearn/trees"
)

// smallSynth is a data set small enough for unit tests (about 500 rows).
func smallSynth(t testing.TB) (train, valid synthData) {
	t.Helper()
	return makeSynth(synthSpec{classes: 6, podsPerClass: 12, windowsPerPod: 7, seed: 7}).split()
}

func TestTrainClassifierRejectsBadInput(t *testing.T) {
	names := []string{"a", "b"}
	classes := []string{"mysql", "nginx"}
	x := [][]float64{{1, 2}, {3, 4}, {5, 6}}
	y := []int{0, 1, 1}
	tests := []struct {
		name     string
		x        [][]float64
		y        []int
		classes  []string
		features []string
		opt      TrainOptions
		want     string
	}{
		{"empty x", nil, nil, classes, names, TrainOptions{}, "x is empty"},
		{"y length", x, []int{0, 1}, classes, names, TrainOptions{}, "len(y) = 2, want len(x) = 3"},
		{"ragged row", [][]float64{{1, 2}, {3}, {5, 6}}, y, classes, names, TrainOptions{}, "x[1] has 1 values, want 2"},
		{"NaN", [][]float64{{1, 2}, {3, math.NaN()}, {5, 6}}, y, classes, names, TrainOptions{}, `x[1][1] (feature "b") is NaN`},
		{"Inf", [][]float64{{math.Inf(-1), 2}, {3, 4}, {5, 6}}, y, classes, names, TrainOptions{}, `x[0][0] (feature "a") is -Inf`},
		{"label too large", x, []int{0, 2, 1}, classes, names, TrainOptions{}, "y[1] = 2, want [0,2)"},
		{"negative label", x, []int{0, -1, 1}, classes, names, TrainOptions{}, "y[1] = -1, want [0,2)"},
		{"class without rows", x, []int{1, 1, 1}, classes, names, TrainOptions{}, `class "mysql" (index 0) has no rows`},
		{"no features", x, y, classes, nil, TrainOptions{}, "featureNames is empty"},
		{"duplicate feature", x, y, classes, []string{"a", "a"}, TrainOptions{}, `featureNames[1] = "a" duplicates featureNames[0]`},
		{"reserved feature", x, y, classes, []string{"a", rowAttrName}, TrainOptions{}, "is reserved"},
		{"empty class name", x, y, []string{"mysql", ""}, names, TrainOptions{}, "classes[1] is empty"},
		{"no classes", x, y, nil, names, TrainOptions{}, "classes is empty"},
		{"unknown algorithm", x, y, classes, names, TrainOptions{Algorithm: "cart"}, `algorithm "cart" is unknown`},
		{"negative trees", x, y, classes, names, TrainOptions{Trees: -1}, "trees = -1, want [0,10000]"},
		{"id3 with many trees", x, y, classes, names, TrainOptions{Algorithm: AlgorithmID3, Trees: 5}, "grows one tree"},
		{"negative depth", x, y, classes, names, TrainOptions{MaxDepth: -2}, "max_depth = -2"},
		{"negative min split", x, y, classes, names, TrainOptions{MinSplit: -1}, "min_split = -1"},
		{"too many random features", x, y, classes, names, TrainOptions{Algorithm: AlgorithmRandomTrees, RandomFeatures: 3}, "random_features = 3, want [1,2]"},
		{"random features for bagging", x, y, classes, names, TrainOptions{Algorithm: AlgorithmBaggedID3, RandomFeatures: 1}, "only algorithm"},
		{"negative workers", x, y, classes, names, TrainOptions{Workers: -1}, "workers = -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := TrainClassifier(context.Background(), tt.x, tt.y, tt.classes, tt.features, tt.opt)
			if err == nil {
				t.Fatalf("TrainClassifier succeeded (%d trees), want error containing %q", len(c.Trees), tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestConversionMatchesGolearn checks the portable trees against golearn's own
// Predict and PredictProba on golearn's trees, row by row, including rows
// whose values sit exactly on a threshold (golearn sends those left).
func TestConversionMatchesGolearn(t *testing.T) {
	train, valid := smallSynth(t)
	tests := []TrainOptions{
		{Algorithm: AlgorithmID3},
		{Algorithm: AlgorithmID3, MaxDepth: 3},
		{Algorithm: AlgorithmBaggedID3, Trees: 3, MinSplit: 20},
		{Algorithm: AlgorithmRandomTrees, Trees: 4},
		{Algorithm: AlgorithmRandomTrees, Trees: 2, RandomFeatures: 12, MaxDepth: 5},
	}
	for _, opt := range tests {
		t.Run(opt.Algorithm, func(t *testing.T) {
			opt, err := opt.withDefaults(len(train.names))
			if err != nil {
				t.Fatal(err)
			}
			tr := newTrainer(train.x, train.y, train.classes, train.names, opt)
			rows := withThresholdRows(t, tr, valid.x)
			grid, err := buildGrid(rows, make([]int, len(rows)), seq(len(rows)), train.classes, train.names)
			if err != nil {
				t.Fatal(err)
			}
			onThreshold := 0
			for seed := range uint64(opt.Trees) {
				root, err := tr.growTree(seed)
				if err != nil {
					t.Fatal(err)
				}
				ours, err := convertTree(root, train.names, train.classes)
				if err != nil {
					t.Fatal(err)
				}
				if err := ours.validate(len(train.names), len(train.classes)); err != nil {
					t.Fatalf("converted tree is invalid: %v", err)
				}
				golearn := &trees.ID3DecisionTree{Root: root}
				pred, err := golearn.Predict(grid)
				if err != nil {
					t.Fatal(err)
				}
				for i, x := range rows {
					leaf, err := ours.leaf(x, len(train.classes))
					if err != nil {
						t.Fatal(err)
					}
					onThreshold += countOnThreshold(&ours, x)
					// golearn's leaf label is a majority class, ties broken
					// by map order, so it must be one of our maxima.
					got := base.GetClass(pred, i)
					if !slices.Contains(majorities(leaf.Counts, train.classes), got) {
						t.Fatalf("tree %d row %d: golearn predicts %q, our leaf counts %v", seed, i, got, leaf.Counts)
					}
					// PredictProba exposes golearn's leaf distribution, which
					// must be ours exactly.
					one := base.NewInstancesViewFromVisible(grid, []int{i}, grid.AllAttributes())
					proba, err := golearn.PredictProba(one)
					if err != nil {
						t.Fatal(err)
					}
					if want := leafProbs(leaf.Counts, train.classes); !reflect.DeepEqual(probMap(proba), want) {
						t.Fatalf("tree %d row %d: golearn leaf %v, ours %v", seed, i, probMap(proba), want)
					}
				}
			}
			if onThreshold == 0 {
				t.Error("no row had a value equal to a threshold on its path; the test lost its edge cases")
			}
		})
	}
}

// withThresholdRows returns rows plus, for each row, copies with the first
// two features it meets set exactly to their thresholds in the first tree.
func withThresholdRows(t *testing.T, tr *trainer, rows [][]float64) [][]float64 {
	t.Helper()
	root, err := tr.growTree(0)
	if err != nil {
		t.Fatal(err)
	}
	tree, err := convertTree(root, tr.featureNames, tr.classes)
	if err != nil {
		t.Fatal(err)
	}
	out := slices.Clone(rows)
	for _, x := range rows {
		x = slices.Clone(x)
		for i, steps := 0, 0; !tree.Nodes[i].IsLeaf() && steps < 2; steps++ {
			n := tree.Nodes[i]
			x[n.Feature] = n.Threshold
			i = n.Left
			out = append(out, slices.Clone(x))
		}
	}
	return out
}

func countOnThreshold(tree *Tree, x []float64) int {
	count := 0
	for i := 0; !tree.Nodes[i].IsLeaf(); {
		n := tree.Nodes[i]
		if x[n.Feature] == n.Threshold {
			count++
		}
		i = n.Left
		if x[n.Feature] > n.Threshold {
			i = n.Right
		}
	}
	return count
}

func majorities(counts []int, classes []string) []string {
	top := slices.Max(counts)
	var out []string
	for k, n := range counts {
		if n == top {
			out = append(out, classes[k])
		}
	}
	return out
}

func leafProbs(counts []int, classes []string) map[string]float64 {
	total := 0
	for _, n := range counts {
		total += n
	}
	out := map[string]float64{}
	for k, n := range counts {
		if n > 0 {
			out[classes[k]] = float64(n) / float64(total)
		}
	}
	return out
}

func probMap(p trees.ClassesProba) map[string]float64 {
	out := map[string]float64{}
	for _, c := range p {
		out[c.ClassValue] = c.Probability
	}
	return out
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// TestConvertTree covers golearn tree shapes our own split rule never makes,
// on hand-built trees: a split with one child (golearn's rule generators make
// those when a midpoint rounds onto the largest value) and corrupt nodes.
func TestConvertTree(t *testing.T) {
	f0, f1 := base.NewFloatAttribute("f0"), base.NewFloatAttribute("f1")
	leaf := func(dist map[string]int) *trees.DecisionTreeNode {
		// Class is what golearn's Predict reports; ours comes from ClassDist.
		class, most := "", 0
		for c, n := range dist {
			if n > most {
				class, most = c, n
			}
		}
		return &trees.DecisionTreeNode{Type: trees.LeafNode, ClassDist: dist, Class: class}
	}
	split := func(a base.Attribute, v float64, children map[string]*trees.DecisionTreeNode) *trees.DecisionTreeNode {
		return &trees.DecisionTreeNode{Type: trees.RuleNode, Children: children, SplitRule: &trees.DecisionTreeRule{SplitAttr: a, SplitVal: v}}
	}
	names, classes := []string{"f0", "f1"}, []string{"a", "b"}
	oneChild := split(f0, 1.0, map[string]*trees.DecisionTreeNode{
		"0": split(f1, 0.5, map[string]*trees.DecisionTreeNode{
			"0": leaf(map[string]int{"a": 3}),
			"1": leaf(map[string]int{"b": 2, "a": 1}),
		}),
	})

	t.Run("single child", func(t *testing.T) {
		tree, err := convertTree(oneChild, names, classes)
		if err != nil {
			t.Fatal(err)
		}
		want := Tree{Nodes: []Node{
			{Feature: 1, Threshold: 0.5, Left: 1, Right: 2},
			{Feature: leafFeature, Counts: []int{3, 0}},
			{Feature: leafFeature, Counts: []int{1, 2}},
		}}
		if !reflect.DeepEqual(tree, want) {
			t.Fatalf("tree = %+v, want %+v", tree, want)
		}
		// golearn's Predict on the unconverted tree agrees for rows on
		// either side of the missing child.
		rows := [][]float64{{0, 0}, {0, 1}, {2, 0}, {2, 1}, {1, 0.5}}
		grid, err := buildGrid(rows, make([]int, len(rows)), seq(len(rows)), classes, names)
		if err != nil {
			t.Fatal(err)
		}
		pred, err := (&trees.ID3DecisionTree{Root: oneChild}).Predict(grid)
		if err != nil {
			t.Fatal(err)
		}
		for i, x := range rows {
			l, err := tree.leaf(x, len(classes))
			if err != nil {
				t.Fatal(err)
			}
			if got := base.GetClass(pred, i); got != majorities(l.Counts, classes)[0] {
				t.Errorf("row %v: golearn %q, ours %v", x, got, l.Counts)
			}
		}
	})

	bad := []struct {
		name string
		root *trees.DecisionTreeNode
		want string
	}{
		{"nil root", nil, "nil node"},
		{"unknown class", leaf(map[string]int{"c": 1}), `unknown class "c"`},
		{"empty leaf", leaf(map[string]int{}), "leaf has no rows"},
		{"unknown feature", split(base.NewFloatAttribute("zz"), 1, map[string]*trees.DecisionTreeNode{"0": leaf(map[string]int{"a": 1})}), `unknown feature "zz"`},
		{"categorical split", split(base.NewCategoricalAttribute(), 1, map[string]*trees.DecisionTreeNode{"0": leaf(map[string]int{"a": 1})}), "non-numeric"},
		{"odd child key", split(f0, 1, map[string]*trees.DecisionTreeNode{"2": leaf(map[string]int{"a": 1})}), `child "2"`},
		{"no children", split(f0, 1, map[string]*trees.DecisionTreeNode{}), "no children"},
		{"NaN threshold", split(f0, math.NaN(), map[string]*trees.DecisionTreeNode{"0": leaf(map[string]int{"a": 1})}), "threshold NaN"},
		{"no rule", &trees.DecisionTreeNode{Children: map[string]*trees.DecisionTreeNode{"0": leaf(map[string]int{"a": 1})}}, "no rule"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := convertTree(tt.root, names, classes)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestTrainIsDeterministic(t *testing.T) {
	train, _ := smallSynth(t)
	for _, alg := range []string{AlgorithmID3, AlgorithmBaggedID3, AlgorithmRandomTrees} {
		t.Run(alg, func(t *testing.T) {
			trees := 0
			if alg != AlgorithmID3 {
				trees = 6
			}
			fit := func(seed uint64, workers int) *Classifier {
				c, err := TrainClassifier(context.Background(), train.x, train.y, train.classes, train.names,
					TrainOptions{Algorithm: alg, Trees: trees, Seed: seed, Workers: workers})
				if err != nil {
					t.Fatal(err)
				}
				return c
			}
			a, b := fit(1, 1), fit(1, 2)
			if !reflect.DeepEqual(a, b) {
				t.Error("same seed, different worker count: classifiers differ")
			}
			if alg != AlgorithmID3 && reflect.DeepEqual(a.Trees, fit(2, 2).Trees) {
				t.Error("different seeds gave identical trees")
			}
		})
	}
}

func TestTrainedClassifierIsAccurate(t *testing.T) {
	train, valid := smallSynth(t)
	for _, opt := range []TrainOptions{
		{Algorithm: AlgorithmID3},
		{Algorithm: AlgorithmBaggedID3, Trees: 5},
		{Algorithm: AlgorithmRandomTrees, Trees: 20},
	} {
		t.Run(opt.Algorithm, func(t *testing.T) {
			c, err := TrainClassifier(context.Background(), train.x, train.y, train.classes, train.names, opt)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			correct := 0
			for i, x := range valid.x {
				k, probs, err := c.Predict(x)
				if err != nil {
					t.Fatal(err)
				}
				if sum := floatSum(probs); math.Abs(sum-1) > 1e-9 {
					t.Fatalf("probabilities sum to %v", sum)
				}
				if probs[k] != slices.Max(probs) {
					t.Fatalf("class %d has probability %v, max is %v", k, probs[k], slices.Max(probs))
				}
				if k == valid.y[i] {
					correct++
				}
			}
			// Held-out pods; the data set is built so that good trees
			// score well above this and a broken conversion far below.
			acc := float64(correct) / float64(len(valid.x))
			t.Logf("accuracy on held-out pods: %.3f", acc)
			if acc < 0.75 {
				t.Errorf("accuracy on held-out pods = %.3f, want >= 0.75", acc)
			}
		})
	}
}

func floatSum(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s
}

func TestTrainStopsWhenContextIsDone(t *testing.T) {
	train, _ := smallSynth(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := TrainClassifier(ctx, train.x, train.y, train.classes, train.names, TrainOptions{Trees: 3})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want context.Canceled", err)
	}
}
