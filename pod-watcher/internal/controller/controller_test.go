package controller

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

func TestMain(m *testing.M) {
	klog.SetSlogLogger(slog.New(slog.DiscardHandler)) // informer chatter
	os.Exit(m.Run())
}

// fixture is a controller over a fake clientset, sample-controller style. Trackers are fake
// runners that report their start and end on channels, so tests wait on events, never on time.
type fixture struct {
	t       *testing.T
	client  *fake.Clientset
	ctrl    *Controller
	started chan *fakeRunner
	watched *watchedPods
	done    chan error
	cancel  context.CancelFunc
}

type fakeRunner struct {
	pod     types.NamespacedName
	uid     types.UID
	stopped chan struct{}
}

func (r *fakeRunner) Run(ctx context.Context) {
	<-ctx.Done()
	close(r.stopped)
}

// watchedPods records the gauge and tells waiters about every change.
type watchedPods struct {
	mu      sync.Mutex
	n       int
	changed chan struct{}
}

func newWatchedPods() *watchedPods { return &watchedPods{changed: make(chan struct{})} }

func (w *watchedPods) WatchedPods(n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.n = n
	close(w.changed)
	w.changed = make(chan struct{})
}

func (w *watchedPods) get() (int, <-chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n, w.changed
}

// waitForValue waits until the gauge is want.
func (w *watchedPods) waitForValue(t *testing.T, want int) {
	t.Helper()
	for {
		n, changed := w.get()
		if n == want {
			return
		}
		waitFor(t, changed, fmt.Sprintf("watched pods to become %d (is %d)", want, n))
	}
}

// newFixture starts a controller with one worker (so keys are handled in event order) over
// the given pods and waits until its informer watches.
func newFixture(t *testing.T, pods ...*corev1.Pod) *fixture {
	t.Helper()
	objs := make([]runtime.Object, len(pods))
	for i, p := range pods {
		objs[i] = p
	}
	f := &fixture{
		t:       t,
		client:  fake.NewClientset(objs...),
		started: make(chan *fakeRunner, 16),
		watched: newWatchedPods(),
		done:    make(chan error, 1),
	}
	// The fake clientset has no resource versions: writes between the informer's list and its
	// watch would be lost, so tests write only once the watch is up.
	watching := make(chan struct{})
	var once sync.Once
	f.client.PrependWatchReactor("pods", func(action clienttesting.Action) (bool, watch.Interface, error) {
		w, err := f.client.Tracker().Watch(action.GetResource(), action.GetNamespace())
		if err != nil {
			return false, nil, err
		}
		once.Do(func() { close(watching) })
		return true, w, nil
	})
	factory := informers.NewSharedInformerFactory(f.client, 0)
	ctrl, err := New(map[string]coreinformers.PodInformer{"": factory.Core().V1().Pods()},
		func(pod *corev1.Pod) (Runner, error) {
			r := &fakeRunner{
				pod:     types.NamespacedName{Namespace: pod.Namespace, Name: pod.Name},
				uid:     pod.UID,
				stopped: make(chan struct{}),
			}
			f.started <- r
			return r, nil
		}, f.watched, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	f.ctrl = ctrl
	ctx, cancel := context.WithCancel(t.Context())
	f.cancel = cancel
	factory.Start(ctx.Done())
	go func() { f.done <- ctrl.Run(ctx, 1) }()
	t.Cleanup(func() {
		cancel()
		<-f.done
		factory.Shutdown()
	})
	waitFor(t, watching, "informer watch")
	return f
}

func waitFor(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(wait.ForeverTestTimeout):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func (f *fixture) nextStarted() *fakeRunner {
	f.t.Helper()
	select {
	case r := <-f.started:
		return r
	case <-time.After(wait.ForeverTestTimeout):
		f.t.Fatal("timed out waiting for a tracker to start")
		return nil
	}
}

func (f *fixture) create(p *corev1.Pod) {
	f.t.Helper()
	if _, err := f.client.CoreV1().Pods(p.Namespace).Create(f.t.Context(), p, metav1.CreateOptions{}); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) update(p *corev1.Pod) {
	f.t.Helper()
	if _, err := f.client.CoreV1().Pods(p.Namespace).Update(f.t.Context(), p, metav1.UpdateOptions{}); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) delete(p *corev1.Pod) {
	f.t.Helper()
	if err := f.client.CoreV1().Pods(p.Namespace).Delete(f.t.Context(), p.Name, metav1.DeleteOptions{}); err != nil {
		f.t.Fatal(err)
	}
}

func pod(name, uid string, phase corev1.PodPhase) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID(uid), ResourceVersion: "1"},
		Status:     corev1.PodStatus{Phase: phase},
	}
}

