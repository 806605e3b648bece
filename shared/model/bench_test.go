package model

import (
	"context"
	"testing"
)

// benchData is 5,000 windows of len(features.Names()) features in 8 classes.
func benchData(b *testing.B) synthData {
	b.Helper()
	d := makeSynth(synthSpec{classes: 8, podsPerClass: 42, windowsPerPod: 15, seed: 5})
	d.x, d.y, d.pod = d.x[:5000], d.y[:5000], d.pod[:5000]
	return d
}

func BenchmarkTrainClassifier(b *testing.B) {
	d := benchData(b)
	for _, bc := range []struct {
		name string
		opt  TrainOptions
	}{
		{"default", TrainOptions{}},
		{"id3", TrainOptions{Algorithm: AlgorithmID3}},
		{"bagged-id3-25", TrainOptions{Algorithm: AlgorithmBaggedID3, Trees: 25}},
		{"random-trees-50-k2", TrainOptions{Algorithm: AlgorithmRandomTrees, Trees: 50, RandomFeatures: 2}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := TrainClassifier(context.Background(), d.x, d.y, d.classes, d.names, bc.opt); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkPredict(b *testing.B) {
	d := benchData(b)
	c, err := TrainClassifier(context.Background(), d.x, d.y, d.classes, d.names, TrainOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, _, err := c.Predict(d.x[i%len(d.x)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
