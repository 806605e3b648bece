// Package fetcher is the watcher's one reader of InfluxDB. Pods that are waiting for data or
// being scored subscribe; every interval the fetcher issues ONE query for all of them, feeds the
// rows into an incremental telemetry.Builder bounded per pod, and hands every pod whose data
// advanced its latest window. The number of queries does not grow with the number of pods.
//
// When InfluxDB is down or slow, reads back off exponentially and pods keep their subscriptions;
// nothing is lost because the next successful read covers the whole gap. HealthyTime is a clock
// that stops while reads fail, so classification timeouts count only the time in which data
// could have arrived.
package fetcher

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/podtype/podtype/shared/telemetry"
)

// Source runs one query and calls fn for every point read, in any order. A non-nil error from
// fn stops the read and is returned.
type Source interface {
	Read(ctx context.Context, q telemetry.Query, fn func(telemetry.Point) error) error
}

// Observer receives what the service's metrics count.
type Observer interface {
	// Query is called once per query issued, with its duration and error.
	Query(d time.Duration, err error)
}

// Config tunes the fetcher.
type Config struct {
	// Interval is the time between the starts of two reads.
	Interval time.Duration
	// Overlap is re-read every time, for samples Telegraf wrote late (it flushes in batches).
	Overlap time.Duration
	// MaxBackoff caps the wait after failed reads (Interval, 2x, 4x, ... up to MaxBackoff).
	MaxBackoff time.Duration
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.Interval <= 0:
		return fmt.Errorf("fetcher: interval %v: must be > 0", c.Interval)
	case c.Overlap < 0:
		return fmt.Errorf("fetcher: overlap %v: must be >= 0", c.Overlap)
	case c.MaxBackoff < c.Interval:
		return fmt.Errorf("fetcher: max backoff %v: must be >= the interval %v", c.MaxBackoff, c.Interval)
	}
	return nil
}

// Fetcher batches the reads of all subscribed pods. Subscribe, Close and HealthyTime are safe
// for concurrent use; Run is the only goroutine that reads and owns the Builder.
type Fetcher struct {
	cfg    Config
	src    Source
	grid   func() Grid
	obs    Observer
	logger *slog.Logger

	mu      sync.Mutex
	subs    map[types.NamespacedName]*Subscription
	forget  []types.NamespacedName // closed since the last read; dropped from the Builder by Run
	started time.Time              // for HealthyTime
	outage  time.Duration          // closed outages
	failing time.Time              // start of the current outage; zero while healthy
	wake    chan struct{}          // pokes Run when the first pod subscribes

	// Owned by Run.
	builder  *telemetry.Builder
	built    Grid // the grid builder was made for
	keep     int
	lastStop time.Time
}

// Grid is what the model in use needs the pods' Series built on.
type Grid struct {
	Step time.Duration
	// Window is the model's feature window in grid points: ContainerRestarts counts back over
	// it (telemetry.RestartWindow), as the trainer counted; 0 counts in each grid point alone.
	Window int
}

// New returns a Fetcher. grid reports the grid of the model in use; when it changes, the pods'
// buffers are rebuilt on the new grid.
func New(cfg Config, src Source, grid func() Grid, obs Observer, logger *slog.Logger) (*Fetcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Fetcher{
		cfg: cfg, src: src, grid: grid, obs: obs, logger: logger,
		subs:    make(map[types.NamespacedName]*Subscription),
		started: time.Now(),
		wake:    make(chan struct{}, 1),
	}, nil
}

// Subscription is one pod's interest in its data.
type Subscription struct {
	f       *Fetcher
	pod     types.NamespacedName
	since   time.Time
	samples int
	ch      chan *telemetry.Series
	closed  atomic.Bool

	// Owned by Run.
	backfilled bool
	lastEnd    time.Time // end of the last window delivered
}

// C delivers the pod's latest window: its samples since the subscription's start time, at most
// the number subscribed for. An undelivered window is replaced by a newer one, so a slow
// receiver never holds up the fetcher and never sees stale data.
func (s *Subscription) C() <-chan *telemetry.Series { return s.ch }

// Close ends the subscription and frees the pod's buffer; it is idempotent.
func (s *Subscription) Close() {
	if s.closed.Swap(true) {
		return
	}
	f := s.f
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.subs[s.pod] == s {
		delete(f.subs, s.pod)
		f.forget = append(f.forget, s.pod)
	}
}

// Subscribe registers pod's interest in its last samples grid points; data before since (the
// pod's start) belongs to an earlier pod of the same name and is ignored. The pod's history is
// read on the next interval, so a pod that already ran before the watcher started is served at
// once. A second subscription for the same pod replaces the first.
func (f *Fetcher) Subscribe(pod types.NamespacedName, since time.Time, samples int) *Subscription {
	s := &Subscription{f: f, pod: pod, since: since, samples: max(samples, 1), ch: make(chan *telemetry.Series, 1)}
	f.mu.Lock()
	defer f.mu.Unlock()
	if old := f.subs[pod]; old != nil {
		old.closed.Store(true)
		f.forget = append(f.forget, pod)
	}
	f.subs[pod] = s
	if len(f.subs) == 1 {
		select {
		case f.wake <- struct{}{}:
		default:
		}
	}
	return s
}

// Subscribed returns the number of subscribed pods.
func (f *Fetcher) Subscribed() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}

// HealthyTime returns how long the fetcher has been able to read since it was created: wall time
// minus the time reads were failing.
func (f *Fetcher) HealthyTime() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	down := f.outage
	if !f.failing.IsZero() {
		down += now.Sub(f.failing)
	}
	return now.Sub(f.started) - down
}

