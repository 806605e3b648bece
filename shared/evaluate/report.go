package evaluate

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
)

// CurvePoint is the validation result of a model trained on TrainPods pods.
type CurvePoint struct {
	TrainPods int     `json:"train_pods"`
	Accuracy  float64 `json:"accuracy"`
	MacroF1   float64 `json:"macro_f1"`
}

// LearningCurve shows how validation quality grows with training data; a curve still
// rising at its right end says more pods would help.
type LearningCurve []CurvePoint

// AnomalyResult is how one pod type's anomaly model did on held-out windows.
type AnomalyResult struct {
	Type string `json:"type"`
	// Threshold is the score above which a window is flagged.
	Threshold float64 `json:"threshold"`
	// Recall is the share of windows with an injected fault that were flagged.
	Recall float64 `json:"recall"`
	// FalsePositiveRate is the share of normal windows that were flagged.
	FalsePositiveRate float64 `json:"false_positive_rate"`
	FaultWindows      int     `json:"fault_windows"`
	NormalWindows     int     `json:"normal_windows"`
}

// NewAnomalyResult measures a type's decision rule on the anomaly scores of windows with a
// known fault and of normal windows. anomalous is the rule the models apply (pass
// model.TypeModel.Anomalous, so the report counts exactly what the watcher flags);
// threshold is only recorded. With no windows of a kind its rate is 0 (and the window count
// says why). NaN scores are never flagged: they are not evidence of anything.
func NewAnomalyResult(typ string, threshold float64, anomalous func(score float64) bool, faultScores, normalScores []float64) AnomalyResult {
	flagged := func(scores []float64) float64 {
		if len(scores) == 0 || anomalous == nil {
			return 0
		}
		n := 0
		for _, s := range scores {
			if !math.IsNaN(s) && anomalous(s) {
				n++
			}
		}
		return float64(n) / float64(len(scores))
	}
	return AnomalyResult{
		Type:              typ,
		Threshold:         threshold,
		Recall:            flagged(faultScores),
		FalsePositiveRate: flagged(normalScores),
		FaultWindows:      len(faultScores),
		NormalWindows:     len(normalScores),
	}
}

// TrainingSummary describes the data a model was trained on.
type TrainingSummary struct {
	// PodsPerType counts the pods used per pod type.
	PodsPerType map[string]int `json:"pods_per_type"`
	// Windows is the number of feature windows used for training.
	Windows int `json:"windows"`
	// ExcludedPods counts pods left out, by reason (e.g. "no_data", "unknown_type") and
	// then by pod type.
	ExcludedPods map[string]map[string]int `json:"excluded_pods,omitempty"`
	// ExcludedWindows counts windows of the kept pods left out, by reason (e.g. too little
	// data, a fault's boundary or aftermath): the anomaly rates are over the others.
	ExcludedWindows map[string]int `json:"excluded_windows,omitempty"`
}

// Report is everything a person needs to judge a trained model. Classification numbers
// are on pods the model never saw (Validation says how they were held out).
type Report struct {
	ModelVersion string    `json:"model_version"`
	CreatedAt    time.Time `json:"created_at"`
	// Algorithm names the classifier and its main parameters, e.g. "random forest, 100 trees".
	Algorithm string `json:"algorithm"`
	// Validation says how the numbers were obtained, e.g. "5-fold cross-validation grouped by pod".
	Validation string `json:"validation,omitempty"`

	Accuracy float64  `json:"accuracy"`
	MacroF1  float64  `json:"macro_f1"`
	Classes  []string `json:"classes"`
	// ConfusionMatrix has rows by actual class and columns by predicted class, both in
	// Classes order.
	ConfusionMatrix [][]int        `json:"confusion_matrix"`
	PerClass        []ClassMetrics `json:"per_class"`

	Anomaly       []AnomalyResult `json:"anomaly"`
	LearningCurve LearningCurve   `json:"learning_curve"`
	Training      TrainingSummary `json:"training"`
}

// SetConfusion fills the classification fields of r from c.
func (r *Report) SetConfusion(c *Confusion) error {
	if err := c.validate(); err != nil {
		return err
	}
	m := c.Metrics()
	r.Classes = append([]string(nil), c.Classes...)
	r.ConfusionMatrix = make([][]int, len(c.Matrix))
	for i, row := range c.Matrix {
		r.ConfusionMatrix[i] = append([]int(nil), row...)
	}
	r.Accuracy, r.MacroF1, r.PerClass = m.Accuracy, m.MacroF1, m.PerClass
	return nil
}

// Validate checks what the renderers rely on: a square matrix matching Classes, per-class
// rows matching Classes, shares within [0,1] and finite thresholds (JSON cannot carry NaN
// or Inf).
func (r *Report) Validate() error {
	if r == nil {
		return errors.New("evaluate: nil report")
	}
	if err := checkMatrix(r.Classes, r.ConfusionMatrix); err != nil {
		return err
	}
	if len(r.PerClass) != len(r.Classes) {
		return fmt.Errorf("evaluate: report has %d per-class rows for %d classes", len(r.PerClass), len(r.Classes))
	}
	var bad error
	// rate checks a share: finite and within [0,1], or charts and tables would lie.
	rate := func(v float64, format string, args ...any) {
		if bad == nil && !(v >= 0 && v <= 1) { // NaN fails both comparisons
			bad = fmt.Errorf("evaluate: "+format+" = %v: must be in [0,1]", append(args, v)...)
		}
	}
	rate(r.Accuracy, "accuracy")
	rate(r.MacroF1, "macro_f1")
	for _, pc := range r.PerClass {
		rate(pc.Precision, "per_class %s precision", pc.Class)
		rate(pc.Recall, "per_class %s recall", pc.Class)
		rate(pc.F1, "per_class %s f1", pc.Class)
		if bad == nil && pc.Support < 0 {
			bad = fmt.Errorf("evaluate: per_class %s support %d: must be >= 0", pc.Class, pc.Support)
		}
	}
	for _, a := range r.Anomaly {
		if bad == nil && !finite(a.Threshold) {
			bad = fmt.Errorf("evaluate: anomaly %s threshold = %v: must be finite", a.Type, a.Threshold)
		}
		rate(a.Recall, "anomaly %s recall", a.Type)
		rate(a.FalsePositiveRate, "anomaly %s false_positive_rate", a.Type)
	}
	for i, p := range r.LearningCurve {
		rate(p.Accuracy, "learning_curve[%d] accuracy", i)
		rate(p.MacroF1, "learning_curve[%d] macro_f1", i)
	}
	if bad != nil {
		return bad
	}
	return nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// WriteJSON writes r as indented JSON.
func WriteJSON(w io.Writer, r *Report) error {
	if err := r.Validate(); err != nil {
		return err
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("evaluate: writing JSON report: %w", err)
	}
	return nil
}
