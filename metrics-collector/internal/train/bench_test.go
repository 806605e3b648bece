package train

import (
	"context"
	"testing"

	"github.com/podtype/podtype/shared/iforest"
	"github.com/podtype/podtype/shared/model"
)

// BenchmarkRun is one whole training with the service defaults (5 iterations, learning curve,
// 50-tree classifier, 100-tree forests with calibration) on 4 types x 8 pods x 24 windows.
func BenchmarkRun(b *testing.B) {
	ds := synthetic(map[string]int{"mysql": 8, "nginx": 8, "redis": 8, "mongo": 8}, 24, 1)
	opt := Options{
		Classes:           []string{"mysql", "nginx", "redis", "mongo"},
		Ratio:             0.7,
		Iterations:        5,
		Seed:              1,
		Classifier:        model.TrainOptions{Algorithm: model.AlgorithmRandomTrees, Trees: 50},
		Forest:            iforest.Config{Trees: 100, SampleSize: 256},
		ThresholdQuantile: 0.99,
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Run(context.Background(), ds, opt, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(ds.Normal)), "windows")
}

// BenchmarkTypeModel is one type's forest with its out-of-pod threshold calibration (6 forests)
// on 8 pods x 60 windows.
func BenchmarkTypeModel(b *testing.B) {
	ds := synthetic(map[string]int{"mysql": 8, "nginx": 1}, 60, 2)
	t := &trainer{ds: ds, idx: newIndex(ds), opt: Options{Forest: iforest.Config{Trees: 100, SampleSize: 256}, ThresholdQuantile: 0.99, CalibrationFolds: DefaultCalibrationFolds}}
	pods := t.idx.byType["mysql"]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := t.typeModel(pods, 1); err != nil {
			b.Fatal(err)
		}
	}
}
