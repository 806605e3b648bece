package sim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// TestConcurrentUse exercises every entry point at once; run with -race it checks the locking.
func TestConcurrentUse(t *testing.T) {
	c, _ := registered(t, func(c *Config) { c.PodsPerType = 2; c.FaultRate = 30 })
	h := c.Handler()
	ctx := t.Context()
	var wg sync.WaitGroup
	wg.Go(func() {
		for s := 1; s <= 300; s++ {
			c.Advance(testStart.Add(time.Duration(s) * time.Second))
		}
	})
	for _, node := range c.Nodes() {
		wg.Go(func() {
			for range 50 {
				for _, path := range []string{"/stats/summary", "/pods"} {
					if rec := get(t, h, http.MethodGet, "/nodes/"+node+path, ""); rec.Code != http.StatusOK {
						t.Errorf("GET %s: %d", path, rec.Code)
					}
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 10 {
			added, err := c.AddPods(ctx, "redis", 1)
			if err != nil {
				t.Error(err)
				return
			}
			if err := c.InjectFault(FaultSpec{Pod: added[0].Name, Kind: RestartLoop}); err != nil {
				t.Error(err)
			}
			if err := c.DeletePod(ctx, added[0].Namespace, added[0].Name); err != nil {
				t.Error(fmt.Errorf("round %d: %w", i, err))
			}
		}
	})
	wg.Go(func() {
		for range 20 {
			_ = c.Pods()
			if err := c.SyncStatus(ctx); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
	if got, want := len(c.Pods()), 2*len(Types()); got != want {
		t.Errorf("%d pods after adding and deleting 10, want %d", got, want)
	}
}

func TestAddAndDeletePods(t *testing.T) {
	c := newTestCluster(t, func(c *Config) { c.Nodes = 3; c.PodsPerType = 0; c.Types = []string{"nginx"} })
	ctx := t.Context()
	if _, err := c.AddPods(ctx, "nginx", -1); err == nil {
		t.Error("AddPods(-1): want an error")
	}
	if _, err := c.AddPods(ctx, "oracle", 1); err == nil {
		t.Error("AddPods of an unknown type: want an error")
	}
	c.Advance(testStart.Add(time.Minute))
	added, err := c.AddPods(ctx, "nginx", 6)
	if err != nil {
		t.Fatal(err)
	}
	perNode := map[string]int{}
	for _, p := range added {
		perNode[p.Node]++
		if !p.Start.Equal(testStart.Add(time.Minute)) {
			t.Errorf("pod %s starts %s, want the current simulation time", p.Name, p.Start)
		}
	}
	for _, n := range c.Nodes() {
		if perNode[n] != 2 {
			t.Errorf("pods per node %v: want them spread evenly", perNode)
		}
	}
	nodeCounters := func(node string) [3]uint64 {
		var s statsapi.Summary
		if err := json.Unmarshal(get(t, c.Handler(), http.MethodGet, "/nodes/"+node+"/stats/summary", "").Body.Bytes(), &s); err != nil {
			t.Fatal(err)
		}
		return [3]uint64{*s.Node.CPU.UsageCoreNanoSeconds, *s.Node.Network.RxBytes, *s.Node.Memory.PageFaults}
	}
	c.Advance(testStart.Add(5 * time.Minute))
	before := nodeCounters(added[0].Node)
	if err := c.DeletePod(ctx, "sim", added[0].Name); err != nil {
		t.Fatal(err)
	}
	if err := c.DeletePod(ctx, "sim", added[0].Name); err == nil {
		t.Error("deleting a pod twice: want an error")
	}
	if _, ok := c.Sample("sim", added[0].Name); ok {
		t.Error("deleted pod still has samples")
	}
	c.Advance(testStart.Add(5*time.Minute + time.Second))
	// The node's counters do not go back when a pod leaves.
	if after := nodeCounters(added[0].Node); after[0] < before[0] || after[1] < before[1] || after[2] < before[2] {
		t.Errorf("node counters (cpu ns, rx bytes, page faults) went back after a pod was deleted: %v -> %v", before, after)
	}
}
