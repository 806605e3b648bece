package stacktest

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/podtype/podtype/shared/sim"
)

// StartCluster runs a simulated cluster of cfg for the rest of the test: its nodes and pods
// registered in the stack's API server (the pods deleted again at the end), its fake kubelets
// served on a loopback port, advancing every cfg.Tick. It returns the cluster and the kubelets'
// base URL (cluster.NodeURLs(url) is what StartTelegraf scrapes). Cleanups run in the reverse
// order of registration: register the test's own (deleting its namespace, say) before calling
// StartCluster so that they run after the simulation has stopped and its pods are gone.
func (e *Env) StartCluster(ctx context.Context, t testing.TB, cfg sim.Config, logger *slog.Logger) (*sim.Cluster, string) {
	t.Helper()
	cluster, err := sim.New(cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cluster.Close() })
	if err := cluster.Register(ctx, e.Clientset(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// The test's context may be over by now; the pods must go all the same.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if err := cluster.Cleanup(ctx); err != nil {
			t.Errorf("sim cleanup: %v", err)
		}
	})
	kubelets := httptest.NewServer(cluster.Handler())
	t.Cleanup(kubelets.Close)
	simCtx, stop := context.WithCancel(ctx)
	t.Cleanup(func() { stop(); cluster.Wait() })
	if err := cluster.Start(simCtx); err != nil {
		t.Fatal(err)
	}
	return cluster, kubelets.URL
}
