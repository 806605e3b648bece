package model

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/podtype/podtype/shared/features"
	"github.com/podtype/podtype/shared/iforest"
)

// testBundle trains a small but real bundle: a classifier and one forest per
// class on synthetic data. It also returns held-out rows to predict on.
func testBundle(t testing.TB) (*Bundle, [][]float64) {
	t.Helper()
	train, valid := smallSynth(t)
	c, err := TrainClassifier(context.Background(), train.x, train.y, train.classes, train.names,
		TrainOptions{Algorithm: AlgorithmRandomTrees, Trees: 5, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	b := &Bundle{
		CreatedAt:      time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC),
		FeatureVersion: 1,
		FeatureNames:   train.names,
		// The synthetic rows have the layout of features.Names(), so the type models can
		// derive real anomaly vectors from them.
		AnomalyFeatureNames: features.AnomalyNames(),
		Classes:             train.classes,
		WindowStep:          10 * time.Second,
		WindowSamples:       30,
		Classifier:          c,
		Types:               map[string]*TypeModel{},
		Training: TrainingInfo{
			DataStart:    time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
			DataEnd:      time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC),
			WindowStride: 150 * time.Second,
			Pods:         map[string]int{},
			Windows:      map[string]int{},
			ExcludedPods: map[string]int{"too little data": 3},
			Producer:     "model test",
		},
		Validation: ValidationSummary{
			Pods: 18, Windows: len(valid.x), Accuracy: 0.9, MacroF1: 0.88,
			F1:      map[string]float64{},
			Anomaly: map[string]AnomalyValidation{"type0": {Recall: 0.75, Positives: 8, FPR: 0.02, Negatives: 100}},
		},
	}
	for k, class := range train.classes {
		var rows [][]float64
		for i, x := range train.x {
			if train.y[i] == k {
				rows = append(rows, x)
			}
		}
		tm, err := FitTypeModel(rows, iforest.Config{Trees: 10, SampleSize: 32, Seed: uint64(k)})
		if err != nil {
			t.Fatal(err)
		}
		tm.Threshold = 0.6
		b.Types[class] = tm
		b.Training.Pods[class] = 9
		b.Training.Windows[class] = len(rows)
		b.Validation.F1[class] = 0.8
	}
	return b, valid.x
}

func encode(t testing.TB, b *Bundle) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Encode(&buf, b); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestBundleRoundTrip(t *testing.T) {
	b, rows := testBundle(t)
	data := encode(t, b)

	if !regexp.MustCompile(`^20260102T150405Z-[0-9a-f]{12}$`).MatchString(b.Version) {
		t.Errorf("Version = %q, want <UTC time>-<12 hex>", b.Version)
	}
	if b.FormatVersion != FormatVersion {
		t.Errorf("FormatVersion = %d after Encode, want %d", b.FormatVersion, FormatVersion)
	}
	got, err := Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != b.Version || got.ETag() != b.ETag() || got.ETag() == "" {
		t.Errorf("decoded Version %q ETag %s, encoded %q %s", got.Version, got.ETag(), b.Version, b.ETag())
	}
	if !strings.HasPrefix(strings.Trim(got.ETag(), `"`), strings.TrimPrefix(b.Version, "20260102T150405Z-")) {
		t.Errorf("ETag %s does not carry the checksum in Version %q", got.ETag(), b.Version)
	}
	for i, x := range rows {
		wantClass, wantProbs, err := b.Classifier.Predict(x)
		if err != nil {
			t.Fatal(err)
		}
		gotClass, gotProbs, err := got.Classifier.Predict(x)
		if err != nil {
			t.Fatal(err)
		}
		if gotClass != wantClass || !slicesEqual(gotProbs, wantProbs) {
			t.Fatalf("row %d: prediction %d %v after round trip, %d %v before", i, gotClass, gotProbs, wantClass, wantProbs)
		}
		class := b.Classes[wantClass]
		want, err := b.Types[class].Score(x)
		if err != nil {
			t.Fatal(err)
		}
		have, err := got.Types[class].Score(x)
		if err != nil {
			t.Fatal(err)
		}
		if have != want {
			t.Fatalf("row %d: score %v after round trip, %v before", i, have, want)
		}
	}
	// Encoding is deterministic: the decoded bundle encodes to the same bytes.
	if again := encode(t, got); !bytes.Equal(again, data) {
		t.Error("re-encoding the decoded bundle changed the bytes")
	}
}

