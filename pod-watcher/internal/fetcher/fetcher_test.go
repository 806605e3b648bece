package fetcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/podtype/podtype/shared/telemetry"
)

const step = 10 * time.Second

// fakeSource serves one gauge sample per pod and grid point, and records every query. While
// down, every read fails.
type fakeSource struct {
	mu      sync.Mutex
	queries []telemetry.Query
	down    bool
	// value is the sample of pod at t; nil means 1.
	value func(pod types.NamespacedName, t time.Time) float64
}

func (s *fakeSource) Read(_ context.Context, q telemetry.Query, fn func(telemetry.Point) error) error {
	s.mu.Lock()
	s.queries = append(s.queries, q)
	down, value := s.down, s.value
	s.mu.Unlock()
	if down {
		return errors.New("connection refused")
	}
	first := q.Start.Truncate(step)
	if first.Before(q.Start) {
		first = first.Add(step)
	}
	for _, pod := range q.Pods {
		for t := first; t.Before(q.Stop); t = t.Add(step) {
			v := 1.0
			if value != nil {
				v = value(pod, t)
			}
			err := fn(telemetry.Point{
				Pod: pod, Node: "n1", Container: "c", Measurement: telemetry.MeasurementPodContainer,
				Field: "memory_usage_bytes", Time: t, Value: v,
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *fakeSource) setDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

func (s *fakeSource) taken() []telemetry.Query {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]telemetry.Query(nil), s.queries...)
}

type queryCounter struct {
	mu            sync.Mutex
	total, failed int
}

func (c *queryCounter) Query(_ time.Duration, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.total++
	if err != nil {
		c.failed++
	}
}

func newTestFetcher(t *testing.T, src Source, obs Observer) *Fetcher {
	t.Helper()
	f, err := New(Config{Interval: step, Overlap: 2 * step, MaxBackoff: 8 * step}, src,
		func() Grid { return Grid{Step: step, Window: 4} }, obs, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func podName(i int) types.NamespacedName {
	return types.NamespacedName{Namespace: fmt.Sprintf("ns-%d", i%3), Name: fmt.Sprintf("pod-%d", i)}
}

// run starts f in the bubble and stops it (and waits) at the end of the test function.
func run(t *testing.T, f *Fetcher) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := f.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

func TestOneQueryPerIntervalForAllPods(t *testing.T) {
	for _, n := range []int{1, 100, 2000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				src := &fakeSource{}
				obs := &queryCounter{}
				f := newTestFetcher(t, src, obs)
				subs := make([]*Subscription, n)
				for i := range subs {
					subs[i] = f.Subscribe(podName(i), time.Now().Add(-time.Hour), 6)
				}
				run(t, f)
				const intervals = 5
				time.Sleep(intervals*step - time.Nanosecond)
				synctest.Wait()
				qs := src.taken()
				// The first read happens at once, then one per interval.
				if len(qs) != intervals {
					t.Fatalf("%d queries over %d intervals for %d pods, want %d", len(qs), intervals, n, intervals)
				}
				for i, q := range qs {
					if len(q.Pods) != n {
						t.Errorf("query %d names %d pods, want %d", i, len(q.Pods), n)
					}
				}
				for i, s := range subs {
					select {
					case w := <-s.C():
						if w.Len() != 6 {
							t.Errorf("pod %d: window of %d samples, want the subscribed 6", i, w.Len())
						}
					default:
						t.Fatalf("pod %d got no window", i)
					}
				}
			})
		})
	}
}

func TestIncrementalRangesOverlap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &fakeSource{}
		f := newTestFetcher(t, src, &queryCounter{})
		f.Subscribe(podName(0), time.Now().Add(-time.Hour), 6)
		run(t, f)
		time.Sleep(3*step - time.Nanosecond)
		synctest.Wait()
		qs := src.taken()
		if len(qs) != 3 {
			t.Fatalf("%d queries, want 3", len(qs))
		}
		// First: the pod's history (the kept points, the restart window of 4 before the oldest
		// and the sample before that), then from the last stop minus the overlap.
		if got, want := qs[0].Stop.Sub(qs[0].Start), (6+3+1)*step; got != want {
			t.Errorf("first read spans %v, want the kept history %v", got, want)
		}
		for i := 1; i < len(qs); i++ {
			if got, want := qs[i].Start, qs[i-1].Stop.Add(-2*step); !got.Equal(want) {
				t.Errorf("read %d starts %v, want previous stop minus overlap %v", i, got, want)
			}
		}
	})
}

