package app

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"k8s.io/apimachinery/pkg/types"
)

// namespace prefixes every metric of the service.
const namespace = "podwatcher"

// metrics are the service's own Prometheus metrics. They implement the Observer interfaces of
// the internal packages, so each package reports what it sees without knowing about Prometheus.
// Label values are bounded: pod_type by the model's classes plus "unknown", and the per-pod
// anomaly_score series are deleted when their pod goes.
type metrics struct {
	classified        *prometheus.CounterVec
	startToClassified prometheus.Histogram
	firstToClassified prometheus.Histogram
	timeouts          prometheus.Counter
	anomalyScore      *prometheus.GaugeVec
	anomalies         *prometheus.CounterVec
	watchedPods       prometheus.Gauge
	queries           prometheus.Counter
	queryDuration     prometheus.Histogram
	fetchErrors       prometheus.Counter
	modelInfo         *prometheus.GaugeVec
	modelLoadErrors   prometheus.Counter
	actions           *prometheus.CounterVec
	leader            prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	// Classification needs a full window (minutes), so the buckets span seconds to an hour.
	delay := prometheus.ExponentialBuckets(5, 2, 10) // 5 s .. 42 min
	m := &metrics{
		classified: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "pods_classified_total",
			Help: "Pod type decisions made, by type (\"unknown\" when no class fits).",
		}, []string{"pod_type"}),
		startToClassified: f.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "pod_start_to_classification_seconds",
			Help:    "Time from a pod's start to its first type decision.",
			Buckets: delay,
		}),
		firstToClassified: f.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "first_sample_to_classification_seconds",
			Help:    "Time from a pod's first metrics sample to its first type decision.",
			Buckets: delay,
		}),
		timeouts: f.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "classification_timeouts_total",
			Help: "Pods marked unclassified because not enough metrics arrived in time.",
		}),
		anomalyScore: f.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "anomaly_score",
			Help: "Latest isolation forest score of a pod's window (0..1, higher is more anomalous).",
		}, []string{"namespace", "pod", "pod_type"}),
		anomalies: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "anomalies_total",
			Help: "Anomaly episodes opened, by pod type.",
		}, []string{"pod_type"}),
		watchedPods: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "watched_pods",
			Help: "Running pods with a tracker.",
		}),
		queries: f.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "influx_queries_total",
			Help: "InfluxDB queries issued (one per interval for all pods).",
		}),
		queryDuration: f.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "influx_query_duration_seconds",
			Help:    "Duration of InfluxDB queries, failed ones included.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 12), // 10 ms .. 20 s
		}),
		fetchErrors: f.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "fetch_errors_total",
			Help: "Failed InfluxDB reads; pods keep waiting and the read is retried with backoff.",
		}),
		modelInfo: f.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "model_info",
			Help: "The model bundle in use (value 1).",
		}, []string{"version"}),
		modelLoadErrors: f.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "model_load_errors_total",
			Help: "Failed model loads (unreachable, corrupt or invalid); the last good model stays in use.",
		}),
		actions: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "actions_total",
			Help: "Anomaly actions run, by result.",
		}, []string{"result"}),
		leader: f.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "leader",
			Help: "1 while this replica holds the leader lease and does the work, else 0.",
		}),
	}
	for _, r := range []string{"success", "failure"} {
		m.actions.WithLabelValues(r)
	}
	return m
}

// Classified implements tracker.Observer.
func (m *metrics) Classified(podType string) { m.classified.WithLabelValues(podType).Inc() }

// FirstClassification implements tracker.Observer.
func (m *metrics) FirstClassification(sinceStart, sinceFirstSample time.Duration) {
	m.startToClassified.Observe(sinceStart.Seconds())
	m.firstToClassified.Observe(sinceFirstSample.Seconds())
}

// ClassificationTimedOut implements tracker.Observer.
func (m *metrics) ClassificationTimedOut() { m.timeouts.Inc() }

// AnomalyScore implements tracker.Observer.
func (m *metrics) AnomalyScore(pod types.NamespacedName, podType string, score float64) {
	m.anomalyScore.WithLabelValues(pod.Namespace, pod.Name, podType).Set(score)
}

// ForgetPod implements tracker.Observer.
func (m *metrics) ForgetPod(pod types.NamespacedName, podType string) {
	m.anomalyScore.DeleteLabelValues(pod.Namespace, pod.Name, podType)
}

// AnomalyRaised implements tracker.Observer.
func (m *metrics) AnomalyRaised(podType string) { m.anomalies.WithLabelValues(podType).Inc() }

// ActionDone implements tracker.Observer.
func (m *metrics) ActionDone(err error) {
	if err != nil {
		m.actions.WithLabelValues("failure").Inc()
		return
	}
	m.actions.WithLabelValues("success").Inc()
}

// WatchedPods implements controller.Observer.
func (m *metrics) WatchedPods(n int) { m.watchedPods.Set(float64(n)) }

// Query implements fetcher.Observer.
func (m *metrics) Query(d time.Duration, err error) {
	m.queries.Inc()
	m.queryDuration.Observe(d.Seconds())
	if err != nil {
		m.fetchErrors.Inc()
	}
}

// ModelLoaded implements modelsource.Observer.
func (m *metrics) ModelLoaded(version string) {
	m.modelInfo.Reset()
	m.modelInfo.WithLabelValues(version).Set(1)
}

// ModelLoadFailed implements modelsource.Observer.
func (m *metrics) ModelLoadFailed() { m.modelLoadErrors.Inc() }

// Leading records whether this replica does the work.
func (m *metrics) Leading(on bool) {
	if on {
		m.leader.Set(1)
		return
	}
	m.leader.Set(0)
}
