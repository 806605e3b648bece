package collector

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/types"

	"github.com/podtype/podtype/metrics-collector/internal/dataset"
	"github.com/podtype/podtype/shared/config"
	"github.com/podtype/podtype/shared/model"
	"github.com/podtype/podtype/shared/telemetry"
)

var now = time.Date(2026, 1, 2, 16, 0, 0, 0, time.UTC)

// fakeSource serves in-memory pods and series, cut to the requested range.
type fakeSource struct {
	pods   []dataset.Pod
	series []*telemetry.Series
}

func (f *fakeSource) Pods(context.Context) ([]dataset.Pod, error) { return f.pods, nil }

// Series serves the pre-built series, whose restarts are none: any window will do.
func (f *fakeSource) Series(_ context.Context, from, to time.Time, step time.Duration, _ int) ([]*telemetry.Series, error) {
	var out []*telemetry.Series
	for _, s := range f.series {
		if s.Step != step {
			return nil, fmt.Errorf("step %s, have %s", step, s.Step)
		}
		i := int(from.Sub(s.Start) / step)
		j := int(to.Sub(s.Start) / step)
		out = append(out, s.Slice(i, j))
	}
	return out, nil
}

// newFakeSource simulates pods whose metric levels depend on their type (profiles[type] scales
// every metric), with per-pod load and per-sample noise, over the hour before now.
func newFakeSource(profiles map[string]float64, podsPerType int, seed uint64) *fakeSource {
	rng := rand.New(rand.NewPCG(seed, 1))
	step := 10 * time.Second
	start := now.Add(-time.Hour)
	n := int(time.Hour / step)
	f := &fakeSource{}
	for _, typ := range []string{"mysql", "nginx", "redis", "postgres"} {
		level, ok := profiles[typ]
		if !ok {
			continue
		}
		for p := range podsPerType {
			pod := types.NamespacedName{Namespace: "ns", Name: fmt.Sprintf("%s-%d", typ, p)}
			f.pods = append(f.pods, dataset.Pod{Name: pod, Type: typ, ImageSizeBytes: level * 1e8})
			load := 1 + 0.05*rng.NormFloat64()
			s := &telemetry.Series{Pod: pod, Node: "node-1", Start: start, Step: step}
			for _, m := range telemetry.Metrics() {
				v := make([]float64, n)
				for i := range v {
					v[i] = level * load * float64(int(m)+1) * (1 + 0.05*rng.NormFloat64())
				}
				s.Values[m] = v
			}
			f.series = append(f.series, s)
		}
	}
	return f
}

