package evaluate

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var (
	update    = flag.Bool("update", false, "rewrite the golden files in testdata/")
	sampleDir = flag.String("sample-dir", "", "write sample HTML reports for 2, 8 and 15 classes into this directory, to look at")
)

// sampleReport is a plausible report for the given classes, deterministic per seed.
func sampleReport(t *testing.T, classes []string, seed uint64) *Report {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	c, err := NewConfusion(classes)
	if err != nil {
		t.Fatal(err)
	}
	for a := range classes {
		n := 20 + r.IntN(180)
		for range n {
			p := a
			if r.Float64() < 0.12 {
				// Mistakes go mostly to one "neighbour" class, like real confusions do.
				p = (a + 1 + r.IntN(2)) % len(classes)
			}
			if err := c.Add(a, p); err != nil {
				t.Fatal(err)
			}
		}
	}
	rep := &Report{
		ModelVersion: "20250601-120000-3f9c2a1",
		CreatedAt:    time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC),
		Algorithm:    "random forest, 100 trees, 12 features per split",
		Validation:   "5-fold cross-validation grouped by pod (no pod in both train and test)",
		Training: TrainingSummary{
			PodsPerType: map[string]int{},
			ExcludedPods: map[string]map[string]int{
				"no_data":      {classes[0]: 2, classes[len(classes)-1]: 1},
				"unknown_type": {"busybox": 3},
			},
			ExcludedWindows: map[string]int{"too_little_data": 4, "fault_aftermath": 2},
		},
	}
	if err := rep.SetConfusion(c); err != nil {
		t.Fatal(err)
	}
	for i, cls := range classes {
		pods := 6 + r.IntN(20)
		rep.Training.PodsPerType[cls] = pods
		rep.Training.Windows += pods * 40
		rep.Anomaly = append(rep.Anomaly, AnomalyResult{
			Type:              cls,
			Threshold:         0.55 + 0.1*r.Float64(),
			Recall:            0.6 + 0.4*r.Float64(),
			FalsePositiveRate: 0.05 * r.Float64(),
			FaultWindows:      40 + 10*i,
			NormalWindows:     400 + 25*i,
		})
	}
	for _, pods := range []int{8, 16, 32, 64, 96, 128} {
		q := 1 - math.Exp(-float64(pods)/30)
		rep.LearningCurve = append(rep.LearningCurve, CurvePoint{
			TrainPods: pods,
			Accuracy:  0.45 + 0.5*q,
			MacroF1:   0.38 + 0.55*q,
		})
	}
	return rep
}

var eightClasses = []string{"mysql", "nginx", "redis", "postgresql", "mongodb", "rabbitmq", "elasticsearch", "memcached"}

func longClasses(n int) []string {
	base := []string{"mysql", "nginx-ingress-controller", "redis", "postgresql-ha-pgpool", "mongodb-sharded-config-server",
		"rabbitmq", "elasticsearch-coordinating-only", "memcached", "kafka", "zookeeper", "cassandra", "minio",
		"prometheus-node-exporter", "grafana", "keycloak"}
	return base[:n]
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden file; run go test ./evaluate -update and review the diff\n--- got:\n%s", path, got)
	}
}

func TestWriteTextGolden(t *testing.T) {
	var b bytes.Buffer
	if err := WriteText(&b, sampleReport(t, eightClasses, 1)); err != nil {
		t.Fatal(err)
	}
	golden(t, "report.txt", b.Bytes())
}

func TestWriteHTMLGolden(t *testing.T) {
	var b bytes.Buffer
	if err := WriteHTML(&b, sampleReport(t, eightClasses, 1)); err != nil {
		t.Fatal(err)
	}
	golden(t, "report.html", b.Bytes())
}

