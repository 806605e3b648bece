package model

import (
	"fmt"
	"math"
)

// Classifier is a portable ensemble of decision trees that tells the pod type
// from a feature vector. It is produced by TrainClassifier and needs nothing
// but this package to predict; all fields are exported so that it travels in
// the bundle as plain JSON.
type Classifier struct {
	// Algorithm and Options record how the trees were grown, for the report
	// and for reproducing a model; prediction does not depend on them.
	Algorithm string       `json:"algorithm"`
	Options   TrainOptions `json:"options"`
	// FeatureNames and Classes fix the meaning of vector positions and of
	// the class indices Predict returns.
	FeatureNames []string `json:"feature_names"`
	Classes      []string `json:"classes"`
	Trees        []Tree   `json:"trees"`
}

// Tree is one decision tree as a flat node array; Nodes[0] is the root.
// Children always come after their parent, which Validate checks, so walking
// a tree always ends.
type Tree struct {
	Nodes []Node `json:"nodes"`
}

// Node is a split or a leaf. A split (Feature >= 0) sends x to Right when
// x[Feature] > Threshold and to Left otherwise, which is golearn's rule
// (a value equal to the threshold goes left). A leaf (Feature == -1) holds how
// many training rows of each class reached it.
type Node struct {
	Feature   int     `json:"feature"`
	Threshold float64 `json:"threshold,omitempty"`
	Left      int     `json:"left,omitempty"`
	Right     int     `json:"right,omitempty"`
	// Counts[k] is the number of (bootstrap) training rows of class k at this
	// leaf; kept as counts rather than probabilities so that the bundle shows
	// how much evidence a leaf had.
	Counts []int `json:"counts,omitempty"`
}

// leafFeature marks a leaf in Node.Feature.
const leafFeature = -1

// IsLeaf reports whether n is a leaf.
func (n *Node) IsLeaf() bool { return n.Feature == leafFeature }

// Predict returns the most probable class index for x and the probability of
// every class. probs is the average over trees of each tree's leaf class
// distribution, so it reflects how sure the ensemble is; the watcher compares
// its maximum with a threshold to answer `unknown` for types it never saw.
// Ties go to the lowest class index so that a prediction is reproducible.
//
// x must have one finite value per feature. Predict never panics, even on a
// hand-made Classifier: a malformed tree is reported as an error.
func (c *Classifier) Predict(x []float64) (class int, probs []float64, err error) {
	if c == nil {
		return 0, nil, fmt.Errorf("model: predict: nil classifier")
	}
	if len(x) != len(c.FeatureNames) {
		return 0, nil, fmt.Errorf("model: predict: feature vector has %d values, want %d", len(x), len(c.FeatureNames))
	}
	for i, v := range x {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return 0, nil, fmt.Errorf("model: predict: feature %q (x[%d]) is %v", c.FeatureNames[i], i, v)
		}
	}
	if len(c.Trees) == 0 {
		return 0, nil, fmt.Errorf("model: predict: classifier has no trees")
	}
	if len(c.Classes) == 0 {
		return 0, nil, fmt.Errorf("model: predict: classifier has no classes")
	}
	probs = make([]float64, len(c.Classes))
	for t := range c.Trees {
		leaf, err := c.Trees[t].leaf(x, len(c.Classes))
		if err != nil {
			return 0, nil, fmt.Errorf("model: predict: tree %d: %w", t, err)
		}
		total := 0
		for _, n := range leaf.Counts {
			total += n
		}
		for k, n := range leaf.Counts {
			probs[k] += float64(n) / float64(total)
		}
	}
	for k := range probs {
		probs[k] /= float64(len(c.Trees))
	}
	return argmax(probs), probs, nil
}

