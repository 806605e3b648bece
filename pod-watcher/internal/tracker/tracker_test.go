package tracker

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/podtype/podtype/shared/model"
	"github.com/podtype/podtype/shared/telemetry"

	"github.com/podtype/podtype/pod-watcher/internal/actions"
	"github.com/podtype/podtype/pod-watcher/internal/publish"
	"github.com/podtype/podtype/pod-watcher/internal/testmodel"
)

// The fakes below record what the tracker does; tests run in a synctest bubble, feed windows
// and wait with synctest.Wait until the tracker is idle again, so nothing is timed.

type fakeSub struct {
	ch     chan *telemetry.Series
	closed atomic.Bool
}

func (s *fakeSub) C() <-chan *telemetry.Series { return s.ch }
func (s *fakeSub) Close()                      { s.closed.Store(true) }

type fakeFetcher struct {
	mu      sync.Mutex
	subs    []*fakeSub
	samples int
	start   time.Time
	down    time.Duration // closed outages
	since   time.Time     // start of the current outage
}

func (f *fakeFetcher) Subscribe(_ types.NamespacedName, _ time.Time, samples int) Subscription {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := &fakeSub{ch: make(chan *telemetry.Series, 1)}
	f.subs = append(f.subs, s)
	f.samples = samples
	return s
}

func (f *fakeFetcher) HealthyTime() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.down
	if !f.since.IsZero() {
		d += time.Since(f.since)
	}
	return time.Since(f.start) - d
}

func (f *fakeFetcher) outage(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if on {
		f.since = time.Now()
		return
	}
	f.down += time.Since(f.since)
	f.since = time.Time{}
}

// open returns the one open subscription, or nil.
func (f *fakeFetcher) open() *fakeSub {
	f.mu.Lock()
	defer f.mu.Unlock()
	var open *fakeSub
	for _, s := range f.subs {
		if !s.closed.Load() {
			if open != nil {
				panic("two open subscriptions for one pod")
			}
			open = s
		}
	}
	return open
}

type fakeModels struct {
	mu       sync.Mutex
	b        *model.Bundle
	replaced chan struct{}
}

func (m *fakeModels) Watch() (*model.Bundle, <-chan struct{}) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.b, m.replaced
}

func (m *fakeModels) swap(b *model.Bundle) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.b = b
	close(m.replaced)
	m.replaced = make(chan struct{})
}

type event struct{ typ, reason, msg string }

type fakePublisher struct {
	mu          sync.Mutex
	annotations map[string]string
	patches     int
	events      []event
}

func (p *fakePublisher) Annotate(_ context.Context, _ publish.Pod, c publish.Changes) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.patches++
	for k, v := range c {
		if v == nil {
			delete(p.annotations, k)
		} else {
			p.annotations[k] = *v
		}
	}
	return nil
}

func (p *fakePublisher) Event(_ publish.Pod, typ, reason, msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, event{typ, reason, msg})
}

func (p *fakePublisher) reasons() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, e := range p.events {
		out = append(out, e.reason)
	}
	return out
}

func (p *fakePublisher) annotation(k string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.annotations[k]
}

type fakeActions struct {
	mu   sync.Mutex
	runs []actions.Anomaly
}

func (a *fakeActions) Enabled() bool { return true }

func (a *fakeActions) Run(_ context.Context, an actions.Anomaly) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.runs = append(a.runs, an)
	return nil
}

func (a *fakeActions) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.runs)
}

type fakeObserver struct {
	mu         sync.Mutex
	classified map[string]int
	first      int
	timeouts   int
	scores     map[string]float64 // pod_type -> latest score, deleted by ForgetPod
	anomalies  int
	actions    int
}

func (o *fakeObserver) Classified(typ string) { o.do(func() { o.classified[typ]++ }) }
func (o *fakeObserver) FirstClassification(_, _ time.Duration) {
	o.do(func() { o.first++ })
}
func (o *fakeObserver) ClassificationTimedOut() { o.do(func() { o.timeouts++ }) }
func (o *fakeObserver) AnomalyScore(_ types.NamespacedName, typ string, s float64) {
	o.do(func() { o.scores[typ] = s })
}
func (o *fakeObserver) ForgetPod(_ types.NamespacedName, typ string) {
	o.do(func() { delete(o.scores, typ) })
}
func (o *fakeObserver) AnomalyRaised(string) { o.do(func() { o.anomalies++ }) }
func (o *fakeObserver) ActionDone(error)     { o.do(func() { o.actions++ }) }