func (f *Fetcher) setHealthy(ok bool, at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case ok && !f.failing.IsZero():
		f.outage += at.Sub(f.failing)
		f.failing = time.Time{}
	case !ok && f.failing.IsZero():
		f.failing = at
	}
}

// Run reads every Interval until ctx ends, backing off after failures. It returns nil when ctx
// ends.
func (f *Fetcher) Run(ctx context.Context) error {
	failures := 0
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-f.wake:
			// The first pod subscribed while idle: read now instead of up to an interval later.
			timer.Stop()
		}
		// This read serves every subscriber, including one that poked in the meantime.
		select {
		case <-f.wake:
		default:
		}
		start := time.Now()
		read, err := f.cycle(ctx)
		if ctx.Err() != nil {
			return nil
		}
		wait := f.cfg.Interval
		switch {
		case err != nil:
			failures++
			wait = min(f.cfg.Interval<<min(failures, 20), f.cfg.MaxBackoff)
			f.setHealthy(false, start)
			f.logger.Warn("read failed; pods keep waiting", "err", err, "failures", failures, "retry_in", wait)
		case read:
			if failures > 0 {
				f.logger.Info("read recovered", "after_failures", failures)
			}
			failures = 0
			f.setHealthy(true, time.Now())
		}
		timer.Reset(max(0, wait-time.Since(start)))
	}
}

// cycle does one read for all subscribed pods and delivers their windows. read is false when
// there was nothing to read for.
func (f *Fetcher) cycle(ctx context.Context) (read bool, err error) {
	f.mu.Lock()
	for _, pod := range f.forget {
		if f.builder != nil && f.subs[pod] == nil {
			f.builder.Forget(pod)
		}
	}
	f.forget = f.forget[:0]
	subs := maps.Clone(f.subs)
	f.mu.Unlock()
	if len(subs) == 0 {
		return false, nil
	}
	if err := f.prepare(subs); err != nil {
		return false, err
	}

	// Read from the last read (minus the overlap for late writes), but never further back than
	// the pods keep, even after a long outage; a new pod's history is read in the same query:
	// one longer read for everyone beats a read per pod.
	now := time.Now()
	// The Builder's lead more than kept: a counter's first rate needs the sample before it, the
	// restart counts their window.
	history := now.Add(-time.Duration(f.keep)*f.builder.Step() - f.builder.Lead())
	start := history
	if !f.lastStop.IsZero() {
		start = later(f.lastStop.Add(-f.cfg.Overlap), history)
	}
	pods := make([]types.NamespacedName, 0, len(subs))
	for pod, s := range subs {
		pods = append(pods, pod)
		if !s.backfilled {
			start = earlier(start, later(history, s.since))
		}
	}
	if !now.After(start) {
		return false, nil
	}
	q := telemetry.Query{Start: start, Stop: now, Pods: pods}
	t0 := time.Now()
	advanced := make(map[types.NamespacedName]bool)
	err = f.src.Read(ctx, q, func(p telemetry.Point) error {
		s := subs[p.Pod]
		if s == nil || p.Time.Before(s.since) {
			return nil
		}
		if err := f.builder.Add(p); err != nil {
			// Bad samples (negative, NaN) are dropped one by one; they never fail the read.
			f.logger.Debug("sample dropped", "err", err)
			return nil
		}
		advanced[p.Pod] = true
		return nil
	})
	f.obs.Query(time.Since(t0), err)
	if err != nil {
		return true, fmt.Errorf("read %d pods from %s: %w", len(pods), start.Format(time.RFC3339), err)
	}
	f.lastStop = now
	for _, s := range subs {
		s.backfilled = true
	}
	for pod := range advanced {
		f.deliver(subs[pod])
	}
	return true, nil
}

// prepare makes sure the Builder has the model's grid and keeps enough points for every
// subscription, rebuilding it (and re-reading history) when not.
func (f *Fetcher) prepare(subs map[types.NamespacedName]*Subscription) error {
	grid := f.grid()
	need := 0
	for _, s := range subs {
		need = max(need, s.samples)
	}
	if f.builder != nil && f.built == grid && f.keep >= need {
		return nil
	}
	// Exactly the largest window: KeepLast also keeps what the counters' first rates and the
	// restart counts of its oldest grid point need.
	keep := need
	b, err := telemetry.NewBuilder(grid.Step, telemetry.KeepLast(keep), telemetry.RestartWindow(max(grid.Window, 1)))
	if err != nil {
		return fmt.Errorf("window grid: %w", err)
	}
	if f.builder != nil {
		f.logger.Info("rebuilding pod buffers", "step", grid.Step, "window", grid.Window, "keep", keep)
	}
	f.builder, f.built, f.keep, f.lastStop = b, grid, keep, time.Time{}
	for _, s := range subs {
		s.backfilled, s.lastEnd = false, time.Time{}
	}
	return nil
}

func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// deliver hands s its latest window if the data reached a grid point not delivered before;
// re-read overlap alone is not news, and scoring the same window twice would count it twice.
func (f *Fetcher) deliver(s *Subscription) {
	if s.closed.Load() {
		return
	}
	series, ok := f.builder.Series(s.pod)
	if !ok || series.Len() == 0 {
		return
	}
	n := series.Len()
	end := series.Time(n - 1)
	if !end.After(s.lastEnd) {
		return
	}
	s.lastEnd = end
	if n > s.samples {
		series = series.Slice(n-s.samples, n)
	}
	// Latest wins: replace a window the tracker has not taken yet. Only Run sends, so after
	// the drain the send cannot block.
	select {
	case <-s.ch:
	default:
	}
	s.ch <- series
}