func TestWriteJSONGolden(t *testing.T) {
	var b bytes.Buffer
	rep := sampleReport(t, eightClasses, 1)
	if err := WriteJSON(&b, rep); err != nil {
		t.Fatal(err)
	}
	golden(t, "report.json", b.Bytes())

	var back Report
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Accuracy != rep.Accuracy || len(back.ConfusionMatrix) != len(rep.Classes) || !back.CreatedAt.Equal(rep.CreatedAt) {
		t.Errorf("JSON round trip lost data: %+v", back)
	}
	var raw map[string]any
	if err := json.Unmarshal(b.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"accuracy", "macro_f1", "classes", "confusion_matrix", "per_class", "anomaly",
		"learning_curve", "model_version", "created_at", "training", "algorithm"} {
		if _, ok := raw[key]; !ok {
			t.Errorf("JSON report lacks %q", key)
		}
	}
}

// TestHTMLWellFormed renders several class counts and checks that the page is well-formed
// XML (stricter than HTML), self-contained, and has one heat-map cell per matrix entry.
func TestHTMLWellFormed(t *testing.T) {
	tests := []struct {
		name    string
		classes []string
		curve   bool
	}{
		{name: "2 classes", classes: []string{"mysql", "nginx"}, curve: true},
		{name: "8 classes", classes: eightClasses, curve: true},
		{name: "15 long names", classes: longClasses(15), curve: true},
		{name: "no curve, odd names", classes: []string{`<script>alert("x")</script>`, "a&b", "ünïcödé-ñame"}, curve: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep := sampleReport(t, tc.classes, 2)
			if !tc.curve {
				rep.LearningCurve = nil
				rep.Anomaly = nil
			}
			var b bytes.Buffer
			if err := WriteHTML(&b, rep); err != nil {
				t.Fatal(err)
			}
			cells, svgs := 0, 0
			dec := xml.NewDecoder(bytes.NewReader(b.Bytes()))
			dec.Strict = true
			for {
				tok, err := dec.Token()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("not well-formed: %v", err)
				}
				se, ok := tok.(xml.StartElement)
				if !ok {
					continue
				}
				switch se.Name.Local {
				case "script", "img", "link", "iframe", "object":
					t.Errorf("page contains <%s>", se.Name.Local)
				case "svg":
					svgs++
				case "rect":
					for _, a := range se.Attr {
						if a.Name.Local == "class" && a.Value == "cell" {
							cells++
						}
					}
				}
				for _, a := range se.Attr {
					if a.Name.Local == "href" || a.Name.Local == "src" {
						t.Errorf("<%s> refers to %s=%q", se.Name.Local, a.Name.Local, a.Value)
					}
				}
			}
			if n := len(tc.classes); cells != n*n {
				t.Errorf("%d heat-map cells, want %d", cells, n*n)
			}
			wantSVG := 1
			if tc.curve {
				wantSVG = 2
			}
			if svgs != wantSVG {
				t.Errorf("%d svg elements, want %d", svgs, wantSVG)
			}
			if bytes.Contains(b.Bytes(), []byte("<script>")) {
				t.Error("class name was not escaped")
			}
		})
	}
}

func TestWriteTextAligned(t *testing.T) {
	var b bytes.Buffer
	classes := longClasses(15)
	if err := WriteText(&b, sampleReport(t, classes, 3)); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(b.String(), "\n")
	start := -1
	for i, l := range lines {
		if strings.HasPrefix(l, "Confusion matrix") {
			start = i + 1
		}
	}
	if start < 0 {
		t.Fatal("no confusion matrix section")
	}
	// Right-aligned count columns end at the same position on every matrix line.
	width := len([]rune(lines[start]))
	for i, c := range classes {
		l := lines[start+1+i]
		if !strings.HasPrefix(l, "  "+c+" ") {
			t.Errorf("matrix row %d = %q, want it to start with the full class name %q", i, l, c)
		}
		if got := len([]rune(l)); got != width {
			t.Errorf("matrix row %d is %d runes wide, header %d:\n%s\n%s", i, got, width, lines[start], l)
		}
	}
}

