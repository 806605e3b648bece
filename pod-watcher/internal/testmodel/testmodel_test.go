package testmodel

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/podtype/podtype/shared/features"
)

func TestBundleSteersEveryBranch(t *testing.T) {
	b, err := Bundle(1)
	if err != nil {
		t.Fatal(err)
	}
	if b.Version == "" {
		t.Fatal("no version")
	}
	end := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	pod := types.NamespacedName{Namespace: "ns", Name: "p"}
	tests := []struct {
		name     string
		p        Profile
		class    string
		conf     float64
		rejected bool // by the class's forest; not checked in the ambiguous region
	}{
		{"mysql", MySQL, "mysql", 1, false},
		{"nginx", Nginx, "nginx", 1, false},
		{"busy mysql", MySQLBusy, "mysql", 1, true},
		{"ambiguous", Ambiguous, "mysql", 0.5, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for seed := range uint64(50) {
				x, err := features.Extract(Window(pod, end, tt.p, Samples, 9000+seed), features.Extra{})
				if err != nil {
					t.Fatal(err)
				}
				c, probs, err := b.Classifier.Predict(x)
				if err != nil {
					t.Fatal(err)
				}
				if b.Classes[c] != tt.class || probs[c] != tt.conf {
					t.Fatalf("seed %d: predicted %s with %v, want %s with %v", seed, b.Classes[c], probs[c], tt.class, tt.conf)
				}
				tm := b.Types[tt.class]
				s, _ := tm.Score(x)
				if tt.name != "ambiguous" && tm.Anomalous(s) != tt.rejected {
					t.Fatalf("seed %d: score %.3f threshold %.3f, want rejected=%v", seed, s, tm.Threshold, tt.rejected)
				}
			}
		})
	}
}
