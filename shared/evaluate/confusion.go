// Package evaluate computes validation numbers — confusion matrix, per-class precision,
// recall and F1, accuracy, macro-F1, learning curve, anomaly-detection rates — and renders
// them as a report (JSON for machines, a terminal table, a self-contained HTML page).
//
// Conventions, chosen so that no number is ever NaN and so that a report reads the same
// way however many classes it has:
//   - A class that was never predicted has precision 0 (0/0 is taken as 0): a model that
//     never says "redis" gets no credit for never being wrong about it.
//   - A class with support 0 (no actual samples in the evaluated set) has recall 0 and F1 0
//     and is left out of macro averages, because averaging in a meaningless 0 would punish
//     the model for a gap in the data.
//   - Accuracy of an empty matrix is 0.
package evaluate

import (
	"errors"
	"fmt"
)

// Confusion counts predictions by actual class (rows) and predicted class (columns).
type Confusion struct {
	Classes []string `json:"classes"`
	// Matrix[a][p] is the number of samples of actual class a predicted as p.
	Matrix [][]int `json:"matrix"`
}

// NewConfusion returns an empty matrix for classes, which must be non-empty and unique.
func NewConfusion(classes []string) (*Confusion, error) {
	if len(classes) == 0 {
		return nil, errors.New("evaluate: confusion matrix needs at least one class")
	}
	seen := make(map[string]bool, len(classes))
	for i, c := range classes {
		if seen[c] {
			return nil, fmt.Errorf("evaluate: class %d %q appears twice", i, c)
		}
		seen[c] = true
	}
	m := make([][]int, len(classes))
	for i := range m {
		m[i] = make([]int, len(classes))
	}
	return &Confusion{Classes: append([]string(nil), classes...), Matrix: m}, nil
}

// Add counts one prediction; actual and predicted are indices into Classes.
func (c *Confusion) Add(actual, predicted int) error {
	if err := c.validate(); err != nil {
		return err
	}
	n := len(c.Classes)
	if actual < 0 || actual >= n {
		return fmt.Errorf("evaluate: actual class %d out of range [0,%d)", actual, n)
	}
	if predicted < 0 || predicted >= n {
		return fmt.Errorf("evaluate: predicted class %d out of range [0,%d)", predicted, n)
	}
	c.Matrix[actual][predicted]++
	return nil
}

// Merge adds the counts of o (e.g. another cross-validation fold) to c. Both must have the
// same classes in the same order.
func (c *Confusion) Merge(o *Confusion) error {
	if err := c.validate(); err != nil {
		return err
	}
	if err := o.validate(); err != nil {
		return fmt.Errorf("merging: %w", err)
	}
	if len(o.Classes) != len(c.Classes) {
		return fmt.Errorf("evaluate: merging %d classes into %d", len(o.Classes), len(c.Classes))
	}
	for i := range c.Classes {
		if c.Classes[i] != o.Classes[i] {
			return fmt.Errorf("evaluate: merging: class %d is %q, want %q", i, o.Classes[i], c.Classes[i])
		}
	}
	for a, row := range o.Matrix {
		for p, v := range row {
			c.Matrix[a][p] += v
		}
	}
	return nil
}

// Total is the number of samples counted.
func (c *Confusion) Total() int {
	t := 0
	for _, row := range c.Matrix {
		for _, v := range row {
			t += v
		}
	}
	return t
}

// validate guards against hand-built or decoded matrices that would make indexing panic.
func (c *Confusion) validate() error {
	if c == nil {
		return errors.New("evaluate: nil confusion matrix")
	}
	if len(c.Classes) == 0 {
		return errors.New("evaluate: confusion matrix has no classes")
	}
	return checkMatrix(c.Classes, c.Matrix)
}

func checkMatrix(classes []string, m [][]int) error {
	if len(m) != len(classes) {
		return fmt.Errorf("evaluate: confusion matrix has %d rows for %d classes", len(m), len(classes))
	}
	for i, row := range m {
		if len(row) != len(classes) {
			return fmt.Errorf("evaluate: confusion matrix row %d (%s) has %d columns for %d classes", i, classes[i], len(row), len(classes))
		}
		for j, v := range row {
			if v < 0 {
				return fmt.Errorf("evaluate: confusion matrix cell [%s][%s] = %d: counts cannot be negative", classes[i], classes[j], v)
			}
		}
	}
	return nil
}

// ClassMetrics are the one-vs-rest numbers of one class.
type ClassMetrics struct {
	Class     string  `json:"class"`
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	F1        float64 `json:"f1"`
	// Support is the number of samples whose actual class this is.
	Support int `json:"support"`
}

// Metrics summarises a confusion matrix.
type Metrics struct {
	Accuracy float64 `json:"accuracy"`
	// MacroF1 is the unweighted mean F1 over classes with support > 0.
	MacroF1  float64        `json:"macro_f1"`
	PerClass []ClassMetrics `json:"per_class"`
}

// Metrics computes accuracy, macro-F1 and per-class numbers (see the package comment for
// the zero-division conventions). A malformed matrix yields zero Metrics with one entry per
// class, so callers that skip Validate still get nothing misleading.
func (c *Confusion) Metrics() Metrics {
	if c.validate() != nil {
		return Metrics{}
	}
	return metricsOf(c.Classes, c.Matrix)
}

func metricsOf(classes []string, m [][]int) Metrics {
	n := len(classes)
	colSum := make([]int, n)
	total, correct := 0, 0
	for a, row := range m {
		for p, v := range row {
			colSum[p] += v
			total += v
			if a == p {
				correct += v
			}
		}
	}
	out := Metrics{PerClass: make([]ClassMetrics, n)}
	if total > 0 {
		out.Accuracy = float64(correct) / float64(total)
	}
	f1Sum, supported := 0.0, 0
	for k, name := range classes {
		support := 0
		for _, v := range m[k] {
			support += v
		}
		tp := m[k][k]
		cm := ClassMetrics{Class: name, Support: support}
		if colSum[k] > 0 {
			cm.Precision = float64(tp) / float64(colSum[k])
		}
		if support > 0 {
			cm.Recall = float64(tp) / float64(support)
		}
		if cm.Precision+cm.Recall > 0 {
			cm.F1 = 2 * cm.Precision * cm.Recall / (cm.Precision + cm.Recall)
		}
		if support > 0 {
			f1Sum += cm.F1
			supported++
		}
		out.PerClass[k] = cm
	}
	if supported > 0 {
		out.MacroF1 = f1Sum / float64(supported)
	}
	return out
}