func TestExistingPodsAreTrackedAtStart(t *testing.T) {
	f := newFixture(t, pod("a", "uid-a", corev1.PodRunning))
	r := f.nextStarted()
	if r.pod.Name != "a" || r.uid != "uid-a" {
		t.Fatalf("started %v/%v, want ns/a uid-a", r.pod, r.uid)
	}
	f.watched.waitForValue(t, 1)
}

func TestLifecycle(t *testing.T) {
	tests := []struct {
		name string
		// end changes the running pod so that its tracker must stop.
		end func(f *fixture, p *corev1.Pod)
	}{
		{"deleted", func(f *fixture, p *corev1.Pod) { f.delete(p) }},
		{"succeeded", func(f *fixture, p *corev1.Pod) {
			p = p.DeepCopy()
			p.Status.Phase = corev1.PodSucceeded
			p.ResourceVersion = "3"
			f.update(p)
		}},
		{"terminating", func(f *fixture, p *corev1.Pod) {
			p = p.DeepCopy()
			p.DeletionTimestamp = &metav1.Time{Time: time.Now()}
			p.ResourceVersion = "3"
			f.update(p)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			pending := pod("p", "uid-p", corev1.PodPending)
			f.create(pending)
			running := pending.DeepCopy()
			running.Status.Phase = corev1.PodRunning
			running.ResourceVersion = "2"
			// One worker handles keys in event order: had the pending pod started a tracker,
			// it would be the first one seen here, with the pod's UID either way.
			f.update(running)
			r := f.nextStarted()
			if r.uid != "uid-p" {
				t.Fatalf("started uid %s, want uid-p", r.uid)
			}
			tt.end(f, running)
			waitFor(t, r.stopped, "tracker stop")
			f.watched.waitForValue(t, 0)
			if n := f.ctrl.Tracked(); n != 0 {
				t.Errorf("tracked = %d after the pod ended, want 0", n)
			}
		})
	}
}

func TestPodReplacedUnderSameName(t *testing.T) {
	old := pod("web-0", "uid-1", corev1.PodRunning)
	f := newFixture(t, old)
	r1 := f.nextStarted()
	// A StatefulSet replica recreated: same name, new UID, seen by the informer as an update
	// when the delete and create fall between two reconciles.
	replacement := pod("web-0", "uid-2", corev1.PodRunning)
	replacement.ResourceVersion = "2"
	f.update(replacement)
	waitFor(t, r1.stopped, "old tracker stop")
	r2 := f.nextStarted()
	if r2.uid != "uid-2" {
		t.Fatalf("new tracker for uid %s, want uid-2", r2.uid)
	}
}

func TestRunStopsAllTrackers(t *testing.T) {
	f := newFixture(t, pod("a", "uid-a", corev1.PodRunning), pod("b", "uid-b", corev1.PodRunning))
	runners := []*fakeRunner{f.nextStarted(), f.nextStarted()}
	f.cancel()
	select {
	case err := <-f.done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		f.done <- nil // for the cleanup
	case <-time.After(wait.ForeverTestTimeout):
		t.Fatal("Run did not return")
	}
	// Run returns only after every tracker ended: no goroutine outlives the controller.
	for _, r := range runners {
		select {
		case <-r.stopped:
		default:
			t.Errorf("tracker of %s still running after Run returned", r.pod)
		}
	}
}

func TestResyncWithSameResourceVersionIsDropped(t *testing.T) {
	// Not running: the queue is only filled by the handler under test.
	factory := informers.NewSharedInformerFactory(fake.NewClientset(), 0)
	c, err := New(map[string]coreinformers.PodInformer{"": factory.Core().V1().Pods()},
		func(*corev1.Pod) (Runner, error) { return nil, nil }, newWatchedPods(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer c.queue.ShutDown()
	p := pod("a", "uid-a", corev1.PodRunning)
	changed := p.DeepCopy()
	changed.ResourceVersion = "2"
	tests := []struct {
		name     string
		old, new *corev1.Pod
		want     int
	}{
		{"resync", p, p.DeepCopy(), 0},
		{"change", p, changed, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.handler().OnUpdate(tt.old, tt.new)
			if got := c.queue.Len(); got != tt.want {
				t.Errorf("queue length %d, want %d", got, tt.want)
			}
		})
	}
}

func TestDeletedTombstoneIsQueued(t *testing.T) {
	factory := informers.NewSharedInformerFactory(fake.NewClientset(), 0)
	c, err := New(map[string]coreinformers.PodInformer{"": factory.Core().V1().Pods()},
		func(*corev1.Pod) (Runner, error) { return nil, nil }, newWatchedPods(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer c.queue.ShutDown()
	c.handler().OnDelete(cache.DeletedFinalStateUnknown{Key: "ns/gone", Obj: pod("gone", "u", corev1.PodRunning)})
	key, _ := c.queue.Get()
	if key.String() != "ns/gone" {
		t.Errorf("queued %q, want ns/gone", key)
	}
}
