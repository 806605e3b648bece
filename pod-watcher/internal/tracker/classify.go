package tracker

import (
	"fmt"
	"math"

	"github.com/podtype/podtype/shared/model"

	"github.com/podtype/podtype/pod-watcher/internal/publish"
)

// Decision is the outcome of classifying one window.
type Decision struct {
	// Type is a class of the bundle, or publish.TypeUnknown.
	Type string
	// Nearest is the class the classifier picked, kept when Type is unknown for the Event.
	Nearest string
	// Confidence is the classifier's probability of Nearest.
	Confidence float64
	// Score and Threshold are the Nearest type's forest verdict on the window; NaN when the
	// type has no forest.
	Score, Threshold float64
	// Why says, for an unknown type, which open-set check failed.
	Why string
}

// Classify decides the type of the pod whose feature vector is x. It is an open-set decision:
// the nearest class is only accepted when the classifier is at least minConfidence sure and that
// type's forest does not reject the window, because a classifier trained on k types always
// answers one of them, also for a workload it has never seen. The forest rejects a window that
// scores more than margin above the type's anomaly threshold (margin 0: the threshold itself).
func Classify(b *model.Bundle, x []float64, minConfidence, margin float64) (Decision, error) {
	class, probs, err := b.Classifier.Predict(x)
	if err != nil {
		return Decision{}, fmt.Errorf("classify: %w", err)
	}
	if class < 0 || class >= len(b.Classes) || class >= len(probs) {
		return Decision{}, fmt.Errorf("classify: class index %d outside %d classes", class, len(b.Classes))
	}
	d := Decision{
		Type:       b.Classes[class],
		Nearest:    b.Classes[class],
		Confidence: probs[class],
		Score:      math.NaN(),
		Threshold:  math.NaN(),
	}
	tm := b.Types[d.Nearest]
	if tm != nil && tm.Forest != nil {
		d.Score, err = tm.Score(x)
		if err != nil {
			return Decision{}, fmt.Errorf("classify: %s anomaly model: %w", d.Nearest, err)
		}
		d.Threshold = tm.Threshold
	}
	switch {
	case !(d.Confidence >= minConfidence):
		d.Type = publish.TypeUnknown
		d.Why = fmt.Sprintf("confidence %.2f below %.2f", d.Confidence, minConfidence)
	case tm != nil && tm.Forest != nil && tm.Anomalous(d.Score-margin):
		d.Type = publish.TypeUnknown
		d.Why = fmt.Sprintf("%s anomaly score %.3f above its threshold %.3f", d.Nearest, d.Score, d.Threshold)
		if margin > 0 {
			d.Why += fmt.Sprintf(" + margin %.3f", margin)
		}
		if devs := tm.Explain(x, 3); len(devs) > 0 {
			d.Why += "; most unlike " + d.Nearest + ": " + formatDeviations(devs)
		}
	}
	return d, nil
}
