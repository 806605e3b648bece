// Package testmodel builds a small, hand-made model bundle and matching metric windows for the
// watcher's unit tests, so they run in milliseconds and can steer every branch: a confident
// class, a low-confidence region, windows a type's forest rejects.
//
// Two types: "mysql" (about 1 GB of memory, 0.5 cores) and "nginx" (100 MB, 0.1 cores). The
// classifier is one tree: more than 4 cores is a region with no majority (confidence 0.5),
// otherwise memory above 500 MB is mysql and below is nginx, with full confidence.
package testmodel

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/podtype/podtype/shared/features"
	"github.com/podtype/podtype/shared/iforest"
	"github.com/podtype/podtype/shared/model"
	"github.com/podtype/podtype/shared/telemetry"
)

// Step and Samples are the bundle's window.
const (
	Step    = 10 * time.Second
	Samples = 6
)

// Profile is a workload's level of CPU (cores) and memory (bytes).
type Profile struct {
	CPU, Memory float64
}

// Profiles of the test types and of windows that exercise the open set.
var (
	MySQL = Profile{CPU: 0.5, Memory: 1 << 30}
	Nginx = Profile{CPU: 0.125, Memory: 1 << 27}
	// MySQLBusy is classified as mysql by the tree, but uses seven times the type's CPU and
	// sixteen times its memory: the mysql anomaly model rejects it.
	MySQLBusy = Profile{CPU: 3.5, Memory: 1 << 34}
	// Ambiguous falls in the tree's no-majority region.
	Ambiguous = Profile{CPU: 8, Memory: 1 << 30}
)

// Window returns n grid points of p for pod, ending at end. Each window's CPU and memory
// levels are p's times 1+k/64 for small integers k drawn from seed, and flat over the window.
// The levels are exact binary fractions, so a window's spreads and slopes are exactly 0 rather
// than rounding noise an isolation forest would split on: only levels tell windows apart.
// The models are trained on |k| <= 3, a Window has |k| <= 1, so a Window of a type's own
// profile is always inside what its model knows.
func Window(pod types.NamespacedName, end time.Time, p Profile, n int, seed uint64) *telemetry.Series {
	return window(pod, end, p, n, seed, 1)
}

func window(pod types.NamespacedName, end time.Time, p Profile, n int, seed uint64, spread int) *telemetry.Series {
	r := rand.New(rand.NewPCG(seed, 7))
	level := func(v float64) float64 { return v * (1 + float64(r.IntN(2*spread+1)-spread)/64) }
	cpu, mem := level(p.CPU), level(p.Memory)
	start := end.Add(-time.Duration(n-1) * Step)
	s := telemetry.NewSeries(pod, "node-1", start, Step, n)
	for i := range n {
		s.Values[telemetry.CPUCores][i] = cpu
		s.Values[telemetry.MemoryUsageBytes][i] = mem
		s.Values[telemetry.MemoryWorkingSetBytes][i] = mem / 2
	}
	return s
}

