package train

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/podtype/podtype/metrics-collector/internal/dataset"
	"github.com/podtype/podtype/shared/features"
	"github.com/podtype/podtype/shared/iforest"
	"github.com/podtype/podtype/shared/model"
)

var t0 = time.Date(2026, 1, 2, 15, 0, 0, 0, time.UTC)

// synthetic builds a dataset of well separated types: every feature of type k is around
// (k+1)*10 with a small per-pod offset and per-window noise. Fault windows of the first pod of every
// type have every feature at 100 times the normal level.
func synthetic(podsPerType map[string]int, windows int, seed uint64) *dataset.Dataset {
	names := features.Names()
	rng := rand.New(rand.NewPCG(seed, 1))
	ds := &dataset.Dataset{FeatureNames: names, WindowStep: 10 * time.Second, WindowSamples: 6, From: t0, To: t0.Add(time.Hour)}
	k := 0
	for _, typ := range []string{"mysql", "nginx", "redis", "mongo"} {
		n, ok := podsPerType[typ]
		if !ok {
			continue
		}
		k++
		for p := range n {
			pod := types.NamespacedName{Namespace: "ns", Name: fmt.Sprintf("%s-%d", typ, p)}
			offset := 0.2 * rng.NormFloat64()
			for w := range windows {
				x := make([]float64, len(names))
				for j := range x {
					x[j] = float64(k)*10 + offset + rng.NormFloat64()
				}
				win := dataset.Window{Pod: pod, Type: typ, Node: "n1", Start: t0.Add(time.Duration(w) * time.Minute), Features: x}
				ds.Normal = append(ds.Normal, win)
			}
			if p == 0 {
				x := make([]float64, len(names))
				for j := range x {
					x[j] = float64(k) * 1000
				}
				ds.Faults = append(ds.Faults, dataset.Window{Pod: pod, Type: typ, Start: t0.Add(time.Hour), Fault: "cpu_saturation", FaultShare: 1, Features: x})
			}
		}
	}
	return ds
}

