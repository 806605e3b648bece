// Package iforest is an isolation forest (Liu, Ting & Zhou, "Isolation Forest", ICDM 2008)
// that can be seeded and serialised.
//
// We do not use golearn's trees.IsolationForest because it draws from the global math/rand
// source (no seed, upstream issue #288) and keeps its trees in unexported fields, so a
// trained forest can be neither reproduced nor saved into a model bundle.
//
// Differences from the paper, all deliberate:
//   - Range-aware scoring, after SCiForest (Liu, Ting & Zhou, "On Detecting Clustered
//     Anomalies Using SCiForest", ECML PKDD 2010): every internal node keeps the range
//     [Min, Max] of its split attribute over the training rows that reached it, and a point
//     whose value lies outside that range, widened by Forest.RangeMargin times its width,
//     is isolated at that node: its path ends there with h = the node's depth. In the
//     plain forest a point far beyond the training data follows the branch of the nearest
//     extreme and scores no higher than that extreme, so the size of a deviation does not
//     count; with ranges, leaving the data earlier on the path means a shorter path.
//   - The training box, our generalisation of the same idea (and of "a constant attribute
//     that changes is isolated at the root"): the forest keeps every attribute's range
//     over all training rows (Forest.Min, Forest.Max), which is the root's range for every
//     attribute, not only for the one its split uses. A point outside that box is cut off
//     at the root of every tree, the more the farther: with e the sum over attributes of
//     how far the point lies beyond the box widened by BoxMargin, in units of each
//     attribute's width, its path length in every tree is at most c(ψ)·exp(-e). Node
//     ranges only catch an attribute where a tree happens to split on it on the point's
//     path, a few trees in a hundred with tens of attributes, so one attribute far outside
//     everything seen moves the average path little; the box counts it in every tree, and
//     several attributes somewhat outside add up. A point just outside scores like an
//     average point (h = c(ψ), s = 0.5), one far outside scores close to 1. Points inside
//     the box and inside every node range they meet get exactly the paper's h(x).
//   - Constant attributes (no tree can split on them, so the plain forest is blind to them)
//     get a width and a margin of Tolerance·max(1,|value|) in the box: rounding noise is
//     ignored, a real change of a quantity that never varied in training scores close to 1.
//   - A node picks its split attribute uniformly among the attributes that vary in its
//     subsample (the paper picks among all and would create an empty child on a constant
//     one); a node where no attribute varies is an external node.
//   - c(2) is 1, from the exact harmonic number H(1) = 1, as in the extended paper (Liu et
//     al., TKDD 2012) and scikit-learn; the approximation ln(1)+γ would give c(2) ≈ 0.15.
//   - The subsample size is capped at the number of training rows.
//
// Config.Plain turns the range rules off and scores exactly as the paper does.
package iforest

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"
)

// Defaults from the paper: 100 trees, sub-sampling size 256.
const (
	DefaultTrees      = 100
	DefaultSampleSize = 256
	maxTrees          = 10_000
)

// DefaultTolerance is the smallest box width, relative to the magnitude of the values: far
// above floating-point noise, far below any real change of a quantity.
const DefaultTolerance = 1e-6

// Config controls training. Zero values select the defaults.
type Config struct {
	// Trees is the number of isolation trees (default 100).
	Trees int `json:"trees"`
	// SampleSize is ψ, the rows drawn without replacement for each tree (default 256,
	// capped at the number of training rows).
	SampleSize int `json:"sample_size"`
	// Seed makes training reproducible: the same data, config and seed give the same forest.
	Seed uint64 `json:"seed"`
	// RangeMargin widens every node's range by this share of its width before a value
	// counts as outside it (see the package doc); 0 is SCiForest's rule, the exact range.
	RangeMargin float64 `json:"range_margin"`
	// BoxMargin widens the training box by this share of each attribute's range before a
	// value counts as outside it (see the package doc); 0 is the exact box.
	BoxMargin float64 `json:"box_margin"`
	// Tolerance is the smallest box width relative to the magnitude of an attribute's
	// values, the width constant attributes get; 0 selects DefaultTolerance.
	Tolerance float64 `json:"tolerance"`
	// Plain scores with the paper's path length only, ignoring node ranges and the
	// training box: for comparisons with other implementations of the original algorithm.
	Plain bool `json:"plain,omitempty"`
}