func TestBackoffKeepsPodsAndPausesTheirClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &fakeSource{}
		obs := &queryCounter{}
		f := newTestFetcher(t, src, obs)
		sub := f.Subscribe(podName(0), time.Now().Add(-time.Hour), 6)
		run(t, f)
		synctest.Wait()
		<-sub.C() // first window
		h0 := f.HealthyTime()

		src.setDown(true)
		time.Sleep(step) // the next read fails
		synctest.Wait()
		down := time.Now()
		// Backoff doubles: retries after 2, 4, 8 (capped) steps.
		time.Sleep(14 * step)
		synctest.Wait()
		qs := src.taken()
		var gaps []time.Duration
		for i := 2; i < len(qs); i++ {
			gaps = append(gaps, qs[i].Stop.Sub(qs[i-1].Stop))
		}
		want := []time.Duration{2 * step, 4 * step, 8 * step}
		if fmt.Sprint(gaps) != fmt.Sprint(want) {
			t.Errorf("gaps between failed reads %v, want %v", gaps, want)
		}
		if got := f.HealthyTime() - h0; got != step {
			// Healthy from the first read to the failing one, then paused.
			t.Errorf("healthy time advanced %v during the outage, want %v (before it)", got, step)
		}
		if f.Subscribed() != 1 {
			t.Fatalf("subscriptions %d during the outage, want 1", f.Subscribed())
		}

		src.setDown(false)
		time.Sleep(8 * step) // the next retry succeeds
		synctest.Wait()
		select {
		case w := <-sub.C():
			// The window reaches up to the recovery: the gap was read in one go.
			if end := w.Time(w.Len() - 1); end.Before(down) {
				t.Errorf("window after recovery ends %v, before the outage began %v", end, down)
			}
		default:
			t.Fatal("no window after recovery")
		}
		before := f.HealthyTime()
		time.Sleep(step)
		if got := f.HealthyTime() - before; got != step {
			t.Errorf("healthy clock runs at %v per %v after recovery", got, step)
		}
		if obs.failed != 4 {
			t.Errorf("%d failed queries counted, want 4", obs.failed)
		}
	})
}

func TestLatestWindowWinsAndCloseForgets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &fakeSource{value: func(_ types.NamespacedName, t time.Time) float64 { return float64(t.Unix()) }}
		f := newTestFetcher(t, src, &queryCounter{})
		slow := f.Subscribe(podName(0), time.Now().Add(-time.Hour), 4)
		gone := f.Subscribe(podName(1), time.Now().Add(-time.Hour), 4)
		run(t, f)
		time.Sleep(3*step - time.Nanosecond) // three reads, nobody receives
		synctest.Wait()
		w := <-slow.C()
		last := w.Values[telemetry.MemoryUsageBytes][w.Len()-1]
		if want := float64(time.Now().Add(-step).Truncate(step).Unix()); last != want {
			t.Errorf("slow receiver got a window ending with %v, want the latest sample %v", last, want)
		}
		select {
		case <-slow.C():
			t.Error("a second, stale window was queued")
		default:
		}

		gone.Close()
		time.Sleep(step)
		synctest.Wait()
		qs := src.taken()
		if pods := qs[len(qs)-1].Pods; len(pods) != 1 || pods[0] != podName(0) {
			t.Errorf("read after Close names %v, want only %v", pods, podName(0))
		}
		if _, ok := f.builder.Series(podName(1)); ok {
			t.Error("closed pod's samples still buffered")
		}
	})
}

func TestSamplesBeforeThePodStartAreIgnored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &fakeSource{}
		f := newTestFetcher(t, src, &queryCounter{})
		// A pod that started two steps ago; the older samples of the same name are a
		// predecessor's.
		start := time.Now().Add(-2 * step)
		sub := f.Subscribe(podName(0), start, 6)
		run(t, f)
		synctest.Wait()
		w := <-sub.C()
		if w.Start.Before(start) {
			t.Errorf("window starts %v, before the pod started %v", w.Start, start)
		}
		for i := range w.Len() {
			if math.IsNaN(w.Values[telemetry.MemoryUsageBytes][i]) {
				t.Errorf("grid point %d has no value", i)
			}
		}
	})
}

func TestBadSamplesDoNotFailTheRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &fakeSource{value: func(_ types.NamespacedName, t time.Time) float64 {
			if t.Unix()/10%2 == 0 {
				return math.NaN()
			}
			return -5
		}}
		obs := &queryCounter{}
		f := newTestFetcher(t, src, obs)
		sub := f.Subscribe(podName(0), time.Now().Add(-time.Hour), 6)
		run(t, f)
		synctest.Wait()
		if obs.failed != 0 {
			t.Errorf("%d failed reads, want 0: bad samples are dropped one by one", obs.failed)
		}
		select {
		case w := <-sub.C():
			t.Errorf("window of %d points from samples that were all bad", w.Len())
		default:
		}
	})
}