func (o *fakeObserver) do(f func()) {
	o.mu.Lock()
	defer o.mu.Unlock()
	f()
}

type harness struct {
	t      *testing.T
	fetch  *fakeFetcher
	models *fakeModels
	pub    *fakePublisher
	act    *fakeActions
	obs    *fakeObserver
	cancel context.CancelFunc
	done   chan struct{}
	seed   uint64
}

// testConfig decides on a pod's first window; TestWaitsForMinSamples covers the default.
var testConfig = Config{
	MinSamples: testmodel.Samples, Timeout: 10 * time.Minute, MinConfidence: 0.6,
	RaiseWindows: 2, ClearWindows: 3, TopFeatures: 3,
}

var testPod = types.NamespacedName{Namespace: "shop", Name: "db-0"}

func bundle(t *testing.T, version int, extra ...string) *model.Bundle {
	t.Helper()
	b, err := testmodel.Bundle(version, extra...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// start runs a tracker for testPod inside the bubble; annotations are the pod's at start.
func start(t *testing.T, cfg Config, b *model.Bundle, annotations map[string]string) *harness {
	t.Helper()
	h := &harness{
		t:      t,
		fetch:  &fakeFetcher{start: time.Now()},
		models: &fakeModels{b: b, replaced: make(chan struct{})},
		pub:    &fakePublisher{annotations: map[string]string{}},
		act:    &fakeActions{},
		obs:    &fakeObserver{classified: map[string]int{}, scores: map[string]float64{}},
		done:   make(chan struct{}),
		seed:   1,
	}
	pod := Pod{
		Pod:         publish.Pod{NamespacedName: testPod, UID: "uid-1"},
		Node:        "node-1",
		StartTime:   time.Now(),
		Annotations: annotations,
	}
	tr := New(cfg, pod, Deps{
		Fetcher: h.fetch, Models: h.models, Publisher: h.pub, Actions: h.act, Observer: h.obs,
		Logger: slog.New(slog.DiscardHandler),
	})
	ctx, cancel := context.WithCancel(t.Context())
	h.cancel = cancel
	go func() {
		defer close(h.done)
		tr.Run(ctx)
	}()
	synctest.Wait()
	return h
}

// send delivers a window of p with n samples ending now, one step after the previous one, and
// waits until the tracker handled it.
func (h *harness) send(p testmodel.Profile, n int) {
	h.t.Helper()
	time.Sleep(testmodel.Step)
	sub := h.fetch.open()
	if sub == nil {
		h.t.Fatal("no open subscription to send to")
	}
	sub.ch <- testmodel.Window(testPod, time.Now(), p, n, h.seed)
	h.seed++
	synctest.Wait()
}

// stop ends the tracker as a pod deletion does and checks it left nothing behind.
func (h *harness) stop() {
	h.t.Helper()
	h.cancel()
	synctest.Wait()
	select {
	case <-h.done:
	default:
		h.t.Fatal("tracker still running after its pod was deleted")
	}
	if s := h.fetch.open(); s != nil {
		h.t.Error("subscription left open")
	}
	if len(h.obs.scores) != 0 {
		h.t.Errorf("per-pod score series left behind: %v", h.obs.scores)
	}
}

func (h *harness) wantReasons(want ...string) {
	h.t.Helper()
	if got := h.pub.reasons(); fmt.Sprint(got) != fmt.Sprint(want) {
		h.t.Errorf("events %v, want %v", got, want)
	}
}

func TestClassification(t *testing.T) {
	tests := []struct {
		name     string
		profile  testmodel.Profile
		wantType string
		wantMsg  string
		scored   bool
	}{
		{"known type", testmodel.MySQL, "mysql", "classified as mysql (confidence 1.00", true},
		{"other type", testmodel.Nginx, "nginx", "classified as nginx", true},
		{"low confidence", testmodel.Ambiguous, publish.TypeUnknown, "confidence 0.50 below 0.60", false},
		{"rejected by the type's forest", testmodel.MySQLBusy, publish.TypeUnknown, "mysql anomaly score", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := bundle(t, 1)
				h := start(t, testConfig, b, nil)
				// Not enough samples yet: nothing is decided.
				h.send(tt.profile, testmodel.Samples-1)
				h.wantReasons()
				h.send(tt.profile, testmodel.Samples)
				h.wantReasons(publish.ReasonClassified)
				if msg := h.pub.events[0].msg; !strings.Contains(msg, tt.wantMsg) {
					t.Errorf("event message %q does not contain %q", msg, tt.wantMsg)
				}
				for k, want := range map[string]string{
					publish.AnnotationState:        publish.StateClassified,
					publish.AnnotationType:         tt.wantType,
					publish.AnnotationModelVersion: b.Version,
					publish.AnnotationAnomaly:      "false",
				} {
					if got := h.pub.annotation(k); got != want {
						t.Errorf("annotation %s = %q, want %q", k, got, want)
					}
				}
				if h.obs.classified[tt.wantType] != 1 || h.obs.first != 1 {
					t.Errorf("metrics: classified %v, first %d", h.obs.classified, h.obs.first)
				}
				// A known type is armed with its forest and keeps its subscription; unknown
				// has nothing to score with and frees it.
				if got := h.fetch.open() != nil; got != tt.scored {
					t.Errorf("subscribed after decision = %v, want %v", got, tt.scored)
				}
				if _, ok := h.obs.scores[tt.wantType]; ok != tt.scored {
					t.Errorf("score series present = %v, want %v", ok, tt.scored)
				}
				h.stop()
			})
		})
	}
}