// leaf walks the tree for x. It checks every node it visits, so a tree that
// did not come through Validate yields an error instead of an index panic or
// an endless loop; the checks are a few comparisons per level.
func (t *Tree) leaf(x []float64, classes int) (*Node, error) {
	i := 0
	for {
		if i < 0 || i >= len(t.Nodes) {
			return nil, fmt.Errorf("node index %d out of range [0,%d)", i, len(t.Nodes))
		}
		n := &t.Nodes[i]
		if n.IsLeaf() {
			if err := checkCounts(n.Counts, classes); err != nil {
				return nil, fmt.Errorf("node %d: %w", i, err)
			}
			return n, nil
		}
		if n.Feature < 0 || n.Feature >= len(x) {
			return nil, fmt.Errorf("node %d: feature %d out of range [0,%d)", i, n.Feature, len(x))
		}
		next := n.Left
		if x[n.Feature] > n.Threshold {
			next = n.Right
		}
		if next <= i {
			return nil, fmt.Errorf("node %d: child %d does not come after its parent", i, next)
		}
		i = next
	}
}

func checkCounts(counts []int, classes int) error {
	if len(counts) != classes {
		return fmt.Errorf("leaf has %d class counts, want %d", len(counts), classes)
	}
	total := 0
	for k, n := range counts {
		if n < 0 {
			return fmt.Errorf("leaf count for class %d is %d, want >= 0", k, n)
		}
		total += n
		if total < 0 {
			return fmt.Errorf("leaf counts overflow")
		}
	}
	if total == 0 {
		return fmt.Errorf("leaf has no rows")
	}
	return nil
}

// argmax returns the index of the largest value, the lowest index on ties.
func argmax(v []float64) int {
	best := 0
	for i := 1; i < len(v); i++ {
		if v[i] > v[best] {
			best = i
		}
	}
	return best
}

// Validate checks that c can predict without surprises: feature and class
// names are non-empty and unique, every tree is well formed (children after
// parents, features and leaf counts in range, finite thresholds).
// The error names the offending field and value.
func (c *Classifier) Validate() error {
	if c == nil {
		return fmt.Errorf("classifier is missing")
	}
	if err := checkNames("feature_names", c.FeatureNames); err != nil {
		return fmt.Errorf("classifier: %w", err)
	}
	if err := checkNames("classes", c.Classes); err != nil {
		return fmt.Errorf("classifier: %w", err)
	}
	if len(c.Trees) == 0 {
		return fmt.Errorf("classifier: trees is empty")
	}
	for t := range c.Trees {
		if err := c.Trees[t].validate(len(c.FeatureNames), len(c.Classes)); err != nil {
			return fmt.Errorf("classifier: trees[%d]: %w", t, err)
		}
	}
	return nil
}

func (t *Tree) validate(features, classes int) error {
	if len(t.Nodes) == 0 {
		return fmt.Errorf("nodes is empty")
	}
	for i := range t.Nodes {
		n := &t.Nodes[i]
		if n.IsLeaf() {
			if err := checkCounts(n.Counts, classes); err != nil {
				return fmt.Errorf("nodes[%d]: %w", i, err)
			}
			continue
		}
		switch {
		case n.Feature < 0 || n.Feature >= features:
			return fmt.Errorf("nodes[%d].feature = %d, want -1 (leaf) or [0,%d)", i, n.Feature, features)
		case math.IsNaN(n.Threshold) || math.IsInf(n.Threshold, 0):
			return fmt.Errorf("nodes[%d].threshold = %v, want a finite number", i, n.Threshold)
		case n.Left <= i || n.Left >= len(t.Nodes):
			return fmt.Errorf("nodes[%d].left = %d, want (%d,%d)", i, n.Left, i, len(t.Nodes))
		case n.Right <= i || n.Right >= len(t.Nodes):
			return fmt.Errorf("nodes[%d].right = %d, want (%d,%d)", i, n.Right, i, len(t.Nodes))
		case len(n.Counts) != 0:
			return fmt.Errorf("nodes[%d].counts is set on a split node", i)
		}
	}
	return nil
}

// checkNames requires a non-empty list of non-empty, unique names.
func checkNames(field string, names []string) error {
	if len(names) == 0 {
		return fmt.Errorf("%s is empty", field)
	}
	seen := make(map[string]int, len(names))
	for i, n := range names {
		if n == "" {
			return fmt.Errorf("%s[%d] is empty", field, i)
		}
		if j, dup := seen[n]; dup {
			return fmt.Errorf("%s[%d] = %q duplicates %s[%d]", field, i, n, field, j)
		}
		seen[n] = i
	}
	return nil
}
