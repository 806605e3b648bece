package telemetry

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// Builder turns Points into per-pod Series on a regular time grid.
//
// Alignment is by timestamp, never by position: a sample belongs to the grid point whose bucket
// [g, g+step) contains it, the grid being multiples of step since the Unix epoch (so it matches
// Flux's aggregateWindow and is the same for every pod and every call).
//
// Gauges: the latest sample in a bucket is the value. Counters: for every pair of consecutive
// samples of one stream (pod, container, field) the increase over the time between them is a rate,
// and a bucket's value is the sum of the increases ending in it divided by the sum of their
// durations. A decrease means the counter restarted from 0 (container restart, pod recreated
// under the same name), so the increase is the new value itself; decreases of
// cpu_usage_core_nanoseconds are also counted as ContainerRestarts (see RestartWindow), so that a
// restart stays visible although the rates survive it. A pair further apart than
// MaxRateGap yields no rate: the average over a long hole would hide what happened in it. The
// first sample of a stream has no rate. Containers (and volumes, and Docker containers) of a pod
// are summed after their rates were taken; the sum skips parts without a value at that grid point
// and is NaN only when no part has one. CPU is the rate of cpu_usage_core_nanoseconds, falling
// back per container to cpu_usage_nanocores where that has no rate.
//
// Samples are kept per stream, so points may come in any order and in any number of calls: the
// watcher's small batches every interval give exactly the Series a trainer's single batch gives
// (rates across a batch boundary included). A second point with the same stream and timestamp
// replaces the first (last wins), which makes re-reading an overlapping time range harmless.
//
// Memory is bounded with KeepLast; Forget drops a pod. A Builder is not safe for concurrent use.
type Builder struct {
	step    int64 // nanoseconds
	keep    int64 // grid points kept per pod; 0 keeps everything
	maxGap  int64 // nanoseconds
	restart int64 // grid points ContainerRestarts counts back over (RestartWindow)
	sources []Source
	pods    map[types.NamespacedName]*podState
}

type podState struct {
	node        string
	nodeAt      int64 // time of the sample node came from; the latest wins
	first, last int64 // bucket range holding samples
	streams     map[streamKey]*stream
}

type streamKey struct {
	container string
	src       int // index into Sources()
}

// stream holds one field's samples of one part of a pod, sorted by time, without duplicates.
type stream struct {
	t []int64 // Unix nanoseconds
	v []float64
}

// BuilderOption configures a Builder.
type BuilderOption func(*builderConfig)

type builderConfig struct {
	keep    int
	maxGap  time.Duration
	restart int
}

// KeepLast bounds memory: only samples of a pod's latest n grid points are kept (plus, for
// counters, the one sample before them that the first rate needs). Points older than that are
// dropped when added. 0, the default, keeps everything.
func KeepLast(n int) BuilderOption { return func(c *builderConfig) { c.keep = n } }

// RestartWindow makes ContainerRestarts at a grid point count the restarts in the n grid points
// ending there, not in that grid point alone (n = 1, the default). With n set to a feature
// window's length, a window shows the restarts of the window before it too: the window after a
// crash is a container warming up from a fresh start, which inside one window looks exactly
// like a new pod's first minutes. A grid point without a CPU rate stays NaN. KeepLast keeps
// the samples the counts of its oldest grid point need; a read must begin n grid points (and
// one sample) before the first grid point it wants complete.
func RestartWindow(n int) BuilderOption { return func(c *builderConfig) { c.restart = n } }

// MaxRateGap sets the longest time between two counter samples that still yields a rate; the
// default is 10 steps.
func MaxRateGap(d time.Duration) BuilderOption { return func(c *builderConfig) { c.maxGap = d } }

// NewBuilder returns a Builder for the grid of the given step.
func NewBuilder(step time.Duration, opts ...BuilderOption) (*Builder, error) {
	if step <= 0 {
		return nil, fmt.Errorf("builder: step %v must be positive", step)
	}
	c := builderConfig{maxGap: 10 * step, restart: 1}
	for _, o := range opts {
		o(&c)
	}
	if c.keep < 0 {
		return nil, fmt.Errorf("builder: KeepLast(%d) must not be negative", c.keep)
	}
	if c.maxGap <= 0 {
		return nil, fmt.Errorf("builder: MaxRateGap(%v) must be positive", c.maxGap)
	}
	if c.restart < 1 {
		return nil, fmt.Errorf("builder: RestartWindow(%d) must be at least 1", c.restart)
	}
	return &Builder{
		step:    int64(step),
		keep:    int64(c.keep),
		maxGap:  int64(c.maxGap),
		restart: int64(c.restart),
		sources: Sources(),
		pods:    make(map[types.NamespacedName]*podState),
	}, nil
}

// Step returns the grid step.
func (b *Builder) Step() time.Duration { return time.Duration(b.step) }

// Lead is how long before a grid point's bucket a read must begin for the Builder to complete
// that grid point: one step for a counter's previous sample, and the restart window's earlier
// grid points.
func (b *Builder) Lead() time.Duration { return time.Duration(b.restart * b.step) }