func TestWaitsForMinSamples(t *testing.T) {
	tests := []struct {
		name       string
		minSamples int
		want       int
	}{
		{"default: two windows, past the pod's start-up", 0, 2 * testmodel.Samples},
		{"more than a window", 9, 9},
		{"less than a window: the window", 2, testmodel.Samples},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := testConfig
				cfg.MinSamples = tt.minSamples
				h := start(t, cfg, bundle(t, 1), nil)
				if h.fetch.samples != tt.want {
					t.Errorf("subscribed for %d samples, want %d", h.fetch.samples, tt.want)
				}
				h.send(testmodel.MySQL, tt.want-1)
				h.wantReasons()
				h.send(testmodel.MySQL, tt.want)
				h.wantReasons(publish.ReasonClassified)
				h.stop()
			})
		})
	}
}

func TestTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, testConfig, bundle(t, 1), nil)
		h.send(testmodel.MySQL, 2)
		time.Sleep(testConfig.Timeout)
		synctest.Wait()
		h.wantReasons(publish.ReasonClassificationTimeout)
		if got := h.pub.annotation(publish.AnnotationState); got != publish.StateUnclassified {
			t.Errorf("state annotation %q, want %q", got, publish.StateUnclassified)
		}
		if msg := h.pub.events[0].msg; !strings.Contains(msg, "(2 of 6 samples)") {
			t.Errorf("timeout message %q does not say how far the pod got", msg)
		}
		if h.obs.timeouts != 1 {
			t.Errorf("timeouts counted %d, want 1", h.obs.timeouts)
		}
		// Nothing more to do: the goroutine ends by itself and frees the subscription.
		select {
		case <-h.done:
		default:
			t.Error("tracker still running after its timeout")
		}
		h.stop()
	})
}

func TestTimeoutPausesWhileInfluxDBIsDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, testConfig, bundle(t, 1), nil)
		time.Sleep(4 * time.Minute)
		h.fetch.outage(true)
		time.Sleep(30 * time.Minute) // far beyond the timeout, but none of it counts
		synctest.Wait()
		h.wantReasons()
		h.fetch.outage(false)
		time.Sleep(6*time.Minute - time.Second)
		synctest.Wait()
		h.wantReasons()
		time.Sleep(time.Second)
		synctest.Wait()
		h.wantReasons(publish.ReasonClassificationTimeout)
	})
}

