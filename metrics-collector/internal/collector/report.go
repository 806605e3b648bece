package collector

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/podtype/podtype/metrics-collector/internal/dataset"
	"github.com/podtype/podtype/metrics-collector/internal/train"
	"github.com/podtype/podtype/shared/evaluate"
)

// report is report.json: the shared evaluate.Report (accuracy, macro_f1, classes,
// confusion_matrix, per_class, anomaly, learning_curve, training) plus what only the collector
// knows: the data behind the numbers and the recall per fault kind.
type report struct {
	*evaluate.Report
	Dataset        datasetSummary `json:"dataset"`
	AnomalyByFault []faultResult  `json:"anomaly_by_fault,omitempty"`
}

type datasetSummary struct {
	From          time.Time `json:"from"`
	To            time.Time `json:"to"`
	WindowStep    string    `json:"window_step"`
	WindowSamples int       `json:"window_samples"`
	NormalWindows int       `json:"normal_windows"`
	FaultWindows  int       `json:"fault_windows"`
	Samples       int       `json:"samples"`
	// MissingClasses are configured classes without usable windows, absent from the model.
	MissingClasses  []string `json:"missing_classes,omitempty"`
	Iterations      int      `json:"iterations"`
	TrainingRatio   float64  `json:"training_ratio"`
	Seed            uint64   `json:"seed"`
	TrainingSeconds float64  `json:"training_seconds"`
}

// faultResult is the recall of one type's forest on one kind of fault.
type faultResult struct {
	Type    string  `json:"type"`
	Fault   string  `json:"fault"`
	Windows int     `json:"windows"`
	Flagged int     `json:"flagged"`
	Recall  float64 `json:"recall"`
}

func ratio(num, den int) float64 {
	if den == 0 {
		return 0
	}
	return float64(num) / float64(den)
}

func newReport(ds *dataset.Dataset, res *train.Result, cfg Config) (*report, error) {
	val := res.Validation
	conf, err := evaluate.NewConfusion(val.Classes)
	if err != nil {
		return nil, err
	}
	conf.Matrix = val.Confusion
	r := &evaluate.Report{
		ModelVersion: res.Bundle.Version,
		CreatedAt:    res.Bundle.CreatedAt,
		Algorithm:    algorithmText(cfg),
		Validation: fmt.Sprintf("%d iterations of a random split by pod, %.0f%% of each type's pods training, the rest validating; "+
			"confusion matrices summed; learning curve over training pods per type; anomaly rates on validation pods (fault window: a labelled fault covers >= %.0f%% of it; "+
			"normal window: no fault touches it or the window before)",
			val.Iterations, 100*cfg.TrainingRatio, 100*cfg.FaultMinOverlap),
		Training: evaluate.TrainingSummary{
			PodsPerType:     val.PodsPerType,
			Windows:         len(ds.Normal),
			ExcludedPods:    ds.Excluded.Pods,
			ExcludedWindows: ds.Excluded.Windows,
		},
	}
	if err := r.SetConfusion(conf); err != nil {
		return nil, err
	}
	for _, p := range val.Curve {
		c, err := evaluate.NewConfusion(val.Classes)
		if err != nil {
			return nil, err
		}
		c.Matrix = p.Confusion
		m := c.Metrics()
		r.LearningCurve = append(r.LearningCurve, evaluate.CurvePoint{TrainPods: p.PodsPerType, Accuracy: m.Accuracy, MacroF1: m.MacroF1})
	}
	out := &report{Report: r}
	for _, a := range val.Anomaly {
		r.Anomaly = append(r.Anomaly, evaluate.AnomalyResult{
			Type:              a.Type,
			Threshold:         a.Threshold,
			Recall:            ratio(a.FaultFlagged, a.FaultWindows),
			FalsePositiveRate: ratio(a.NormalFlagged, a.NormalWindows),
			FaultWindows:      a.FaultWindows,
			NormalWindows:     a.NormalWindows,
		})
		for _, kind := range slices.Sorted(maps.Keys(a.FaultsByKind)) {
			n := a.FaultsByKind[kind]
			out.AnomalyByFault = append(out.AnomalyByFault, faultResult{Type: a.Type, Fault: kind, Windows: n[0], Flagged: n[1], Recall: ratio(n[1], n[0])})
		}
	}
	out.Dataset = datasetSummary{
		From:            ds.From,
		To:              ds.To,
		WindowStep:      ds.WindowStep.String(),
		WindowSamples:   ds.WindowSamples,
		NormalWindows:   len(ds.Normal),
		FaultWindows:    len(ds.Faults),
		Samples:         ds.Samples,
		MissingClasses:  val.MissingClasses,
		Iterations:      val.Iterations,
		TrainingRatio:   cfg.TrainingRatio,
		Seed:            cfg.Seed,
		TrainingSeconds: res.Duration.Seconds(),
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return out, nil
}

func algorithmText(cfg Config) string {
	s := cfg.ClassifierAlgorithm
	if cfg.ClassifierAlgorithm != "id3" {
		s += fmt.Sprintf(", %d trees", cfg.ClassifierTrees)
	}
	return s + fmt.Sprintf("; range-aware isolation forests of %d trees (sample %d) over load-invariant anomaly features, threshold at the %g quantile of out-of-pod scores",
		cfg.ForestTrees, cfg.ForestSampleSize, cfg.ForestThresholdQuantile)
}

// overallAnomaly sums the per-type anomaly counts of a report.
func (r *report) overallAnomaly() (recall, fpr float64, faults, normal int) {
	var tp, fp float64
	for _, a := range r.Anomaly {
		tp += a.Recall * float64(a.FaultWindows)
		fp += a.FalsePositiveRate * float64(a.NormalWindows)
		faults += a.FaultWindows
		normal += a.NormalWindows
	}
	if faults > 0 {
		recall = tp / float64(faults)
	}
	if normal > 0 {
		fpr = fp / float64(normal)
	}
	return recall, fpr, faults, normal
}

// writeReports prints the terminal table and writes report.json and report.html into REPORT_DIR.
func (c *Collector) writeReports(ctx context.Context, r *report) error {
	if err := evaluate.WriteText(c.stdout, r.Report); err != nil {
		return fmt.Errorf("report table: %w", err)
	}
	if c.cfg.ReportDir == "" {
		return nil
	}
	if err := os.MkdirAll(c.cfg.ReportDir, 0o755); err != nil {
		return fmt.Errorf("report dir: %w", err)
	}
	var js bytes.Buffer
	enc := json.NewEncoder(&js)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("report.json: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(c.cfg.ReportDir, "report.json"), js.Bytes()); err != nil {
		return err
	}
	var html bytes.Buffer
	if err := evaluate.WriteHTML(&html, r.Report); err != nil {
		return fmt.Errorf("report.html: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(c.cfg.ReportDir, "report.html"), html.Bytes()); err != nil {
		return err
	}
	c.logger.InfoContext(ctx, "reports written", "dir", c.cfg.ReportDir)
	return nil
}

// writeFileAtomic replaces path with data so that a reader never sees half a report.
func writeFileAtomic(path string, data []byte) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = os.Remove(f.Name())
		}
	}()
	if _, err = io.Copy(f, bytes.NewReader(data)); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