// Add ingests one point. It returns an error, and changes nothing, for a point without pod or
// time, of a field this package does not read, or with a NaN, infinite or negative value.
func (b *Builder) Add(p Point) error {
	if err := p.validate(); err != nil {
		return err
	}
	src := sourceIndex(p.Measurement, p.Field)
	if b.sources[src].ZeroIsMissing && p.Value == 0 {
		return nil
	}
	t := p.Time.UnixNano()
	bucket := floorDiv(t, b.step)
	ps := b.pods[p.Pod]
	switch {
	case ps == nil:
		ps = &podState{first: bucket, last: bucket, streams: make(map[streamKey]*stream)}
		b.pods[p.Pod] = ps
	case b.keep > 0 && bucket <= ps.last-b.keep:
		return nil // before the retained window
	}
	if p.Node != "" && (ps.node == "" || t >= ps.nodeAt) {
		ps.node, ps.nodeAt = p.Node, t
	}
	key := streamKey{container: p.Container, src: src}
	st := ps.streams[key]
	if st == nil {
		st = &stream{}
		ps.streams[key] = st
	}
	st.insert(t, p.Value)
	ps.first = min(ps.first, bucket)
	if bucket > ps.last {
		ps.last = bucket
		if b.keep > 0 {
			b.prune(ps)
		}
	}
	return nil
}

func (s *stream) insert(t int64, v float64) {
	n := len(s.t)
	if n == 0 || t > s.t[n-1] {
		s.t = append(s.t, t)
		s.v = append(s.v, v)
		return
	}
	i, found := slices.BinarySearch(s.t, t)
	if found {
		s.v[i] = v
		return
	}
	s.t = slices.Insert(s.t, i, t)
	s.v = slices.Insert(s.v, i, v)
}

// prune drops samples before the pod's retained window.
func (b *Builder) prune(ps *podState) {
	cutoff := ps.last - b.keep + 1
	if ps.first >= cutoff {
		return
	}
	first := ps.last
	for key, s := range ps.streams {
		from := func(bucket int64) int {
			return sort.Search(len(s.t), func(j int) bool { return floorDiv(s.t[j], b.step) >= bucket })
		}
		i := from(cutoff)
		if i < len(s.t) {
			first = min(first, floorDiv(s.t[i], b.step))
		}
		if b.sources[key.src].Restarts {
			i = from(cutoff - b.restart + 1) // the restart counts of the oldest kept grid point
		}
		if i == len(s.t) {
			delete(ps.streams, key)
			continue
		}
		if b.sources[key.src].Counter && i > 0 {
			i-- // the first rate in the window needs its predecessor
		}
		if i > 0 {
			s.t, s.v = s.t[i:], s.v[i:]
			// Re-slicing keeps the old array alive; copy once it is mostly dead.
			if len(s.t) < cap(s.t)/4 {
				s.t, s.v = slices.Clip(slices.Clone(s.t)), slices.Clip(slices.Clone(s.v))
			}
		}
	}
	ps.first = first
}

// Forget drops everything known about pod (call it when the pod is deleted).
func (b *Builder) Forget(pod types.NamespacedName) { delete(b.pods, pod) }

// Pods returns the pods with data, sorted by namespace and name.
func (b *Builder) Pods() []types.NamespacedName {
	out := make([]types.NamespacedName, 0, len(b.pods))
	for p := range b.pods {
		out = append(out, p)
	}
	slices.SortFunc(out, func(x, y types.NamespacedName) int {
		return cmp.Or(cmp.Compare(x.Namespace, y.Namespace), cmp.Compare(x.Name, y.Name))
	})
	return out
}

// Series returns pod's Series from the first to the last grid point holding data (within the
// retained window); ok is false for a pod without data.
func (b *Builder) Series(pod types.NamespacedName) (s *Series, ok bool) {
	ps := b.pods[pod]
	if ps == nil {
		return nil, false
	}
	return b.build(pod, ps, ps.first, int(ps.last-ps.first+1)), true
}

// maxRangePoints bounds what Range allocates (15 metrics x 8 bytes x 1M points = 120 MB).
const maxRangePoints = 1 << 20

// Range returns pod's Series over the grid points whose buckets overlap [start, stop), NaN where
// there is no data; an unknown pod gives an all-NaN Series, a stop not after start an empty one.
func (b *Builder) Range(pod types.NamespacedName, start, stop time.Time) (*Series, error) {
	b0 := floorDiv(start.UnixNano(), b.step)
	n := int64(0)
	if stop.After(start) {
		n = floorDiv(stop.UnixNano()-1, b.step) - b0 + 1
	}
	if n > maxRangePoints {
		return nil, fmt.Errorf("pod %s: range %s..%s is %d grid points of %v, more than %d",
			pod, start.Format(time.RFC3339), stop.Format(time.RFC3339), n, b.Step(), maxRangePoints)
	}
	ps := b.pods[pod]
	if ps == nil {
		return NewSeries(pod, "", b.gridTime(b0), b.Step(), int(n)), nil
	}
	return b.build(pod, ps, b0, int(n)), nil
}

