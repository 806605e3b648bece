package model

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/podtype/podtype/shared/features"
)

// Bundle is everything the pod-watcher needs to classify pods and score
// their windows, plus enough provenance to tell which data and settings
// produced it. Encode and Decode turn it into the bundle file format.
type Bundle struct {
	// FormatVersion is the bundle file format; Encode sets it, Decode
	// checks it. 0 means "not encoded yet".
	FormatVersion int `json:"format_version"`
	// Version identifies this bundle: the creation time and the first 12
	// hex digits of the payload checksum, e.g. "20260102T150405Z-0123456789ab".
	// It is derived, not chosen: Encode sets it, Decode checks it. It lives
	// in the envelope because it is computed from the payload.
	Version   string    `json:"-"`
	CreatedAt time.Time `json:"created_at"`
	// FeatureVersion is features.Version at training time; the watcher must
	// refuse a bundle whose vectors its feature code does not produce.
	FeatureVersion int      `json:"feature_version"`
	FeatureNames   []string `json:"feature_names"`
	// AnomalyFeatureNames are the entries of the anomaly vectors the types' forests and
	// baselines are over (features.AnomalyNames() at training time); Validate refuses a
	// bundle whose names differ from what this program's features package computes.
	AnomalyFeatureNames []string `json:"anomaly_feature_names"`
	Classes             []string `json:"classes"`
	// WindowStep and WindowSamples define the windows features were
	// computed on; inference must use the same grid.
	WindowStep    time.Duration `json:"window_step_ns"`
	WindowSamples int           `json:"window_samples"`
	Classifier    *Classifier   `json:"classifier"`
	// Types holds the anomaly model of every class, keyed by class name.
	Types      map[string]*TypeModel `json:"types"`
	Training   TrainingInfo          `json:"training"`
	Validation ValidationSummary     `json:"validation"`

	// checksum is the hex SHA-256 of the payload this bundle was encoded to
	// or decoded from; it backs ETag.
	checksum string
}

// TrainingInfo records the data a bundle was trained on.
type TrainingInfo struct {
	// DataStart and DataEnd bound the metrics read from InfluxDB.
	DataStart time.Time `json:"data_start"`
	DataEnd   time.Time `json:"data_end"`
	// WindowStride is the distance between the starts of consecutive
	// training windows of one pod (windows overlap when it is shorter than
	// Bundle.WindowStep * WindowSamples); 0 if not recorded.
	WindowStride time.Duration `json:"window_stride_ns,omitempty"`
	// Pods and Windows count the training pods and windows per class.
	Pods    map[string]int `json:"pods"`
	Windows map[string]int `json:"windows"`
	// ExcludedPods counts pods left out, by reason (e.g. "too little data",
	// "unknown type").
	ExcludedPods map[string]int `json:"excluded_pods,omitempty"`
	// Producer names the program and version that trained the bundle.
	Producer string `json:"producer,omitempty"`
}

// ValidationSummary holds the figures measured on held-out pods (never on
// pods the model was trained on).
type ValidationSummary struct {
	Pods     int     `json:"pods"`
	Windows  int     `json:"windows"`
	Accuracy float64 `json:"accuracy"`
	MacroF1  float64 `json:"macro_f1"`
	// F1 is the per-class F1 score, keyed by class name.
	F1 map[string]float64 `json:"f1"`
	// Anomaly is the anomaly detection quality per type, keyed by class name.
	Anomaly map[string]AnomalyValidation `json:"anomaly,omitempty"`
}

// AnomalyValidation is how a type's anomaly model did on held-out windows
// with known (injected) faults. A rate is 0 when its denominator is 0, so
// read it together with the count.
type AnomalyValidation struct {
	// Recall is the share of the Positives (faulty windows) flagged.
	Recall    float64 `json:"recall"`
	Positives int     `json:"positives"`
	// FPR is the share of the Negatives (normal windows) flagged.
	FPR       float64 `json:"fpr"`
	Negatives int     `json:"negatives"`
}

// Validate checks that b is complete and consistent, so that a watcher can
// use it without further checks: names non-empty and unique, a classifier
// over exactly these features and classes, an anomaly model with a forest for
// every class, thresholds in (0,1], baselines of the right length, a usable
// window definition. The error names the field and its value.
func (b *Bundle) Validate() error {
	if err := b.validate(); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	return nil
}

