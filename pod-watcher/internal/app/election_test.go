package app

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
)

// Two replicas share one lease: only one works at a time, and the second takes over only after
// the first has stopped its work and released the lease.
func TestOnlyTheLeaderWorks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client := fake.NewClientset()
		lease := types.NamespacedName{Namespace: "podtype", Name: "podtype-pod-watcher"}
		timings := leaseTimings{duration: 3 * time.Second, renewDeadline: 2 * time.Second, retryPeriod: 500 * time.Millisecond}
		var active, maxActive atomic.Int32
		started := make(chan string, 4)
		work := func(name string) func(context.Context) error {
			return func(ctx context.Context) error {
				n := active.Add(1)
				if n > maxActive.Load() {
					maxActive.Store(n)
				}
				started <- name
				<-ctx.Done()
				time.Sleep(time.Second) // finishing writes; the lease must stay held meanwhile
				active.Add(-1)
				return nil
			}
		}
		replica := func(name string) (context.CancelFunc, <-chan error) {
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() {
				done <- runElected(ctx, client, lease, name, timings, newMetrics(prometheus.NewRegistry()),
					slog.New(slog.DiscardHandler), work(name))
			}()
			return cancel, done
		}

		stopA, doneA := replica("a")
		synctest.Wait()
		if got := <-started; got != "a" {
			t.Fatalf("%s leads, want a", got)
		}
		stopB, doneB := replica("b")
		time.Sleep(10 * time.Second)
		synctest.Wait()
		select {
		case got := <-started:
			t.Fatalf("%s started working while a holds the lease", got)
		default:
		}

		stopA() // a shuts down: stops working, then releases
		if err := <-doneA; err != nil {
			t.Errorf("a: %v", err)
		}
		time.Sleep(timings.retryPeriod * 2)
		synctest.Wait()
		select {
		case got := <-started:
			if got != "b" {
				t.Fatalf("%s took over, want b", got)
			}
		default:
			t.Fatal("b did not take over a released lease within two retry periods")
		}
		if maxActive.Load() != 1 {
			t.Errorf("%d replicas worked at once", maxActive.Load())
		}
		l, err := client.CoordinationV1().Leases(lease.Namespace).Get(t.Context(), lease.Name, metav1.GetOptions{})
		if err != nil || l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != "b" {
			t.Errorf("lease holder %v (err %v), want b", l.Spec.HolderIdentity, err)
		}
		stopB()
		if err := <-doneB; err != nil {
			t.Errorf("b: %v", err)
		}
	})
}
