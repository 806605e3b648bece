// Package controller discovers pods with a shared informer and keeps exactly one tracker
// goroutine per running pod, identified by UID: started when the pod runs (existing pods at
// start included), stopped and waited for when it is deleted, finishes or is replaced by a new
// pod of the same name.
//
// It follows sample-controller: event handlers only queue keys, workers reconcile a key against
// the lister, and errors are retried a bounded number of times through a rate-limited queue.
package controller

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	coreinformers "k8s.io/client-go/informers/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// maxRetries is how often a key is retried before it is dropped; the informer's next event for
// the pod queues it again.
const maxRetries = 5

// Runner is a pod's tracker; Run returns when ctx ends or the tracker has nothing left to do.
type Runner interface {
	Run(ctx context.Context)
}

// NewTracker builds the tracker of a running pod. The pod comes from the informer's cache and
// must not be modified.
type NewTracker func(pod *corev1.Pod) (Runner, error)

// Observer receives what the service's metrics count.
type Observer interface {
	WatchedPods(n int)
}

// Controller keeps one tracker per running pod.
type Controller struct {
	listers    map[string]corelisters.PodLister // by namespace; "" watches all
	informers  []cache.SharedIndexInformer
	handlers   []cache.ResourceEventHandlerRegistration
	queue      workqueue.TypedRateLimitingInterface[cache.ObjectName]
	newTracker NewTracker
	obs        Observer
	logger     *slog.Logger

	mu      sync.Mutex
	running map[cache.ObjectName]*tracked
	wg      sync.WaitGroup // tracker goroutines
}

// tracked is one tracker goroutine.
type tracked struct {
	uid    types.UID
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns a Controller over the given pod informers, keyed by the namespace they watch (""
// for one informer over all namespaces), and registers its event handlers.
func New(informers map[string]coreinformers.PodInformer, newTracker NewTracker, obs Observer, logger *slog.Logger) (*Controller, error) {
	if len(informers) == 0 {
		return nil, fmt.Errorf("controller: no pod informers")
	}
	if _, all := informers[""]; all && len(informers) > 1 {
		return nil, fmt.Errorf("controller: an all-namespaces informer and %d namespaced ones", len(informers)-1)
	}
	c := &Controller{
		listers: make(map[string]corelisters.PodLister, len(informers)),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[cache.ObjectName](),
			workqueue.TypedRateLimitingQueueConfig[cache.ObjectName]{Name: "pods"}),
		newTracker: newTracker,
		obs:        obs,
		logger:     logger,
		running:    make(map[cache.ObjectName]*tracked),
	}
	for ns, inf := range informers {
		c.listers[ns] = inf.Lister()
		reg, err := inf.Informer().AddEventHandler(c.handler())
		if err != nil {
			c.removeHandlers()
			return nil, fmt.Errorf("controller: pod informer for namespace %q: %w", ns, err)
		}
		c.informers = append(c.informers, inf.Informer())
		c.handlers = append(c.handlers, reg)
	}
	return c, nil
}

// removeHandlers detaches the controller from informers that outlive it (a replica that loses
// the lease keeps its caches warm).
func (c *Controller) removeHandlers() {
	for i, reg := range c.handlers {
		if err := c.informers[i].RemoveEventHandler(reg); err != nil {
			c.logger.Warn("cannot remove pod event handler", "err", err)
		}
	}
	c.informers, c.handlers = nil, nil
}

// handler only queues keys; all work happens in the workers.
func (c *Controller) handler() cache.ResourceEventHandlerFuncs {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: c.enqueue,
		UpdateFunc: func(oldObj, newObj any) {
			oldPod, ok1 := oldObj.(*corev1.Pod)
			newPod, ok2 := newObj.(*corev1.Pod)
			if ok1 && ok2 && oldPod.ResourceVersion == newPod.ResourceVersion {
				return // periodic resync: nothing changed
			}
			c.enqueue(newObj)
		},
		DeleteFunc: c.enqueue,
	}
}

// enqueue queues the key of a pod or of a deleted pod's tombstone.
func (c *Controller) enqueue(obj any) {
	key, err := cache.DeletionHandlingObjectToName(obj)
	if err != nil {
		c.logger.Error("cannot queue object", "type", fmt.Sprintf("%T", obj), "err", err)
		return
	}
	c.queue.Add(key)
}

// synced reports whether every handler has seen its informer's initial list, which for an
// informer that was running already is replayed to a new handler as adds.
func (c *Controller) synced() bool {
	for _, h := range c.handlers {
		if !h.HasSynced() {
			return false
		}
	}
	return true
}