func TestAnomalyHysteresisAndActionOncePerEpisode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, testConfig, bundle(t, 1), nil)
		h.send(testmodel.MySQL, testmodel.Samples)
		steps := []struct {
			p         testmodel.Profile
			wantEvent string // new event after this window, "" for none
			wantRuns  int
		}{
			{testmodel.MySQLBusy, "", 0}, // 1 of 2 to raise
			{testmodel.MySQL, "", 0},     // run broken
			{testmodel.MySQLBusy, "", 0},
			{testmodel.MySQLBusy, publish.ReasonAnomalyDetected, 1},
			{testmodel.MySQLBusy, "", 1}, // still the same episode: no new event, no new action
			{testmodel.MySQLBusy, "", 1},
			{testmodel.MySQL, "", 1}, // 1 of 3 to clear
			{testmodel.MySQL, "", 1},
			{testmodel.MySQL, publish.ReasonAnomalyResolved, 1},
			{testmodel.MySQLBusy, "", 1},
			{testmodel.MySQLBusy, publish.ReasonAnomalyDetected, 2}, // a new episode runs again
		}
		for i, s := range steps {
			before := len(h.pub.reasons())
			h.send(s.p, testmodel.Samples)
			got := h.pub.reasons()[before:]
			switch {
			case s.wantEvent == "" && len(got) > 0:
				t.Fatalf("window %d: unexpected events %v", i, got)
			case s.wantEvent != "" && (len(got) != 1 || got[0] != s.wantEvent):
				t.Fatalf("window %d: events %v, want [%s]", i, got, s.wantEvent)
			}
			if n := h.act.count(); n != s.wantRuns {
				t.Fatalf("window %d: %d action runs, want %d", i, n, s.wantRuns)
			}
		}
		detected := h.pub.events[1]
		if detected.typ != corev1.EventTypeWarning || !strings.Contains(detected.msg, "top deviations: ") ||
			!strings.Contains(detected.msg, "z=") {
			t.Errorf("AnomalyDetected %+v lacks the deviating features", detected)
		}
		if got := h.pub.annotation(publish.AnnotationAnomaly); got != "true" {
			t.Errorf("anomaly annotation %q during an episode", got)
		}
		if h.pub.annotation(publish.AnnotationAnomalyFeatures) == "" {
			t.Error("no anomaly-features annotation during an episode")
		}
		run := h.act.runs[0]
		if run.Pod != testPod.Name || run.Type != "mysql" || len(run.Features) != testConfig.TopFeatures || !(run.Score > run.Threshold) {
			t.Errorf("action got %+v", run)
		}
		if h.obs.anomalies != 2 || h.obs.actions != 2 {
			t.Errorf("metrics: anomalies %d, actions %d, want 2 and 2", h.obs.anomalies, h.obs.actions)
		}
		h.stop()
	})
}

func TestBadDataNeverPanics(t *testing.T) {
	bad := map[string]func(s *telemetry.Series){
		"all NaN": func(s *telemetry.Series) {
			for m := range s.Values {
				for i := range s.Values[m] {
					s.Values[m][i] = math.NaN()
				}
			}
		},
		"negative and infinite": func(s *telemetry.Series) {
			s.Values[telemetry.CPUCores][1] = -3
			s.Values[telemetry.MemoryUsageBytes][2] = math.Inf(1)
		},
		"short metric": func(s *telemetry.Series) { s.Values[telemetry.CPUCores] = s.Values[telemetry.CPUCores][:2] },
		"empty":        func(s *telemetry.Series) { *s = telemetry.Series{Pod: s.Pod} },
		"zero step":    func(s *telemetry.Series) { s.Step = 0 },
	}
	for name, corrupt := range bad {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := start(t, testConfig, bundle(t, 1), nil)
				for range 3 {
					w := testmodel.Window(testPod, time.Now(), testmodel.MySQL, testmodel.Samples, 1)
					corrupt(w)
					h.fetch.open().ch <- w
					synctest.Wait()
				}
				// Whatever it made of the data, the tracker is alive and still decides.
				h.send(testmodel.MySQL, testmodel.Samples)
				if got := h.pub.annotation(publish.AnnotationType); got != "mysql" {
					t.Errorf("type %q after recovering from bad data, want mysql", got)
				}
				h.stop()
			})
		})
	}
}