func testConfig(t *testing.T, env map[string]string) Config {
	t.Helper()
	dir := t.TempDir()
	base := map[string]string{
		"MODEL_PATH":          filepath.Join(dir, "model", "model.json.gz"),
		"REPORT_DIR":          filepath.Join(dir, "reports"),
		"CLASSES":             "mysql,nginx,redis",
		"FETCH_WINDOW":        "1h",
		"WINDOW_SAMPLES":      "6",
		"WINDOW_STEP":         "10s",
		"TRAINING_ITERATIONS": "2",
		"TRAINING_RATIO":      "0.5",
		"CLASSIFIER_TREES":    "5",
		"FOREST_TREES":        "20",
		"HTTP_ADDR":           "127.0.0.1:0",
	}
	for k, v := range env {
		base[k] = v
	}
	var cfg Config
	if err := config.Load(&cfg, base); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestTrainOnce(t *testing.T) {
	cfg := testConfig(t, nil)
	src := newFakeSource(map[string]float64{"mysql": 1, "nginx": 2, "redis": 4, "postgres": 8}, 4, 1)
	var stdout bytes.Buffer
	c := New(cfg, Options{Source: src, Now: func() time.Time { return now }, Stdout: &stdout})
	res, err := c.TrainOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	if !strings.Contains(stdout.String(), "Confusion matrix") {
		t.Errorf("no terminal table on stdout:\n%s", stdout.String())
	}
	var rep struct {
		Accuracy        float64           `json:"accuracy"`
		MacroF1         float64           `json:"macro_f1"`
		Classes         []string          `json:"classes"`
		ConfusionMatrix [][]int           `json:"confusion_matrix"`
		PerClass        []json.RawMessage `json:"per_class"`
		Anomaly         []json.RawMessage `json:"anomaly"`
		Training        struct {
			ExcludedPods map[string]map[string]int `json:"excluded_pods"`
		} `json:"training"`
		Dataset struct {
			NormalWindows int `json:"normal_windows"`
		} `json:"dataset"`
	}
	raw, err := os.ReadFile(filepath.Join(cfg.ReportDir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rep.Classes, []string{"mysql", "nginx", "redis"}) || len(rep.ConfusionMatrix) != 3 ||
		len(rep.PerClass) != 3 || len(rep.Anomaly) != 3 {
		t.Errorf("report.json: classes %v, %d matrix rows, %d per-class, %d anomaly rows", rep.Classes, len(rep.ConfusionMatrix), len(rep.PerClass), len(rep.Anomaly))
	}
	if rep.Accuracy < 0.95 {
		t.Errorf("accuracy %v on well separated types", rep.Accuracy)
	}
	if got := rep.Training.ExcludedPods[dataset.ReasonOtherType]["postgres"]; got != 4 {
		t.Errorf("excluded postgres pods = %d, want 4", got)
	}
	if rep.Dataset.NormalWindows != 12*60 {
		t.Errorf("normal windows %d, want 12 pods x 60 windows", rep.Dataset.NormalWindows)
	}
	if html, err := os.ReadFile(filepath.Join(cfg.ReportDir, "report.html")); err != nil || !bytes.Contains(html, []byte("<svg")) {
		t.Errorf("report.html missing or without SVG (err %v)", err)
	}
	b, err := model.ReadFile(cfg.ModelPath)
	if err != nil {
		t.Fatalf("published bundle does not load: %v", err)
	}
	if b.Version != res.Bundle.Version || b.WindowSamples != 6 || b.WindowStep != 10*time.Second {
		t.Errorf("bundle version %s (trained %s), window %d x %s", b.Version, res.Bundle.Version, b.WindowSamples, b.WindowStep)
	}
	if got := testutil.ToFloat64(c.metrics.macroF1); got != rep.MacroF1 {
		t.Errorf("macro-F1 gauge %v, report %v", got, rep.MacroF1)
	}
	if got := testutil.ToFloat64(c.metrics.lastSuccess); got != float64(now.Unix()) {
		t.Errorf("last success %v, want %v", got, now.Unix())
	}
	if got := testutil.ToFloat64(c.metrics.podsPerType.WithLabelValues("redis")); got != 4 {
		t.Errorf("redis pods gauge %v, want 4", got)
	}

	t.Run("export then train from csv gives the same models", func(t *testing.T) {
		var csv bytes.Buffer
		if err := c.Export(context.Background(), &csv); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "dataset.csv")
		if err := os.WriteFile(path, csv.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg2 := testConfig(t, nil)
		offline := New(cfg2, Options{Now: func() time.Time { return now }})
		res2, err := offline.TrainFromCSV(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(res2.Validation, res.Validation) {
			t.Error("validation from the CSV differs from the online training")
		}
		if !reflect.DeepEqual(res2.Bundle.Classifier, res.Bundle.Classifier) || !reflect.DeepEqual(res2.Bundle.Types, res.Bundle.Types) {
			t.Error("models trained from the CSV differ from the online training")
		}
	})
}

func TestQualityGate(t *testing.T) {
	// mysql and nginx behave the same: macro-F1 cannot reach 0.99.
	cfg := testConfig(t, map[string]string{"PUBLISH_MIN_MACRO_F1": "0.99", "CLASSES": "mysql,nginx"})
	src := newFakeSource(map[string]float64{"mysql": 1, "nginx": 1}, 4, 2)
	c := New(cfg, Options{Source: src, Now: func() time.Time { return now }})
	_, err := c.TrainOnce(context.Background())
	if !errors.Is(err, ErrQualityGate) {
		t.Fatalf("err = %v, want ErrQualityGate", err)
	}
	if _, err := os.Stat(cfg.ModelPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("bundle written despite the gate: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.ReportDir, "report.json")); err != nil {
		t.Errorf("report not written for a gated training: %v", err)
	}
	if got := testutil.ToFloat64(c.metrics.publishSkipped); got != 1 {
		t.Errorf("publish skipped = %v, want 1", got)
	}
	if got := testutil.ToFloat64(c.metrics.trainingFailures); got != 0 {
		t.Errorf("training failures = %v, want 0 (a gated bundle is no failure)", got)
	}
}

func TestTrainingFailureCounted(t *testing.T) {
	cfg := testConfig(t, nil)
	c := New(cfg, Options{Source: &fakeSource{}, Now: func() time.Time { return now }})
	if _, err := c.TrainOnce(context.Background()); err == nil {
		t.Fatal("training without data succeeded")
	}
	if got := testutil.ToFloat64(c.metrics.trainingFailures); got != 1 {
		t.Errorf("training failures = %v, want 1", got)
	}
}

func TestServe(t *testing.T) {
	cfg := testConfig(t, nil)
	src := newFakeSource(map[string]float64{"mysql": 1, "nginx": 2, "redis": 4}, 2, 3)
	trained := New(cfg, Options{Source: src, Now: func() time.Time { return now }})
	if _, err := trained.TrainOnce(context.Background()); err != nil {
		t.Fatal(err)
	}

	// A new process serves what the last one published.
	ready := make(chan net.Addr, 1)
	reg := prometheus.NewRegistry()
	c := New(cfg, Options{Ready: ready, Registry: reg})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.Serve(ctx) }()
	addr := <-ready
	resp, err := http.Get("http://" + addr.String() + "/model")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("ETag") == "" {
		t.Errorf("GET /model = %d, ETag %q", resp.StatusCode, resp.Header.Get("ETag"))
	}
	if _, err := model.Decode(bytes.NewReader(body)); err != nil {
		t.Errorf("served bundle: %v", err)
	}
	resp, err = http.Get("http://" + addr.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(metrics, []byte("metrics_collector_model_info{version=")) {
		t.Error("/metrics lacks metrics_collector_model_info")
	}
	cancel()
	if err := <-errc; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

func TestRunOnInterval(t *testing.T) {
	cfg := testConfig(t, map[string]string{"TRAIN_INTERVAL": "1h"})
	src := newFakeSource(map[string]float64{"mysql": 1, "nginx": 2, "redis": 4}, 2, 4)
	ready := make(chan net.Addr, 1)
	c := New(cfg, Options{Source: src, Now: func() time.Time { return now }, Ready: ready})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx) }()
	base := "http://" + (<-ready).String()

	// The first training starts at once; the server answers meanwhile and turns ready with it.
	for {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			break
		}
		select {
		case err := <-errc:
			t.Fatalf("Run ended before the first bundle: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	resp, err := http.Get(base + "/model")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /model after the first training = %d", resp.StatusCode)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Errorf("Run after cancel: %v", err)
	}
}
