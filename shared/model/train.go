package model

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"

	"github.com/sjwhitworth/golearn/trees"
)

// Algorithms accepted in TrainOptions.Algorithm.
const (
	// AlgorithmID3 grows one ID3 tree on all rows. Fast and readable, but a
	// single tree's leaves are almost always pure, so its probabilities are
	// 0 or 1 and useless for an `unknown` decision.
	AlgorithmID3 = "id3"
	// AlgorithmBaggedID3 grows ID3 trees on bootstrap samples and considers
	// every feature at every node.
	AlgorithmBaggedID3 = "bagged-id3"
	// AlgorithmRandomTrees grows trees on bootstrap samples that consider
	// only RandomFeatures randomly chosen features at each node (golearn's
	// RandomTree idea, seeded by us); a random forest, in effect.
	AlgorithmRandomTrees = "random-trees"
)

// Defaults used for zero fields of TrainOptions.
const (
	DefaultAlgorithm = AlgorithmRandomTrees
	DefaultTrees     = 50
	DefaultMinSplit  = 2
	// maxTrees bounds the ensemble so that a typo cannot allocate the
	// machine away; 10,000 trees is far beyond any useful size.
	maxTrees = 10000
)

// TrainOptions select and tune the tree ensemble. Zero values take the
// defaults above; the Classifier records the options actually used.
type TrainOptions struct {
	Algorithm string `json:"algorithm"`
	// Trees is the ensemble size; AlgorithmID3 always grows exactly one.
	Trees int `json:"trees"`
	// Seed fixes the bootstrap samples and the features random trees
	// consider: the same data, options and seed give the same classifier.
	Seed uint64 `json:"seed"`
	// MaxDepth turns nodes at this depth into leaves; 0 means unlimited.
	// golearn's ID3 uses each feature at most once on a path, so depth never
	// exceeds the number of features anyway.
	MaxDepth int `json:"max_depth,omitempty"`
	// MinSplit turns nodes with fewer (bootstrap) rows into leaves; larger
	// values give smoother leaf distributions. Default 2, i.e. grow until pure.
	MinSplit int `json:"min_split,omitempty"`
	// RandomFeatures is how many features a random tree draws per node;
	// only for AlgorithmRandomTrees. The default is the square root of the
	// number of features (12 of 137), the usual random-forest choice; on our
	// synthetic data it beat golearn's customary 2 clearly (see the package
	// tests' TestMeasureAlgorithms). If none of them can split the node, it
	// draws the next batch (as scikit-learn does) rather than giving up, so
	// features that are constant in a node do not stop a tree early.
	RandomFeatures int `json:"random_features,omitempty"`
	// Workers is how many trees grow at the same time; default GOMAXPROCS.
	// It never changes the result, so it is not stored with the model.
	Workers int `json:"-"`
}

