package train

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"

	"k8s.io/apimachinery/pkg/types"
)

// Split is one grouped train/validation assignment: every pod is on exactly one side, so the
// validation numbers are always about pods the model never saw.
type Split struct {
	// Train lists the training pods per type in a random order; a learning-curve point with n
	// pods per type uses the first n.
	Train map[string][]types.NamespacedName
	// Validate lists the held-out pods per type, sorted.
	Validate map[string][]types.NamespacedName
}

// TrainingPods returns how many of n pods of one type go to training: round(ratio*n), but at
// least one (a type without training pods cannot be learnt) and, when n >= 2, at most n-1 (a type
// without validation pods cannot be measured).
func TrainingPods(n int, ratio float64) int {
	k := int(math.Round(ratio * float64(n)))
	if n >= 2 {
		k = min(k, n-1)
	}
	return max(k, min(n, 1))
}

// SplitPods splits each type's pods, stratified: every type gets TrainingPods(n, ratio) training
// pods drawn by rng. The result depends only on the input and rng's state: types are visited in
// sorted order and each type's pods are sorted before shuffling.
func SplitPods(byType map[string][]types.NamespacedName, ratio float64, rng *rand.Rand) (Split, error) {
	if !(ratio > 0 && ratio < 1) {
		return Split{}, fmt.Errorf("split: training ratio %v: want 0 < ratio < 1", ratio)
	}
	s := Split{Train: map[string][]types.NamespacedName{}, Validate: map[string][]types.NamespacedName{}}
	typeNames := make([]string, 0, len(byType))
	for t := range byType {
		typeNames = append(typeNames, t)
	}
	sort.Strings(typeNames)
	seen := map[types.NamespacedName]string{}
	for _, t := range typeNames {
		pods := slices.Clone(byType[t])
		sortPods(pods)
		for _, p := range pods {
			if other, dup := seen[p]; dup {
				return Split{}, fmt.Errorf("split: pod %s is listed as both %q and %q", p, other, t)
			}
			seen[p] = t
		}
		if len(pods) == 0 {
			continue
		}
		rng.Shuffle(len(pods), func(i, j int) { pods[i], pods[j] = pods[j], pods[i] })
		k := TrainingPods(len(pods), ratio)
		s.Train[t] = pods[:k:k]
		if val := slices.Clone(pods[k:]); len(val) > 0 {
			sortPods(val)
			s.Validate[t] = val
		}
	}
	return s, nil
}

func sortPods(pods []types.NamespacedName) {
	slices.SortFunc(pods, func(a, b types.NamespacedName) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
}