// Forest is a trained isolation forest. All fields are exported and JSON-tagged so that it
// can be stored as is; call Validate after decoding one from an untrusted source (Score
// never panics on a corrupt forest, but Validate reports the problem up front).
type Forest struct {
	// Features is the length of the vectors the forest was trained on and accepts.
	Features int `json:"features"`
	// SampleSize is the ψ actually used; scores are normalised by c(ψ).
	SampleSize int `json:"sample_size"`
	// HeightLimit is ceil(log2 ψ), the depth at which growing stops.
	HeightLimit int `json:"height_limit"`
	// Seed is the seed the forest was trained with, kept for provenance.
	Seed uint64 `json:"seed"`
	// RangeMargin is Config.RangeMargin: how far outside a node's range, as a share of its
	// width, a value must lie to end the path at that node.
	RangeMargin float64 `json:"range_margin"`
	// BoxMargin and Tolerance are Config.BoxMargin and the effective Config.Tolerance.
	BoxMargin float64 `json:"box_margin"`
	Tolerance float64 `json:"tolerance"`
	// Min and Max are every attribute's range over all training rows: the training box.
	Min []float64 `json:"min"`
	Max []float64 `json:"max"`
	// Plain is Config.Plain: score as the paper does, without ranges and the box.
	Plain bool   `json:"plain,omitempty"`
	Trees []Tree `json:"trees"`
}

// Tree is one isolation tree as flat, parallel node arrays in pre-order: the root is node
// 0, an internal node's left child immediately follows it and Right holds the index of its
// right child. Parallel arrays keep the JSON small (no per-node keys).
type Tree struct {
	// Feature is the split attribute of internal nodes and -1 for external nodes.
	Feature []int32 `json:"feature"`
	// Threshold: x goes left when x[Feature] < Threshold. Unused (0) for external nodes.
	Threshold []float64 `json:"threshold"`
	// Right is the index of the right child of internal nodes, 0 for external nodes.
	Right []int32 `json:"right"`
	// Size is the number of training rows that ended in an external node, 0 for internal
	// nodes; it adds c(Size) to the path length for the subtree that was not grown.
	Size []int32 `json:"size"`
	// Min and Max are the range of the split attribute over the training rows that reached
	// an internal node (Min < Threshold <= Max); 0 for external nodes.
	Min []float64 `json:"min"`
	Max []float64 `json:"max"`
}

