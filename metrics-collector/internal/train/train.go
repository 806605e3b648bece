// Package train fits the pod-type classifier and the per-type isolation forests on a dataset
// and measures both on pods they never saw: each validation iteration splits the pods (not the
// windows) into a training and a validation group, so windows of one pod are never on both
// sides. The bundle finally published is trained on all normal windows of all pods.
package train

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/podtype/podtype/metrics-collector/internal/dataset"
	"github.com/podtype/podtype/shared/evaluate"
	"github.com/podtype/podtype/shared/features"
	"github.com/podtype/podtype/shared/iforest"
	"github.com/podtype/podtype/shared/model"
)

// Options configure one training run.
type Options struct {
	// Classes are the configured pod types; types without data are left out of the model and
	// reported in Validation.MissingClasses.
	Classes []string
	// Ratio is the share of each type's pods used for training in a validation iteration.
	Ratio float64
	// Iterations is the number of random pod splits whose confusion matrices are summed.
	Iterations int
	// MaxNumber caps the learning curve at this many training pods per type; 0 = all of them.
	MaxNumber int
	// Seed drives every random choice.
	Seed uint64
	// Classifier configures the tree ensemble (its Seed is set per fit from Seed).
	Classifier model.TrainOptions
	// Forest configures the isolation forests (its Seed is set per fit from Seed).
	Forest iforest.Config
	// ThresholdQuantile places a type's anomaly threshold at this quantile of its normal
	// windows' calibration scores, so about 1-q of new pods' normal windows are flagged.
	ThresholdQuantile float64
	// CalibrationFolds is how many pod groups the threshold calibration rotates through; 0
	// means DefaultCalibrationFolds.
	CalibrationFolds int
	// Now stamps the bundle's creation time; nil is time.Now.
	Now func() time.Time
}

// DefaultCalibrationFolds balances calibration cost (one extra forest per fold) and how much
// data each calibration forest sees.
const DefaultCalibrationFolds = 5

func (o Options) validate() error {
	switch {
	case len(o.Classes) < 2:
		return fmt.Errorf("train: %d classes: need at least 2", len(o.Classes))
	case !(o.Ratio > 0 && o.Ratio < 1):
		return fmt.Errorf("train: ratio %v: want 0 < ratio < 1", o.Ratio)
	case o.Iterations < 1:
		return fmt.Errorf("train: iterations %d: want >= 1", o.Iterations)
	case o.MaxNumber < 0:
		return fmt.Errorf("train: max number %d: want >= 0", o.MaxNumber)
	case !(o.ThresholdQuantile > 0 && o.ThresholdQuantile < 1):
		return fmt.Errorf("train: threshold quantile %v: want 0 < q < 1", o.ThresholdQuantile)
	case o.CalibrationFolds < 0 || o.CalibrationFolds == 1:
		return fmt.Errorf("train: calibration folds %d: want 0 (default) or >= 2", o.CalibrationFolds)
	}
	return nil
}

// Result is a trained bundle and the evidence for it.
type Result struct {
	Bundle     *model.Bundle
	Validation *Validation
	Duration   time.Duration
}

// Validation is what held-out pods said about the models, summed over all iterations.
type Validation struct {
	// Classes are the classes the model knows, in class-index order.
	Classes []string
	// MissingClasses are configured classes without any usable window.
	MissingClasses []string
	Iterations     int
	// Confusion[actual][predicted] counts validation windows.
	Confusion [][]int
	// Curve holds one point per number of training pods per type.
	Curve []CurvePoint
	// Anomaly holds one entry per class, in class order.
	Anomaly []AnomalyCounts
	// PodsPerType counts pods with normal windows; TrainPodsPerType the training share of one split.
	PodsPerType      map[string]int
	TrainPodsPerType map[string]int
}

// CurvePoint is the validation result of classifiers trained on PodsPerType pods of each type
// (fewer for types that have fewer training pods).
type CurvePoint struct {
	PodsPerType int
	Confusion   [][]int
}

// AnomalyCounts are a type's isolation-forest results on validation pods.
type AnomalyCounts struct {
	Type string
	// Threshold is the published (final) forest's threshold.
	Threshold float64
	// NormalWindows of validation pods and how many were flagged (false positives).
	NormalWindows, NormalFlagged int
	// FaultWindows of validation pods and how many were flagged (true positives).
	FaultWindows, FaultFlagged int
	// FaultsByKind counts fault windows and flagged ones per fault name.
	FaultsByKind map[string][2]int
}

