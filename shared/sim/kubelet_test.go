package sim

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func get(t *testing.T, h http.Handler, method, path, token string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestKubeletGolden(t *testing.T) {
	c := newTestCluster(t, func(c *Config) {
		c.Nodes, c.Types, c.PodsPerType, c.PartialMemoryShare = 1, []string{"mysql", "nginx"}, 1, 0
	})
	c.Advance(testStart.Add(2 * time.Minute))
	for _, tt := range []struct{ path, golden string }{
		{"/nodes/sim-node-1/stats/summary", "summary.golden.json"},
		{"/nodes/sim-node-1/pods", "pods.golden.json"},
	} {
		t.Run(tt.golden, func(t *testing.T) {
			rec := get(t, c.Handler(), http.MethodGet, tt.path, "")
			if rec.Code != http.StatusOK {
				t.Fatalf("GET %s: %d %s", tt.path, rec.Code, rec.Body)
			}
			var got bytes.Buffer
			if err := json.Indent(&got, rec.Body.Bytes(), "", "  "); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", tt.golden)
			if *update {
				if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Errorf("GET %s differs from %s (go test -update rewrites it):\n%s", tt.path, path, got.String())
			}
		})
	}
}

// TestSummaryRoundTrip decodes every node's summary strictly into the upstream type and checks it carries
// exactly what the model computed.
func TestSummaryRoundTrip(t *testing.T) {
	c := newTestCluster(t, func(c *Config) { c.Nodes = 2; c.PodsPerType = 2 })
	c.Advance(testStart.Add(3 * time.Minute))
	for _, node := range c.Nodes() {
		t.Run(node, func(t *testing.T) {
			rec := get(t, c.Handler(), http.MethodGet, "/nodes/"+node+"/stats/summary", "")
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
			dec.DisallowUnknownFields()
			var s statsapi.Summary
			if err := dec.Decode(&s); err != nil {
				t.Fatalf("decode into v1alpha1.Summary: %v", err)
			}
			again, err := json.Marshal(&s)
			if err != nil || !bytes.Equal(again, rec.Body.Bytes()) {
				t.Errorf("re-encoding the decoded summary changed it (err %v)", err)
			}
			if s.Node.NodeName != node {
				t.Errorf("nodeName %q, want %q", s.Node.NodeName, node)
			}
			var want []string
			for _, p := range c.Pods() {
				if p.Node == node {
					want = append(want, p.Name)
				}
			}
			var got []string
			var podCPU uint64
			for _, ps := range s.Pods {
				got = append(got, ps.PodRef.Name)
				sm, ok := c.Sample(ps.PodRef.Namespace, ps.PodRef.Name)
				if !ok {
					t.Fatalf("pod %s/%s served but not simulated", ps.PodRef.Namespace, ps.PodRef.Name)
				}
				ct := ps.Containers[0]
				if *ct.CPU.UsageCoreNanoSeconds != sm.CPUCoreNanoSeconds || *ct.Memory.UsageBytes != sm.MemoryUsageBytes ||
					*ps.Network.RxBytes != sm.RxBytes || *ps.Network.Interfaces[0].TxBytes != sm.TxBytes ||
					*ct.Rootfs.UsedBytes != sm.RootfsUsedBytes || *ct.Logs.UsedBytes != sm.LogsUsedBytes {
					t.Errorf("pod %s: served stats differ from the model's sample %+v", ps.PodRef.Name, sm)
				}
				if !ct.CPU.Time.Time.Equal(sm.Time.Truncate(time.Second)) {
					t.Errorf("pod %s: cpu time %s, want %s", ps.PodRef.Name, ct.CPU.Time, sm.Time)
				}
				podCPU += *ct.CPU.UsageNanoCores
			}
			if !slices.Equal(got, want) {
				t.Errorf("pods served %v, want %v", got, want)
			}
			if *s.Node.CPU.UsageNanoCores < podCPU {
				t.Errorf("node cpu %d nanocores < sum of its pods %d", *s.Node.CPU.UsageNanoCores, podCPU)
			}
		})
	}
}

// Telegraf's shapes (plugins/inputs/kubernetes): what it decodes, with its JSON names and int64 fields.
type (
	tgSummary struct {
		Node struct {
			NodeName         string        `json:"nodeName"`
			SystemContainers []tgContainer `json:"systemContainers"`
			CPU              tgCPU         `json:"cpu"`
			Memory           tgMemory      `json:"memory"`
			Network          tgNetwork     `json:"network"`
			FileSystem       tgFs          `json:"fs"`
			Runtime          struct {
				ImageFileSystem tgFs `json:"imageFs"`
			} `json:"runtime"`
		} `json:"node"`
		Pods []struct {
			PodRef struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"podRef"`
			Containers []tgContainer `json:"containers"`
			Network    tgNetwork     `json:"network"`
			Volumes    []struct {
				Name string `json:"name"`
				tgFs
			} `json:"volume"`
		} `json:"pods"`
	}
	tgContainer struct {
		Name   string   `json:"name"`
		CPU    tgCPU    `json:"cpu"`
		Memory tgMemory `json:"memory"`
		RootFS tgFs     `json:"rootfs"`
		LogsFS tgFs     `json:"logs"`
	}
	tgCPU struct {
		UsageNanoCores       int64 `json:"usageNanoCores"`
		UsageCoreNanoSeconds int64 `json:"usageCoreNanoSeconds"`
	}
	tgMemory struct {
		AvailableBytes  int64 `json:"availableBytes"`
		UsageBytes      int64 `json:"usageBytes"`
		WorkingSetBytes int64 `json:"workingSetBytes"`
		RSSBytes        int64 `json:"rssBytes"`
		PageFaults      int64 `json:"pageFaults"`
		MajorPageFaults int64 `json:"majorPageFaults"`
	}
	tgFs struct {
		AvailableBytes int64 `json:"availableBytes"`
		CapacityBytes  int64 `json:"capacityBytes"`
		UsedBytes      int64 `json:"usedBytes"`
	}
	tgNetwork struct {
		RXBytes  int64 `json:"rxBytes"`
		RXErrors int64 `json:"rxErrors"`
		TXBytes  int64 `json:"txBytes"`
		TXErrors int64 `json:"txErrors"`
	}
	tgPods struct {
		Items []struct {
			Metadata struct {
				Name      string            `json:"name"`
				Namespace string            `json:"namespace"`
				Labels    map[string]string `json:"labels"`
			} `json:"metadata"`
			Spec struct {
				Containers []struct {
					Name  string `json:"name"`
					Image string `json:"image"`
				} `json:"containers"`
			} `json:"spec"`
		} `json:"items"`
	}
)

// TestTelegrafReadsEveryField decodes the endpoints the way Telegraf does and checks that every field it
// turns into a metric is there, and that it can join each pod to its image and labels.
func TestTelegrafReadsEveryField(t *testing.T) {
	for _, partial := range []bool{false, true} {
		name := map[bool]string{false: "full memory stats", true: "runtime without working set"}[partial]
		t.Run(name, func(t *testing.T) {
			c := newTestCluster(t, func(c *Config) {
				c.Nodes = 1
				c.PartialMemoryShare = map[bool]float64{false: 0, true: 1}[partial]
			})
			c.Advance(testStart.Add(2 * time.Minute))
			var s tgSummary
			if err := json.Unmarshal(get(t, c.Handler(), http.MethodGet, "/nodes/sim-node-1/stats/summary", "").Body.Bytes(), &s); err != nil {
				t.Fatal(err)
			}
			var pods tgPods
			if err := json.Unmarshal(get(t, c.Handler(), http.MethodGet, "/nodes/sim-node-1/pods", "").Body.Bytes(), &pods); err != nil {
				t.Fatal(err)
			}
			n := s.Node
			if n.NodeName != "sim-node-1" || n.CPU.UsageCoreNanoSeconds <= 0 || n.Memory.AvailableBytes <= 0 ||
				n.Memory.WorkingSetBytes <= 0 || n.Network.RXBytes <= 0 || n.FileSystem.UsedBytes <= 0 ||
				n.Runtime.ImageFileSystem.UsedBytes <= 0 || len(n.SystemContainers) == 0 {
				t.Errorf("node stats incomplete: %+v", n)
			}
			if len(s.Pods) != len(c.Pods()) || len(pods.Items) != len(s.Pods) {
				t.Fatalf("%d pods in summary, %d in /pods, want %d", len(s.Pods), len(pods.Items), len(c.Pods()))
			}
			for _, ps := range s.Pods {
				info := c.Pods()[slices.IndexFunc(c.Pods(), func(p PodInfo) bool { return p.Name == ps.PodRef.Name })]
				if len(ps.Containers) != 1 {
					t.Fatalf("pod %s: %d containers", ps.PodRef.Name, len(ps.Containers))
				}
				ct := ps.Containers[0]
				m := ct.Memory
				if ct.CPU.UsageNanoCores <= 0 || ct.CPU.UsageCoreNanoSeconds <= 0 || m.UsageBytes <= 0 ||
					ct.RootFS.UsedBytes <= 0 || ct.RootFS.CapacityBytes <= 0 || ct.RootFS.AvailableBytes <= 0 ||
					ct.LogsFS.CapacityBytes <= 0 || ps.Network.RXBytes <= 0 || ps.Network.TXBytes <= 0 {
					t.Errorf("pod %s: container or network stats missing: %+v %+v", ps.PodRef.Name, ct, ps.Network)
				}
				if got := m.WorkingSetBytes > 0 && m.RSSBytes > 0 && m.PageFaults > 0; got == partial {
					t.Errorf("pod %s: working set %d, rss %d, page faults %d: want them present=%v",
						ps.PodRef.Name, m.WorkingSetBytes, m.RSSBytes, m.PageFaults, !partial)
				}
				prof, _ := ProfileFor(info.Type)
				if (prof.Volume != nil) != (len(ps.Volumes) == 1) || len(ps.Volumes) == 1 && (ps.Volumes[0].Name == "" || ps.Volumes[0].CapacityBytes <= 0) {
					t.Errorf("pod %s (%s): volumes %+v", ps.PodRef.Name, info.Type, ps.Volumes)
				}
				// Telegraf's join: same name and namespace, container by name -> image tag.
				var image string
				for _, item := range pods.Items {
					if item.Metadata.Name == ps.PodRef.Name && item.Metadata.Namespace == ps.PodRef.Namespace {
						for _, ic := range item.Spec.Containers {
							if ic.Name == ct.Name {
								image = ic.Image
							}
						}
						if item.Metadata.Labels[LabelManagedBy] == "" {
							t.Errorf("pod %s: labels %v", ps.PodRef.Name, item.Metadata.Labels)
						}
					}
				}
				if image != info.Image.Spec {
					t.Errorf("pod %s: Telegraf would tag image %q, want %q", ps.PodRef.Name, image, info.Image.Spec)
				}
			}
		})
	}
}

func TestPodListIsAPodList(t *testing.T) {
	c := newTestCluster(t, func(c *Config) { c.Nodes = 1; c.PodsPerType = 1 })
	dec := json.NewDecoder(get(t, c.Handler(), http.MethodGet, "/nodes/sim-node-1/pods", "").Body)
	dec.DisallowUnknownFields()
	var list corev1.PodList
	if err := dec.Decode(&list); err != nil {
		t.Fatal(err)
	}
	if list.Kind != "PodList" || len(list.Items) != len(Types()) {
		t.Fatalf("kind %q with %d items", list.Kind, len(list.Items))
	}
	for _, p := range list.Items {
		if p.Spec.NodeName != "sim-node-1" || p.Status.Phase != corev1.PodRunning || p.UID == "" {
			t.Errorf("pod %s: node %q phase %q uid %q", p.Name, p.Spec.NodeName, p.Status.Phase, p.UID)
		}
	}
}

func TestHandlerStatusCodes(t *testing.T) {
	c := newTestCluster(t, func(c *Config) { c.KubeletToken = "s3cret"; c.PodsPerType = 1 })
	tests := []struct {
		name, method, path, token string
		want                      int
	}{
		{"summary", http.MethodGet, "/nodes/sim-node-2/stats/summary", "s3cret", http.StatusOK},
		{"pods", http.MethodGet, "/nodes/sim-node-3/pods", "s3cret", http.StatusOK},
		{"no token", http.MethodGet, "/nodes/sim-node-1/stats/summary", "", http.StatusUnauthorized},
		{"wrong token", http.MethodGet, "/nodes/sim-node-1/pods", "guess", http.StatusUnauthorized},
		{"unknown node", http.MethodGet, "/nodes/sim-node-4/stats/summary", "s3cret", http.StatusNotFound},
		{"unknown node pods", http.MethodGet, "/nodes/other/pods", "s3cret", http.StatusNotFound},
		{"unknown path", http.MethodGet, "/nodes/sim-node-1/metrics", "s3cret", http.StatusNotFound},
		{"post", http.MethodPost, "/nodes/sim-node-1/stats/summary", "s3cret", http.StatusMethodNotAllowed},
		{"healthz needs no token", http.MethodGet, "/healthz", "", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := get(t, c.Handler(), tt.method, tt.path, tt.token)
			if rec.Code != tt.want {
				t.Errorf("%s %s: %d, want %d", tt.method, tt.path, rec.Code, tt.want)
			}
			if tt.want == http.StatusUnauthorized && rec.Header().Get("WWW-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
		})
	}
}

func TestSummaryIsEncodedOncePerAdvance(t *testing.T) {
	c := newTestCluster(t, func(c *Config) { c.PodsPerType = 1 })
	n := c.nodes[0]
	first, err := c.summaryJSON(n)
	if err != nil {
		t.Fatal(err)
	}
	second, _ := c.summaryJSON(n)
	if &first[0] != &second[0] {
		t.Errorf("the summary was encoded again without an Advance")
	}
	c.Advance(testStart.Add(time.Second))
	third, _ := c.summaryJSON(n)
	if &third[0] == &first[0] || bytes.Equal(third, first) {
		t.Errorf("the summary was not refreshed by Advance")
	}
}
