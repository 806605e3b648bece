// Package collector is the metrics-collector service: it reads telemetry and the pod inventory,
// trains the pod-type classifier and per-type anomaly models (package train), writes the
// reports, and publishes the bundle to disk and over HTTP (package publish).
package collector

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/podtype/podtype/metrics-collector/internal/dataset"
	"github.com/podtype/podtype/metrics-collector/internal/publish"
	"github.com/podtype/podtype/metrics-collector/internal/train"
	"github.com/podtype/podtype/shared/httpserve"
	"github.com/podtype/podtype/shared/iforest"
	"github.com/podtype/podtype/shared/model"
)

// ErrQualityGate is returned when a trained bundle was not published because its validation
// macro-F1 was below PUBLISH_MIN_MACRO_F1; the previous bundle stays in place.
var ErrQualityGate = errors.New("bundle not published: validation macro-F1 below PUBLISH_MIN_MACRO_F1")

// Options are the collaborators of a Collector; the zero value works outside tests.
type Options struct {
	// Logger receives progress and errors; nil discards them.
	Logger *slog.Logger
	// Registry receives the collector's metrics and is served at /metrics; nil makes a new one
	// with the Go and process collectors.
	Registry *prometheus.Registry
	// Stdout receives the terminal report table; nil discards it.
	Stdout io.Writer
	// Source overrides where data comes from; nil builds the InfluxDB and Kubernetes source
	// from the configuration on first use.
	Source dataset.Source
	// Now is the clock that decides the end of the fetch window; nil is time.Now.
	Now func() time.Time
	// Ready, if not nil, receives the HTTP server's bound address (tests listen on ":0").
	Ready chan<- net.Addr
}

// Collector trains and publishes model bundles.
type Collector struct {
	cfg     Config
	opt     Options
	logger  *slog.Logger
	reg     *prometheus.Registry
	metrics *metrics
	store   *publish.Store
	stdout  io.Writer
	source  dataset.Source
	now     func() time.Time
}

// New returns a Collector for cfg, which must have been validated.
func New(cfg Config, opt Options) *Collector {
	c := &Collector{cfg: cfg, opt: opt, logger: opt.Logger, reg: opt.Registry, stdout: opt.Stdout,
		source: opt.Source, now: opt.Now, store: &publish.Store{}}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	if c.reg == nil {
		c.reg = prometheus.NewRegistry()
		c.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	if c.stdout == nil {
		c.stdout = io.Discard
	}
	if c.now == nil {
		c.now = time.Now
	}
	c.metrics = newMetrics(c.reg)
	return c
}

// Handler serves /model, /healthz, /readyz and /metrics.
func (c *Collector) Handler() http.Handler { return publish.Handler(c.store, c.reg, c.logger) }

// Run is the `train` command: one training when TRAIN_INTERVAL is 0, otherwise a training every
// TRAIN_INTERVAL while serving the current bundle over HTTP, until ctx ends. In the loop a failed
// training is logged and counted and the previous bundle keeps being served.
func (c *Collector) Run(ctx context.Context) error {
	if c.cfg.TrainInterval == 0 {
		_, err := c.TrainOnce(ctx)
		return err
	}
	c.loadExisting(ctx)
	return c.serveWhile(ctx, func(ctx context.Context) error {
		for {
			if _, err := c.TrainOnce(ctx); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				c.logger.ErrorContext(ctx, "training failed; serving the previous bundle", "err", err,
					"next_in", c.cfg.TrainInterval)
			}
			t := time.NewTimer(c.cfg.TrainInterval)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
		}
	})
}

// Serve is the `serve` command: serve the bundle at MODEL_PATH (reloading nothing) until ctx ends.
func (c *Collector) Serve(ctx context.Context) error {
	c.loadExisting(ctx)
	return c.serveWhile(ctx, func(ctx context.Context) error {
		<-ctx.Done()
		return nil
	})
}