// Run validates on held-out pods, then trains the bundle on everything. Progress (iteration
// k/N) goes to logger; nil discards it.
func Run(ctx context.Context, ds *dataset.Dataset, opt Options, logger *slog.Logger) (*Result, error) {
	started := time.Now()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := opt.validate(); err != nil {
		return nil, err
	}
	t, missing := newTrainer(ds, opt, logger)
	if len(t.classes) < 2 {
		return nil, fmt.Errorf("train: only %d of the classes %v have usable windows; need at least 2", len(t.classes), opt.Classes)
	}
	if len(missing) > 0 {
		logger.WarnContext(ctx, "classes without data are left out of the model", "classes", missing)
	}
	val, err := t.validate(ctx)
	if err != nil {
		return nil, err
	}
	val.MissingClasses = missing

	logger.InfoContext(ctx, "training final model on all pods", "windows", len(ds.Normal))
	now := time.Now
	if opt.Now != nil {
		now = opt.Now
	}
	bundle, err := t.final(ctx, val, now())
	if err != nil {
		return nil, err
	}
	return &Result{Bundle: bundle, Validation: val, Duration: time.Since(started)}, nil
}

// index groups window positions by pod and pods by type.
type index struct {
	normal map[types.NamespacedName][]int // positions in ds.Normal
	faults map[types.NamespacedName][]int // positions in ds.Faults
	byType map[string][]types.NamespacedName
}

func newIndex(ds *dataset.Dataset) *index {
	idx := &index{
		normal: map[types.NamespacedName][]int{},
		faults: map[types.NamespacedName][]int{},
		byType: ds.PodsByType(),
	}
	for i, w := range ds.Normal {
		idx.normal[w.Pod] = append(idx.normal[w.Pod], i)
	}
	for i, w := range ds.Faults {
		idx.faults[w.Pod] = append(idx.faults[w.Pod], i)
	}
	return idx
}

// classes returns the configured classes that have data, in configured order, and those without.
func (idx *index) classes(configured []string) (have, missing []string) {
	for _, c := range configured {
		if len(idx.byType[c]) > 0 {
			have = append(have, c)
		} else {
			missing = append(missing, c)
		}
	}
	return have, missing
}

type trainer struct {
	ds      *dataset.Dataset
	idx     *index
	opt     Options
	classes []string
	logger  *slog.Logger
}

// newTrainer indexes ds and fills in opt's defaults; missing are the configured classes
// without usable windows, which the trainer leaves out.
func newTrainer(ds *dataset.Dataset, opt Options, logger *slog.Logger) (t *trainer, missing []string) {
	if opt.CalibrationFolds == 0 {
		opt.CalibrationFolds = DefaultCalibrationFolds
	}
	idx := newIndex(ds)
	classes, missing := idx.classes(opt.Classes)
	return &trainer{ds: ds, idx: idx, opt: opt, classes: classes, logger: logger}, missing
}

// rows returns the normal feature vectors and class indices of pods.
func (t *trainer) rows(pods map[string][]types.NamespacedName, perType int) (x [][]float64, y []int) {
	for k, c := range t.classes {
		list := pods[c]
		if perType > 0 {
			list = list[:min(perType, len(list))]
		}
		for _, p := range list {
			for _, i := range t.idx.normal[p] {
				x = append(x, t.ds.Normal[i].Features)
				y = append(y, k)
			}
		}
	}
	return x, y
}

func (t *trainer) classifier(ctx context.Context, x [][]float64, y []int, seed uint64) (*model.Classifier, error) {
	o := t.opt.Classifier
	o.Seed = seed
	return model.TrainClassifier(ctx, x, y, t.classes, t.ds.FeatureNames, o)
}

// fitAndPredict trains on up to perType training pods per type (0 = all) and returns the
// confusion matrix of the validation rows xv, yv.
func (t *trainer) fitAndPredict(ctx context.Context, train map[string][]types.NamespacedName, perType int, xv [][]float64, yv []int, seed uint64) ([][]int, error) {
	xt, yt := t.rows(train, perType)
	c, err := t.classifier(ctx, xt, yt, seed)
	if err != nil {
		return nil, err
	}
	conf := newMatrix(len(t.classes))
	for i, row := range xv {
		pred, _, err := c.Predict(row)
		if err != nil {
			return nil, fmt.Errorf("validation window %d: %w", i, err)
		}
		conf[yv[i]][pred]++
	}
	return conf, nil
}