// withDefaults fills zero fields and checks the rest against the data shape.
func (o TrainOptions) withDefaults(features int) (TrainOptions, error) {
	if o.Algorithm == "" {
		o.Algorithm = DefaultAlgorithm
	}
	switch o.Algorithm {
	case AlgorithmID3, AlgorithmBaggedID3, AlgorithmRandomTrees:
	default:
		return o, fmt.Errorf("options: algorithm %q is unknown, want %q, %q or %q",
			o.Algorithm, AlgorithmID3, AlgorithmBaggedID3, AlgorithmRandomTrees)
	}
	switch {
	case o.Trees < 0 || o.Trees > maxTrees:
		return o, fmt.Errorf("options: trees = %d, want [0,%d]", o.Trees, maxTrees)
	case o.Algorithm == AlgorithmID3 && o.Trees > 1:
		return o, fmt.Errorf("options: trees = %d, but algorithm %q grows one tree", o.Trees, o.Algorithm)
	case o.Algorithm == AlgorithmID3:
		o.Trees = 1
	case o.Trees == 0:
		o.Trees = DefaultTrees
	}
	if o.MaxDepth < 0 {
		return o, fmt.Errorf("options: max_depth = %d, want >= 0 (0 = unlimited)", o.MaxDepth)
	}
	if o.MinSplit < 0 {
		return o, fmt.Errorf("options: min_split = %d, want >= 0", o.MinSplit)
	}
	if o.MinSplit < DefaultMinSplit {
		o.MinSplit = DefaultMinSplit
	}
	if o.Algorithm == AlgorithmRandomTrees {
		if o.RandomFeatures == 0 {
			o.RandomFeatures = max(1, int(math.Round(math.Sqrt(float64(features)))))
		}
		if o.RandomFeatures < 0 || o.RandomFeatures > features {
			return o, fmt.Errorf("options: random_features = %d, want [1,%d]", o.RandomFeatures, features)
		}
	} else if o.RandomFeatures != 0 {
		return o, fmt.Errorf("options: random_features = %d, but only algorithm %q uses it", o.RandomFeatures, AlgorithmRandomTrees)
	}
	if o.Workers < 0 {
		return o, fmt.Errorf("options: workers = %d, want >= 0", o.Workers)
	}
	if o.Workers == 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	return o, nil
}

// Streams of the PCG generator, so that the tree seeds and the bootstrap
// samples come from different sequences (per-node feature draws use the
// node's key as their stream).
const (
	streamTreeSeeds = 0x7472656573656564 // "treeseed"
	streamBootstrap = 0x626f6f7473747270 // "bootstrp"
)

// TrainClassifier trains a tree ensemble that maps a feature vector x[i] to
// the class index y[i]. classes and featureNames fix the meaning of indices
// and vector positions; every class needs at least one row. ctx is checked
// between trees (golearn cannot stop inside one).
//
// Trees are grown by golearn's ID3 induction (trees.InferID3Tree on
// DenseInstances) and converted to the portable Tree form. The split rule is
// ours, see splitRule: golearn's own rule generators are not reproducible.
// Everything random is drawn from sources seeded by opt.Seed, so the same
// data, options and seed give the same classifier, whatever opt.Workers is.
// golearn's RandomTree and BaggedModel are not used: they draw from the
// global math/rand, and RandomTree loops forever when asked for more features
// than a node has left.
func TrainClassifier(ctx context.Context, x [][]float64, y []int, classes, featureNames []string, opt TrainOptions) (*Classifier, error) {
	if err := checkTrainingData(x, y, classes, featureNames); err != nil {
		return nil, fmt.Errorf("model: train: %w", err)
	}
	opt, err := opt.withDefaults(len(featureNames))
	if err != nil {
		return nil, fmt.Errorf("model: train: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("model: train %s: %w", opt.Algorithm, err)
	}
	// Seeds are drawn up front so that the result does not depend on which
	// worker picks which tree.
	seeds := make([]uint64, opt.Trees)
	src := rand.New(rand.NewPCG(opt.Seed, streamTreeSeeds))
	for i := range seeds {
		seeds[i] = src.Uint64()
	}
	tr := newTrainer(x, y, classes, featureNames, opt)
	out := make([]Tree, opt.Trees)
	if err := tr.run(ctx, seeds, out); err != nil {
		return nil, fmt.Errorf("model: train %s: %w", opt.Algorithm, err)
	}
	opt.Workers = 0 // does not shape the model; keeps classifiers from equal runs equal
	return &Classifier{
		Algorithm:    opt.Algorithm,
		Options:      opt,
		FeatureNames: append([]string(nil), featureNames...),
		Classes:      append([]string(nil), classes...),
		Trees:        out,
	}, nil
}

func checkTrainingData(x [][]float64, y []int, classes, featureNames []string) error {
	if err := checkNames("featureNames", featureNames); err != nil {
		return err
	}
	for i, n := range featureNames {
		if n == rowAttrName || n == classAttrName {
			return fmt.Errorf("featureNames[%d] = %q is reserved", i, n)
		}
	}
	if err := checkNames("classes", classes); err != nil {
		return err
	}
	if len(x) == 0 {
		return fmt.Errorf("x is empty")
	}
	if len(y) != len(x) {
		return fmt.Errorf("len(y) = %d, want len(x) = %d", len(y), len(x))
	}
	perClass := make([]int, len(classes))
	for i, row := range x {
		if len(row) != len(featureNames) {
			return fmt.Errorf("x[%d] has %d values, want %d (len(featureNames))", i, len(row), len(featureNames))
		}
		for j, v := range row {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("x[%d][%d] (feature %q) is %v", i, j, featureNames[j], v)
			}
		}
		if y[i] < 0 || y[i] >= len(classes) {
			return fmt.Errorf("y[%d] = %d, want [0,%d)", i, y[i], len(classes))
		}
		perClass[y[i]]++
	}
	for k, n := range perClass {
		if n == 0 {
			return fmt.Errorf("class %q (index %d) has no rows", classes[k], k)
		}
	}
	return nil
}

