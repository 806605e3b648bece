// Package iforest is an isolation forest (Liu, Ting & Zhou, "Isolation Forest", ICDM 2008)
// that can be seeded and serialised.
//
// We do not use golearn's trees.IsolationForest because it draws from the global math/rand
// source (no seed, upstream issue #288) and keeps its trees in unexported fields, so a
// trained forest can be neither reproduced nor saved into a model bundle.
//
// Differences from the paper, all deliberate:
//   - A node picks its split attribute uniformly among the attributes that vary in its
//     subsample (the paper picks among all and would create an empty child on a constant
//     one); a node where no attribute varies is an external node.
//   - c(2) is 1, from the exact harmonic number H(1) = 1, as in the extended paper (Liu et
//     al., TKDD 2012) and scikit-learn; the approximation ln(1)+γ would give c(2) ≈ 0.15.
//   - The subsample size is capped at the number of training rows.
package iforest

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
)

// Defaults from the paper: 100 trees, sub-sampling size 256.
const (
	DefaultTrees      = 100
	DefaultSampleSize = 256
	maxTrees          = 10_000
)

// Config controls training. Zero values select the defaults.
type Config struct {
	// Trees is the number of isolation trees (default 100).
	Trees int `json:"trees"`
	// SampleSize is ψ, the rows drawn without replacement for each tree (default 256,
	// capped at the number of training rows).
	SampleSize int `json:"sample_size"`
	// Seed makes training reproducible: the same data, config and seed give the same forest.
	Seed uint64 `json:"seed"`
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
	Seed  uint64 `json:"seed"`
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
		Trees:       make([]Tree, cfg.Trees),
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
// clearly anomalous, well below 0.5 is normal. x must have Features finite values.
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
	sum := 0.0
	for i := range f.Trees {
		h, err := f.Trees[i].pathLength(x)
		if err != nil {
			return 0, fmt.Errorf("iforest: tree %d: %w", i, err)
		}
		sum += h
	}
	return math.Exp2(-(sum / float64(len(f.Trees))) / norm), nil
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
// node. Every index is checked, and children must come after their parent, so a corrupt
// tree yields an error instead of a panic or an endless loop.
func (t *Tree) pathLength(x []float64) (float64, error) {
	n := len(t.Feature)
	if len(t.Threshold) != n || len(t.Right) != n || len(t.Size) != n || n == 0 {
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
		next := i + 1
		if x[f] >= t.Threshold[i] {
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
	for ti := range f.Trees {
		if err := f.Trees[ti].validate(f.Features); err != nil {
			return fmt.Errorf("iforest: tree %d: %w", ti, err)
		}
	}
	return nil
}

func (t *Tree) validate(features int) error {
	n := len(t.Feature)
	if n == 0 || len(t.Threshold) != n || len(t.Right) != n || len(t.Size) != n {
		return fmt.Errorf("node arrays have lengths feature=%d threshold=%d right=%d size=%d, want equal and non-zero",
			n, len(t.Threshold), len(t.Right), len(t.Size))
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