// Train grows cfg.Trees isolation trees on the rows of x. Rows must all have the same
// length and only finite values; at least two rows are needed for c(ψ) to be defined.
func Train(x [][]float64, cfg Config) (*Forest, error) {
	// The upper bound only catches typos (a forest's quality stops improving long before)
	// that would otherwise end in an out-of-memory kill instead of an error.
	if cfg.Trees < 0 || cfg.Trees > maxTrees {
		return nil, fmt.Errorf("iforest: config: Trees %d: must be in [0,%d] (0 selects %d)", cfg.Trees, maxTrees, DefaultTrees)
	}
	if cfg.SampleSize < 0 {
		return nil, fmt.Errorf("iforest: config: SampleSize %d: must be >= 0 (0 selects %d)", cfg.SampleSize, DefaultSampleSize)
	}
	if !(cfg.RangeMargin >= 0) || math.IsInf(cfg.RangeMargin, 0) {
		return nil, fmt.Errorf("iforest: config: RangeMargin %v: must be a finite number >= 0", cfg.RangeMargin)
	}
	if !(cfg.BoxMargin >= 0) || math.IsInf(cfg.BoxMargin, 0) {
		return nil, fmt.Errorf("iforest: config: BoxMargin %v: must be a finite number >= 0", cfg.BoxMargin)
	}
	if !(cfg.Tolerance >= 0) || math.IsInf(cfg.Tolerance, 0) {
		return nil, fmt.Errorf("iforest: config: Tolerance %v: must be a finite number >= 0 (0 selects %g)", cfg.Tolerance, DefaultTolerance)
	}
	if cfg.Tolerance == 0 {
		cfg.Tolerance = DefaultTolerance
	}
	if cfg.Trees == 0 {
		cfg.Trees = DefaultTrees
	}
	if cfg.SampleSize == 0 {
		cfg.SampleSize = DefaultSampleSize
	}
	if len(x) < 2 {
		return nil, fmt.Errorf("iforest: training data has %d rows, need at least 2", len(x))
	}
	d := len(x[0])
	if d == 0 {
		return nil, errors.New("iforest: training row 0 has no columns")
	}
	if d > math.MaxInt32 {
		return nil, fmt.Errorf("iforest: training rows have %d columns, at most %d supported", d, math.MaxInt32)
	}
	for i, row := range x {
		if len(row) != d {
			return nil, fmt.Errorf("iforest: training row %d has %d columns, row 0 has %d", i, len(row), d)
		}
		for j, v := range row {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("iforest: training row %d column %d: value %v is not finite", i, j, v)
			}
		}
	}

	psi := min(cfg.SampleSize, len(x))
	f := &Forest{
		Features:    d,
		SampleSize:  psi,
		HeightLimit: bits.Len(uint(psi - 1)), // ceil(log2 psi) for psi >= 2
		Seed:        cfg.Seed,
		RangeMargin: cfg.RangeMargin,
		BoxMargin:   cfg.BoxMargin,
		Tolerance:   cfg.Tolerance,
		Min:         slices.Clone(x[0]),
		Max:         slices.Clone(x[0]),
		Plain:       cfg.Plain,
		Trees:       make([]Tree, cfg.Trees),
	}
	for _, row := range x[1:] {
		for j, v := range row {
			f.Min[j], f.Max[j] = min(f.Min[j], v), max(f.Max[j], v)
		}
	}
	b := builder{
		x:     x,
		rows:  make([]int, len(x)),
		cands: make([]int32, d),
	}
	for t := range f.Trees {
		// One stream per tree, so a tree depends only on (Seed, its index): reordering or
		// parallelising tree construction later cannot change the forest.
		b.rng = rand.New(rand.NewPCG(cfg.Seed, uint64(t)))
		f.Trees[t] = b.tree(psi, f.HeightLimit)
	}
	return f, nil
}

// builder holds the scratch state for growing trees; it is reused across trees.
type builder struct {
	x     [][]float64
	rng   *rand.Rand
	rows  []int   // permutation of row indices; a tree's subsample is a prefix of it
	cands []int32 // permutation of feature indices used for split-attribute sampling
	out   Tree    // the tree being grown
}

func (b *builder) tree(psi, heightLimit int) Tree {
	for i := range b.rows {
		b.rows[i] = i
	}
	// Partial Fisher–Yates: the first psi entries become a uniform sample without replacement.
	for i := range psi {
		j := i + b.rng.IntN(len(b.rows)-i)
		b.rows[i], b.rows[j] = b.rows[j], b.rows[i]
	}
	for i := range b.cands {
		b.cands[i] = int32(i)
	}
	// A full tree on psi rows has at most 2*psi-1 nodes.
	b.out = Tree{
		Feature:   make([]int32, 0, 2*psi-1),
		Threshold: make([]float64, 0, 2*psi-1),
		Right:     make([]int32, 0, 2*psi-1),
		Size:      make([]int32, 0, 2*psi-1),
		Min:       make([]float64, 0, 2*psi-1),
		Max:       make([]float64, 0, 2*psi-1),
	}
	b.grow(b.rows[:psi], 0, heightLimit)
	t := b.out
	b.out = Tree{}
	return t
}

