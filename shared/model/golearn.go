package model

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/sjwhitworth/golearn/base"
	"github.com/sjwhitworth/golearn/trees"
)

// Names of the two extra columns in golearn grids. They start with a NUL byte
// so that no real feature name can clash with them (golearn matches
// attributes by name); checkTrainingData refuses them as feature names.
const (
	classAttrName = "\x00class"
	rowAttrName   = "\x00row"
)

// buildGrid lays the chosen rows out as golearn DenseInstances: one float
// attribute per feature, a float attribute holding each row's index into x
// (for splitRule; never split on), and a categorical class attribute whose
// values are the classes in their given order, which golearn's Predict relies
// on. Attributes are created per grid, so concurrent trees share nothing.
func buildGrid(x [][]float64, y []int, rows []int, classes, featureNames []string) (grid *base.DenseInstances, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("golearn panicked while building the training grid: %v", r)
		}
	}()
	grid = base.NewDenseInstances()
	specs := make([]base.AttributeSpec, len(featureNames))
	for j, name := range featureNames {
		specs[j] = grid.AddAttribute(base.NewFloatAttribute(name))
	}
	rowSpec := grid.AddAttribute(base.NewFloatAttribute(rowAttrName))
	classAttr := base.NewCategoricalAttribute()
	classAttr.SetName(classAttrName)
	for _, c := range classes {
		classAttr.GetSysValFromString(c)
	}
	classSpec := grid.AddAttribute(classAttr)
	if err := grid.AddClassAttribute(classAttr); err != nil {
		return nil, fmt.Errorf("golearn class attribute: %w", err)
	}
	if err := grid.Extend(len(rows)); err != nil {
		return nil, fmt.Errorf("golearn grid of %d rows: %w", len(rows), err)
	}
	buf := make([]byte, 8)
	for i, r := range rows {
		for j, v := range x[r] {
			base.PackFloatToBytesInline(v, buf)
			grid.Set(specs[j], i, buf)
		}
		base.PackFloatToBytesInline(float64(r), buf)
		grid.Set(rowSpec, i, buf)
		base.PackU64ToBytesInline(uint64(y[r]), buf)
		grid.Set(classSpec, i, buf)
	}
	return grid, nil
}

// growID3 runs golearn's tree induction. golearn panics rather than returning
// errors on inputs it does not expect; the data were checked beforehand, so a
// panic here is a bug, but it must not take the trainer down with it.
func growID3(grid base.FixedDataGrid, rule trees.RuleGenerator) (root *trees.DecisionTreeNode, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("golearn panicked while growing a tree: %v", r)
		}
	}()
	// A prune ratio > 0 would split the rows with the global math/rand;
	// depth and leaf size are limited by the rule instead.
	id3 := trees.NewID3DecisionTreeFromRule(0, rule)
	if err := id3.Fit(grid); err != nil {
		return nil, fmt.Errorf("golearn fit: %w", err)
	}
	if id3.Root == nil {
		return nil, fmt.Errorf("golearn fit returned no tree")
	}
	return id3.Root, nil
}

// splitRule is the golearn RuleGenerator behind all three algorithms; golearn
// grows the tree (decomposing rows, counting classes, making leaves) and asks
// it where to split. Returning nil makes the node a leaf.
//
// It uses golearn's criterion (information gain of a numeric threshold
// midway between adjacent values; rows > threshold go right) but computes it
// itself, because golearn's InformationGainRuleGenerator is not reproducible:
// InstancesView.MapOverRows visits rows in map order, which reorders the
// floating-point sums of the entropy, and its candidate list is built from a
// map, so ties between features that split a node the same way (common:
// mean, p75 and max often do) are broken at random from run to run. Here the
// candidates keep the feature order, the entropy is summed in class order and
// the first best candidate wins. Reading values from the trainer's columns
// through the row-index attribute also spares golearn's per-value map look-ups.
type splitRule struct {
	tr       *trainer
	index    map[string]int // feature name -> column
	features int            // features at the root; golearn drops one per split
	maxDepth int
	minSplit int
	random   int // features drawn per node; 0 = all (plain ID3)
	seed     uint64
	// err is the first failure inside GenerateSplitRule, which has no error
	// result; it turns the node into a leaf and fails the tree afterwards.
	err error

	// Scratch space, reused across the nodes of one tree (golearn grows a
	// tree sequentially).
	ids   []int
	pairs []valueClass
	left  []int
	right []int
}

type valueClass struct {
	v float64
	c int
}

func newSplitRule(tr *trainer, seed uint64) *splitRule {
	index := make(map[string]int, len(tr.featureNames))
	for j, n := range tr.featureNames {
		index[n] = j
	}
	return &splitRule{
		tr:       tr,
		index:    index,
		features: len(tr.featureNames),
		maxDepth: tr.opt.MaxDepth,
		minSplit: tr.opt.MinSplit,
		random:   tr.opt.RandomFeatures,
		seed:     seed,
		left:     make([]int, len(tr.classes)),
		right:    make([]int, len(tr.classes)),
	}
}

