package cluster

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/podtype/podtype/shared/config"
)

const (
	nginxDigest = "sha256:aaaa000000000000000000000000000000000000000000000000000000000001"
	mysqlDigest = "sha256:bbbb000000000000000000000000000000000000000000000000000000000002"
	appDigest   = "sha256:cccc000000000000000000000000000000000000000000000000000000000003"
)

func node(name string, images ...corev1.ContainerImage) corev1.Node {
	return corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.NodeStatus{Images: images}}
}

func testNodes() []corev1.Node {
	return []corev1.Node{
		node("node-2",
			corev1.ContainerImage{Names: []string{"docker.io/library/nginx@" + nginxDigest, "docker.io/library/nginx:1.25"}, SizeBytes: 70e6},
			corev1.ContainerImage{Names: []string{"registry:5000/team/app@" + appDigest, "registry:5000/team/app:v2"}, SizeBytes: 5e6},
		),
		node("node-1",
			// Same tag, different (older) content on this node.
			corev1.ContainerImage{Names: []string{"docker.io/library/nginx:1.25"}, SizeBytes: 60e6},
			corev1.ContainerImage{Names: []string{"docker.io/bitnami/mysql@" + mysqlDigest, "docker.io/bitnami/mysql:8.0"}, SizeBytes: 500e6},
			corev1.ContainerImage{Names: []string{"docker.io/library/busybox:latest"}, SizeBytes: 4e6},
			corev1.ContainerImage{Names: nil, SizeBytes: 1},
		),
	}
}

func TestImageIndexSizeOf(t *testing.T) {
	idx := NewImageIndex(testNodes())
	tests := []struct {
		name, node, image, imageID string
		want                       int64
		wantOK                     bool
	}{
		{"tag on the pod's node", "node-1", "nginx:1.25", "", 60e6, true},
		{"short name normalised", "node-2", "nginx:1.25", "", 70e6, true},
		{"digest from imageID beats the tag", "node-1", "nginx:1.25", "docker.io/library/nginx@" + nginxDigest, 70e6, true},
		{"docker-pullable imageID", "node-1", "nginx:1.25", "docker-pullable://nginx@" + nginxDigest, 70e6, true},
		{"digest in the image", "node-9", "bitnami/mysql@" + mysqlDigest, "", 500e6, true},
		{"tag and digest in the image", "node-1", "docker.io/bitnami/mysql:8.0@" + mysqlDigest, "", 500e6, true},
		{"registry with port", "node-2", "registry:5000/team/app:v2", "", 5e6, true},
		{"implicit latest", "node-1", "busybox", "", 4e6, true},
		{"index.docker.io spelling", "node-1", "index.docker.io/library/busybox:latest", "", 4e6, true},
		{"falls back to any node", "node-1", "registry:5000/team/app:v2", "", 5e6, true},
		{"unknown node falls back", "", "docker.io/bitnami/mysql:8.0", "", 500e6, true},
		{"other tag is a miss", "node-1", "nginx:1.26", "", 0, false},
		{"other registry is a miss", "node-1", "quay.io/nginx:1.25", "", 0, false},
		{"empty", "node-1", "", "", 0, false},
		{"garbage", "node-1", "::@@//", "docker-pullable://", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := idx.SizeOf(tt.node, tt.image, tt.imageID)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("SizeOf(%q, %q, %q) = %d, %v; want %d, %v", tt.node, tt.image, tt.imageID, got, ok, tt.want, tt.wantOK)
			}
		})
	}
	var nilIndex *ImageIndex
	if _, ok := nilIndex.SizeOf("n", "nginx", ""); ok {
		t.Error("nil index found an image")
	}
}