// grow appends the subtree for rows (partitioning rows in place) and returns its index.
func (b *builder) grow(rows []int, depth, heightLimit int) int32 {
	t := &b.out
	node := int32(len(t.Feature))
	if depth >= heightLimit || len(rows) <= 1 {
		t.leaf(len(rows))
		return node
	}
	feature, lo, hi, ok := b.pickFeature(rows)
	if !ok {
		t.leaf(len(rows))
		return node
	}
	// Threshold uniform in (lo, hi], so x < threshold sends lo left and hi right and both
	// children are non-empty. Rounding can land on lo when hi-lo is tiny; hi is then the
	// only threshold that still separates.
	threshold := hi - b.rng.Float64()*(hi-lo)
	if threshold <= lo {
		threshold = hi
	}
	t.Feature = append(t.Feature, feature)
	t.Threshold = append(t.Threshold, threshold)
	t.Right = append(t.Right, 0)
	t.Size = append(t.Size, 0)
	t.Min = append(t.Min, lo)
	t.Max = append(t.Max, hi)

	// Partition rows: values below threshold first.
	split := 0
	for i, r := range rows {
		if b.x[r][feature] < threshold {
			rows[i], rows[split] = rows[split], rows[i]
			split++
		}
	}
	b.grow(rows[:split], depth+1, heightLimit)
	right := b.grow(rows[split:], depth+1, heightLimit)
	t.Right[node] = right
	return node
}

func (t *Tree) leaf(size int) {
	t.Feature = append(t.Feature, -1)
	t.Threshold = append(t.Threshold, 0)
	t.Right = append(t.Right, 0)
	t.Size = append(t.Size, int32(size))
	t.Min = append(t.Min, 0)
	t.Max = append(t.Max, 0)
}

// pickFeature draws a split attribute uniformly among those that vary over rows, by
// drawing from all candidates and discarding constant ones (rejection without
// replacement); it returns the attribute's range. Most draws succeed at once, so this
// costs one pass over rows instead of scanning every attribute.
func (b *builder) pickFeature(rows []int) (feature int32, lo, hi float64, ok bool) {
	for k := len(b.cands); k > 0; k-- {
		j := b.rng.IntN(k)
		f := b.cands[j]
		lo, hi = b.x[rows[0]][f], b.x[rows[0]][f]
		for _, r := range rows[1:] {
			v := b.x[r][f]
			lo, hi = min(lo, v), max(hi, v)
		}
		if lo < hi {
			return f, lo, hi, true
		}
		// Move the constant attribute out of the candidate range [0,k). The array stays a
		// permutation of all attributes, which is all later draws need.
		b.cands[j], b.cands[k-1] = b.cands[k-1], b.cands[j]
	}
	return 0, 0, 0, false
}

// eulerGamma is the Euler–Mascheroni constant in the harmonic-number approximation.
const eulerGamma = 0.5772156649

// c is the average path length of an unsuccessful search in a binary search tree of n
// nodes, c(n) = 2H(n-1) - 2(n-1)/n with H(i) ≈ ln(i) + γ; it normalises path lengths.
func c(n int) float64 {
	switch {
	case n <= 1:
		return 0
	case n == 2:
		return 1
	}
	m := float64(n - 1)
	return 2*(math.Log(m)+eulerGamma) - 2*m/float64(n)
}

