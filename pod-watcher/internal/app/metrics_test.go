package app

import (
	"errors"
	"flag"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/types"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func TestMetricsLint(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newMetrics(reg)
	observeAll(m) // vectors only show up in the exposition once they have children
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}

func observeAll(m *metrics) {
	a := types.NamespacedName{Namespace: "shop", Name: "db-0"}
	b := types.NamespacedName{Namespace: "shop", Name: "web-0"}
	m.Classified("mysql")
	m.Classified("unknown")
	m.FirstClassification(90*time.Second, 12*time.Second)
	m.ClassificationTimedOut()
	m.AnomalyScore(a, "mysql", 0.71)
	m.AnomalyScore(b, "nginx", 0.3)
	m.ForgetPod(b, "nginx") // pod deleted: its series goes
	m.AnomalyRaised("mysql")
	m.ActionDone(nil)
	m.ActionDone(errors.New("webhook down"))
	m.WatchedPods(3)
	m.Query(200*time.Millisecond, nil)
	m.Query(30*time.Second, errors.New("timeout"))
	m.ModelLoaded("v1")
	m.ModelLoaded("v2") // only the model in use is reported
	m.ModelLoadFailed()
	m.Leading(true)
}

func TestMetricsGolden(t *testing.T) {
	reg := prometheus.NewRegistry()
	observeAll(newMetrics(reg))
	path := filepath.Join("testdata", "metrics.txt")
	if *update {
		rec := httptest.NewRecorder()
		promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		if err := os.WriteFile(path, rec.Body.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := testutil.GatherAndCompare(reg, f); err != nil {
		t.Error(err)
	}
}