func TestImageRepoName(t *testing.T) {
	for in, want := range map[string]string{
		"docker.io/bitnami/mysql:8.0@" + mysqlDigest: "mysql",
		"registry:5000/team/app":                     "app",
		"registry:5000/team/app:v1":                  "app",
		"nginx":                                      "nginx",
		"nginx:1.25":                                 "nginx",
		"Redis:7":                                    "redis",
		"localhost/x/y/z@" + appDigest:               "z",
		"docker-pullable://postgres@" + appDigest:    "postgres",
		"": "",
	} {
		if got := ImageRepoName(in); got != want {
			t.Errorf("ImageRepoName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPodType(t *testing.T) {
	classes := []string{"mysql", "nginx", "postgres", "mongo", "Redis"}
	pod := func(labels map[string]string, image string) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", Labels: labels}}
		if image != "" {
			p.Spec.Containers = []corev1.Container{{Name: "main", Image: image}, {Name: "sidecar", Image: "envoy"}}
		}
		return p
	}
	tests := []struct {
		name        string
		pod         *corev1.Pod
		typ, source string
		ok          bool
	}{
		{"app.kubernetes.io/name", pod(map[string]string{LabelAppName: "mysql", LabelApp: "nginx"}, "redis"), "mysql", SourceLabelAppName, true},
		{"app label", pod(map[string]string{LabelApp: "nginx"}, "redis"), "nginx", SourceLabelApp, true},
		{"image", pod(nil, "docker.io/bitnami/mysql:8.0@"+mysqlDigest), "mysql", SourceImage, true},
		{"case and space", pod(map[string]string{LabelAppName: " MySQL "}, ""), "mysql", SourceLabelAppName, true},
		{"class spelled in caps", pod(map[string]string{LabelApp: "redis"}, ""), "Redis", SourceLabelApp, true},
		{"alias postgresql", pod(map[string]string{LabelAppName: "postgresql"}, ""), "postgres", SourceLabelAppName, true},
		{"alias mongodb from image", pod(nil, "bitnami/mongodb:7"), "mongo", SourceImage, true},
		{"label not a class falls through to image", pod(map[string]string{LabelApp: "frontend"}, "nginx:1.25"), "nginx", SourceImage, true},
		{"nothing matches", pod(map[string]string{LabelApp: "Shop-API"}, "acme/shop:1"), "shop-api", SourceLabelApp, false},
		{"no labels, no containers", pod(nil, ""), "", "", false},
		{"nil pod", nil, "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			typ, source, ok := PodType(tt.pod, classes)
			if typ != tt.typ || source != tt.source || ok != tt.ok {
				t.Errorf("PodType = %q, %q, %v; want %q, %q, %v", typ, source, ok, tt.typ, tt.source, tt.ok)
			}
		})
	}
}

func TestInventory(t *testing.T) {
	start := metav1.NewTime(time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC))
	created := metav1.NewTime(time.Date(2025, 1, 1, 11, 0, 0, 0, time.UTC))
	objs := []corev1.Pod{
		{
			ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "shop", UID: "u1", Labels: map[string]string{"app": "nginx"}},
			Spec:       corev1.PodSpec{NodeName: "node-1", Containers: []corev1.Container{{Name: "web", Image: "nginx:1.25"}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, StartTime: &start, ContainerStatuses: []corev1.ContainerStatus{
				{Name: "web", ImageID: "docker.io/library/nginx@" + nginxDigest},
			}},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Name: "db-0", Namespace: "db", UID: "u2", CreationTimestamp: created, Labels: map[string]string{"app": "mysql"}},
			Spec:       corev1.PodSpec{NodeName: "node-1", Containers: []corev1.Container{{Name: "db", Image: "bitnami/mysql:9"}}},
			Status:     corev1.PodStatus{Phase: corev1.PodPending},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Name: "other", Namespace: "kube-system", Labels: map[string]string{"app": "nginx"}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "x", Image: "busybox"}}},
		},
	}
	nodes := testNodes()
	client := fake.NewClientset(&nodes[0], &nodes[1], &objs[0], &objs[1], &objs[2])
	ctx := context.Background()

	got, err := Inventory(ctx, client, []string{"shop", "db", "shop"}, "")
	if err != nil {
		t.Fatal(err)
	}
	want := []PodInfo{
		{
			Pod: types.NamespacedName{Namespace: "db", Name: "db-0"}, UID: "u2", Node: "node-1", Image: "bitnami/mysql:9",
			Labels: map[string]string{"app": "mysql"}, StartTime: created.Time, Phase: corev1.PodPending,
		},
		{
			Pod: types.NamespacedName{Namespace: "shop", Name: "web-1"}, UID: "u1", Node: "node-1", Image: "nginx:1.25",
			ImageID: "docker.io/library/nginx@" + nginxDigest, ImageSizeBytes: 70e6,
			Labels: map[string]string{"app": "nginx"}, StartTime: start.Time, Phase: corev1.PodRunning,
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Inventory =\n%+v\nwant\n%+v", got, want)
	}

	all, err := Inventory(ctx, client, nil, "app=nginx")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].Pod.Name != "other" || all[1].Pod.Name != "web-1" {
		t.Errorf("Inventory(all namespaces, app=nginx) = %+v", all)
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Inventory(cancelled, client, nil, ""); err == nil {
		t.Error("Inventory with a cancelled context succeeded")
	}
}

func TestNewClientset(t *testing.T) {
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "config")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		kubeconfig string
		wantErr    string
	}{
		{"single file", kubeconfig, ""},
		{"list with a missing file", filepath.Join(dir, "missing") + string(filepath.ListSeparator) + kubeconfig, ""},
		{"missing file", filepath.Join(dir, "missing"), "kubeconfig " + filepath.Join(dir, "missing")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs, rc, err := NewClientset(config.Kubernetes{Kubeconfig: tt.kubeconfig, QPS: 7, Burst: 9}, "podtype-test/1")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cs == nil || rc.Host != "https://127.0.0.1:6443" || rc.QPS != 7 || rc.Burst != 9 || rc.UserAgent != "podtype-test/1" {
				t.Errorf("rest config %+v", rc)
			}
		})
	}
	t.Run("in-cluster outside a cluster", func(t *testing.T) {
		t.Setenv("KUBERNETES_SERVICE_HOST", "")
		if _, _, err := NewClientset(config.Kubernetes{QPS: 1, Burst: 1}, "x"); err == nil || !strings.Contains(err.Error(), "in-cluster") {
			t.Errorf("err = %v, want an in-cluster error", err)
		}
	})
}
