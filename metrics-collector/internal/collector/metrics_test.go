package collector

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMetricsLint(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := newMetrics(reg)
	// Touch every vector so it is exposed and linted.
	m.windows.WithLabelValues("normal").Set(10)
	m.podsPerType.WithLabelValues("mysql").Set(8)
	m.excludedPods.WithLabelValues("other_type").Set(1)
	m.anomalyRecall.WithLabelValues("mysql").Set(0.9)
	m.anomalyFPR.WithLabelValues("mysql").Set(0.01)
	m.modelInfo.WithLabelValues("v1").Set(1)
	m.trainingDuration.Observe(12)

	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
	names, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range names {
		if !strings.HasPrefix(mf.GetName(), namespace+"_") {
			t.Errorf("metric %s lacks the %s_ prefix", mf.GetName(), namespace)
		}
	}
}

func TestMetricsPerRegistry(t *testing.T) {
	// Two collectors in one process (as in tests) must not collide: nothing is global.
	newMetrics(prometheus.NewRegistry())
	newMetrics(prometheus.NewRegistry())
}

func TestMetricsValues(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newMetrics(reg)
	m.trainingFailures.Inc()
	m.lastSuccess.Set(1.7e9)
	want := `
# HELP metrics_collector_last_success_timestamp_seconds Unix time at which the last bundle was published.
# TYPE metrics_collector_last_success_timestamp_seconds gauge
metrics_collector_last_success_timestamp_seconds 1.7e+09
# HELP metrics_collector_training_failures_total Training runs that ended without publishing a bundle because of an error.
# TYPE metrics_collector_training_failures_total counter
metrics_collector_training_failures_total 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"metrics_collector_last_success_timestamp_seconds", "metrics_collector_training_failures_total"); err != nil {
		t.Error(err)
	}
}