// GenerateSplitRule implements trees.RuleGenerator.
func (r *splitRule) GenerateSplitRule(f base.FixedDataGrid) *trees.DecisionTreeRule {
	if r.err != nil {
		return nil
	}
	var (
		rowAttr base.Attribute
		attrs   []base.Attribute // candidates, in feature order
		cols    []int            // their columns
	)
	for _, a := range f.AllAttributes() {
		if _, ok := a.(*base.FloatAttribute); !ok {
			continue // the class
		}
		if a.GetName() == rowAttrName {
			rowAttr = a
			continue
		}
		if j, ok := r.index[a.GetName()]; ok {
			attrs = append(attrs, a)
			cols = append(cols, j)
		}
	}
	_, rows := f.Size()
	depth := r.features - len(attrs)
	if rowAttr == nil || len(attrs) == 0 || rows < r.minSplit || (r.maxDepth > 0 && depth >= r.maxDepth) {
		return nil
	}
	if err := r.readRowIDs(f, rowAttr); err != nil {
		r.err = err
		return nil
	}

	if r.random == 0 || r.random >= len(attrs) {
		return r.best(attrs, cols, nil)
	}
	// The draw is seeded by the node's rows, not taken from one running
	// sequence, because golearn grows children in map order.
	rng := rand.New(rand.NewPCG(r.seed, nodeKey(r.ids, len(attrs))))
	order := rng.Perm(len(attrs))
	// If none of the drawn features can split the node (all constant in
	// it), draw the next ones instead of making a premature leaf.
	for start := 0; start < len(order); start += r.random {
		if rule := r.best(attrs, cols, order[start:min(start+r.random, len(order))]); rule != nil {
			return rule
		}
	}
	return nil
}

// readRowIDs collects the node's rows as indices into the trainer's data.
func (r *splitRule) readRowIDs(f base.FixedDataGrid, rowAttr base.Attribute) error {
	r.ids = r.ids[:0]
	spec, err := f.GetAttribute(rowAttr)
	if err != nil {
		return fmt.Errorf("row index column: %w", err)
	}
	return f.MapOverRows([]base.AttributeSpec{spec}, func(row [][]byte, _ int) (bool, error) {
		id := base.UnpackBytesToFloat(row[0])
		if id < 0 || id >= float64(len(r.tr.y)) || id != math.Trunc(id) {
			return false, fmt.Errorf("row index %v out of range [0,%d)", id, len(r.tr.y))
		}
		r.ids = append(r.ids, int(id))
		return true, nil
	})
}

// best returns the split with the lowest weighted child entropy (the highest
// information gain) among the candidates pick (indices into attrs; nil = all),
// or nil if every candidate is constant in the node.
func (r *splitRule) best(attrs []base.Attribute, cols []int, pick []int) *trees.DecisionTreeRule {
	bestScore, bestAttr, bestThreshold := math.Inf(1), -1, 0.0
	n := len(pick)
	if pick == nil {
		n = len(attrs)
	}
	for p := range n {
		a := p
		if pick != nil {
			a = pick[p]
		}
		score, threshold, ok := r.bestThreshold(cols[a])
		if ok && score < bestScore {
			bestScore, bestAttr, bestThreshold = score, a, threshold
		}
	}
	if bestAttr < 0 {
		return nil
	}
	return &trees.DecisionTreeRule{SplitAttr: attrs[bestAttr], SplitVal: bestThreshold}
}

// bestThreshold scans the node's values of one feature in order and returns
// the lowest n·H(left) + n·H(right) over thresholds between distinct values.
// Equal values are always on one side, so the result does not depend on the
// order rows were visited or sorted in.
func (r *splitRule) bestThreshold(col int) (score, threshold float64, ok bool) {
	values, y := r.tr.cols[col], r.tr.y
	r.pairs = r.pairs[:0]
	for _, id := range r.ids {
		r.pairs = append(r.pairs, valueClass{values[id], y[id]})
	}
	slices.SortFunc(r.pairs, func(a, b valueClass) int { return cmp.Compare(a.v, b.v) })
	clear(r.left)
	clear(r.right)
	for _, p := range r.pairs {
		r.right[p.c]++
	}
	n := len(r.pairs)
	score = math.Inf(1)
	for i := 0; i < n-1; i++ {
		p := r.pairs[i]
		r.left[p.c]++
		r.right[p.c]--
		lo, hi := p.v, r.pairs[i+1].v
		if lo == hi {
			continue
		}
		s := entropySum(r.left, i+1) + entropySum(r.right, n-i-1)
		if s < score {
			score, ok = s, true
			// Midway, computed without overflow; if rounding lands it on
			// hi, use lo so that hi still goes right (rows > threshold).
			threshold = lo/2 + hi/2
			if !(threshold >= lo && threshold < hi) {
				threshold = lo
			}
		}
	}
	return score, threshold, ok
}

