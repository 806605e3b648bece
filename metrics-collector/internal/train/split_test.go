package train

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/types"
)

func pods(typ string, n int) []types.NamespacedName {
	out := make([]types.NamespacedName, n)
	for i := range out {
		out[i] = types.NamespacedName{Namespace: "ns", Name: fmt.Sprintf("%s-%02d", typ, i)}
	}
	return out
}

func TestTrainingPods(t *testing.T) {
	tests := []struct {
		n     int
		ratio float64
		want  int
	}{
		{n: 10, ratio: 0.7, want: 7},
		{n: 8, ratio: 0.7, want: 6},  // 5.6 rounds to 6
		{n: 2, ratio: 0.9, want: 1},  // keep one for validation
		{n: 5, ratio: 0.05, want: 1}, // keep one for training
		{n: 1, ratio: 0.5, want: 1},  // a single pod can only train
		{n: 0, ratio: 0.5, want: 0},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d pods at %v", tt.n, tt.ratio), func(t *testing.T) {
			if got := TrainingPods(tt.n, tt.ratio); got != tt.want {
				t.Errorf("TrainingPods(%d, %v) = %d, want %d", tt.n, tt.ratio, got, tt.want)
			}
		})
	}
}

func TestSplitPods(t *testing.T) {
	byType := map[string][]types.NamespacedName{
		"mysql": pods("mysql", 10),
		"nginx": pods("nginx", 8),
		"redis": pods("redis", 2),
		"mongo": pods("mongo", 1),
	}
	split, err := SplitPods(byType, 0.7, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	t.Run("every pod on exactly one side", func(t *testing.T) {
		side := map[types.NamespacedName]string{}
		for _, s := range []struct {
			name string
			m    map[string][]types.NamespacedName
		}{{"train", split.Train}, {"validate", split.Validate}} {
			for typ, ps := range s.m {
				for _, p := range ps {
					if prev, dup := side[p]; dup {
						t.Errorf("pod %s (%s) is in %s and %s", p, typ, prev, s.name)
					}
					side[p] = s.name
				}
			}
		}
		for typ, ps := range byType {
			for _, p := range ps {
				if side[p] == "" {
					t.Errorf("pod %s (%s) is on neither side", p, typ)
				}
			}
		}
	})
	t.Run("stratified", func(t *testing.T) {
		want := map[string][2]int{"mysql": {7, 3}, "nginx": {6, 2}, "redis": {1, 1}, "mongo": {1, 0}}
		for typ, w := range want {
			if got := [2]int{len(split.Train[typ]), len(split.Validate[typ])}; got != w {
				t.Errorf("%s: %d train / %d validation pods, want %d / %d", typ, got[0], got[1], w[0], w[1])
			}
		}
	})
	t.Run("deterministic with the seed", func(t *testing.T) {
		again, err := SplitPods(byType, 0.7, rand.New(rand.NewPCG(1, 2)))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(split, again) {
			t.Error("same seed, different split")
		}
		// Map iteration order must not matter: a copy of the input built in another order.
		shuffled := map[string][]types.NamespacedName{}
		for _, typ := range []string{"redis", "mongo", "nginx", "mysql"} {
			ps := append([]types.NamespacedName(nil), byType[typ]...)
			for i, j := 0, len(ps)-1; i < j; i, j = i+1, j-1 {
				ps[i], ps[j] = ps[j], ps[i]
			}
			shuffled[typ] = ps
		}
		fromShuffled, err := SplitPods(shuffled, 0.7, rand.New(rand.NewPCG(1, 2)))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(split, fromShuffled) {
			t.Error("input order changed the split")
		}
		other, err := SplitPods(byType, 0.7, rand.New(rand.NewPCG(3, 4)))
		if err != nil {
			t.Fatal(err)
		}
		if reflect.DeepEqual(split.Train["mysql"], other.Train["mysql"]) {
			t.Error("different seeds gave the same mysql training pods in the same order")
		}
	})
}

func TestSplitPodsErrors(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, ratio := range []float64{0, 1, -0.5, 1.5} {
		if _, err := SplitPods(map[string][]types.NamespacedName{"a": pods("a", 3)}, ratio, rng); err == nil {
			t.Errorf("ratio %v accepted", ratio)
		}
	}
	dup := map[string][]types.NamespacedName{"a": pods("x", 2), "b": pods("x", 1)}
	if _, err := SplitPods(dup, 0.5, rng); err == nil {
		t.Error("a pod listed under two types was accepted")
	}
}
