//go:build integration

package sim_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podtype/podtype/shared/sim"
	"github.com/podtype/podtype/shared/stacktest"
)

// TestStackMetricsReachInfluxThroughTelegraf runs the simulator in-process against the real stack: its
// objects go to the kube-apiserver, its fake kubelets are scraped by a real Telegraf every second, and
// InfluxDB must hold every pod's container and network series, tagged as the services expect, within
// three Telegraf intervals plus a flush allowance.
func TestStackMetricsReachInfluxThroughTelegraf(t *testing.T) {
	env := stacktest.Load(t)
	const (
		interval       = time.Second
		flushAllowance = 5 * time.Second
	)
	ns := stacktest.UniqueName("simit")
	cfg := sim.DefaultConfig()
	cfg.Namespace, cfg.NodePrefix, cfg.Nodes = ns, ns+"-", 3
	cfg.Types = []string{"mysql", "postgres", "redis", "nginx", "memcached"}
	cfg.PodsPerType = 4
	cfg.KubeletToken = "stacktest" // the token StartTelegraf's Telegraf sends
	logger := slog.New(slog.NewTextHandler(t.Output(), nil))

	c, err := sim.New(cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: c.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { _ = srv.Close() })

	cs := env.Clientset(t)
	regCtx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if err := c.Register(regCtx, cs); err != nil {
		t.Fatalf("register: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := c.Cleanup(ctx); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	runCtx, stop := context.WithCancel(t.Context())
	t.Cleanup(func() { stop(); c.Wait() })
	if err := c.Start(runCtx); err != nil {
		t.Fatal(err)
	}
	pods := c.Pods()
	if len(pods) != 20 {
		t.Fatalf("%d pods simulated, want 20", len(pods))
	}

	t.Run("apiserver", func(t *testing.T) {
		ctx := t.Context()
		list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Items) != len(pods) {
			t.Fatalf("%d pods in the API, want %d", len(list.Items), len(pods))
		}
		sizes := map[string]map[string]int64{} // node -> image name -> size
		for _, node := range c.Nodes() {
			n, err := cs.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			sizes[node] = map[string]int64{}
			for _, im := range n.Status.Images {
				for _, name := range im.Names {
					sizes[node][name] = im.SizeBytes
				}
			}
		}
		for _, p := range list.Items {
			if p.Status.Phase != corev1.PodRunning || p.Spec.NodeName == "" || len(p.Status.ContainerStatuses) != 1 {
				t.Errorf("pod %s: phase %q on node %q", p.Name, p.Status.Phase, p.Spec.NodeName)
				continue
			}
			// The image-size lookup: the container's image (spec, or the status' digest) named on its node.
			spec := sim.NormalizeImage(p.Spec.Containers[0].Image)
			byDigest := p.Status.ContainerStatuses[0].ImageID
			if sizes[p.Spec.NodeName][spec] <= 0 || sizes[p.Spec.NodeName][byDigest] != sizes[p.Spec.NodeName][spec] {
				t.Errorf("pod %s: image %s / %s has no size on node %s", p.Name, spec, byDigest, p.Spec.NodeName)
			}
		}
	})

	t.Run("influxdb", func(t *testing.T) {
		env.StartTelegraf(t, c.NodeURLs("http://"+lis.Addr().String()), interval, nil)
		deadline := time.Now().Add(3*interval + flushAllowance)
		query := fmt.Sprintf(`from(bucket: %q)
  |> range(start: -10m)
  |> filter(fn: (r) => r.namespace == %q)
  |> filter(fn: (r) => (r._measurement == "kubernetes_pod_container" and r._field == "cpu_usage_core_nanoseconds")
                    or (r._measurement == "kubernetes_pod_network" and r._field == "rx_bytes"))
  |> last()`, env.InfluxDatabase+"/autogen", ns)
		var missing []string
		for {
			rows := env.Flux(t.Context(), t, query)
			missing = checkSeries(pods, rows)
			if len(missing) == 0 {
				return
			}
			if time.Now().After(deadline) {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		t.Errorf("after 3 Telegraf intervals + %s, %d series missing or mistagged:\n%s",
			flushAllowance, len(missing), strings.Join(missing, "\n"))
	})
}

// checkSeries returns what is missing or wrong among rows (last values of the container and network
// series) for the simulated pods.
func checkSeries(pods []sim.PodInfo, rows []map[string]any) []string {
	tag := func(r map[string]any, k string) string { s, _ := r[k].(string); return s }
	var missing []string
	for _, p := range pods {
		var container, network bool
		for _, r := range rows {
			if tag(r, "pod_name") != p.Name {
				continue
			}
			if tag(r, "node_name") != p.Node {
				missing = append(missing, fmt.Sprintf("%s: node_name %q, want %q", p.Name, tag(r, "node_name"), p.Node))
			}
			switch tag(r, "_measurement") {
			case "kubernetes_pod_container":
				container = true
				if tag(r, "container_name") == "" || tag(r, "image") != p.Image.Spec {
					missing = append(missing, fmt.Sprintf("%s: container_name %q, image %q (want %q)",
						p.Name, tag(r, "container_name"), tag(r, "image"), p.Image.Spec))
				}
				if v, ok := r["_value"].(int64); !ok || v <= 0 {
					missing = append(missing, fmt.Sprintf("%s: cpu_usage_core_nanoseconds = %v", p.Name, r["_value"]))
				}
				if want := p.Labels[sim.LabelName]; want != "" && tag(r, sim.LabelName) != want {
					missing = append(missing, fmt.Sprintf("%s: tag %s = %q, want %q", p.Name, sim.LabelName, tag(r, sim.LabelName), want))
				}
			case "kubernetes_pod_network":
				network = true
			}
		}
		if !container {
			missing = append(missing, p.Name+": no kubernetes_pod_container series")
		}
		if !network {
			missing = append(missing, p.Name+": no kubernetes_pod_network series")
		}
	}
	slices.Sort(missing)
	return slices.Compact(missing)
}
