package model

import (
	"errors"
	"fmt"
	"math"

	"github.com/podtype/podtype/shared/features"
	"github.com/podtype/podtype/shared/iforest"
)

// TypeModel is the anomaly model of one pod type: an isolation forest over anomaly vectors
// (features.AnomalyVector of a window's classification vector), the score above which a
// window is anomalous, and the type's baseline in anomaly space.
//
// Score, Anomalous and Explain are the one scoring path: the trainer calibrates and
// validates with them and the pod-watcher decides with them, so the two cannot drift apart.
type TypeModel struct {
	Forest *iforest.Forest `json:"forest"`
	// Threshold is the anomaly score above which a window counts as
	// anomalous (see Anomalous), chosen on the type's normal windows.
	Threshold float64 `json:"threshold"`
	// Mean and Std are the type's baseline over the anomaly vectors of its training windows
	// (one entry per features.AnomalyNames()), each over the windows where the feature was
	// known. Mean also stands in for a feature that is unknown in a window (its metric is
	// absent), so that a runtime that does not report a metric is not an anomaly; Explain
	// measures deviations against both.
	Mean []float64 `json:"mean"`
	Std  []float64 `json:"std"`
}

// FitTypeModel trains the forest and baseline of a type on the classification vectors x of
// its normal windows. The Threshold is left 0: it must be calibrated on windows the forest
// did not see (the caller knows which those are) before the model is used or stored.
func FitTypeModel(x [][]float64, cfg iforest.Config) (*TypeModel, error) {
	if len(x) == 0 {
		return nil, errors.New("model: type model: no windows")
	}
	raw := make([][]float64, len(x))
	for i, row := range x {
		a, err := features.AnomalyVector(row)
		if err != nil {
			return nil, fmt.Errorf("model: type model: window %d: %w", i, err)
		}
		known, err := features.AnomalyKnown(row)
		if err != nil {
			return nil, fmt.Errorf("model: type model: window %d: %w", i, err)
		}
		// features.Baseline skips NaN entries: unknown features do not bias the baseline.
		for j, ok := range known {
			if !ok {
				a[j] = math.NaN()
			}
		}
		raw[i] = a
	}
	mean, std := features.Baseline(raw)
	for _, a := range raw {
		for j, v := range a {
			if math.IsNaN(v) {
				a[j] = mean[j]
			}
		}
	}
	forest, err := iforest.Train(raw, cfg)
	if err != nil {
		return nil, fmt.Errorf("model: type model: isolation forest on %d windows: %w", len(raw), err)
	}
	return &TypeModel{Forest: forest, Mean: mean, Std: std}, nil
}

// Vector returns the anomaly vector the forest scores for the classification vector x:
// features.AnomalyVector(x) with unknown features replaced by the baseline mean.
func (m *TypeModel) Vector(x []float64) ([]float64, error) {
	if m == nil {
		return nil, errors.New("model: nil type model")
	}
	a, err := features.AnomalyVector(x)
	if err != nil {
		return nil, err
	}
	known, err := features.AnomalyKnown(x)
	if err != nil {
		return nil, err
	}
	if len(m.Mean) != len(a) {
		return nil, fmt.Errorf("model: type model has a baseline of %d features, the anomaly vector has %d", len(m.Mean), len(a))
	}
	for j, ok := range known {
		if !ok {
			a[j] = m.Mean[j]
		}
	}
	return a, nil
}

// Score returns the anomaly score of the window whose classification vector (as
// features.Extract returns it) is x: the forest's score of Vector(x), in (0,1].
func (m *TypeModel) Score(x []float64) (float64, error) {
	a, err := m.Vector(x)
	if err != nil {
		return 0, err
	}
	if m.Forest == nil {
		return 0, errors.New("model: type model has no forest")
	}
	return m.Forest.Score(a)
}

// Anomalous is the one decision rule: a window is anomalous when its score is strictly
// above the threshold. Thresholds are calibrated as a quantile of normal scores, so a
// normal window scoring exactly the threshold is not flagged.
func (m *TypeModel) Anomalous(score float64) bool { return score > m.Threshold }

// Explain returns the k features of x's anomaly vector farthest from the type's baseline
// (by |z|, see features.AnomalyDeviations), fewer when fewer are known; k <= 0 returns
// them all. Features unknown in the window are left out. It returns nil when x is not a
// valid classification vector or the baseline does not fit.
func (m *TypeModel) Explain(x []float64, k int) []features.Deviation {
	if m == nil {
		return nil
	}
	a, err := features.AnomalyVector(x)
	if err != nil {
		return nil
	}
	known, err := features.AnomalyKnown(x)
	if err != nil {
		return nil
	}
	for j, ok := range known {
		if !ok {
			a[j] = math.NaN()
		}
	}
	devs := features.AnomalyDeviations(a, m.Mean, m.Std)
	if k > 0 && len(devs) > k {
		devs = devs[:k]
	}
	return devs
}

func (m *TypeModel) validate(n int) error {
	if m.Forest == nil {
		return fmt.Errorf("forest is missing")
	}
	if err := m.Forest.Validate(); err != nil {
		return fmt.Errorf("forest: %w", err)
	}
	if m.Forest.Features != n {
		return fmt.Errorf("forest.features = %d, want %d (len(anomaly_feature_names))", m.Forest.Features, n)
	}
	if !(m.Threshold > 0 && m.Threshold <= 1) { // also refuses NaN
		return fmt.Errorf("threshold = %v, want (0,1]", m.Threshold)
	}
	if len(m.Mean) != n {
		return fmt.Errorf("mean has %d values, want %d (len(anomaly_feature_names))", len(m.Mean), n)
	}
	if len(m.Std) != n {
		return fmt.Errorf("std has %d values, want %d (len(anomaly_feature_names))", len(m.Std), n)
	}
	for i := range n {
		if !finite(m.Mean[i]) {
			return fmt.Errorf("mean[%d] = %v, want a finite number", i, m.Mean[i])
		}
		if !finite(m.Std[i]) || m.Std[i] < 0 {
			return fmt.Errorf("std[%d] = %v, want a finite number >= 0", i, m.Std[i])
		}
	}
	return nil
}