func TestReportValidate(t *testing.T) {
	tests := []struct {
		name string
		mut  func(r *Report)
		want string
	}{
		{name: "nil", want: "nil report"},
		{name: "matrix rows", mut: func(r *Report) { r.ConfusionMatrix = r.ConfusionMatrix[:2] }, want: "2 rows for 3 classes"},
		{name: "negative count", mut: func(r *Report) { r.ConfusionMatrix[1][2] = -4 }, want: "cell [b][c] = -4"},
		{name: "per-class rows", mut: func(r *Report) { r.PerClass = nil }, want: "0 per-class rows for 3 classes"},
		{name: "NaN accuracy", mut: func(r *Report) { r.Accuracy = math.NaN() }, want: "accuracy = NaN"},
		{name: "recall above 1", mut: func(r *Report) { r.PerClass[1].Recall = 1.5 }, want: "per_class b recall = 1.5"},
		{name: "Inf threshold", mut: func(r *Report) { r.Anomaly[0].Threshold = math.Inf(1) }, want: "anomaly a threshold = +Inf"},
		{name: "curve", mut: func(r *Report) { r.LearningCurve[2].MacroF1 = -0.1 }, want: "learning_curve[2] macro_f1 = -0.1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r *Report
			if tc.mut != nil {
				r = sampleReport(t, []string{"a", "b", "c"}, 4)
				tc.mut(r)
			}
			for name, write := range map[string]func(io.Writer, *Report) error{"JSON": WriteJSON, "text": WriteText, "HTML": WriteHTML} {
				err := write(io.Discard, r)
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("Write%s = %v, want error containing %q", name, err, tc.want)
				}
			}
		})
	}
}

func TestNiceStep(t *testing.T) {
	for _, tc := range []struct{ raw, want float64 }{{0, 1}, {0.3, 1}, {1, 1}, {1.5, 2}, {3, 5}, {7, 10}, {19.2, 20}, {26, 50}, {120, 200}} {
		if got := niceStep(tc.raw); got != tc.want {
			t.Errorf("niceStep(%v) = %v, want %v", tc.raw, got, tc.want)
		}
	}
}

func TestBlues(t *testing.T) {
	for _, tc := range []struct {
		frac float64
		want string
	}{{-1, "#f7fbff"}, {0, "#f7fbff"}, {1, "#08306b"}, {2, "#08306b"}, {math.NaN(), "#f7fbff"}} {
		if got := blues(tc.frac); got != tc.want {
			t.Errorf("blues(%v) = %s, want %s", tc.frac, got, tc.want)
		}
	}
}

// ExampleWriteText shows the smallest useful report.
func ExampleWriteText() {
	c, _ := NewConfusion([]string{"mysql", "nginx"})
	for _, p := range [][2]int{{0, 0}, {0, 0}, {0, 1}, {1, 1}} {
		_ = c.Add(p[0], p[1])
	}
	r := &Report{ModelVersion: "v1", CreatedAt: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), Algorithm: "random forest"}
	_ = r.SetConfusion(c)
	var b strings.Builder
	_ = WriteText(&b, r)
	fmt.Print(b.String()[:strings.Index(b.String(), "Per class")])
	// Output:
	// Model report
	//   model version  v1
	//   created        2025-01-02 03:04:05 UTC
	//   algorithm      random forest
	//
	// Accuracy 0.750   Macro-F1 0.733   (4 validation windows, 2 classes)
	//
	// Confusion matrix (rows: actual, columns: predicted)
	//   actual \ predicted  mysql  nginx
	//   mysql                   2      1
	//   nginx                   0      1
	//
}

// TestWriteSamples writes reports to look at in a browser: go test ./evaluate -run Samples -sample-dir /tmp
func TestWriteSamples(t *testing.T) {
	if *sampleDir == "" {
		t.Skip("no -sample-dir")
	}
	for _, classes := range [][]string{{"mysql", "nginx"}, eightClasses, longClasses(15)} {
		var b bytes.Buffer
		if err := WriteHTML(&b, sampleReport(t, classes, 1)); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(*sampleDir, fmt.Sprintf("report-%d.html", len(classes)))
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", path)
	}
}