// Score returns the anomaly score s = 2^(-E[h(x)]/c(ψ)) of x, in (0, 1]: close to 1 is
// clearly anomalous, well below 0.5 is normal. x must have Features finite values. h(x) is
// range-aware (see the package doc): it is the paper's path length for a point inside the
// training box and the node ranges it meets, and shorter for one outside them. Score does
// not allocate.
func (f *Forest) Score(x []float64) (float64, error) {
	if f == nil || len(f.Trees) == 0 {
		return 0, errors.New("iforest: forest has no trees")
	}
	if len(x) != f.Features {
		return 0, fmt.Errorf("iforest: score: vector has %d values, forest expects %d", len(x), f.Features)
	}
	for j, v := range x {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return 0, fmt.Errorf("iforest: score: column %d: value %v is not finite", j, v)
		}
	}
	norm := c(f.SampleSize)
	if norm <= 0 {
		return 0, fmt.Errorf("iforest: sample_size %d: must be >= 2", f.SampleSize)
	}
	// An infinite margin makes every range contain every value: the paper's path length.
	margin, limit := f.RangeMargin, math.Inf(1)
	if f.Plain {
		margin = math.Inf(1)
	} else {
		if len(f.Min) != len(x) || len(f.Max) != len(x) {
			return 0, fmt.Errorf("iforest: box has %d/%d bounds, forest expects %d", len(f.Min), len(f.Max), len(x))
		}
		if e := f.excess(x); e > 0 {
			limit = norm * math.Exp(-e)
		}
	}
	sum := 0.0
	for i := range f.Trees {
		h, err := f.Trees[i].pathLength(x, margin)
		if err != nil {
			return 0, fmt.Errorf("iforest: tree %d: %w", i, err)
		}
		sum += min(h, limit)
	}
	return math.Exp2(-(sum / float64(len(f.Trees))) / norm), nil
}

// excess returns how far x lies outside the widened training box: the sum over attributes of
// the distance beyond it in units of the attribute's width; 0 inside the box. A sum, not the
// largest term: faults move several attributes at once, while a normal window that is new
// in one attribute (a pod busier than any seen) is outside in that one only.
func (f *Forest) excess(x []float64) float64 {
	e := 0.0
	for j, v := range x {
		lo, hi := f.Min[j], f.Max[j]
		// The tolerance is both the smallest width and the smallest margin, so that a
		// constant's value plus rounding noise is still inside the box.
		tol := f.Tolerance * max(1, math.Abs(lo), math.Abs(hi))
		w := max(hi-lo, tol)
		m := max(f.BoxMargin*w, tol)
		// NaN bounds (a corrupt forest) compare false: nothing is outside them.
		switch {
		case v > hi+m:
			e += (v - hi - m) / w
		case v < lo-m:
			e += (lo - m - v) / w
		}
	}
	return e
}

// ScoreBatch scores every row of x; an error names the first bad row.
func (f *Forest) ScoreBatch(x [][]float64) ([]float64, error) {
	out := make([]float64, len(x))
	for i, row := range x {
		s, err := f.Score(row)
		if err != nil {
			return nil, fmt.Errorf("row %d: %w", i, err)
		}
		out[i] = s
	}
	return out, nil
}

// pathLength is h(x): the edges from the root to x's external node plus c(size) of that
// node, or the depth of the first internal node whose widened range x falls outside of.
// Every index is checked, and children must come after their parent, so a corrupt tree
// yields an error instead of a panic or an endless loop.
func (t *Tree) pathLength(x []float64, margin float64) (float64, error) {
	n := len(t.Feature)
	if len(t.Threshold) != n || len(t.Right) != n || len(t.Size) != n || len(t.Min) != n || len(t.Max) != n || n == 0 {
		return 0, errors.New("node arrays are empty or differ in length")
	}
	i, depth := 0, 0
	for {
		f := int(t.Feature[i])
		if f < 0 {
			return float64(depth) + c(int(t.Size[i])), nil
		}
		if f >= len(x) {
			return 0, fmt.Errorf("node %d: feature %d out of range", i, f)
		}
		// Written so that a NaN bound (a corrupt forest) never isolates anything.
		v, lo, hi := x[f], t.Min[i], t.Max[i]
		if w := margin * (hi - lo); v < lo-w || v > hi+w {
			return float64(depth), nil
		}
		next := i + 1
		if v >= t.Threshold[i] {
			next = int(t.Right[i])
		}
		if next <= i || next >= n {
			return 0, fmt.Errorf("node %d: child %d out of range", i, next)
		}
		i = next
		depth++
	}
}