// trainer holds the checked training data, shared read-only by all trees.
type trainer struct {
	x            [][]float64
	cols         [][]float64 // cols[j][i] = x[i][j]: the split search reads one feature at a time
	y            []int
	classes      []string
	featureNames []string
	opt          TrainOptions
}

func newTrainer(x [][]float64, y []int, classes, featureNames []string, opt TrainOptions) *trainer {
	cols := make([][]float64, len(featureNames))
	for j := range cols {
		cols[j] = make([]float64, len(x))
		for i, row := range x {
			cols[j][i] = row[j]
		}
	}
	return &trainer{x: x, cols: cols, y: y, classes: classes, featureNames: featureNames, opt: opt}
}

// run grows len(seeds) trees on opt.Workers goroutines, stopping at the first
// error or when ctx is done.
func (tr *trainer) run(ctx context.Context, seeds []uint64, out []Tree) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	jobs := make(chan int)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for range min(tr.opt.Workers, len(seeds)) {
		wg.Go(func() {
			for i := range jobs {
				if ctx.Err() != nil {
					continue // drain: a tree started now would be thrown away
				}
				t, err := tr.fitTree(seeds[i])
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("tree %d: %w", i, err)
						cancel(firstErr)
					}
					mu.Unlock()
					continue
				}
				out[i] = t
			}
		})
	}
	started := 0
feed:
	for i := range seeds {
		select {
		case jobs <- i:
			started++
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if err := ctx.Err(); err != nil {
		// Some trees may be missing even if all were started, as workers
		// skip queued trees once ctx is done.
		return fmt.Errorf("stopped after starting %d of %d trees: %w", started, len(seeds), context.Cause(ctx))
	}
	return nil
}

// fitTree grows one tree and converts it.
func (tr *trainer) fitTree(seed uint64) (Tree, error) {
	root, err := tr.growTree(seed)
	if err != nil {
		return Tree{}, err
	}
	return convertTree(root, tr.featureNames, tr.classes)
}

// growTree grows one golearn tree on the rows the seed picks.
func (tr *trainer) growTree(seed uint64) (*trees.DecisionTreeNode, error) {
	rows := make([]int, len(tr.x))
	if tr.opt.Algorithm == AlgorithmID3 {
		for i := range rows {
			rows[i] = i
		}
	} else {
		// Bootstrap: as many rows (windows) as there are, drawn with replacement.
		rng := rand.New(rand.NewPCG(seed, streamBootstrap))
		for i := range rows {
			rows[i] = rng.IntN(len(tr.x))
		}
	}
	grid, err := buildGrid(tr.x, tr.y, rows, tr.classes, tr.featureNames)
	if err != nil {
		return nil, err
	}
	rule := newSplitRule(tr, seed)
	root, err := growID3(grid, rule)
	if err != nil {
		return nil, err
	}
	if rule.err != nil {
		return nil, rule.err
	}
	return root, nil
}