func newMatrix(n int) [][]int {
	m := make([][]int, n)
	for i := range m {
		m[i] = make([]int, n)
	}
	return m
}

func (t *trainer) validate(ctx context.Context) (*Validation, error) {
	n := len(t.classes)
	val := &Validation{
		Classes:          slices.Clone(t.classes),
		Iterations:       t.opt.Iterations,
		Confusion:        newMatrix(n),
		Anomaly:          make([]AnomalyCounts, n),
		PodsPerType:      map[string]int{},
		TrainPodsPerType: map[string]int{},
	}
	maxTrain := 0
	for k, c := range t.classes {
		val.Anomaly[k] = AnomalyCounts{Type: c, FaultsByKind: map[string][2]int{}}
		val.PodsPerType[c] = len(t.idx.byType[c])
		val.TrainPodsPerType[c] = TrainingPods(len(t.idx.byType[c]), t.opt.Ratio)
		maxTrain = max(maxTrain, val.TrainPodsPerType[c])
		if val.PodsPerType[c] < 2 {
			t.logger.WarnContext(ctx, "type has a single pod: trained on, never validated", "type", c)
		}
	}
	curveMax := maxTrain
	if t.opt.MaxNumber > 0 {
		curveMax = min(curveMax, t.opt.MaxNumber)
	}
	for p := 1; p <= curveMax; p++ {
		val.Curve = append(val.Curve, CurvePoint{PodsPerType: p, Confusion: newMatrix(n)})
	}
	byType := make(map[string][]types.NamespacedName, n)
	for _, c := range t.classes {
		byType[c] = t.idx.byType[c]
	}
	for it := range t.opt.Iterations {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		started := time.Now()
		rng := rand.New(rand.NewPCG(t.opt.Seed, uint64(it)+1))
		split, err := SplitPods(byType, t.opt.Ratio, rng)
		if err != nil {
			return nil, err
		}
		xv, yv := t.rows(split.Validate, 0)
		var iterConf [][]int
		for pi := range val.Curve {
			p := &val.Curve[pi]
			conf, err := t.fitAndPredict(ctx, split.Train, p.PodsPerType, xv, yv, rng.Uint64())
			if err != nil {
				return nil, fmt.Errorf("iteration %d, learning curve at %d pods per type: %w", it+1, p.PodsPerType, err)
			}
			addMatrix(p.Confusion, conf)
			// The curve's point with every training pod is the iteration's classifier; fitting
			// it again would cost a fit and change nothing but the seed.
			if p.PodsPerType == maxTrain {
				iterConf = conf
			}
		}
		if iterConf == nil {
			if iterConf, err = t.fitAndPredict(ctx, split.Train, 0, xv, yv, rng.Uint64()); err != nil {
				return nil, fmt.Errorf("iteration %d: %w", it+1, err)
			}
		}
		addMatrix(val.Confusion, iterConf)
		if err := t.validateForests(ctx, split, rng, val.Anomaly); err != nil {
			return nil, fmt.Errorf("iteration %d: %w", it+1, err)
		}
		t.logger.InfoContext(ctx, "validation iteration done", "iteration", fmt.Sprintf("%d/%d", it+1, t.opt.Iterations),
			"validation_windows", len(xv), "accuracy", accuracy(iterConf),
			"duration", time.Since(started).Round(time.Millisecond))
	}
	return val, nil
}

func addMatrix(dst, src [][]int) {
	for i := range src {
		for j := range src[i] {
			dst[i][j] += src[i][j]
		}
	}
}

func accuracy(m [][]int) float64 {
	var ok, all int
	for i := range m {
		for j, v := range m[i] {
			all += v
			if i == j {
				ok += v
			}
		}
	}
	if all == 0 {
		return math.NaN()
	}
	return float64(ok) / float64(all)
}