// Validate checks the structure of a forest, typically one decoded from a model bundle:
// consistent array lengths, features and children in range, every node reachable exactly
// once, and external nodes with a non-negative size.
func (f *Forest) Validate() error {
	if f == nil {
		return errors.New("iforest: nil forest")
	}
	if f.Features <= 0 {
		return fmt.Errorf("iforest: features %d: must be positive", f.Features)
	}
	if f.SampleSize < 2 {
		return fmt.Errorf("iforest: sample_size %d: must be >= 2", f.SampleSize)
	}
	if len(f.Trees) == 0 {
		return errors.New("iforest: forest has no trees")
	}
	if !(f.RangeMargin >= 0) || math.IsInf(f.RangeMargin, 0) {
		return fmt.Errorf("iforest: range_margin %v: must be a finite number >= 0", f.RangeMargin)
	}
	if !(f.BoxMargin >= 0) || math.IsInf(f.BoxMargin, 0) {
		return fmt.Errorf("iforest: box_margin %v: must be a finite number >= 0", f.BoxMargin)
	}
	if !(f.Tolerance > 0) || math.IsInf(f.Tolerance, 0) {
		return fmt.Errorf("iforest: tolerance %v: must be a finite number > 0", f.Tolerance)
	}
	if len(f.Min) != f.Features || len(f.Max) != f.Features {
		return fmt.Errorf("iforest: box has %d min and %d max values, want %d each", len(f.Min), len(f.Max), f.Features)
	}
	for j := range f.Features {
		if !(f.Min[j] <= f.Max[j]) || math.IsInf(f.Min[j], 0) || math.IsInf(f.Max[j], 0) {
			return fmt.Errorf("iforest: box of feature %d is [%v, %v]: want finite min <= max", j, f.Min[j], f.Max[j])
		}
	}
	for ti := range f.Trees {
		if err := f.Trees[ti].validate(f.Features); err != nil {
			return fmt.Errorf("iforest: tree %d: %w", ti, err)
		}
	}
	return nil
}

func (t *Tree) validate(features int) error {
	n := len(t.Feature)
	if n == 0 || len(t.Threshold) != n || len(t.Right) != n || len(t.Size) != n || len(t.Min) != n || len(t.Max) != n {
		return fmt.Errorf("node arrays have lengths feature=%d threshold=%d right=%d size=%d min=%d max=%d, want equal and non-zero",
			n, len(t.Threshold), len(t.Right), len(t.Size), len(t.Min), len(t.Max))
	}
	// Walking the pre-order layout must visit node i exactly at step i.
	next := 0
	var walk func(i int) error
	walk = func(i int) error {
		if i != next || i >= n {
			return fmt.Errorf("node %d: not in pre-order position %d of %d", i, next, n)
		}
		next++
		f := int(t.Feature[i])
		switch {
		case f == -1:
			if t.Size[i] < 0 {
				return fmt.Errorf("node %d: size %d: must be >= 0", i, t.Size[i])
			}
			return nil
		case f < -1 || f >= features:
			return fmt.Errorf("node %d: feature %d out of range [0,%d)", i, f, features)
		case math.IsNaN(t.Threshold[i]):
			return fmt.Errorf("node %d: threshold is NaN", i)
		case !(t.Min[i] <= t.Max[i]) || math.IsInf(t.Min[i], 0) || math.IsInf(t.Max[i], 0):
			return fmt.Errorf("node %d: range [%v, %v]: want finite min <= max", i, t.Min[i], t.Max[i])
		}
		if err := walk(i + 1); err != nil {
			return err
		}
		return walk(int(t.Right[i]))
	}
	if err := walk(0); err != nil {
		return err
	}
	if next != n {
		return fmt.Errorf("%d of %d nodes unreachable", n-next, n)
	}
	return nil
}