func slicesEqual(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// document returns the uncompressed envelope of b, bypassing Validate, so
// that tests can build bundles Encode would refuse.
func document(t testing.TB, b *Bundle, formatVersion int) []byte {
	t.Helper()
	payload, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(payload)
	sum := hex.EncodeToString(h[:])
	data, err := json.Marshal(envelope{Format: FormatName, FormatVersion: formatVersion,
		Version: makeVersion(b, sum), SHA256: sum, Payload: payload})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func gz(t testing.TB, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDecodeRejectsDamage(t *testing.T) {
	b, _ := testBundle(t)
	b.FormatVersion = FormatVersion
	good := document(t, b, FormatVersion)
	compressed := gz(t, good)

	flipDigitInPayload := func(doc []byte) []byte {
		doc = bytes.Clone(doc)
		i := bytes.Index(doc, []byte(`"threshold":0.6`)) + len(`"threshold":0.`)
		doc[i] = '7' // still valid JSON and still a valid bundle: only the checksum can tell
		return doc
	}
	replace := func(doc []byte, old, new string) []byte {
		if !bytes.Contains(doc, []byte(old)) {
			t.Fatalf("document has no %q", old)
		}
		return bytes.Replace(doc, []byte(old), []byte(new), 1)
	}
	bitFlipped := bytes.Clone(compressed)
	bitFlipped[len(bitFlipped)/2] ^= 0x10

	tests := []struct {
		name string
		data []byte // the file
		want string
	}{
		{"not gzip", good, "not a gzip stream"},
		{"empty", nil, "not a gzip stream"},
		{"truncated gzip", compressed[:len(compressed)/2], "unexpected EOF"},
		{"bit flip in compressed data", bitFlipped, "gzip"},
		{"flipped byte in payload", gz(t, flipDigitInPayload(good)), "checksum mismatch"},
		{"wrong format", gz(t, replace(good, `"format":"podtype-model"`, `"format":"onnx"`)), `format = "onnx"`},
		{"no envelope", gz(t, []byte(`[1,2,3]`)), "not a JSON document"},
		{"newer format version", gz(t, document(t, b, FormatVersion+1)),
			fmt.Sprintf("format_version = %d is newer than this program reads (%d)", FormatVersion+1, FormatVersion)},
		{"format version 0", gz(t, document(t, b, 0)), "format_version = 0 is older than this program reads"},
		// Format 1 forests scored classification vectors; they cannot be used, only replaced.
		{"format version 1", gz(t, document(t, b, 1)), "format_version = 1 is older than this program reads (2): retrain"},
		{"edited version", gz(t, replace(good, `"version":"20260102T150405Z-`, `"version":"20990102T150405Z-`)), "does not match the content"},
		{"unknown envelope field", gz(t, replace(good, `"format":`, `"extra":1,"format":`)), `unknown field "extra"`},
		{"trailing data", gz(t, append(bytes.Clone(good), []byte(` {}`)...)), "after top-level value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(bytes.NewReader(tt.data))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Decode error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestDecodeRejectsInconsistentBundles feeds Decode well-formed, correctly
// checksummed documents whose content is wrong; the error must name the field.
func TestDecodeRejectsInconsistentBundles(t *testing.T) {
	// A forest of the old format: trained on classification vectors, not anomaly vectors.
	nx := len(features.Names())
	wide, err := iforest.Train([][]float64{make([]float64, nx), slices.Repeat([]float64{1}, nx)}, iforest.Config{Trees: 2})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		modify func(*Bundle)
		want   string
	}{
		{"payload format version", func(b *Bundle) { b.FormatVersion = 0 }, fmt.Sprintf("payload format_version = 0, envelope says %d", FormatVersion)},
		{"feature version", func(b *Bundle) { b.FeatureVersion = 0 }, "feature_version = 0, want > 0"},
		{"no feature names", func(b *Bundle) { b.FeatureNames = nil }, "feature_names is empty"},
		{"duplicate feature", func(b *Bundle) { b.FeatureNames[3] = b.FeatureNames[2] }, "feature_names[3] = \"cpu_cores_min\" duplicates feature_names[2]"},
		{"no anomaly feature names", func(b *Bundle) { b.AnomalyFeatureNames = nil }, "anomaly_feature_names is empty"},
		{"anomaly features of another program", func(b *Bundle) { b.AnomalyFeatureNames[1] = "something_else" },
			`anomaly_feature_names[1] = "something_else", but features.AnomalyNames() of this program[1] = "` + features.AnomalyNames()[1] + `"`},
		{"empty class", func(b *Bundle) { b.Classes[1] = "" }, "classes[1] is empty"},
		{"window step", func(b *Bundle) { b.WindowStep = 0 }, "window_step = 0s, want > 0"},
		{"window samples", func(b *Bundle) { b.WindowSamples = -1 }, "window_samples = -1, want > 0"},
		{"no classifier", func(b *Bundle) { b.Classifier = nil }, "classifier is missing"},
		{"classifier feature out of range", func(b *Bundle) { b.Classifier.Trees[1].Nodes[0].Feature = 999 }, "classifier: trees[1]: nodes[0].feature = 999"},
		{"classifier class count", func(b *Bundle) { b.Classifier.Classes = b.Classifier.Classes[:5] }, "leaf has 6 class counts, want 5"},
		{"classifier features differ", func(b *Bundle) {
			b.Classifier.FeatureNames = append([]string(nil), b.FeatureNames...)
			b.Classifier.FeatureNames[0] = "other"
		}, `classifier.feature_names[0] = "other", but feature_names[0] = "cpu_cores_mean"`},
		{"missing type", func(b *Bundle) { delete(b.Types, "type2") }, `types["type2"] is missing`},
		{"nil type", func(b *Bundle) { b.Types["type2"] = nil }, `types["type2"] is missing`},
		{"extra type", func(b *Bundle) { b.Types["redis"] = b.Types["type0"] }, `types["redis"]: "redis" is not one of classes`},
		{"no forest", func(b *Bundle) { b.Types["type1"].Forest = nil }, `types["type1"].forest is missing`},
		{"forest width", func(b *Bundle) { b.Types["type1"].Forest.Features = 12 }, `types["type1"].forest`},
		{"forest over classification vectors", func(b *Bundle) { b.Types["type1"].Forest = wide },
			fmt.Sprintf(`types["type1"].forest.features = %d, want %d (len(anomaly_feature_names))`, nx, len(features.AnomalyNames()))},
		{"threshold above 1", func(b *Bundle) { b.Types["type0"].Threshold = 1.5 }, `types["type0"].threshold = 1.5, want (0,1]`},
		{"threshold 0", func(b *Bundle) { b.Types["type0"].Threshold = 0 }, `types["type0"].threshold = 0, want (0,1]`},
		{"short mean", func(b *Bundle) { b.Types["type3"].Mean = b.Types["type3"].Mean[:10] },
			fmt.Sprintf(`types["type3"].mean has 10 values, want %d`, len(features.AnomalyNames()))},
		{"negative std", func(b *Bundle) { b.Types["type3"].Std[5] = -1 }, `types["type3"].std[5] = -1`},
		{"data end before start", func(b *Bundle) { b.Training.DataEnd = b.Training.DataStart.Add(-time.Hour) }, "training.data_end = 2025-12-31T23:00:00Z is before data_start"},
		{"unknown class in pods", func(b *Bundle) { b.Training.Pods["ghost"] = 1 }, `training.pods["ghost"]`},
		{"negative windows", func(b *Bundle) { b.Training.Windows["type0"] = -4 }, `training.windows["type0"] = -4`},
		{"accuracy", func(b *Bundle) { b.Validation.Accuracy = 1.2 }, "validation.accuracy = 1.2, want [0,1]"},
		{"per-class F1", func(b *Bundle) { b.Validation.F1["type4"] = -0.1 }, `validation.f1["type4"] = -0.1`},
		{"anomaly recall", func(b *Bundle) { b.Validation.Anomaly["type0"] = AnomalyValidation{Recall: 2} }, `validation.anomaly["type0"].recall = 2`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := testBundle(t)
			b.FormatVersion = FormatVersion
			tt.modify(b)
			_, err := Decode(bytes.NewReader(gz(t, document(t, b, FormatVersion))))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Decode error = %v, want it to contain %q", err, tt.want)
			}
			// Encode refuses the same bundle (0 only means "not stamped yet" there).
			if b.FormatVersion == 0 {
				return
			}
			if err := Encode(new(bytes.Buffer), b); err == nil {
				t.Error("Encode accepted the bundle")
			}
		})
	}
}

func TestDecodeRejectsUnknownPayloadField(t *testing.T) {
	b, _ := testBundle(t)
	b.FormatVersion = FormatVersion
	payload, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	head := fmt.Sprintf(`{"format_version":%d,`, FormatVersion)
	payload = bytes.Replace(payload, []byte(head), []byte(head+`"surprise":true,`), 1)
	h := sha256.Sum256(payload)
	sum := hex.EncodeToString(h[:])
	doc, err := json.Marshal(envelope{Format: FormatName, FormatVersion: FormatVersion, Version: makeVersion(b, sum), SHA256: sum, Payload: payload})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Decode(bytes.NewReader(gz(t, doc))); err == nil || !strings.Contains(err.Error(), `unknown field "surprise"`) {
		t.Fatalf("Decode error = %v, want unknown field", err)
	}
}

func TestEncodeRefusesOtherFormatVersion(t *testing.T) {
	b, _ := testBundle(t)
	b.FormatVersion = 7
	if err := Encode(new(bytes.Buffer), b); err == nil || !strings.Contains(err.Error(), "format_version 7") {
		t.Fatalf("Encode error = %v, want format_version 7", err)
	}
	if err := Encode(new(bytes.Buffer), nil); err == nil {
		t.Fatal("Encode(nil) succeeded")
	}
}

func TestETagOfUnencodedBundleIsEmpty(t *testing.T) {
	b, _ := testBundle(t)
	if tag := b.ETag(); tag != "" {
		t.Errorf("ETag() = %s before encoding, want empty", tag)
	}
	if tag := (*Bundle)(nil).ETag(); tag != "" {
		t.Errorf("nil ETag() = %s", tag)
	}
}

func TestWriteFileKeepsPrevious(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.json.gz")
	first, _ := testBundle(t)
	if err := WriteFile(path, first); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + ".prev"); !os.IsNotExist(err) {
		t.Errorf("first write created %s.prev (err %v)", path, err)
	}
	second, _ := testBundle(t)
	second.CreatedAt = second.CreatedAt.Add(time.Hour)
	if err := WriteFile(path, second); err != nil {
		t.Fatal(err)
	}
	if first.Version == second.Version {
		t.Fatalf("both bundles have version %q", first.Version)
	}

	cur, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	prev, err := ReadFile(path + ".prev")
	if err != nil {
		t.Fatal(err)
	}
	if cur.Version != second.Version || prev.Version != first.Version {
		t.Errorf("current %q, previous %q; want %q, %q", cur.Version, prev.Version, second.Version, first.Version)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o644 {
		t.Errorf("mode = %v, want 0644", perm)
	}

	// A bundle that fails validation leaves both files alone.
	bad, _ := testBundle(t)
	bad.WindowSamples = 0
	if err := WriteFile(path, bad); err == nil || !strings.Contains(err.Error(), "window_samples = 0") {
		t.Fatalf("WriteFile error = %v, want window_samples", err)
	}
	if cur, err := ReadFile(path); err != nil || cur.Version != second.Version {
		t.Errorf("after failed write: version %v, err %v; want %q", cur.Version, err, second.Version)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v, want only the bundle and its .prev", names)
	}
}

func TestWriteFileErrors(t *testing.T) {
	b, _ := testBundle(t)
	if err := WriteFile(filepath.Join(t.TempDir(), "missing", "model.json.gz"), b); err == nil {
		t.Error("WriteFile into a missing directory succeeded")
	}
	if _, err := ReadFile(filepath.Join(t.TempDir(), "absent")); err == nil {
		t.Error("ReadFile of a missing file succeeded")
	}
}
