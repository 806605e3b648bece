package sim

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
)

func registered(t *testing.T, edit func(*Config)) (*Cluster, *fake.Clientset) {
	t.Helper()
	c := newTestCluster(t, edit)
	cs := newFakeClientset()
	if err := c.Register(t.Context(), cs); err != nil {
		t.Fatalf("Register: %v", err)
	}
	return c, cs
}

// newFakeClientset returns a fake clientset that, like an apiserver, gives created pods a UID.
func newFakeClientset() *fake.Clientset {
	cs := fake.NewClientset()
	var n atomic.Int64 // pods are created concurrently
	cs.PrependReactor("create", "pods", func(a clienttesting.Action) (bool, runtime.Object, error) {
		a.(clienttesting.CreateAction).GetObject().(*corev1.Pod).UID = types.UID(fmt.Sprintf("uid-%d", n.Add(1)))
		return false, nil, nil
	})
	return cs
}

func apiPod(t *testing.T, cs *fake.Clientset, ns, name string) *corev1.Pod {
	t.Helper()
	p, err := cs.CoreV1().Pods(ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get pod %s/%s: %v", ns, name, err)
	}
	return p
}

func TestRegister(t *testing.T) {
	c, cs := registered(t, func(c *Config) {
		c.Nodes, c.PodsPerType, c.Types = 2, 6, []string{"mysql", "nginx", "redis"}
		c.AppLabelShare, c.UnlabelledShare = 0.25, 0.25
	})
	ctx := t.Context()

	t.Run("namespace and default service account", func(t *testing.T) {
		if _, err := cs.CoreV1().Namespaces().Get(ctx, "sim", metav1.GetOptions{}); err != nil {
			t.Error(err)
		}
		if _, err := cs.CoreV1().ServiceAccounts("sim").Get(ctx, "default", metav1.GetOptions{}); err != nil {
			t.Error(err)
		}
	})

	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	imageNames := map[string]map[string]int64{} // node -> image name -> size
	t.Run("nodes", func(t *testing.T) {
		if len(nodes.Items) != 2 {
			t.Fatalf("%d nodes, want 2", len(nodes.Items))
		}
		for _, n := range nodes.Items {
			ready := slices.IndexFunc(n.Status.Conditions, func(c corev1.NodeCondition) bool {
				return c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue
			})
			if ready < 0 || n.Status.Capacity.Cpu().Value() < 16 || n.Status.Allocatable.Memory().Value() <= 0 {
				t.Errorf("node %s: conditions %v, capacity %v, allocatable %v", n.Name, n.Status.Conditions, n.Status.Capacity, n.Status.Allocatable)
			}
			imageNames[n.Name] = map[string]int64{}
			for _, im := range n.Status.Images {
				for _, name := range im.Names {
					imageNames[n.Name][name] = im.SizeBytes
				}
			}
			for _, im := range Images() {
				if imageNames[n.Name][im.DigestRef()] != im.SizeBytes || imageNames[n.Name][im.Ref()] != im.SizeBytes {
					t.Errorf("node %s: image %s not listed by digest and tag with size %d", n.Name, im.Spec, im.SizeBytes)
				}
			}
		}
	})

	t.Run("pods", func(t *testing.T) {
		modes := map[string]int{}
		for _, info := range c.Pods() {
			p := apiPod(t, cs, info.Namespace, info.Name)
			if p.Spec.NodeName != info.Node || p.Spec.AutomountServiceAccountToken == nil || *p.Spec.AutomountServiceAccountToken {
				t.Errorf("pod %s: node %q (want %q), automount %v", p.Name, p.Spec.NodeName, info.Node, p.Spec.AutomountServiceAccountToken)
			}
			ct := p.Spec.Containers[0]
			if ct.Image != info.Image.Spec || ct.Resources.Limits.Cpu().IsZero() || ct.Resources.Requests.Memory().IsZero() {
				t.Errorf("pod %s: image %q, resources %v", p.Name, ct.Image, ct.Resources)
			}
			switch {
			case p.Labels[LabelName] == info.Type:
				modes["recommended"]++
			case p.Labels[LabelApp] == info.Type:
				modes["app"]++
			case p.Labels[LabelName] == "" && p.Labels[LabelApp] == "":
				modes["none"]++
			default:
				t.Errorf("pod %s: labels %v do not match its type %s", p.Name, p.Labels, info.Type)
			}
			if p.Annotations[AnnotationType] != info.Type {
				t.Errorf("pod %s: annotation %s = %q, want %q", p.Name, AnnotationType, p.Annotations[AnnotationType], info.Type)
			}
			st := p.Status
			if st.Phase != corev1.PodRunning || st.PodIP == "" || st.HostIP == "" || st.StartTime == nil || len(st.ContainerStatuses) != 1 {
				t.Fatalf("pod %s: status %+v", p.Name, st)
			}
			cst := st.ContainerStatuses[0]
			if !cst.Ready || cst.State.Running == nil || cst.ImageID != info.Image.DigestRef() || cst.Image != info.Image.Ref() {
				t.Errorf("pod %s: container status %+v", p.Name, cst)
			}
			// What the classifier's image-size lookup does: the spec image, qualified, is on the node.
			if imageNames[p.Spec.NodeName][NormalizeImage(ct.Image)] != info.Image.SizeBytes {
				t.Errorf("pod %s: image %s not resolvable on node %s", p.Name, ct.Image, p.Spec.NodeName)
			}
			if string(p.UID) != string(c.Pods()[slices.IndexFunc(c.Pods(), func(q PodInfo) bool { return q.Name == p.Name })].UID) {
				t.Errorf("pod %s: the simulator did not adopt the API's UID", p.Name)
			}
		}
		for _, m := range []string{"recommended", "app", "none"} {
			if modes[m] == 0 {
				t.Errorf("no pod with %s labels among %v", m, modes)
			}
		}
	})

	t.Run("every write names the field manager", func(t *testing.T) {
		for _, a := range cs.Actions() {
			var fm string
			switch a := a.(type) {
			case clienttesting.CreateActionImpl:
				fm = a.CreateOptions.FieldManager
			case clienttesting.UpdateActionImpl:
				fm = a.UpdateOptions.FieldManager
			default:
				continue
			}
			if fm != FieldManager {
				t.Errorf("%s %s/%s: field manager %q", a.GetVerb(), a.GetResource().Resource, a.GetSubresource(), fm)
			}
		}
	})
}