// Bundle returns the test bundle, encoded and decoded once so that it carries a Version.
// version distinguishes bundles with otherwise equal content; classes may add classes (with
// mysql's forest) to test a changed class list.
func Bundle(version int, extraClasses ...string) (*model.Bundle, error) {
	names := features.Names()
	idx := func(name string) int { return slices.Index(names, name) }
	classes := append([]string{"mysql", "nginx"}, extraClasses...)
	leaf := func(counts ...int) model.Node {
		c := make([]int, len(classes))
		copy(c, counts)
		return model.Node{Feature: -1, Counts: c}
	}
	clf := &model.Classifier{
		Algorithm:    "hand-made",
		FeatureNames: names,
		Classes:      classes,
		Trees: []model.Tree{{Nodes: []model.Node{
			{Feature: idx("cpu_cores_mean"), Threshold: 4, Left: 1, Right: 2},
			{Feature: idx("memory_usage_bytes_mean"), Threshold: 5e8, Left: 3, Right: 4},
			leaf(5, 5),
			leaf(0, 10),
			leaf(10, 0),
		}}},
	}
	b := &model.Bundle{
		CreatedAt:           time.Date(2026, 1, 1, 0, 0, version, 0, time.UTC),
		FeatureVersion:      features.Version,
		FeatureNames:        names,
		AnomalyFeatureNames: features.AnomalyNames(),
		Classes:             classes,
		WindowStep:          Step,
		WindowSamples:       Samples,
		Classifier:          clf,
		Types:               make(map[string]*model.TypeModel),
	}
	for i, typ := range classes {
		p := MySQL
		if typ == "nginx" {
			p = Nginx
		}
		tm, err := typeModel(p, uint64(i+1))
		if err != nil {
			return nil, fmt.Errorf("testmodel: %s: %w", typ, err)
		}
		b.Types[typ] = tm
	}
	return roundTrip(b)
}

// typeModel fits the type's anomaly model on normal windows of p and puts the threshold at
// the highest training score.
func typeModel(p Profile, seed uint64) (*model.TypeModel, error) {
	var x [][]float64
	end := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 200 {
		w := window(types.NamespacedName{Namespace: "train", Name: "p"}, end, p, Samples, seed*1000+uint64(i), 3)
		v, err := features.Extract(w, features.Extra{})
		if err != nil {
			return nil, err
		}
		x = append(x, v)
	}
	tm, err := model.FitTypeModel(x, iforest.Config{Trees: 100, SampleSize: 64, Seed: seed})
	if err != nil {
		return nil, err
	}
	top := 0.0
	for _, v := range x {
		s, err := tm.Score(v)
		if err != nil {
			return nil, err
		}
		top = max(top, s)
	}
	tm.Threshold = top
	return tm, nil
}

// Encode returns b in the bundle file format, as the collector serves it.
func Encode(b *model.Bundle) ([]byte, error) {
	var buf bytes.Buffer
	if err := model.Encode(&buf, b); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func roundTrip(b *model.Bundle) (*model.Bundle, error) {
	data, err := Encode(b)
	if err != nil {
		return nil, err
	}
	return model.Decode(bytes.NewReader(data))
}

// Source is an in-memory InfluxDB for the watcher's fetcher: every pod a query names has one
// sample of its profile per Step grid point in the query's range, as Telegraf would have
// written them. It counts queries.
type Source struct {
	// Profile returns the workload of pod at time t.
	Profile func(pod types.NamespacedName, t time.Time) Profile

	mu      sync.Mutex
	queries int
}

// Queries returns the number of reads so far.
func (s *Source) Queries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries
}

// Read implements fetcher.Source.
func (s *Source) Read(ctx context.Context, q telemetry.Query, fn func(telemetry.Point) error) error {
	s.mu.Lock()
	s.queries++
	s.mu.Unlock()
	first := q.Start.Truncate(Step)
	if first.Before(q.Start) {
		first = first.Add(Step)
	}
	for _, pod := range q.Pods {
		for t := first; t.Before(q.Stop); t = t.Add(Step) {
			// The sample of a flat Window of the pod's profile, levels drawn from the pod's
			// name: every read sees the same values.
			w := Window(pod, t, s.Profile(pod, t), 1, uint64(len(pod.Name)))
			for field, v := range map[string]float64{
				"cpu_usage_nanocores":      w.Values[telemetry.CPUCores][0] * 1e9,
				"memory_usage_bytes":       w.Values[telemetry.MemoryUsageBytes][0],
				"memory_working_set_bytes": w.Values[telemetry.MemoryWorkingSetBytes][0],
			} {
				pt := telemetry.Point{
					Pod: pod, Node: "node-1", Container: "main", Measurement: telemetry.MeasurementPodContainer,
					Field: field, Time: t, Value: v,
				}
				if err := fn(pt); err != nil {
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