// validateForests fits each type's forest on its training pods and counts flags on the
// validation pods' normal and fault windows.
func (t *trainer) validateForests(ctx context.Context, split Split, rng *rand.Rand, out []AnomalyCounts) error {
	for k, c := range t.classes {
		if err := ctx.Err(); err != nil {
			return err
		}
		tm, err := t.typeModel(split.Train[c], rng.Uint64())
		if err != nil {
			return fmt.Errorf("type %s: %w", c, err)
		}
		a := &out[k]
		for _, p := range split.Validate[c] {
			for _, i := range t.idx.normal[p] {
				flag, err := flagged(tm, t.ds.Normal[i].Features)
				if err != nil {
					return fmt.Errorf("type %s: pod %s: %w", c, p, err)
				}
				a.NormalWindows++
				if flag {
					a.NormalFlagged++
				}
			}
			for _, i := range t.idx.faults[p] {
				w := t.ds.Faults[i]
				flag, err := flagged(tm, w.Features)
				if err != nil {
					return fmt.Errorf("type %s: pod %s: %w", c, p, err)
				}
				a.FaultWindows++
				kind := a.FaultsByKind[w.Fault]
				kind[0]++
				if flag {
					a.FaultFlagged++
					kind[1]++
				}
				a.FaultsByKind[w.Fault] = kind
			}
		}
	}
	return nil
}

// flagged applies the type model's own score and rule, the ones the pod-watcher applies.
func flagged(tm *model.TypeModel, x []float64) (bool, error) {
	s, err := tm.Score(x)
	if err != nil {
		return false, err
	}
	return tm.Anomalous(s), nil
}

// typeModel trains one type's forest on the normal windows of pods and calibrates its threshold.
//
// The threshold is the ThresholdQuantile of scores the pods' windows get from forests that did
// not see those pods (pods rotate through CalibrationFolds groups). Scores of a forest's own
// training windows are biased low, the more so the fewer windows a type has (with fewer than
// FOREST_SAMPLE_SIZE windows every tree holds every window), and the watcher only ever scores
// pods the forest has not seen; calibrating on in-sample scores flags several times the
// intended share of new pods' normal windows. A type with one pod falls back to in-sample scores.
func (t *trainer) typeModel(pods []types.NamespacedName, seed uint64) (*model.TypeModel, error) {
	perPod := make([][][]float64, 0, len(pods))
	var all [][]float64
	for _, p := range pods {
		var rows [][]float64
		for _, i := range t.idx.normal[p] {
			rows = append(rows, t.ds.Normal[i].Features)
		}
		if len(rows) > 0 {
			perPod = append(perPod, rows)
			all = append(all, rows...)
		}
	}
	if len(all) == 0 {
		return nil, errors.New("no normal windows")
	}
	rng := rand.New(rand.NewPCG(seed, 0x666f72657374)) // "forest"
	cfg := t.opt.Forest
	cfg.Seed = rng.Uint64()
	tm, err := model.FitTypeModel(all, cfg)
	if err != nil {
		return nil, fmt.Errorf("anomaly model on %d windows: %w", len(all), err)
	}
	var scores []float64
	if len(perPod) < 2 {
		scores, err = scoreAll(tm, all)
		if err != nil {
			return nil, err
		}
	} else {
		folds := min(t.opt.CalibrationFolds, len(perPod))
		order := rng.Perm(len(perPod))
		for f := range folds {
			var fit, held [][]float64
			for pos, pi := range order {
				if pos%folds == f {
					held = append(held, perPod[pi]...)
				} else {
					fit = append(fit, perPod[pi]...)
				}
			}
			cfg.Seed = rng.Uint64()
			cm, err := model.FitTypeModel(fit, cfg)
			if err != nil {
				return nil, fmt.Errorf("calibration model %d/%d on %d windows: %w", f+1, folds, len(fit), err)
			}
			s, err := scoreAll(cm, held)
			if err != nil {
				return nil, err
			}
			scores = append(scores, s...)
		}
	}
	tm.Threshold = Quantile(scores, t.opt.ThresholdQuantile)
	return tm, nil
}

// scoreAll scores classification vectors with tm's own scoring path.
func scoreAll(tm *model.TypeModel, x [][]float64) ([]float64, error) {
	out := make([]float64, len(x))
	for i, row := range x {
		s, err := tm.Score(row)
		if err != nil {
			return nil, fmt.Errorf("score window %d: %w", i, err)
		}
		out[i] = s
	}
	return out, nil
}