func (b *Builder) gridTime(bucket int64) time.Time { return time.Unix(0, bucket*b.step).UTC() }

// build computes n grid points of pod from bucket b0 on.
func (b *Builder) build(pod types.NamespacedName, ps *podState, b0 int64, n int) *Series {
	out := NewSeries(pod, ps.node, b.gridTime(b0), b.Step(), n)
	if n == 0 {
		return out
	}
	// Sorted so that sums are taken in the same order every time: float addition is not
	// associative, and incremental and batch use must agree to the bit.
	keys := make([]streamKey, 0, len(ps.streams))
	for k := range ps.streams {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(x, y streamKey) int {
		return cmp.Or(cmp.Compare(x.container, y.container), cmp.Compare(x.src, y.src))
	})
	// One part (container, volume) of the pod for one metric: its primary source, with the
	// fallback filling the grid points the primary leaves empty.
	type part struct {
		metric    Metric
		container string
	}
	primary := make(map[part][]float64)
	fallback := make(map[part][]float64)
	var order []part
	for _, k := range keys {
		src := b.sources[k.src]
		pk := part{src.Metric, k.container}
		if primary[pk] == nil && fallback[pk] == nil {
			order = append(order, pk)
		}
		var vals []float64
		if src.Restarts {
			// The counts look back over the restart window, from before b0.
			lead := int(b.restart - 1)
			v, restarts := b.values(ps.streams[k], src, b0-int64(lead), n+lead)
			vals = v[lead:]
			addParts(out.Values[ContainerRestarts], trailingSums(restarts, lead+1)[lead:])
		} else {
			vals, _ = b.values(ps.streams[k], src, b0, n)
		}
		if src.Fallback {
			fallback[pk] = vals
		} else {
			primary[pk] = vals
		}
	}
	for _, pk := range order {
		// values returned fresh slices, so the primary's gaps are filled in place.
		v, f := primary[pk], fallback[pk]
		if v == nil {
			v = f
		} else if f != nil {
			for i := range v {
				if math.IsNaN(v[i]) {
					v[i] = f[i]
				}
			}
		}
		addParts(out.Values[pk.metric], v)
	}
	return out
}

// addParts adds one part's values (a container's, a volume's) to a pod's sum, skipping the
// part where it has no value: the sum stays NaN only where no part has one.
func addParts(sum, part []float64) {
	for i, v := range part {
		switch {
		case math.IsNaN(v):
		case math.IsNaN(sum[i]):
			sum[i] = v
		default:
			sum[i] += v
		}
	}
}

// values returns one stream's value at each of n grid points from bucket b0, NaN where none.
// For the Restarts source it also returns the restarts (decreases) in each grid point that has
// a rate: 0 where the counter only grew, NaN where it has no rate; nil for every other source.
func (b *Builder) values(s *stream, src Source, b0 int64, n int) (vals, restarts []float64) {
	vals = nanSlice(n)
	end := b0 + int64(n)
	i := sort.Search(len(s.t), func(j int) bool { return floorDiv(s.t[j], b.step) >= b0 })
	if !src.Counter {
		for ; i < len(s.t); i++ {
			k := floorDiv(s.t[i], b.step)
			if k >= end {
				break
			}
			vals[k-b0] = s.v[i] * src.Scale
		}
		return vals, nil
	}
	if src.Restarts {
		restarts = make([]float64, n)
	}
	inc := make([]float64, n)
	dur := make([]int64, n)
	for i = max(i, 1); i < len(s.t); i++ {
		k := floorDiv(s.t[i], b.step)
		if k >= end {
			break
		}
		dt := s.t[i] - s.t[i-1]
		if dt > b.maxGap {
			continue
		}
		d := s.v[i] - s.v[i-1]
		if d < 0 {
			d = s.v[i] // restarted from 0 within dt
			if restarts != nil {
				restarts[k-b0]++
			}
		}
		inc[k-b0] += d
		dur[k-b0] += dt
	}
	for k := range vals {
		switch {
		case dur[k] > 0:
			vals[k] = inc[k] / (float64(dur[k]) / 1e9) * src.Scale
		case restarts != nil:
			restarts[k] = math.NaN() // no rate, so nothing is known about restarts either
		}
	}
	return vals, restarts
}

// trailingSums returns, for every entry of r that is a number, the sum of the numbers among the
// w entries ending there; NaN entries stay NaN. Counts are small integers, so the sums are exact.
func trailingSums(r []float64, w int) []float64 {
	if w == 1 {
		return r
	}
	out := make([]float64, len(r))
	sum := 0.0
	for i, v := range r {
		if !math.IsNaN(v) {
			sum += v
		}
		if j := i - w; j >= 0 && !math.IsNaN(r[j]) {
			sum -= r[j]
		}
		out[i] = v
		if !math.IsNaN(v) {
			out[i] = sum
		}
	}
	return out
}

func nanSlice(n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = math.NaN()
	}
	return out
}

// floorDiv is integer division rounding towards minus infinity, so times before 1970 land in the
// right bucket too.
func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}