// serveWhile runs the HTTP server and work together; whichever ends first stops the other.
func (c *Collector) serveWhile(ctx context.Context, work func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	srvErr := make(chan error, 1)
	go func() {
		srvErr <- httpserve.Serve(ctx, c.cfg.HTTPAddr, c.Handler(), c.logger, c.opt.Ready)
		cancel()
	}()
	workErr := work(ctx)
	cancel()
	if err := <-srvErr; err != nil {
		return err
	}
	return workErr
}

// loadExisting serves the bundle a previous run left at MODEL_PATH, so a restarted collector
// answers watchers at once instead of after its first training.
func (c *Collector) loadExisting(ctx context.Context) {
	snap, err := c.store.Load(c.cfg.ModelPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		c.logger.InfoContext(ctx, "no bundle yet; /model answers 503 until the first training", "path", c.cfg.ModelPath)
	case err != nil:
		c.logger.WarnContext(ctx, "existing bundle not served", "path", c.cfg.ModelPath, "err", err)
	default:
		c.metrics.modelInfo.Reset()
		c.metrics.modelInfo.WithLabelValues(snap.Version).Set(1)
		c.logger.InfoContext(ctx, "serving existing bundle", "path", c.cfg.ModelPath, "version", snap.Version)
	}
}

// TrainOnce reads FETCH_WINDOW of data, trains, reports and publishes.
func (c *Collector) TrainOnce(ctx context.Context) (*train.Result, error) {
	return c.instrumented(ctx, func() (*dataset.Dataset, error) { return c.Collect(ctx) })
}

// TrainFromCSV trains on an exported dataset; no server is contacted.
func (c *Collector) TrainFromCSV(ctx context.Context, path string) (*train.Result, error) {
	return c.instrumented(ctx, func() (*dataset.Dataset, error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		ds, err := dataset.ReadCSV(f, c.datasetOptions(nil))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		c.logger.InfoContext(ctx, "dataset read from csv", "path", path, "normal_windows", len(ds.Normal), "fault_windows", len(ds.Faults))
		return ds, nil
	})
}

// Export writes the dataset of FETCH_WINDOW as CSV to w.
func (c *Collector) Export(ctx context.Context, w io.Writer) error {
	ds, err := c.Collect(ctx)
	if err != nil {
		return err
	}
	if err := dataset.WriteCSV(w, ds); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	c.logger.InfoContext(ctx, "dataset exported", "normal_windows", len(ds.Normal), "fault_windows", len(ds.Faults))
	return nil
}

// Collect reads the inventory, the fault labels and FETCH_WINDOW of telemetry into a dataset.
func (c *Collector) Collect(ctx context.Context) (*dataset.Dataset, error) {
	faults, err := dataset.ReadFaultsFile(c.cfg.FaultLabelsFile)
	if err != nil {
		return nil, err
	}
	if c.source == nil {
		if c.source, err = newSource(c.cfg, c.logger); err != nil {
			return nil, err
		}
	}
	return dataset.Collect(ctx, c.source, c.now(), c.cfg.FetchWindow, 0, c.datasetOptions(faults), c.logger)
}

func (c *Collector) datasetOptions(faults []dataset.Fault) dataset.Options {
	return dataset.Options{
		Classes:         c.cfg.Classes,
		WindowSamples:   c.cfg.WindowSamples,
		WindowStep:      c.cfg.WindowStep,
		Faults:          faults,
		FaultMinOverlap: c.cfg.FaultMinOverlap,
	}
}

func (c *Collector) trainOptions() train.Options {
	return train.Options{
		Classes:    c.cfg.Classes,
		Ratio:      c.cfg.TrainingRatio,
		Iterations: c.cfg.TrainingIterations,
		MaxNumber:  c.cfg.TrainingMaxNumber,
		Seed:       c.cfg.Seed,
		Classifier: model.TrainOptions{
			Algorithm: c.cfg.ClassifierAlgorithm,
			Trees:     c.cfg.ClassifierTrees,
		},
		Forest:            iforest.Config{Trees: c.cfg.ForestTrees, SampleSize: c.cfg.ForestSampleSize},
		ThresholdQuantile: c.cfg.ForestThresholdQuantile,
		Now:               c.now,
	}
}

