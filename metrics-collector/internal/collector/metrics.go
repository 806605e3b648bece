package collector

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

const namespace = "metrics_collector"

// metrics are the collector's own Prometheus series. They are built per Run on the registerer it
// is given, never on the global registry, so tests can run several collectors in one process.
type metrics struct {
	trainingDuration prometheus.Histogram
	trainingRuns     prometheus.Counter
	trainingFailures prometheus.Counter
	lastSuccess      prometheus.Gauge
	windows          *prometheus.GaugeVec
	samples          prometheus.Gauge
	podsPerType      *prometheus.GaugeVec
	excludedPods     *prometheus.GaugeVec
	accuracy         prometheus.Gauge
	macroF1          prometheus.Gauge
	anomalyRecall    *prometheus.GaugeVec
	anomalyFPR       *prometheus.GaugeVec
	modelInfo        *prometheus.GaugeVec
	publishSkipped   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		trainingDuration: f.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace,
			Name:      "training_duration_seconds",
			Help:      "Wall time of one training run: reading data, validation, final fit, reports and publishing.",
			Buckets:   prometheus.ExponentialBuckets(1, 2, 12), // 1 s .. ~1 h
		}),
		trainingRuns: f.NewCounter(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "training_runs_total",
			Help:      "Training runs started.",
		}),
		trainingFailures: f.NewCounter(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "training_failures_total",
			Help:      "Training runs that ended without publishing a bundle because of an error.",
		}),
		lastSuccess: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "last_success_timestamp_seconds",
			Help:      "Unix time at which the last bundle was published.",
		}),
		windows: f.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "training_windows",
			Help:      "Feature windows in the last training's dataset, by kind (normal: trained and validated on; fault: overlapping a labelled fault, recall only).",
		}, []string{"kind"}),
		samples: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "training_samples",
			Help:      "Grid points with data inside the last training's windows.",
		}),
		podsPerType: f.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "training_pods",
			Help:      "Pods with at least one normal window in the last training, per pod type.",
		}, []string{"pod_type"}),
		excludedPods: f.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "excluded_pods",
			Help:      "Pods left out of the last training, by reason.",
		}, []string{"reason"}),
		accuracy: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "validation_accuracy_ratio",
			Help:      "Classifier accuracy on held-out pods in the last training (summed over iterations).",
		}),
		macroF1: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "validation_macro_f1_ratio",
			Help:      "Classifier macro-F1 on held-out pods in the last training (summed over iterations).",
		}),
		anomalyRecall: f.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "anomaly_recall_ratio",
			Help:      "Share of labelled fault windows of held-out pods the type's isolation forest flagged, per pod type.",
		}, []string{"pod_type"}),
		anomalyFPR: f.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "anomaly_false_positive_ratio",
			Help:      "Share of normal windows of held-out pods the type's isolation forest flagged, per pod type.",
		}, []string{"pod_type"}),
		modelInfo: f.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "model_info",
			Help:      "The bundle currently served (value 1).",
		}, []string{"version"}),
		publishSkipped: f.NewCounter(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "publish_skipped_total",
			Help:      "Trained bundles not published because validation macro-F1 was below PUBLISH_MIN_MACRO_F1.",
		}),
	}
}
