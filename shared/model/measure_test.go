package model

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/sjwhitworth/golearn/base"
	"github.com/sjwhitworth/golearn/trees"
)

// TestMeasureAlgorithms prints, for every algorithm on synthetic data shaped
// like ours: fit time with one and two workers, accuracy on held-out pods,
// and how well the top probability separates a type the model never saw
// (AUROC of max-prob, known vs. unknown windows; 0.5 = no better than chance),
// which is what the watcher's `unknown` decision relies on. It asserts nothing
// about speed (that is for benchmarks) and runs only on request, since it
// takes minutes:
//
//	MODEL_MEASURE=1 go test -run TestMeasureAlgorithms -v ./model/
func TestMeasureAlgorithms(t *testing.T) {
	if os.Getenv("MODEL_MEASURE") == "" {
		t.Skip("set MODEL_MEASURE=1 to measure accuracy and fit time of every algorithm")
	}
	data := makeSynth(synthSpec{classes: 8, podsPerClass: 40, windowsPerPod: 15, seed: 1})
	train, valid := data.split()
	// Held out entirely for the open-set column: the last class, a near copy
	// of the one before it, so the hardest kind of new type.
	unseen := len(data.classes) - 1
	openTrain, openClasses := withoutClass(train, unseen)
	t.Logf("rows: train %d, validation %d (split by pod), features %d, classes %d",
		len(train.x), len(valid.x), len(data.names), len(data.classes))
	cases := []TrainOptions{
		{Algorithm: AlgorithmID3},
		{Algorithm: AlgorithmBaggedID3, Trees: 25},
		{Algorithm: AlgorithmRandomTrees, Trees: 25, RandomFeatures: 2},
		{Algorithm: AlgorithmRandomTrees, Trees: 50, RandomFeatures: 2},
		{Algorithm: AlgorithmRandomTrees, Trees: 25},
		{Algorithm: AlgorithmRandomTrees, Trees: 50},
		{Algorithm: AlgorithmRandomTrees, Trees: 100},
	}
	for _, opt := range cases {
		var fit [2]time.Duration
		var c *Classifier
		for w := range fit {
			opt.Workers = w + 1
			start := time.Now()
			var err error
			c, err = TrainClassifier(context.Background(), train.x, train.y, data.classes, data.names, opt)
			if err != nil {
				t.Fatal(err)
			}
			fit[w] = time.Since(start)
		}
		correct, conf := 0, 0.0
		for i, x := range valid.x {
			k, probs, err := c.Predict(x)
			if err != nil {
				t.Fatal(err)
			}
			if k == valid.y[i] {
				correct++
			}
			conf += probs[k]
		}
		open, err := TrainClassifier(context.Background(), openTrain.x, openTrain.y, openClasses, data.names, opt)
		if err != nil {
			t.Fatal(err)
		}
		var known, unknown []float64
		for i, x := range valid.x {
			_, probs, err := open.Predict(x)
			if err != nil {
				t.Fatal(err)
			}
			if valid.y[i] == unseen {
				unknown = append(unknown, slices.Max(probs))
			} else {
				known = append(known, slices.Max(probs))
			}
		}
		nodes := 0
		for _, tr := range c.Trees {
			nodes += len(tr.Nodes)
		}
		t.Logf("%-13s trees=%3d k=%2d  fit %6.2fs (1 worker) %6.2fs (2)  accuracy %.3f  mean max-prob %.3f  open-set AUROC %.3f  nodes/tree %d",
			opt.Algorithm, len(c.Trees), c.Options.RandomFeatures, fit[0].Seconds(), fit[1].Seconds(),
			float64(correct)/float64(len(valid.x)), conf/float64(len(valid.x)), auroc(known, unknown), nodes/len(c.Trees))
	}
}

// withoutClass drops class k and renumbers the classes after it.
func withoutClass(d synthData, k int) (synthData, []string) {
	out := synthData{names: d.names}
	for i := range d.x {
		if d.y[i] == k {
			continue
		}
		y := d.y[i]
		if y > k {
			y--
		}
		out.x = append(out.x, d.x[i])
		out.y = append(out.y, y)
	}
	return out, slices.Delete(slices.Clone(d.classes), k, k+1)
}

// auroc is the probability that a known window gets a higher max-prob than
// an unknown one (ties count half).
func auroc(known, unknown []float64) float64 {
	wins := 0.0
	for _, a := range known {
		for _, b := range unknown {
			switch {
			case a > b:
				wins++
			case a == b:
				wins += 0.5
			}
		}
	}
	return wins / float64(len(known)*len(unknown))
}

// TestMeasureCART times golearn's CART classifier on the same data, to decide
// whether it is worth offering. It runs only on request (MODEL_MEASURE_CART=1).
func TestMeasureCART(t *testing.T) {
	if os.Getenv("MODEL_MEASURE_CART") == "" {
		t.Skip("set MODEL_MEASURE_CART=1 to time golearn's CART")
	}
	data := makeSynth(synthSpec{classes: 8, podsPerClass: 40, windowsPerPod: 15, seed: 1})
	train, valid := data.split()
	labels := make([]int64, len(data.classes))
	for i := range labels {
		labels[i] = int64(i)
	}
	for _, depth := range []int64{4, 8} {
		cart := trees.NewDecisionTreeClassifier(trees.ENTROPY, depth, labels)
		start := time.Now()
		if err := cart.Fit(cartGrid(train)); err != nil {
			t.Fatal(err)
		}
		fit := time.Since(start)
		pred := cart.Predict(cartGrid(valid))
		correct := 0
		for i, p := range pred {
			if int(p) == valid.y[i] {
				correct++
			}
		}
		t.Logf("cart depth=%d  fit %6.2fs  accuracy %.3f", depth, fit.Seconds(), float64(correct)/float64(len(pred)))
	}
}

// cartGrid builds the grid golearn's CART wants: a numeric class attribute.
func cartGrid(d synthData) *base.DenseInstances {
	g := base.NewDenseInstances()
	specs := make([]base.AttributeSpec, len(d.names))
	for j, n := range d.names {
		specs[j] = g.AddAttribute(base.NewFloatAttribute(n))
	}
	class := base.NewFloatAttribute("class")
	classSpec := g.AddAttribute(class)
	g.AddClassAttribute(class)
	g.Extend(len(d.x))
	for i, row := range d.x {
		for j, v := range row {
			g.Set(specs[j], i, base.PackFloatToBytes(v))
		}
		g.Set(classSpec, i, base.PackFloatToBytes(float64(d.y[i])))
	}
	return g
}