// instrumented runs one training on the dataset load returns and records it in the metrics.
func (c *Collector) instrumented(ctx context.Context, load func() (*dataset.Dataset, error)) (*train.Result, error) {
	started := time.Now()
	c.metrics.trainingRuns.Inc()
	res, err := c.trainAndPublish(ctx, load)
	c.metrics.trainingDuration.Observe(time.Since(started).Seconds())
	switch {
	case errors.Is(err, ErrQualityGate):
		c.metrics.publishSkipped.Inc()
	case err != nil:
		c.metrics.trainingFailures.Inc()
	}
	return res, err
}

func (c *Collector) trainAndPublish(ctx context.Context, load func() (*dataset.Dataset, error)) (*train.Result, error) {
	ds, err := load()
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	c.recordDataset(ds)
	c.logger.InfoContext(ctx, "training", "normal_windows", len(ds.Normal), "fault_windows", len(ds.Faults),
		"iterations", c.cfg.TrainingIterations, "algorithm", c.cfg.ClassifierAlgorithm)
	res, err := train.Run(ctx, ds, c.trainOptions(), c.logger)
	if err != nil {
		return nil, err
	}
	// Encoding stamps the bundle's content-derived version; the reports must name the version
	// they describe even when the quality gate below keeps the bundle from being published.
	if err := model.Encode(io.Discard, res.Bundle); err != nil {
		return res, fmt.Errorf("bundle: %w", err)
	}
	rep, err := newReport(ds, res, c.cfg)
	if err != nil {
		return res, fmt.Errorf("report: %w", err)
	}
	c.recordValidation(rep)
	if err := c.writeReports(ctx, rep); err != nil {
		return res, err
	}
	if f1 := rep.MacroF1; f1 < c.cfg.PublishMinMacroF1 {
		c.logger.WarnContext(ctx, "bundle not published", "macro_f1", f1, "min", c.cfg.PublishMinMacroF1)
		return res, fmt.Errorf("%w: %.3f < %.3f", ErrQualityGate, f1, c.cfg.PublishMinMacroF1)
	}
	snap, err := c.store.Publish(c.cfg.ModelPath, res.Bundle)
	if err != nil {
		return res, err
	}
	c.metrics.lastSuccess.Set(float64(c.now().Unix()))
	c.metrics.modelInfo.Reset()
	c.metrics.modelInfo.WithLabelValues(snap.Version).Set(1)
	c.logger.InfoContext(ctx, "bundle published", "path", c.cfg.ModelPath, "version", snap.Version,
		"bytes", len(snap.Data), "macro_f1", rep.MacroF1, "accuracy", rep.Accuracy,
		"training_duration", res.Duration.Round(time.Millisecond))
	return res, nil
}

func (c *Collector) recordDataset(ds *dataset.Dataset) {
	m := c.metrics
	m.windows.WithLabelValues("normal").Set(float64(len(ds.Normal)))
	m.windows.WithLabelValues("fault").Set(float64(len(ds.Faults)))
	m.samples.Set(float64(ds.Samples))
	m.excludedPods.Reset()
	for reason, byType := range ds.Excluded.Pods {
		n := 0
		for _, v := range byType {
			n += v
		}
		m.excludedPods.WithLabelValues(reason).Set(float64(n))
	}
}

func (c *Collector) recordValidation(r *report) {
	m := c.metrics
	m.accuracy.Set(r.Accuracy)
	m.macroF1.Set(r.MacroF1)
	// Types come from CLASSES, so the label set is bounded by configuration; Reset drops types
	// that left it.
	m.podsPerType.Reset()
	for typ, n := range r.Training.PodsPerType {
		m.podsPerType.WithLabelValues(typ).Set(float64(n))
	}
	m.anomalyRecall.Reset()
	m.anomalyFPR.Reset()
	for _, a := range r.Anomaly {
		if a.FaultWindows > 0 {
			m.anomalyRecall.WithLabelValues(a.Type).Set(a.Recall)
		}
		m.anomalyFPR.WithLabelValues(a.Type).Set(a.FalsePositiveRate)
	}
}