func TestRestartAdoptsRecordedDecision(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bundle(t, 1)
		annotations := map[string]string{
			publish.AnnotationState:        publish.StateClassified,
			publish.AnnotationType:         "mysql",
			publish.AnnotationModelVersion: b.Version,
			publish.AnnotationAnomaly:      "true",
			"team.example.com/owner":       "shop",
		}
		h := start(t, testConfig, b, annotations)
		// Still anomalous: the episode was announced (and its action run) before the restart.
		h.send(testmodel.MySQLBusy, testmodel.Samples)
		h.send(testmodel.MySQLBusy, testmodel.Samples)
		h.wantReasons()
		if h.act.count() != 0 || h.pub.patches != 0 {
			t.Errorf("restart re-ran %d actions, wrote %d patches", h.act.count(), h.pub.patches)
		}
		for range testConfig.ClearWindows {
			h.send(testmodel.MySQL, testmodel.Samples)
		}
		h.wantReasons(publish.ReasonAnomalyResolved)
		h.stop()
	})
}

func TestRestartDecidesAgainUnderANewModel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		annotations := map[string]string{
			publish.AnnotationState:        publish.StateClassified,
			publish.AnnotationType:         "mysql",
			publish.AnnotationModelVersion: "older-model",
		}
		h := start(t, testConfig, bundle(t, 1), annotations)
		h.send(testmodel.Nginx, testmodel.Samples)
		h.wantReasons(publish.ReasonClassified)
		if got := h.pub.annotation(publish.AnnotationType); got != "nginx" {
			t.Errorf("type %q, want nginx", got)
		}
		h.stop()
	})
}

func TestRestartKeepsTimeoutAndUnknown(t *testing.T) {
	for _, rec := range []map[string]string{
		{publish.AnnotationState: publish.StateUnclassified},
		{publish.AnnotationState: publish.StateClassified, publish.AnnotationType: publish.TypeUnknown},
	} {
		t.Run(rec[publish.AnnotationState]+rec[publish.AnnotationType], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := bundle(t, 1)
				rec[publish.AnnotationModelVersion] = b.Version
				h := start(t, testConfig, b, rec)
				time.Sleep(2 * testConfig.Timeout)
				synctest.Wait()
				h.wantReasons()
				if h.fetch.open() != nil {
					t.Error("a decided pod without a forest keeps a subscription")
				}
				h.stop()
			})
		})
	}
}

func TestModelSwap(t *testing.T) {
	tests := []struct {
		name       string
		next       func(t *testing.T) *model.Bundle
		reclassify bool
	}{
		{"same classes keep the type", func(t *testing.T) *model.Bundle { return bundle(t, 2) }, false},
		{"new class list classifies again", func(t *testing.T) *model.Bundle { return bundle(t, 2, "redis") }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				first := bundle(t, 1)
				h := start(t, testConfig, first, nil)
				h.send(testmodel.MySQL, testmodel.Samples)
				next := tt.next(t)
				h.models.swap(next)
				synctest.Wait()
				h.send(testmodel.MySQL, testmodel.Samples)
				want := []string{publish.ReasonClassified}
				version := first.Version
				if tt.reclassify {
					want = append(want, publish.ReasonClassified)
					version = next.Version
				}
				h.wantReasons(want...)
				if got := h.pub.annotation(publish.AnnotationModelVersion); got != version {
					t.Errorf("model-version %q, want %q", got, version)
				}
				if h.obs.first != 1 {
					t.Errorf("first-classification latency observed %d times, want once", h.obs.first)
				}
				// Scoring goes on with the new model's forest either way.
				if _, ok := h.obs.scores["mysql"]; !ok {
					t.Error("not scored after the swap")
				}
				h.stop()
			})
		})
	}
}