func TestRegisterReplacesLeftovers(t *testing.T) {
	edit := func(c *Config) { c.Nodes, c.PodsPerType, c.Types = 1, 2, []string{"mongo"} }
	first, cs := registered(t, edit)
	second := newTestCluster(t, edit)
	if err := second.Register(t.Context(), cs); err != nil {
		t.Fatalf("second Register on the same apiserver: %v", err)
	}
	for i, p := range second.Pods() {
		if p.Name != first.Pods()[i].Name || p.UID == first.Pods()[i].UID {
			t.Errorf("pod %s: want the same name and a new UID, got %s/%s", p.Name, first.Pods()[i].UID, p.UID)
		}
	}
	if err := second.Register(t.Context(), fake.NewClientset()); err == nil {
		t.Error("Register with another client: want an error")
	}
}

func TestPodChangesReachTheAPI(t *testing.T) {
	c, cs := registered(t, func(c *Config) { c.Nodes, c.PodsPerType, c.Types = 2, 1, []string{"redis", "httpd"} })
	ctx := t.Context()
	victim := c.Pods()[0]

	cs.ClearActions()
	if err := c.DeletePod(ctx, victim.Namespace, victim.Name); err != nil {
		t.Fatal(err)
	}
	del := slices.IndexFunc(cs.Actions(), func(a clienttesting.Action) bool { return a.GetVerb() == "delete" })
	if del < 0 {
		t.Fatalf("no delete action: %v", cs.Actions())
	}
	if gp := cs.Actions()[del].(clienttesting.DeleteActionImpl).DeleteOptions.GracePeriodSeconds; gp == nil || *gp != 0 {
		t.Errorf("deleted with grace period %v, want 0", gp)
	}
	if _, err := cs.CoreV1().Pods(victim.Namespace).Get(ctx, victim.Name, metav1.GetOptions{}); err == nil {
		t.Errorf("pod %s still in the API", victim.Name)
	}

	added, err := c.AddPods(ctx, "redis", 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range added {
		if got := apiPod(t, cs, p.Namespace, p.Name); got.Status.Phase != corev1.PodRunning || got.Spec.NodeName != p.Node {
			t.Errorf("added pod %s: phase %q node %q", p.Name, got.Status.Phase, got.Spec.NodeName)
		}
	}
}

func TestSyncStatusWritesRestarts(t *testing.T) {
	c, cs := registered(t, func(c *Config) {
		c.Nodes, c.PodsPerType, c.Types = 1, 1, []string{"postgres"}
		c.Faults = []FaultSpec{{Pod: "postgres-1", Kind: RestartLoop, Start: time.Minute, Duration: 10 * time.Minute}}
	})
	p := c.Pods()[0]
	c.Advance(testStart.Add(4 * time.Minute))
	if err := c.SyncStatus(t.Context()); err != nil {
		t.Fatal(err)
	}
	s, _ := c.Sample(p.Namespace, p.Name)
	cst := apiPod(t, cs, p.Namespace, p.Name).Status.ContainerStatuses[0]
	if s.Restarts < 2 || cst.RestartCount != s.Restarts {
		t.Fatalf("restartCount %d in the API, %d simulated (want >= 2 and equal)", cst.RestartCount, s.Restarts)
	}
	if term := cst.LastTerminationState.Terminated; term == nil || term.Reason != "Error" || !cst.State.Running.StartedAt.Time.Equal(s.ContainerStart.Truncate(time.Second)) {
		t.Errorf("container status after restarts: %+v", cst)
	}
	cs.ClearActions()
	if err := c.SyncStatus(t.Context()); err != nil || len(cs.Actions()) != 0 {
		t.Errorf("SyncStatus without new restarts: err %v, actions %v", err, cs.Actions())
	}
}

func TestCleanup(t *testing.T) {
	c, cs := registered(t, func(c *Config) { c.Nodes, c.PodsPerType = 2, 1 })
	if err := c.Cleanup(context.Background()); err != nil {
		t.Fatal(err)
	}
	pods, _ := cs.CoreV1().Pods("sim").List(t.Context(), metav1.ListOptions{})
	nodes, _ := cs.CoreV1().Nodes().List(t.Context(), metav1.ListOptions{})
	if len(pods.Items) != 0 || len(nodes.Items) != 0 {
		t.Errorf("after Cleanup: %d pods, %d nodes", len(pods.Items), len(nodes.Items))
	}
}
