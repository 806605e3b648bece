package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/podtype/podtype/shared/features"
	"github.com/podtype/podtype/shared/telemetry"
)

// synthSpec shapes a synthetic data set like the real one: per pod windows of
// every telemetry metric summarised by the same 9 statistics features.Extract
// computes, plus image size and availability (len(features.Names()) features).
type synthSpec struct {
	classes       int
	podsPerClass  int
	windowsPerPod int
	seed          uint64
}

// synthData is a labelled data set with the pod of every row, so that tests
// can split by pod as the real validation does.
type synthData struct {
	x       [][]float64
	y       []int
	pod     []int
	classes []string
	names   []string
}

// makeSynth draws class profiles (log-levels, burstiness, trend, which metrics
// exist), then pods that deviate from their class profile, then windows of
// 30 samples per pod. Pod-to-pod variation is what makes the task hard, as in
// the real cluster; the last class is a near copy of the one before it so
// that at least one pair is genuinely confusable.
func makeSynth(s synthSpec) synthData {
	rng := rand.New(rand.NewPCG(s.seed, 99))
	nm := int(telemetry.NumMetrics)
	type profile struct {
		level, cv, trend []float64
		present          []bool
		image            float64
	}
	profiles := make([]profile, s.classes)
	for c := range profiles {
		p := profile{level: make([]float64, nm), cv: make([]float64, nm), trend: make([]float64, nm), present: make([]bool, nm)}
		for m := range nm {
			p.level[m] = rng.NormFloat64() * 1.2
			p.cv[m] = 0.02 + 0.4*rng.Float64()
			p.trend[m] = rng.NormFloat64() * 0.002
			p.present[m] = rng.Float64() < 0.85
		}
		p.image = 27 + 3*rng.Float64()
		if c == s.classes-1 && c > 0 {
			prev := profiles[c-1]
			for m := range nm {
				p.level[m] = prev.level[m] + rng.NormFloat64()*0.25
				p.cv[m] = prev.cv[m] * math.Exp(rng.NormFloat64()*0.2)
				p.present[m] = prev.present[m]
			}
			p.image = prev.image + 0.05
		}
		profiles[c] = p
	}
	d := synthData{names: features.Names()}
	for c := range s.classes {
		d.classes = append(d.classes, fmt.Sprintf("type%d", c))
	}
	const samples = 30
	const step = 10.0 // seconds
	vals := make([]float64, samples)
	pod := 0
	for c, p := range profiles {
		for range s.podsPerClass {
			level := make([]float64, nm)
			cv := make([]float64, nm)
			for m := range nm {
				level[m] = math.Exp(p.level[m] + rng.NormFloat64()*1.0)
				cv[m] = p.cv[m] * math.Exp(rng.NormFloat64()*0.4)
			}
			image := 0.0 // unknown image size for some pods, as when the node has not reported it
			if rng.Float64() < 0.7 {
				image = p.image + rng.NormFloat64()*0.02
			}
			for range s.windowsPerPod {
				row := make([]float64, 0, len(d.names))
				for m := range nm {
					if !p.present[m] {
						row = append(row, 0, 0, 0, 0, 0, 0, 0, 0, 0)
						continue
					}
					drift := level[m] * math.Exp(rng.NormFloat64()*0.2) // slow change between windows
					for i := range vals {
						vals[i] = max(0, drift*(1+p.trend[m]*float64(i))*math.Exp(cv[m]*rng.NormFloat64()))
					}
					row = append(row, windowStats(vals, step)...)
				}
				row = append(row, image, 0.8+0.2*rng.Float64())
				d.x = append(d.x, row)
				d.y = append(d.y, c)
				d.pod = append(d.pod, pod)
			}
			pod++
		}
	}
	return d
}

// windowStats mirrors the statistics features.Extract computes per metric.
func windowStats(v []float64, step float64) []float64 {
	n := float64(len(v))
	var sum float64
	for _, x := range v {
		sum += x
	}
	mean := sum / n
	var ss, sxy, sxx float64
	for i, x := range v {
		ss += (x - mean) * (x - mean)
		t := (float64(i) - (n-1)/2) * step
		sxy += t * (x - mean)
		sxx += t * t
	}
	s := slices.Clone(v)
	slices.Sort(s)
	q := func(p float64) float64 { return s[int(p*(n-1))] }
	return []float64{mean, math.Sqrt(ss / n), s[0], s[len(s)-1], q(0.25), q(0.75), q(0.75) - q(0.25), sxy / sxx, 1}
}

// split divides d by pod: every 4th pod goes to validation.
func (d synthData) split() (train, valid synthData) {
	train = synthData{classes: d.classes, names: d.names}
	valid = synthData{classes: d.classes, names: d.names}
	for i := range d.x {
		t := &train
		if d.pod[i]%4 == 0 {
			t = &valid
		}
		t.x = append(t.x, d.x[i])
		t.y = append(t.y, d.y[i])
		t.pod = append(t.pod, d.pod[i])
	}
	return train, valid
}
