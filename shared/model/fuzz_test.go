package model

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/podtype/podtype/shared/features"
	"github.com/podtype/podtype/shared/iforest"
)

// tinyBundle is a valid bundle small enough to be a useful fuzz seed.
func tinyBundle(t testing.TB) *Bundle {
	t.Helper()
	c := stump()
	x := [][]float64{{0, 1}, {1, 0}, {2, 2}, {3, 1}, {0.5, 0.5}}
	b := &Bundle{
		CreatedAt:           time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC),
		FeatureVersion:      1,
		FeatureNames:        c.FeatureNames,
		AnomalyFeatureNames: features.AnomalyNames(),
		Classes:             c.Classes,
		WindowStep:          10 * time.Second,
		WindowSamples:       30,
		Classifier:          c,
		Types:               map[string]*TypeModel{},
		Training:            TrainingInfo{Pods: map[string]int{"a": 1}, Windows: map[string]int{"a": 5}},
		Validation:          ValidationSummary{Accuracy: 1, MacroF1: 1, F1: map[string]float64{"a": 1}},
	}
	n := len(b.AnomalyFeatureNames)
	for i, class := range c.Classes {
		// Forests over anomaly vectors; any rows will do for a fuzz seed.
		rows := make([][]float64, len(x))
		for r := range rows {
			rows[r] = slices.Repeat(x[r][:1], n)
		}
		f, err := iforest.Train(rows, iforest.Config{Trees: 2, SampleSize: 4, Seed: uint64(i)})
		if err != nil {
			t.Fatal(err)
		}
		b.Types[class] = &TypeModel{Forest: f, Threshold: 0.7, Mean: make([]float64, n), Std: slices.Repeat([]float64{0.5}, n)}
	}
	return b
}

// FuzzDecode checks that no input makes decoding panic: as a file, as an
// uncompressed document (which reaches the envelope checks) and as a payload
// (which reaches Validate, since the fuzzer cannot forge checksums). A payload
// that passes must be safe to use and survive a round trip.
func FuzzDecode(f *testing.F) {
	b := tinyBundle(f)
	var file bytes.Buffer
	if err := Encode(&file, b); err != nil {
		f.Fatal(err)
	}
	doc, _, _, err := marshal(b)
	if err != nil {
		f.Fatal(err)
	}
	payload := doc[bytes.Index(doc, []byte(`"payload":`))+len(`"payload":`) : len(doc)-1]
	f.Add(file.Bytes())
	f.Add(doc)
	f.Add(payload)
	f.Add([]byte(`{"format":"podtype-model","format_version":2}`))
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, data []byte) {
		Decode(bytes.NewReader(data))
		Decode(bytes.NewReader(gz(t, data)))
		b, err := decodePayload(data)
		if err != nil {
			return
		}
		x := make([]float64, len(b.FeatureNames))
		if _, _, err := b.Classifier.Predict(x); err != nil {
			t.Fatalf("valid bundle cannot predict: %v", err)
		}
		for name, tm := range b.Types {
			if _, err := tm.Forest.Score(make([]float64, len(b.AnomalyFeatureNames))); err != nil {
				t.Fatalf("valid bundle cannot score type %q: %v", name, err)
			}
		}
		var out bytes.Buffer
		if err := Encode(&out, b); err != nil {
			t.Fatalf("valid bundle cannot be encoded: %v", err)
		}
		if _, err := Decode(&out); err != nil {
			t.Fatalf("encoded bundle cannot be decoded: %v", err)
		}
	})
}
