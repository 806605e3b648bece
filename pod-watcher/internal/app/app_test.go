package app

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/klog/v2"

	"github.com/podtype/podtype/shared/config"
	"github.com/podtype/podtype/shared/model"

	"github.com/podtype/podtype/pod-watcher/internal/publish"
	"github.com/podtype/podtype/pod-watcher/internal/testmodel"
)

func TestMain(m *testing.M) {
	klog.SetSlogLogger(slog.New(slog.DiscardHandler))
	os.Exit(m.Run())
}

// world is a fake cluster with the pods db-0 (mysql), web-0 (nginx) and odd-0 (behaviour no
// class fits), an in-memory InfluxDB and a bundle file.
type world struct {
	client    *fake.Clientset
	source    *testmodel.Source
	cfg       Config
	bundle    *model.Bundle
	events    chan *corev1.Event
	podWatchs chan struct{}
}

func newWorld(t *testing.T) *world {
	t.Helper()
	b, err := testmodel.Bundle(1)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "model.json.gz")
	if err := model.WriteFile(path, b); err != nil {
		t.Fatal(err)
	}
	started := metav1.NewTime(time.Now().Add(-time.Hour))
	var objs []runtime.Object
	for _, name := range []string{"db-0", "web-0", "odd-0"} {
		objs = append(objs, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, UID: types.UID("uid-" + name),
				Annotations: map[string]string{"example.com/owner": "shop-team"}},
			Spec:   corev1.PodSpec{NodeName: "node-1", Containers: []corev1.Container{{Name: "main", Image: "example/" + name}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, StartTime: &started},
		})
	}
	w := &world{
		client: fake.NewClientset(objs...),
		source: &testmodel.Source{Profile: func(pod types.NamespacedName, _ time.Time) testmodel.Profile {
			switch {
			case strings.HasPrefix(pod.Name, "db-"):
				return testmodel.MySQL
			case strings.HasPrefix(pod.Name, "web-"):
				return testmodel.Nginx
			}
			return testmodel.Ambiguous
		}},
		bundle:    b,
		events:    make(chan *corev1.Event, 100),
		podWatchs: make(chan struct{}, 10),
	}
	w.client.PrependReactor("create", "events", func(a clienttesting.Action) (bool, runtime.Object, error) {
		w.events <- a.(clienttesting.CreateAction).GetObject().(*corev1.Event)
		return false, nil, nil
	})
	// The fake clientset has no resource versions, so a write between an informer's list and
	// its watch is lost; the test writes only once a pod watch is up.
	w.client.PrependWatchReactor("pods", func(a clienttesting.Action) (bool, watch.Interface, error) {
		wi, err := w.client.Tracker().Watch(a.GetResource(), a.GetNamespace())
		if err != nil {
			return false, nil, err
		}
		w.podWatchs <- struct{}{}
		return true, wi, nil
	})
	if err := config.Load(&w.cfg, map[string]string{
		"MODEL_PATH":        path,
		"POLL_INTERVAL":     "20ms",
		"FETCH_MAX_BACKOFF": "1s",
		"LEADER_ELECT":      "false",
		"MIN_CONFIDENCE":    "0.6",
		"LISTEN_ADDR":       "127.0.0.1:0",
		"KUBECONFIG":        "/nonexistent/only-for-validation",
	}); err != nil {
		t.Fatal(err)
	}
	return w
}

// running is one in-process run of the watcher.
type running struct {
	reg    *prometheus.Registry
	addr   net.Addr
	cancel context.CancelFunc
	done   chan error
}

func (w *world) start(t *testing.T) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	listening := make(chan net.Addr, 1)
	r := &running{reg: prometheus.NewRegistry(), cancel: cancel, done: make(chan error, 1)}
	go func() {
		r.done <- RunWithOptions(ctx, w.cfg, slog.New(slog.DiscardHandler), Options{
			Registry: r.reg, Listening: listening, Source: w.source, Client: w.client,
		})
	}()
	select {
	case r.addr = <-listening:
	case err := <-r.done:
		t.Fatalf("watcher ended at start: %v", err)
	}
	t.Cleanup(r.stop)
	return r
}

func (r *running) stop() {
	r.cancel()
	if err := <-r.done; err != nil {
		panic(fmt.Sprintf("watcher: %v", err))
	}
	r.done <- nil // stop is idempotent
}

// eventually waits for cond, which reads state the watcher updates asynchronously.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 5*time.Millisecond, wait.ForeverTestTimeout, true,
		func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		t.Fatalf("timed out waiting for %s", what)
	}
}

func (w *world) nextEvent(t *testing.T) *corev1.Event {
	t.Helper()
	select {
	case e := <-w.events:
		return e
	case <-time.After(wait.ForeverTestTimeout):
		t.Fatal("timed out waiting for an Event")
		return nil
	}
}

func (r *running) series(t *testing.T, name string) int {
	t.Helper()
	n, err := testutil.GatherAndCount(r.reg, name)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// value returns the value of the single-series gauge name.
func (r *running) value(t *testing.T, name string) float64 {
	t.Helper()
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}

func TestWatcherEndToEnd(t *testing.T) {
	w := newWorld(t)
	r := w.start(t)
	<-w.podWatchs

	// Every pod gets one Classified Event and its annotations.
	got := map[string]string{}
	for range 3 {
		e := w.nextEvent(t)
		if e.Reason != publish.ReasonClassified || e.Source.Component != Component {
			t.Fatalf("event %s from %s: %s", e.Reason, e.Source.Component, e.Message)
		}
		got[e.InvolvedObject.Name] = e.Message
	}
	for pod, want := range map[string]string{"db-0": "mysql", "web-0": "nginx", "odd-0": publish.TypeUnknown} {
		if !strings.HasPrefix(got[pod], "classified as "+want) {
			t.Errorf("%s: event %q, want classified as %s", pod, got[pod], want)
		}
		p, err := w.client.CoreV1().Pods("shop").Get(t.Context(), pod, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		a := p.Annotations
		if a[publish.AnnotationType] != want || a[publish.AnnotationModelVersion] != w.bundle.Version ||
			a["example.com/owner"] != "shop-team" {
			t.Errorf("%s: annotations %v", pod, a)
		}
	}
	// One query per interval for all pods: never more queries than intervals, whatever the
	// number of pods.
	if q := w.source.Queries(); q > 60 {
		t.Errorf("%d queries for 3 pods in the first intervals", q)
	}

	resp, err := http.Get("http://" + r.addr.String() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz: %s", resp.Status)
	}

	// A deleted pod's tracker ends and takes its score series along.
	eventually(t, "scores of the two known types", func() bool { return r.series(t, "podwatcher_anomaly_score") == 2 })
	if err := w.client.CoreV1().Pods("shop").Delete(t.Context(), "web-0", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the deleted pod's series to go", func() bool {
		return r.series(t, "podwatcher_anomaly_score") == 1 && r.value(t, "podwatcher_watched_pods") == 2
	})
	r.stop()

	// A restarted watcher adopts what the annotations record: nothing is announced again.
	r2 := w.start(t)
	eventually(t, "the restarted watcher to score db-0", func() bool { return r2.series(t, "podwatcher_anomaly_score") == 1 })
	if n := r2.series(t, "podwatcher_pods_classified_total"); n != 0 {
		t.Errorf("restarted watcher classified %d pods again", n)
	}
	r2.stop()
	select {
	case e := <-w.events:
		t.Errorf("duplicate event after restart: %s %s", e.Reason, e.Message)
	default:
	}
}