func options() Options {
	return Options{
		Classes:           []string{"mysql", "nginx", "redis"},
		Ratio:             0.5,
		Iterations:        3,
		Seed:              7,
		Classifier:        model.TrainOptions{Algorithm: model.AlgorithmRandomTrees, Trees: 5, Workers: 1},
		Forest:            iforest.Config{Trees: 20, SampleSize: 32},
		ThresholdQuantile: 0.99,
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestRun(t *testing.T) {
	ds := synthetic(map[string]int{"mysql": 4, "nginx": 4, "redis": 4}, 6, 1)
	res, err := Run(context.Background(), ds, options(), discard())
	if err != nil {
		t.Fatal(err)
	}
	val := res.Validation
	t.Run("confusion counts every validation window of every iteration", func(t *testing.T) {
		total := 0
		for _, row := range val.Confusion {
			for _, v := range row {
				total += v
			}
		}
		// 2 of 4 pods per type validate, 6 windows each, 3 types, 3 iterations.
		if want := 2 * 6 * 3 * 3; total != want {
			t.Errorf("confusion total = %d, want %d", total, want)
		}
		if acc := accuracy(val.Confusion); acc < 0.99 {
			t.Errorf("accuracy on well separated types = %v, want ~1", acc)
		}
	})
	t.Run("learning curve", func(t *testing.T) {
		if len(val.Curve) != 2 || val.Curve[0].PodsPerType != 1 || val.Curve[1].PodsPerType != 2 {
			t.Fatalf("curve points %+v, want 1 and 2 pods per type", val.Curve)
		}
		// The curve's full-size point is the iteration's classifier.
		if !reflect.DeepEqual(val.Curve[1].Confusion, val.Confusion) {
			t.Error("the last curve point differs from the validation confusion matrix")
		}
	})
	t.Run("anomaly", func(t *testing.T) {
		for _, a := range val.Anomaly {
			if a.NormalWindows != 2*6*3 {
				t.Errorf("%s: %d normal validation windows, want %d", a.Type, a.NormalWindows, 2*6*3)
			}
			if a.FaultWindows > 0 && a.FaultFlagged != a.FaultWindows {
				t.Errorf("%s: flagged %d of %d extreme fault windows", a.Type, a.FaultFlagged, a.FaultWindows)
			}
			if a.FaultsByKind["cpu_saturation"][0] != a.FaultWindows {
				t.Errorf("%s: per-kind counts %v do not add up to %d", a.Type, a.FaultsByKind, a.FaultWindows)
			}
		}
	})
	t.Run("bundle", func(t *testing.T) {
		b := res.Bundle
		if err := b.Validate(); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(b.Classes, []string{"mysql", "nginx", "redis"}) || len(b.Types) != 3 {
			t.Errorf("bundle classes %v, %d type models", b.Classes, len(b.Types))
		}
		if b.WindowSamples != 6 || b.WindowStep != 10*time.Second || b.FeatureVersion != features.Version {
			t.Errorf("bundle window %d x %s, feature version %d", b.WindowSamples, b.WindowStep, b.FeatureVersion)
		}
		if !reflect.DeepEqual(b.AnomalyFeatureNames, features.AnomalyNames()) {
			t.Errorf("bundle anomaly features %v, want features.AnomalyNames()", b.AnomalyFeatureNames)
		}
		// Forests and baselines are over anomaly vectors, not classification vectors.
		n := len(features.AnomalyNames())
		for typ, tm := range b.Types {
			if !(tm.Threshold > 0 && tm.Threshold <= 1) || tm.Forest.Features != n || len(tm.Mean) != n || len(tm.Std) != n {
				t.Errorf("%s: threshold %v, forest over %d features, %d means, %d stds, want %d", typ, tm.Threshold, tm.Forest.Features, len(tm.Mean), len(tm.Std), n)
			}
		}
		// The final classifier saw every pod: it must know all of them.
		for _, w := range ds.Normal {
			if k, _, err := b.Classifier.Predict(w.Features); err != nil || b.Classes[k] != w.Type {
				t.Fatalf("final classifier: pod %s predicted %v (%v)", w.Pod, k, err)
			}
		}
	})
	t.Run("deterministic", func(t *testing.T) {
		again, err := Run(context.Background(), ds, options(), discard())
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(again.Validation, res.Validation) {
			t.Error("same data and seed, different validation")
		}
		if !reflect.DeepEqual(again.Bundle.Classifier, res.Bundle.Classifier) || !reflect.DeepEqual(again.Bundle.Types, res.Bundle.Types) {
			t.Error("same data and seed, different models")
		}
	})
}

func TestRunUnevenData(t *testing.T) {
	// mongo is configured but absent; redis has a single pod (trained on, never validated).
	ds := synthetic(map[string]int{"mysql": 3, "nginx": 3, "redis": 1}, 4, 2)
	opt := options()
	opt.Classes = []string{"mysql", "nginx", "redis", "mongo"}
	opt.MaxNumber = 1
	res, err := Run(context.Background(), ds, opt, discard())
	if err != nil {
		t.Fatal(err)
	}
	val := res.Validation
	if !reflect.DeepEqual(val.Classes, []string{"mysql", "nginx", "redis"}) || !reflect.DeepEqual(val.MissingClasses, []string{"mongo"}) {
		t.Errorf("classes %v, missing %v", val.Classes, val.MissingClasses)
	}
	if n := val.Anomaly[2].NormalWindows; n != 0 {
		t.Errorf("redis (one pod) has %d validation windows, want 0", n)
	}
	for _, v := range val.Confusion[2] {
		if v != 0 {
			t.Errorf("redis row of the confusion matrix %v, want zeros", val.Confusion[2])
		}
	}
	if len(val.Curve) != 1 {
		t.Errorf("TRAINING_MAX_NUMBER 1 gave %d curve points", len(val.Curve))
	}
	if _, ok := res.Bundle.Types["redis"]; !ok {
		t.Error("redis has no anomaly model although it has data")
	}
}

func TestRunErrors(t *testing.T) {
	ds := synthetic(map[string]int{"mysql": 3}, 4, 3)
	if _, err := Run(context.Background(), ds, options(), discard()); err == nil {
		t.Error("a dataset with a single type was accepted")
	}
	bad := options()
	bad.ThresholdQuantile = 1
	if _, err := Run(context.Background(), synthetic(map[string]int{"mysql": 2, "nginx": 2}, 2, 3), bad, discard()); err == nil {
		t.Error("threshold quantile 1 was accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, synthetic(map[string]int{"mysql": 2, "nginx": 2}, 2, 3), options(), discard()); err == nil {
		t.Error("a cancelled context did not stop training")
	}
}

func TestQuantile(t *testing.T) {
	v := []float64{5, 1, 4, 2, 3}
	tests := []struct{ q, want float64 }{{0, 1}, {0.5, 3}, {0.75, 4}, {0.9, 4.6}, {1, 5}}
	for _, tt := range tests {
		if got := Quantile(v, tt.q); math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("Quantile(%v) = %v, want %v", tt.q, got, tt.want)
		}
	}
	if v[0] != 5 {
		t.Error("Quantile sorted its input in place")
	}
	if !math.IsNaN(Quantile(nil, 0.5)) {
		t.Error("Quantile of nothing is not NaN")
	}
}
