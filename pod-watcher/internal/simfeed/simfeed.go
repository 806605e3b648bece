// Package simfeed stands in for Telegraf and InfluxDB in the watcher's benchmark: it scrapes an
// in-process shared/sim cluster every step, keeps the last scrapes of every pod, and answers the
// fetcher's queries from them. It also trains a bundle on simulated time with the shared
// packages (features, model, iforest), the way the metrics-collector does, so the benchmark
// classifies real simulator behaviour without waiting for training data in wall time.
package simfeed

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/podtype/podtype/shared/features"
	"github.com/podtype/podtype/shared/iforest"
	"github.com/podtype/podtype/shared/model"
	"github.com/podtype/podtype/shared/sim"
	"github.com/podtype/podtype/shared/telemetry"
)

// Feed serves the fetcher from scrapes of a sim.Cluster. It is safe for concurrent use.
type Feed struct {
	cluster *sim.Cluster
	keep    int
	fields  []sim.TelegrafField

	mu   sync.RWMutex
	pods map[types.NamespacedName]*ring

	queries atomic.Int64
}

// ring holds a pod's last scrapes, oldest first once full.
type ring struct {
	info sim.PodInfo
	next int
	n    int
	t    []time.Time
	v    []float64 // scrape i's field j at i*len(Feed.fields)+j
}

// NewFeed returns a Feed over c keeping the last keep scrapes of every pod.
func NewFeed(c *sim.Cluster, keep int) *Feed {
	return &Feed{cluster: c, keep: keep, fields: sim.TelegrafFields(), pods: make(map[types.NamespacedName]*ring)}
}

// Scrape advances the cluster to now and records every pod's sample, as one Telegraf
// collection would.
func (f *Feed) Scrape(now time.Time) {
	f.cluster.Advance(now)
	pods := f.cluster.Pods()
	nf := len(f.fields)
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, info := range pods {
		s, ok := f.cluster.Sample(info.Namespace, info.Name)
		if !ok {
			continue
		}
		key := types.NamespacedName{Namespace: info.Namespace, Name: info.Name}
		r := f.pods[key]
		if r == nil {
			r = &ring{info: info, t: make([]time.Time, f.keep), v: make([]float64, f.keep*nf)}
			f.pods[key] = r
		}
		r.t[r.next] = now
		for j, fl := range f.fields {
			r.v[r.next*nf+j] = fl.Value(&s)
		}
		r.next = (r.next + 1) % f.keep
		r.n = min(r.n+1, f.keep)
	}
}

// Run scrapes every step until ctx ends.
func (f *Feed) Run(ctx context.Context, step time.Duration) {
	t := time.NewTicker(step)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			f.Scrape(now)
		}
	}
}

// Queries returns the number of reads so far.
func (f *Feed) Queries() int64 { return f.queries.Load() }

// Read implements fetcher.Source: one query, any number of pods.
func (f *Feed) Read(ctx context.Context, q telemetry.Query, fn func(telemetry.Point) error) error {
	f.queries.Add(1)
	nf := len(f.fields)
	f.mu.RLock()
	defer f.mu.RUnlock()
	for _, pod := range q.Pods {
		r := f.pods[pod]
		if r == nil {
			continue
		}
		for k := range r.n {
			i := (r.next - r.n + k + f.keep) % f.keep
			if r.t[i].Before(q.Start) || !r.t[i].Before(q.Stop) {
				continue
			}
			for j, fl := range f.fields {
				if err := fn(sim.TelegrafPoint(r.info, fl, r.t[i], r.v[i*nf+j])); err != nil {
					return err
				}
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

// TrainBundle trains a bundle on a cluster of cfg run through duration of simulated time with
// one scrape per step: windows of samples grid points every samples/2 steps, a random-trees
// classifier over cfg's types and one isolation forest per type (threshold at the 0.99 quantile
// of its training scores), as the metrics-collector builds them.
func TrainBundle(ctx context.Context, cfg sim.Config, duration, step time.Duration, samples int) (*model.Bundle, error) {
	c, err := sim.New(cfg, nil)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	// Restarts counted over a window, as the collector's source and the watcher's fetcher count them.
	b, err := telemetry.NewBuilder(step, telemetry.RestartWindow(samples))
	if err != nil {
		return nil, err
	}
	pods := c.Pods()
	fields := sim.TelegrafFields()
	start := c.StartTime()
	for t := start.Add(step); !t.After(start.Add(duration)); t = t.Add(step) {
		c.Advance(t)
		for _, info := range pods {
			s, ok := c.Sample(info.Namespace, info.Name)
			if !ok {
				continue
			}
			for _, fl := range fields {
				if err := b.Add(sim.TelegrafPoint(info, fl, t, fl.Value(&s))); err != nil {
					return nil, err
				}
			}
		}
	}
	classes := slices.Clone(cfg.Types)
	if len(classes) == 0 {
		classes = sim.Types()
	}
	var x [][]float64
	var y []int
	for _, info := range pods {
		series, ok := b.Series(types.NamespacedName{Namespace: info.Namespace, Name: info.Name})
		if !ok {
			continue
		}
		class := slices.Index(classes, info.Type)
		extra := features.Extra{ImageSizeBytes: float64(info.Image.SizeBytes)}
		for i := 0; i+samples <= series.Len(); i += max(samples/2, 1) {
			v, err := features.Extract(series.Slice(i, i+samples), extra)
			if err != nil {
				continue // a gap: not a training window
			}
			x, y = append(x, v), append(y, class)
		}
	}
	names := features.Names()
	clf, err := model.TrainClassifier(ctx, x, y, classes, names, model.TrainOptions{Algorithm: "random-trees", Trees: 30, Seed: cfg.Seed})
	if err != nil {
		return nil, fmt.Errorf("train classifier on %d windows: %w", len(x), err)
	}
	bundle := &model.Bundle{
		CreatedAt: time.Now().UTC(), FeatureVersion: features.Version, FeatureNames: names,
		AnomalyFeatureNames: features.AnomalyNames(), Classes: classes,
		WindowStep: step, WindowSamples: samples, Classifier: clf, Types: make(map[string]*model.TypeModel),
	}
	for k, typ := range classes {
		var xt [][]float64
		for i := range x {
			if y[i] == k {
				xt = append(xt, x[i])
			}
		}
		tm, err := model.FitTypeModel(xt, iforest.Config{Trees: 100, SampleSize: 256, Seed: cfg.Seed + uint64(k)})
		if err != nil {
			return nil, fmt.Errorf("anomaly model of %s: %w", typ, err)
		}
		scores := make([]float64, len(xt))
		for i, v := range xt {
			if scores[i], err = tm.Score(v); err != nil {
				return nil, err
			}
		}
		slices.Sort(scores)
		tm.Threshold = math.Min(scores[int(0.99*float64(len(scores)-1))], 1)
		bundle.Types[typ] = tm
	}
	var buf bytes.Buffer
	if err := model.Encode(&buf, bundle); err != nil { // stamps the version
		return nil, err
	}
	return bundle, nil
}