func (b *Bundle) validate() error {
	if b == nil {
		return fmt.Errorf("is nil")
	}
	if b.FormatVersion != 0 && b.FormatVersion != FormatVersion {
		return fmt.Errorf("format_version = %d, want %d", b.FormatVersion, FormatVersion)
	}
	if b.CreatedAt.IsZero() {
		return fmt.Errorf("created_at is not set")
	}
	if b.FeatureVersion <= 0 {
		return fmt.Errorf("feature_version = %d, want > 0", b.FeatureVersion)
	}
	if err := checkNames("feature_names", b.FeatureNames); err != nil {
		return err
	}
	if err := checkNames("anomaly_feature_names", b.AnomalyFeatureNames); err != nil {
		return err
	}
	if err := sameNames("anomaly_feature_names", b.AnomalyFeatureNames, "features.AnomalyNames() of this program", features.AnomalyNames()); err != nil {
		return err
	}
	if err := checkNames("classes", b.Classes); err != nil {
		return err
	}
	if b.WindowStep <= 0 {
		return fmt.Errorf("window_step = %v, want > 0", b.WindowStep)
	}
	if b.WindowSamples <= 0 {
		return fmt.Errorf("window_samples = %d, want > 0", b.WindowSamples)
	}
	if err := b.Classifier.Validate(); err != nil {
		return err
	}
	if err := sameNames("classifier.feature_names", b.Classifier.FeatureNames, "feature_names", b.FeatureNames); err != nil {
		return err
	}
	if err := sameNames("classifier.classes", b.Classifier.Classes, "classes", b.Classes); err != nil {
		return err
	}
	for _, c := range b.Classes {
		tm, ok := b.Types[c]
		if !ok || tm == nil {
			return fmt.Errorf("types[%q] is missing: every class needs an anomaly model", c)
		}
		if err := tm.validate(len(b.AnomalyFeatureNames)); err != nil {
			return fmt.Errorf("types[%q].%w", c, err)
		}
	}
	if err := onlyClasses("types", sortedKeys(b.Types), b.Classes); err != nil {
		return err
	}
	if err := b.Training.validate(b.Classes); err != nil {
		return fmt.Errorf("training.%w", err)
	}
	if err := b.Validation.validate(b.Classes); err != nil {
		return fmt.Errorf("validation.%w", err)
	}
	return nil
}

func (t *TrainingInfo) validate(classes []string) error {
	if !t.DataStart.IsZero() && !t.DataEnd.IsZero() && t.DataEnd.Before(t.DataStart) {
		return fmt.Errorf("data_end = %s is before data_start = %s",
			t.DataEnd.Format(time.RFC3339), t.DataStart.Format(time.RFC3339))
	}
	if t.WindowStride < 0 {
		return fmt.Errorf("window_stride = %v, want >= 0", t.WindowStride)
	}
	if err := counts("pods", t.Pods, classes); err != nil {
		return err
	}
	if err := counts("windows", t.Windows, classes); err != nil {
		return err
	}
	for _, reason := range sortedKeys(t.ExcludedPods) {
		if reason == "" {
			return fmt.Errorf("excluded_pods has an empty reason")
		}
		if n := t.ExcludedPods[reason]; n < 0 {
			return fmt.Errorf("excluded_pods[%q] = %d, want >= 0", reason, n)
		}
	}
	return nil
}

func (v *ValidationSummary) validate(classes []string) error {
	if v.Pods < 0 {
		return fmt.Errorf("pods = %d, want >= 0", v.Pods)
	}
	if v.Windows < 0 {
		return fmt.Errorf("windows = %d, want >= 0", v.Windows)
	}
	if err := fraction("accuracy", v.Accuracy); err != nil {
		return err
	}
	if err := fraction("macro_f1", v.MacroF1); err != nil {
		return err
	}
	keys := sortedKeys(v.F1)
	if err := onlyClasses("f1", keys, classes); err != nil {
		return err
	}
	for _, c := range keys {
		if err := fraction(fmt.Sprintf("f1[%q]", c), v.F1[c]); err != nil {
			return err
		}
	}
	keys = sortedKeys(v.Anomaly)
	if err := onlyClasses("anomaly", keys, classes); err != nil {
		return err
	}
	for _, c := range keys {
		a := v.Anomaly[c]
		if err := fraction(fmt.Sprintf("anomaly[%q].recall", c), a.Recall); err != nil {
			return err
		}
		if err := fraction(fmt.Sprintf("anomaly[%q].fpr", c), a.FPR); err != nil {
			return err
		}
		if a.Positives < 0 || a.Negatives < 0 {
			return fmt.Errorf("anomaly[%q]: positives = %d, negatives = %d, want >= 0", c, a.Positives, a.Negatives)
		}
	}
	return nil
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

func fraction(field string, v float64) error {
	if !(v >= 0 && v <= 1) {
		return fmt.Errorf("%s = %v, want [0,1]", field, v)
	}
	return nil
}

// counts checks a per-class count map: known classes, no negative counts.
func counts(field string, m map[string]int, classes []string) error {
	keys := sortedKeys(m)
	if err := onlyClasses(field, keys, classes); err != nil {
		return err
	}
	for _, k := range keys {
		if m[k] < 0 {
			return fmt.Errorf("%s[%q] = %d, want >= 0", field, k, m[k])
		}
	}
	return nil
}

func onlyClasses(field string, keys, classes []string) error {
	for _, k := range keys {
		if !slices.Contains(classes, k) {
			return fmt.Errorf("%s[%q]: %q is not one of classes", field, k, k)
		}
	}
	return nil
}

func sameNames(field string, got []string, wantField string, want []string) error {
	if len(got) != len(want) {
		return fmt.Errorf("%s has %d names, %s has %d", field, len(got), wantField, len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			return fmt.Errorf("%s[%d] = %q, but %s[%d] = %q", field, i, got[i], wantField, i, want[i])
		}
	}
	return nil
}

// sortedKeys makes validation report the same error every time.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