// Run waits for the caches, reconciles with workers goroutines until ctx ends, then stops every
// tracker and waits for them. It returns an error only when the caches never synced. A
// Controller runs once.
func (c *Controller) Run(ctx context.Context, workers int) error {
	defer c.removeHandlers()
	defer c.queue.ShutDown()

	c.logger.Info("waiting for the pod cache")
	if !cache.WaitForNamedCacheSyncWithContext(ctx, c.synced) {
		return fmt.Errorf("controller: pod cache did not sync: %w", context.Cause(ctx))
	}
	c.logger.Info("pod cache synced; starting workers", "workers", workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() { wait.UntilWithContext(ctx, c.runWorker, time.Second) })
	}
	<-ctx.Done()
	c.queue.ShutDown()
	wg.Wait()
	// Trackers run under ctx, so they are ending already; wait for them to clean up.
	c.wg.Wait()
	c.mu.Lock()
	clear(c.running)
	c.mu.Unlock()
	c.obs.WatchedPods(0)
	return nil
}

func (c *Controller) runWorker(ctx context.Context) {
	for c.processNext(ctx) {
	}
}

func (c *Controller) processNext(ctx context.Context) bool {
	key, shutdown := c.queue.Get()
	if shutdown {
		return false
	}
	defer c.queue.Done(key)
	err := c.sync(ctx, key)
	switch {
	case err == nil:
		c.queue.Forget(key)
	case c.queue.NumRequeues(key) < maxRetries:
		c.logger.Warn("sync failed; retrying", "pod", key.String(), "err", err)
		c.queue.AddRateLimited(key)
	default:
		c.logger.Error("sync failed; dropping the pod until its next change", "pod", key.String(), "err", err)
		c.queue.Forget(key)
	}
	return true
}

// sync makes the trackers match the cached pod: one tracker for a running pod, none otherwise.
func (c *Controller) sync(ctx context.Context, key cache.ObjectName) error {
	ns, name := key.Parts()
	pod, err := c.get(ns, name)
	switch {
	case apierrors.IsNotFound(err):
		c.stop(key)
		return nil
	case err != nil:
		return fmt.Errorf("pod %s: %w", key, err)
	}
	if pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		c.stop(key)
		return nil
	}
	c.mu.Lock()
	cur := c.running[key]
	c.mu.Unlock()
	if cur != nil && cur.uid == pod.UID {
		return nil // tracked (or finished) already
	}
	if cur != nil {
		c.logger.Info("pod replaced by a new one of the same name", "pod", key.String(), "old_uid", cur.uid, "uid", pod.UID)
		c.stop(key)
	}
	if pod.Status.Phase != corev1.PodRunning {
		return nil // no metrics before it runs; its next update brings it back
	}
	r, err := c.newTracker(pod)
	if err != nil {
		return fmt.Errorf("pod %s: tracker: %w", key, err)
	}
	c.start(ctx, key, pod.UID, r)
	return nil
}

func (c *Controller) get(ns, name string) (*corev1.Pod, error) {
	l, ok := c.listers[""]
	if !ok {
		l, ok = c.listers[ns]
	}
	if !ok {
		return nil, apierrors.NewNotFound(corev1.Resource("pods"), name)
	}
	return l.Pods(ns).Get(name)
}

func (c *Controller) start(ctx context.Context, key cache.ObjectName, uid types.UID, r Runner) {
	tctx, cancel := context.WithCancel(ctx)
	t := &tracked{uid: uid, cancel: cancel, done: make(chan struct{})}
	c.mu.Lock()
	c.running[key] = t
	n := len(c.running)
	c.mu.Unlock()
	c.obs.WatchedPods(n)
	c.wg.Go(func() {
		defer close(t.done)
		defer cancel()
		r.Run(tctx)
	})
	c.logger.Debug("tracking pod", "pod", key.String(), "uid", uid)
}

// stop ends key's tracker and waits for it, so nothing of the pod (its metric series, its
// actions) outlives this call.
func (c *Controller) stop(key cache.ObjectName) {
	c.mu.Lock()
	t := c.running[key]
	delete(c.running, key)
	n := len(c.running)
	c.mu.Unlock()
	if t == nil {
		return
	}
	t.cancel()
	<-t.done
	c.obs.WatchedPods(n)
	c.logger.Debug("stopped tracking pod", "pod", key.String(), "uid", t.uid)
}

// Tracked returns the number of pods with a tracker (running or finished).
func (c *Controller) Tracked() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.running)
}
