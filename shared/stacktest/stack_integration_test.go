//go:build integration

package stacktest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// influxRequest sends an InfluxDB 1.x request authenticated as user:password.
func influxRequest(ctx context.Context, t *testing.T, method, rawURL, user, password, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, rawURL, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.Header.Set("Authorization", "Token "+user+":"+password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func influxQL(ctx context.Context, t *testing.T, e *Env, user, password, q string) string {
	t.Helper()
	u := e.InfluxURL + "/query?" + url.Values{"db": {e.InfluxDatabase}, "q": {q}}.Encode()
	code, body := influxRequest(ctx, t, http.MethodPost, u, user, password, "")
	if code != http.StatusOK || strings.Contains(body, `"error"`) {
		t.Fatalf("InfluxQL %q as %s: HTTP %d: %s", q, user, code, body)
	}
	return body
}

func TestStack(t *testing.T) {
	e := Load(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	t.Run("influxdb ping", func(t *testing.T) {
		resp, err := http.Get(e.InfluxURL + "/ping")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("GET /ping: HTTP %d, want 204", resp.StatusCode)
		}
		if v := resp.Header.Get("X-Influxdb-Version"); !strings.HasPrefix(v, "1.8.") {
			t.Errorf("X-Influxdb-Version = %q, want 1.8.x", v)
		}
	})

	t.Run("write user writes, read user reads with flux", func(t *testing.T) {
		m := strings.ReplaceAll(UniqueName("stacktest"), "-", "_")
		t.Cleanup(func() {
			influxQL(context.Background(), t, e, e.AdminUser, e.AdminPassword, fmt.Sprintf("DROP MEASUREMENT %q", m))
		})
		w := e.InfluxURL + "/write?" + url.Values{"db": {e.InfluxDatabase}}.Encode()
		if code, body := influxRequest(ctx, t, http.MethodPost, w, e.WriteUser, e.WritePassword, m+",pod=p1 v=42"); code != http.StatusNoContent {
			t.Fatalf("write as %s: HTTP %d: %s", e.WriteUser, code, body)
		}
		rows := e.Flux(ctx, t, fmt.Sprintf(`from(bucket: %q) |> range(start: -5m) |> filter(fn: (r) => r._measurement == %q)`,
			e.InfluxDatabase+"/autogen", m))
		if len(rows) != 1 || rows[0]["_value"] != 42.0 || rows[0]["pod"] != "p1" || rows[0]["_field"] != "v" {
			t.Fatalf("flux as %s returned %v, want one row v=42 pod=p1", e.InfluxUser, rows)
		}
	})

	t.Run("read user cannot write", func(t *testing.T) {
		w := e.InfluxURL + "/write?" + url.Values{"db": {e.InfluxDatabase}}.Encode()
		code, body := influxRequest(ctx, t, http.MethodPost, w, e.InfluxUser, e.InfluxPassword, "stacktest_denied v=1")
		if code != http.StatusForbidden || !strings.Contains(body, "not authorized to write") {
			t.Fatalf("write as read user %s: HTTP %d %s, want 403 not authorized", e.InfluxUser, code, body)
		}
	})

	t.Run("apiserver lists namespaces as admin", func(t *testing.T) {
		list, err := e.Clientset(t).CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		names := make([]string, 0, len(list.Items))
		for _, ns := range list.Items {
			names = append(names, ns.Name)
		}
		if !slices.Contains(names, "default") || !slices.Contains(names, "kube-system") {
			t.Fatalf("namespaces %v, want default and kube-system", names)
		}
	})

	t.Run("static user is authenticated but has no rights", func(t *testing.T) {
		cs, err := kubernetes.NewForConfig(e.UserConfig(t, "podtype-test"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `"podtype-test"`) {
			t.Fatalf("list namespaces as podtype-test: %v, want forbidden for that user", err)
		}
	})

	t.Run("own telegraf writes kubelet stats with pod labels", func(t *testing.T) {
		ns, pod, node := UniqueName("stacktest"), UniqueName("web"), UniqueName("stacktest-node")
		kubelet := fakeKubelet(t, node, ns, pod)
		// Registered before StartTelegraf, so it runs after Telegraf stopped writing.
		t.Cleanup(func() {
			influxQL(context.Background(), t, e, e.AdminUser, e.AdminPassword, fmt.Sprintf("DROP SERIES WHERE namespace = '%s'", ns))
		})
		e.StartTelegraf(t, []string{kubelet + "/nodes/" + node}, time.Second, nil)
		q := fmt.Sprintf(`from(bucket: %q) |> range(start: -5m)
  |> filter(fn: (r) => r._measurement == "kubernetes_pod_container" and r.namespace == %q and r._field == "memory_usage_bytes")`,
			e.InfluxDatabase+"/autogen", ns)
		deadline := time.Now().Add(30 * time.Second)
		for {
			rows := e.Flux(ctx, t, q)
			if len(rows) > 0 {
				r := rows[0]
				if r["pod_name"] != pod || r["app.kubernetes.io/name"] != "nginx" || r["_value"] != int64(1<<20) || r["node_name"] != node {
					t.Fatalf("row %v: want pod_name %s, app.kubernetes.io/name nginx, node_name %s, value 1MiB", r, pod, node)
				}
				if _, ok := r["other-label"]; ok {
					t.Errorf("row %v carries other-label, which label_include leaves out", r)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("no kubernetes_pod_container rows for namespace %s after 30s", ns)
			}
			time.Sleep(500 * time.Millisecond)
		}
	})
}

// fakeKubelet serves /nodes/<node>/stats/summary and /pods for one pod with one container, like
// the simulator does, and returns its base URL.
func fakeKubelet(t *testing.T, node, ns, pod string) string {
	t.Helper()
	mem, cpu := uint64(1<<20), uint64(5_000_000)
	now := metav1.Now()
	summary := statsv1alpha1.Summary{
		Node: statsv1alpha1.NodeStats{NodeName: node, StartTime: now},
		Pods: []statsv1alpha1.PodStats{{
			PodRef:    statsv1alpha1.PodReference{Name: pod, Namespace: ns, UID: "uid-1"},
			StartTime: now,
			Containers: []statsv1alpha1.ContainerStats{{
				Name: "web", StartTime: now,
				CPU:    &statsv1alpha1.CPUStats{Time: now, UsageNanoCores: &cpu, UsageCoreNanoSeconds: &cpu},
				Memory: &statsv1alpha1.MemoryStats{Time: now, UsageBytes: &mem, WorkingSetBytes: &mem},
			}},
		}},
	}
	pods := corev1.PodList{Items: []corev1.Pod{{
		ObjectMeta: metav1.ObjectMeta{Name: pod, Namespace: ns,
			Labels: map[string]string{"app.kubernetes.io/name": "nginx", "other-label": "x"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "docker.io/library/nginx:1.27"}}},
	}}}
	mux := http.NewServeMux()
	serve := func(v any) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(v)
		}
	}
	mux.Handle("/nodes/"+node+"/stats/summary", serve(summary))
	mux.Handle("/nodes/"+node+"/pods", serve(pods))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}