// Quantile returns the q-quantile of v, interpolating linearly between closest ranks
// (Hyndman & Fan type 7, numpy's default); NaN for empty v. v is not modified.
func Quantile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	sort.Float64s(s)
	h := q * float64(len(s)-1)
	lo := int(math.Floor(h))
	if lo >= len(s)-1 {
		return s[len(s)-1]
	}
	return s[lo] + (h-float64(lo))*(s[lo+1]-s[lo])
}

// Producer is recorded in every bundle this package trains.
const Producer = "podtype metrics-collector"

// final trains the published models on all normal windows of all pods and assembles the bundle
// with val's numbers.
func (t *trainer) final(ctx context.Context, val *Validation, now time.Time) (*model.Bundle, error) {
	rng := rand.New(rand.NewPCG(t.opt.Seed, 0))
	byType := make(map[string][]types.NamespacedName, len(t.classes))
	for _, c := range t.classes {
		byType[c] = t.idx.byType[c]
	}
	x, y := t.rows(byType, 0)
	clf, err := t.classifier(ctx, x, y, rng.Uint64())
	if err != nil {
		return nil, fmt.Errorf("final classifier: %w", err)
	}
	b := &model.Bundle{
		CreatedAt:      now.UTC(),
		FeatureVersion: features.Version,
		FeatureNames:   slices.Clone(t.ds.FeatureNames),
		// The forests score features.AnomalyVector of the classification vector.
		AnomalyFeatureNames: features.AnomalyNames(),
		Classes:             slices.Clone(t.classes),
		WindowStep:          t.ds.WindowStep,
		WindowSamples:       t.ds.WindowSamples,
		Classifier:          clf,
		Types:               make(map[string]*model.TypeModel, len(t.classes)),
		Training: model.TrainingInfo{
			DataStart:    t.ds.From,
			DataEnd:      t.ds.To,
			WindowStride: time.Duration(t.ds.WindowSamples) * t.ds.WindowStep,
			Pods:         map[string]int{},
			Windows:      map[string]int{},
			ExcludedPods: map[string]int{},
			Producer:     Producer,
		},
	}
	for k, c := range t.classes {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		tm, err := t.typeModel(byType[c], rng.Uint64())
		if err != nil {
			return nil, fmt.Errorf("final anomaly model of %s: %w", c, err)
		}
		b.Types[c] = tm
		val.Anomaly[k].Threshold = tm.Threshold
		b.Training.Pods[c] = len(byType[c])
		for _, p := range byType[c] {
			b.Training.Windows[c] += len(t.idx.normal[p])
		}
	}
	for reason, byType := range t.ds.Excluded.Pods {
		for _, n := range byType {
			b.Training.ExcludedPods[reason] += n
		}
	}
	b.Validation = summary(val)
	return b, nil
}

// summary condenses val into the bundle's validation figures. Pods and Windows count
// validation pods and windows summed over iterations, the population the rates are over.
func summary(val *Validation) model.ValidationSummary {
	conf, err := evaluate.NewConfusion(val.Classes)
	if err != nil {
		return model.ValidationSummary{}
	}
	conf.Matrix = val.Confusion
	m := conf.Metrics()
	s := model.ValidationSummary{
		Windows:  conf.Total(),
		Accuracy: m.Accuracy,
		MacroF1:  m.MacroF1,
		F1:       make(map[string]float64, len(val.Classes)),
		Anomaly:  make(map[string]model.AnomalyValidation, len(val.Classes)),
	}
	for _, c := range val.Classes {
		s.Pods += val.Iterations * (val.PodsPerType[c] - val.TrainPodsPerType[c])
	}
	for _, pc := range m.PerClass {
		s.F1[pc.Class] = pc.F1
	}
	for _, a := range val.Anomaly {
		s.Anomaly[a.Type] = model.AnomalyValidation{
			Recall:    rate(a.FaultFlagged, a.FaultWindows),
			Positives: a.FaultWindows,
			FPR:       rate(a.NormalFlagged, a.NormalWindows),
			Negatives: a.NormalWindows,
		}
	}
	return s
}

// rate is num/den, 0 for an empty denominator (the count next to it says why).
func rate(num, den int) float64 {
	if den == 0 {
		return 0
	}
	return float64(num) / float64(den)
}