// entropySum returns n·H(counts) in bits, summed in class order.
func entropySum(counts []int, n int) float64 {
	h := 0.0
	for _, c := range counts {
		if c > 0 {
			h -= float64(c) * math.Log2(float64(c)/float64(n))
		}
	}
	return h
}

// nodeKey identifies a node by its multiset of rows and its depth (features
// left). The sum makes it independent of row order; two nodes of one tree
// share a key only if they hold the same rows, and then merely draw the same
// features.
func nodeKey(ids []int, features int) uint64 {
	var sum uint64
	for _, id := range ids {
		sum += mix64(uint64(id))
	}
	return mix64(sum ^ mix64(uint64(features)<<32|uint64(len(ids))))
}

// mix64 is the splitmix64 finaliser, a cheap well-spread 64-bit hash.
func mix64(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// convertTree flattens a golearn tree into pre-order nodes. golearn sends a
// row to child "1" when value > SplitVal and to child "0" otherwise, even for
// a value equal to SplitVal: exactly Node's Right/Left rule. Leaves keep
// golearn's ClassDist as counts; golearn's leaf label (Class) is dropped,
// since it breaks ties between equally frequent classes in map order, and
// Predict derives the class from the counts instead. A split with a
// single child (golearn's own rule generators can produce one when the
// midpoint rounds onto the largest value) sends every row to that child in
// golearn's Predict, so it is replaced by the child.
func convertTree(root *trees.DecisionTreeNode, featureNames, classes []string) (Tree, error) {
	c := converter{
		features: make(map[string]int, len(featureNames)),
		classes:  make(map[string]int, len(classes)),
		nClasses: len(classes),
		maxDepth: len(featureNames) + 1,
	}
	for i, n := range featureNames {
		c.features[n] = i
	}
	for i, n := range classes {
		c.classes[n] = i
	}
	if _, err := c.add(root, 0); err != nil {
		return Tree{}, err
	}
	return Tree{Nodes: c.nodes}, nil
}

type converter struct {
	features map[string]int
	classes  map[string]int
	nClasses int
	maxDepth int // golearn uses a feature once per path, so a deeper tree is corrupt
	nodes    []Node
}

func (c *converter) add(n *trees.DecisionTreeNode, depth int) (int, error) {
	if n == nil {
		return 0, fmt.Errorf("golearn tree has a nil node at depth %d", depth)
	}
	if depth > c.maxDepth {
		return 0, fmt.Errorf("golearn tree is deeper than its %d features allow", c.maxDepth-1)
	}
	// golearn's Predict treats a node without children as a leaf, whatever
	// its Type says (a split that found no rule keeps RuleNode).
	if n.Children == nil {
		counts := make([]int, c.nClasses)
		for name, k := range n.ClassDist {
			i, ok := c.classes[name]
			if !ok {
				return 0, fmt.Errorf("golearn leaf at depth %d has unknown class %q", depth, name)
			}
			counts[i] = k
		}
		if err := checkCounts(counts, c.nClasses); err != nil {
			return 0, fmt.Errorf("golearn leaf at depth %d: %w", depth, err)
		}
		c.nodes = append(c.nodes, Node{Feature: leafFeature, Counts: counts})
		return len(c.nodes) - 1, nil
	}
	if n.SplitRule == nil || n.SplitRule.SplitAttr == nil {
		return 0, fmt.Errorf("golearn split at depth %d has no rule", depth)
	}
	attr, ok := n.SplitRule.SplitAttr.(*base.FloatAttribute)
	if !ok {
		return 0, fmt.Errorf("golearn split at depth %d is on non-numeric attribute %s", depth, n.SplitRule.SplitAttr)
	}
	name := attr.GetName()
	feature, ok := c.features[name]
	if !ok {
		return 0, fmt.Errorf("golearn split at depth %d is on unknown feature %q", depth, name)
	}
	if t := n.SplitRule.SplitVal; math.IsNaN(t) || math.IsInf(t, 0) {
		return 0, fmt.Errorf("golearn split on %q at depth %d has threshold %v", name, depth, t)
	}
	for key := range n.Children {
		if key != "0" && key != "1" {
			return 0, fmt.Errorf("golearn split on %q at depth %d has child %q, want \"0\" or \"1\"", name, depth, key)
		}
	}
	left, right := n.Children["0"], n.Children["1"]
	switch {
	case left == nil && right == nil:
		return 0, fmt.Errorf("golearn split on %q at depth %d has no children", name, depth)
	case left == nil:
		return c.add(right, depth+1)
	case right == nil:
		return c.add(left, depth+1)
	}
	i := len(c.nodes)
	c.nodes = append(c.nodes, Node{Feature: feature, Threshold: n.SplitRule.SplitVal})
	l, err := c.add(left, depth+1)
	if err != nil {
		return 0, err
	}
	r, err := c.add(right, depth+1)
	if err != nil {
		return 0, err
	}
	c.nodes[i].Left, c.nodes[i].Right = l, r
	return i, nil
}
