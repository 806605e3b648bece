//go:build integration

package collector

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/podtype/podtype/shared/config"
	"github.com/podtype/podtype/shared/model"
	"github.com/podtype/podtype/shared/sim"
	"github.com/podtype/podtype/shared/stacktest"
)

// Targets of issue 3, measured on pods the models never saw.
const (
	minMacroF1       = 0.95
	minAnomalyRecall = 0.90
	maxAnomalyFPR    = 0.05
	// faultKindsInWindow are the injected faults that show within a single window (a restart
	// loop through the restart count, which looks a window back); the recall target is
	// checked on them, pooled. Inside a window of 20 s, the length CI's time allows here, the
	// first minutes of a memory leak look like a normal warm-up, so leaks are only logged; on
	// windows of 4 minutes train.TestAnomalyTargetsOnFourMinuteWindows asserts every kind.
	faultKindsInWindow = "cpu_saturation,network_flood,disk_fill,restart_loop"
)

// TestTrainOnStack runs the simulator in-process against the real kube-apiserver, lets a Telegraf
// of its own scrape it every second into the real InfluxDB, and then runs one training of the
// collector exactly as `metrics-collector train` would: inventory from the API, one Flux query per
// chunk, fault labels from the simulator's labels file.
func TestTrainOnStack(t *testing.T) {
	env := stacktest.Load(t)
	// Eight minutes give about 200 validation windows of the asserted fault kinds, so the 90%
	// recall target is measured to about ±2% (binomial standard error). Four minutes gave about
	// 80, ±3.5%, and one CI run in six drew 0.885 where the others drew 0.93-1.00.
	collect := 8 * time.Minute
	if s := os.Getenv("COLLECTOR_IT_MINUTES"); s != "" {
		m, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("COLLECTOR_IT_MINUTES=%q: %v", s, err)
		}
		collect = time.Duration(m) * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), collect+4*time.Minute)
	defer cancel()
	logger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	dir := t.TempDir()
	labels := filepath.Join(dir, "faults.jsonl")

	// The simulated cluster: every workload type, 8 pods each, a compressed day so a few minutes
	// see load change, and random faults of every kind with ground truth in the labels file.
	ns := stacktest.UniqueName("mc-it")
	sc := sim.DefaultConfig()
	sc.Namespace = ns
	sc.NodePrefix = ns + "-"
	sc.PodsPerType = 8
	sc.DayLength = 3 * time.Minute
	sc.FaultRate = 12
	sc.FaultMinDuration = 30 * time.Second
	sc.FaultMaxDuration = 90 * time.Second
	sc.LabelsFile = labels
	// The simulator logs every fault at info; the labels file has them.
	simLogger := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	cluster, kubeletsURL := env.StartCluster(ctx, t, sc, simLogger)
	step := time.Second
	env.StartTelegraf(t, cluster.NodeURLs(kubeletsURL), step, nil)
	started := time.Now()

	t.Logf("collecting %s of 1 s samples from %d pods in namespace %s", collect, len(cluster.Pods()), ns)
	select {
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	case <-time.After(collect):
	}

	var cfg Config
	err := config.Load(&cfg, map[string]string{
		"INFLUXDB_URL":        env.InfluxURL,
		"INFLUXDB_DATABASE":   env.InfluxDatabase,
		"INFLUXDB_USERNAME":   env.InfluxUser,
		"INFLUXDB_PASSWORD":   env.InfluxPassword,
		"KUBECONFIG":          env.Kubeconfig,
		"NAMESPACES":          ns,
		"CLASSES":             strings.Join(sim.Types(), ","),
		"FETCH_WINDOW":        time.Since(started).Round(time.Second).String(),
		"WINDOW_STEP":         step.String(),
		"WINDOW_SAMPLES":      "20",
		"TRAINING_RATIO":      "0.7",
		"TRAINING_ITERATIONS": "5",
		"FAULT_LABELS_FILE":   labels,
		// A fault window is one mostly inside a fault: a window half in a fault is half normal
		// data. Windows covered less are left out of training and scoring alike.
		"FAULT_MIN_OVERLAP": "0.8",
		"MODEL_PATH":        filepath.Join(dir, "model.json.gz"),
		"REPORT_DIR":        filepath.Join(dir, "reports"),
	})
	if err != nil {
		t.Fatal(err)
	}
	c := New(cfg, Options{Logger: logger, Stdout: t.Output()})
	trainStart := time.Now()
	if err := c.Run(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("training run took %s", time.Since(trainStart).Round(time.Millisecond))
	// COLLECTOR_IT_EXPORT keeps the run's windows as CSV (train --from-csv reads it), so a
	// result can be studied offline after the namespace is gone.
	if path := os.Getenv("COLLECTOR_IT_EXPORT"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Export(ctx, f); err != nil {
			t.Error(err)
		}
		if err := f.Close(); err != nil {
			t.Error(err)
		}
	}

	raw, err := os.ReadFile(filepath.Join(cfg.ReportDir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Accuracy float64  `json:"accuracy"`
		MacroF1  float64  `json:"macro_f1"`
		Classes  []string `json:"classes"`
		Anomaly  []struct {
			Type              string  `json:"type"`
			Recall            float64 `json:"recall"`
			FalsePositiveRate float64 `json:"false_positive_rate"`
			FaultWindows      int     `json:"fault_windows"`
			NormalWindows     int     `json:"normal_windows"`
		} `json:"anomaly"`
		AnomalyByFault []struct {
			Type    string `json:"type"`
			Fault   string `json:"fault"`
			Windows int    `json:"windows"`
			Flagged int    `json:"flagged"`
		} `json:"anomaly_by_fault"`
	}
	if err := json.Unmarshal(raw, &rep); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(cfg.ReportDir, "report.html")); err != nil {
		t.Error(err)
	}
	b, err := model.ReadFile(cfg.ModelPath)
	if err != nil {
		t.Fatalf("bundle does not load: %v", err)
	}
	if len(b.Classes) != len(sim.Types()) || b.WindowStep != step || b.WindowSamples != 20 {
		t.Errorf("bundle: %d classes, window %d x %s", len(b.Classes), b.WindowSamples, b.WindowStep)
	}

	t.Logf("held-out pods: accuracy %.3f, macro-F1 %.3f", rep.Accuracy, rep.MacroF1)
	if len(rep.Classes) != len(sim.Types()) {
		t.Errorf("report has classes %v, want all %d simulated types", rep.Classes, len(sim.Types()))
	}
	if rep.MacroF1 < minMacroF1 {
		t.Errorf("macro-F1 %.3f on held-out pods, want >= %.2f", rep.MacroF1, minMacroF1)
	}
	var tp, faults, fp, normal float64
	for _, a := range rep.Anomaly {
		tp += a.Recall * float64(a.FaultWindows)
		faults += float64(a.FaultWindows)
		fp += a.FalsePositiveRate * float64(a.NormalWindows)
		normal += float64(a.NormalWindows)
	}
	if faults == 0 || normal == 0 {
		t.Fatalf("no fault (%v) or normal (%v) validation windows: the anomaly targets cannot be measured", faults, normal)
	}
	byKind := map[string][2]int{}
	for _, f := range rep.AnomalyByFault {
		k := byKind[f.Fault]
		byKind[f.Fault] = [2]int{k[0] + f.Flagged, k[1] + f.Windows}
	}
	t.Logf("anomaly recall by fault kind (flagged, windows): %v", byKind)
	t.Logf("anomaly: recall %.3f on %v fault windows, false-positive rate %.3f on %v normal windows", tp/faults, faults, fp/normal, normal)
	var flagged, windows int
	for _, kind := range strings.Split(faultKindsInWindow, ",") {
		flagged += byKind[kind][0]
		windows += byKind[kind][1]
	}
	if windows == 0 {
		t.Fatalf("no validation windows of %s: the recall target cannot be measured", faultKindsInWindow)
	}
	t.Logf("anomaly recall on %s: %d of %d windows", faultKindsInWindow, flagged, windows)
	if r := float64(flagged) / float64(windows); r < minAnomalyRecall {
		t.Errorf("forests flagged %.3f of %d %s windows, want >= %.2f", r, windows, faultKindsInWindow, minAnomalyRecall)
	}
	if fp/normal > maxAnomalyFPR {
		t.Errorf("forests flagged %.3f of normal held-out windows, want <= %.2f", fp/normal, maxAnomalyFPR)
	}
}
