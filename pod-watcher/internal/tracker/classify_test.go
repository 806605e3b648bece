package tracker

import (
	"testing"
	"time"

	"github.com/podtype/podtype/shared/features"

	"github.com/podtype/podtype/pod-watcher/internal/publish"
	"github.com/podtype/podtype/pod-watcher/internal/testmodel"
)

func TestClassifyOpenSet(t *testing.T) {
	b := bundle(t, 1)
	busy := b.Types["mysql"]
	tests := []struct {
		name          string
		profile       testmodel.Profile
		minConfidence float64
		margin        float64
		want          string
	}{
		{"confident and normal", testmodel.MySQL, 0.6, 0, "mysql"},
		{"low confidence", testmodel.Ambiguous, 0.6, 0, publish.TypeUnknown},
		{"confidence just enough", testmodel.Ambiguous, 0.5, 0.9, "mysql"},
		{"rejected by the forest", testmodel.MySQLBusy, 0.6, 0, publish.TypeUnknown},
		{"still rejected with a small margin", testmodel.MySQLBusy, 0.6, 0.1, publish.TypeUnknown},
		{"accepted with a margin beyond its score", testmodel.MySQLBusy, 0.6, 1 - busy.Threshold, "mysql"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := testmodel.Window(testPod, time.Now(), tt.profile, testmodel.Samples, 3)
			x, err := features.Extract(w, features.Extra{})
			if err != nil {
				t.Fatal(err)
			}
			d, err := Classify(b, x, tt.minConfidence, tt.margin)
			if err != nil {
				t.Fatal(err)
			}
			if d.Type != tt.want || d.Nearest != "mysql" {
				t.Errorf("type %q (nearest %q, confidence %.2f, score %.3f/%.3f, %s), want %q",
					d.Type, d.Nearest, d.Confidence, d.Score, d.Threshold, d.Why, tt.want)
			}
		})
	}
}

func TestClassifyBadVector(t *testing.T) {
	b := bundle(t, 1)
	if _, err := Classify(b, []float64{1, 2, 3}, 0.5, 0); err == nil {
		t.Error("a vector of the wrong length was classified")
	}
}
