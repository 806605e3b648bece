package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
)

// progressEvery is how often long registrations and deletions log their progress.
const progressEvery = 5 * time.Second

// Pod registration states, so a pod is created once whoever (Register, AddPods) gets to it first.
const (
	apiNone int = iota
	apiCreating
	apiRegistered
)

// Register creates, through client, the namespace and its default ServiceAccount, the nodes with their
// status, and every pod with its status. From then on AddPods, DeletePod and container restarts (see
// Start) are mirrored to the API too. Register is idempotent: objects that exist are taken over, and a
// failed Register can be called again.
func (c *Cluster) Register(ctx context.Context, client kubernetes.Interface) error {
	c.mu.Lock()
	if c.client != nil && c.client != client {
		c.mu.Unlock()
		return errors.New("register: cluster already registered with another client")
	}
	// Setting the client and listing the pods in one critical section: a concurrent AddPods either lands
	// in this list or sees the client and creates its pods itself.
	c.client = client
	pods := make([]*simPod, 0, len(c.pods))
	for _, n := range c.nodes {
		pods = append(pods, n.pods...)
	}
	now := c.now
	c.mu.Unlock()
	slices.SortFunc(pods, func(a, b *simPod) int { return a.start.Compare(b.start) })

	if err := c.ensureNamespace(ctx, client); err != nil {
		return err
	}
	if err := c.registerNodes(ctx, client, now); err != nil {
		return err
	}
	return c.createPods(ctx, client, pods)
}

func (c *Cluster) ensureNamespace(ctx context.Context, client kubernetes.Interface) error {
	ns := c.cfg.Namespace
	create := metav1.CreateOptions{FieldManager: FieldManager}
	_, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{LabelManagedBy: FieldManager}},
	}, create)
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("namespace %s: create: %w", ns, err)
	}
	// The ServiceAccount admission plugin rejects pods whose service account does not exist, and the
	// controller that creates "default" in new namespaces is not running.
	_, err = client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: ns},
	}, create)
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("serviceaccount %s/default: create: %w", ns, err)
	}
	return nil
}

func (c *Cluster) registerNodes(ctx context.Context, client kubernetes.Interface, now time.Time) error {
	images := Images()
	for _, n := range c.nodes {
		nodes := client.CoreV1().Nodes()
		obj, err := nodes.Create(ctx, nodeObject(n), metav1.CreateOptions{FieldManager: FieldManager})
		if apierrors.IsAlreadyExists(err) {
			obj, err = nodes.Get(ctx, n.name, metav1.GetOptions{})
		}
		if err != nil {
			return fmt.Errorf("node %s: create: %w", n.name, err)
		}
		status := nodeStatus(n, images, now)
		err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
			obj.Status = status
			_, err := nodes.UpdateStatus(ctx, obj, metav1.UpdateOptions{FieldManager: FieldManager})
			if apierrors.IsConflict(err) {
				if fresh, gerr := nodes.Get(ctx, n.name, metav1.GetOptions{}); gerr == nil {
					obj = fresh
				}
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("node %s: update status: %w", n.name, err)
		}
	}
	c.log.Info("nodes registered", "nodes", len(c.nodes), "images", len(images))
	return nil
}

// createPods creates pods with cfg.Workers concurrent requests; the first error stops the rest.
func (c *Cluster) createPods(ctx context.Context, client kubernetes.Interface, pods []*simPod) error {
	c.mu.Lock()
	claimed := pods[:0:0]
	for _, p := range pods {
		if p.api == apiNone {
			p.api = apiCreating
			claimed = append(claimed, p)
		}
	}
	c.mu.Unlock()
	err := c.forEach(ctx, "registering pods", claimed, func(ctx context.Context, p *simPod) error {
		return c.createPod(ctx, client, p)
	})
	c.mu.Lock()
	for _, p := range claimed {
		if p.api == apiCreating {
			p.api = apiNone
		}
	}
	c.mu.Unlock()
	return err
}

func (c *Cluster) createPod(ctx context.Context, client kubernetes.Interface, p *simPod) error {
	pods := client.CoreV1().Pods(p.namespace)
	c.mu.RLock()
	obj := podObject(p)
	c.mu.RUnlock()
	obj.UID, obj.CreationTimestamp = "", metav1.Time{}

	created, err := pods.Create(ctx, obj, metav1.CreateOptions{FieldManager: FieldManager})
	if apierrors.IsAlreadyExists(err) {
		// Left over from an earlier run with the same seed: replace it, so spec and start time match.
		if err := deletePodAPI(ctx, client, p.namespace, p.name); err != nil {
			return err
		}
		created, err = pods.Create(ctx, obj, metav1.CreateOptions{FieldManager: FieldManager})
	}
	if err != nil {
		return fmt.Errorf("pod %s/%s: create: %w", p.namespace, p.name, err)
	}

	c.mu.Lock()
	if created.UID != "" {
		p.uid = string(created.UID)
	}
	status := podStatus(p)
	p.statusRestarts = p.model.restarts
	_, alive := c.pods[types.NamespacedName{Namespace: p.namespace, Name: p.name}]
	p.node.podsGen++ // the UID changed
	c.mu.Unlock()
	if !alive {
		// DeletePod ran while the create was in flight and found nothing to delete in the API.
		return deletePodAPI(ctx, client, p.namespace, p.name)
	}

	status.QOSClass = created.Status.QOSClass // computed by the apiserver, immutable
	created.Status = status
	if _, err := pods.UpdateStatus(ctx, created, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
		return fmt.Errorf("pod %s/%s: update status: %w", p.namespace, p.name, err)
	}
	c.mu.Lock()
	p.api = apiRegistered
	c.mu.Unlock()
	return nil
}

// deletePodAPI deletes a pod at once: no kubelet runs to confirm a graceful deletion.
func deletePodAPI(ctx context.Context, client kubernetes.Interface, namespace, name string) error {
	err := client.CoreV1().Pods(namespace).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: ptrTo[int64](0)})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("pod %s/%s: delete: %w", namespace, name, err)
	}
	return nil
}

// SyncStatus writes the status of registered pods whose container restarted since it was last written
// (restartCount, last termination, new start time), as the kubelet would. Start calls it every tick.
func (c *Cluster) SyncStatus(ctx context.Context) error {
	type update struct {
		ns, name string
		restarts int32
		patch    []byte
	}
	var updates []update
	c.mu.RLock()
	client := c.client
	for _, n := range c.nodes {
		for _, p := range n.pods {
			if p.api != apiRegistered || p.model.restarts == p.statusRestarts {
				continue
			}
			st := podStatus(p)
			patch, err := json.Marshal(map[string]any{"status": map[string]any{
				"conditions": st.Conditions, "containerStatuses": st.ContainerStatuses,
			}})
			if err != nil {
				c.mu.RUnlock()
				return fmt.Errorf("pod %s/%s: status patch: %w", p.namespace, p.name, err)
			}
			updates = append(updates, update{p.namespace, p.name, p.model.restarts, patch})
		}
	}
	c.mu.RUnlock()
	if client == nil {
		return nil
	}
	var errs []error
	for _, u := range updates {
		_, err := client.CoreV1().Pods(u.ns).Patch(ctx, u.name, types.MergePatchType, u.patch,
			metav1.PatchOptions{FieldManager: FieldManager}, "status")
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("pod %s/%s: patch status: %w", u.ns, u.name, err))
			continue
		}
		c.mu.Lock()
		if p, ok := c.pods[types.NamespacedName{Namespace: u.ns, Name: u.name}]; ok {
			p.statusRestarts = u.restarts
		}
		c.mu.Unlock()
	}
	return errors.Join(errs...)
}

// Cleanup deletes the simulator's pods and nodes from the API (not the namespace: without the namespace
// controller it would stay Terminating).
func (c *Cluster) Cleanup(ctx context.Context) error {
	c.mu.RLock()
	client := c.client
	var pods []*simPod
	for _, n := range c.nodes {
		pods = append(pods, n.pods...)
	}
	c.mu.RUnlock()
	if client == nil {
		return errors.New("cleanup: cluster is not registered")
	}
	err := c.forEach(ctx, "deleting pods", pods, func(ctx context.Context, p *simPod) error {
		return deletePodAPI(ctx, client, p.namespace, p.name)
	})
	if err != nil {
		return err
	}
	for _, n := range c.nodes {
		if err := client.CoreV1().Nodes().Delete(ctx, n.name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("node %s: delete: %w", n.name, err)
		}
	}
	return nil
}

// forEach runs fn on every pod with cfg.Workers workers, logging progress for long runs. The first error
// cancels the remaining work and is returned.
func (c *Cluster) forEach(ctx context.Context, what string, pods []*simPod, fn func(context.Context, *simPod) error) error {
	if len(pods) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	work := make(chan *simPod)
	var done atomic.Int64
	var wg sync.WaitGroup
	for range min(c.cfg.Workers, len(pods)) {
		wg.Go(func() {
			for p := range work {
				if err := fn(ctx, p); err != nil {
					cancel(err)
					continue
				}
				done.Add(1)
			}
		})
	}
	began := time.Now()
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
feed:
	for _, p := range pods {
		for {
			select {
			case work <- p:
				continue feed
			case <-ctx.Done():
				break feed
			case <-tick.C:
				c.log.Info(what, "done", done.Load(), "total", len(pods), "elapsed", time.Since(began).Round(time.Second))
			}
		}
	}
	close(work)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return fmt.Errorf("%s: %d of %d done: %w", what, done.Load(), len(pods), err)
	}
	level := slog.LevelDebug
	if len(pods) >= 100 {
		level = slog.LevelInfo
	}
	c.log.Log(ctx, level, what+": done", "total", len(pods), "elapsed", time.Since(began).Round(time.Millisecond))
	return nil
}
