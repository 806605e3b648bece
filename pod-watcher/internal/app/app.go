// Package app wires the pod-watcher together: Kubernetes clients and informers, the model
// source, the shared fetcher, the controller with its per-pod trackers, the HTTP endpoints and
// leader election. Run is the whole service, so tests can run it in-process.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/tools/record"

	"github.com/podtype/podtype/shared/cluster"
	"github.com/podtype/podtype/shared/features"
	"github.com/podtype/podtype/shared/httpserve"
	"github.com/podtype/podtype/shared/telemetry"

	"github.com/podtype/podtype/pod-watcher/internal/actions"
	"github.com/podtype/podtype/pod-watcher/internal/controller"
	"github.com/podtype/podtype/pod-watcher/internal/fetcher"
	"github.com/podtype/podtype/pod-watcher/internal/modelsource"
	"github.com/podtype/podtype/pod-watcher/internal/publish"
	"github.com/podtype/podtype/pod-watcher/internal/tracker"
)

// Component is the name the watcher uses towards the cluster: Event source, user agent, lease
// holder prefix.
const Component = "podtype-pod-watcher"

// Options are the parts of a run that tests replace; the zero value is production.
type Options struct {
	// Registry receives the metrics; nil means a new one.
	Registry *prometheus.Registry
	// Listening, when not nil, receives the HTTP server's address once it listens.
	Listening chan<- net.Addr
	// Source replaces the InfluxDB reader.
	Source fetcher.Source
	// Client replaces the clientset built from the configuration; leader election, which
	// needs a REST config of its own, must then be off.
	Client kubernetes.Interface
}

// Run runs the pod-watcher until ctx ends. It returns nil after a clean shutdown and an error
// when a part fails or this replica loses the leader lease (so it restarts as a follower).
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	return RunWithOptions(ctx, cfg, logger, Options{})
}

// RunWithOptions is Run with test seams.
func RunWithOptions(ctx context.Context, cfg Config, logger *slog.Logger, opts Options) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	client, restCfg := opts.Client, (*rest.Config)(nil)
	if client == nil {
		var err error
		client, restCfg, err = cluster.NewClientset(cfg.Kubernetes, rest.DefaultKubernetesUserAgent()+" "+Component)
		if err != nil {
			return err
		}
	}
	elect, _ := cfg.leaderElect(cfg.Kubernetes.Kubeconfig == "")
	var (
		leClient kubernetes.Interface
		lease    types.NamespacedName
		id       string
	)
	if elect {
		if restCfg == nil {
			return errors.New("leader election needs the configured cluster client; set LEADER_ELECT=false")
		}
		var err error
		if leClient, err = kubernetes.NewForConfig(rest.AddUserAgent(rest.CopyConfig(restCfg), "leader-election")); err != nil {
			return fmt.Errorf("leader election client: %w", err)
		}
		if id, err = identity(cfg); err != nil {
			return err
		}
		lease = types.NamespacedName{Namespace: leaseNamespace(cfg), Name: cfg.LeaseName}
	}

	reg := opts.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	m := newMetrics(reg)

	models, err := modelsource.New(modelsource.Config{URL: cfg.ModelURL, Path: cfg.ModelPath, Refresh: cfg.ModelRefresh},
		nil, m, logger.With("component", "model"))
	if err != nil {
		return err
	}
	src := opts.Source
	if src == nil {
		reader, err := telemetry.NewReader(cfg.InfluxDB, telemetry.WithLogger(logger.With("component", "influxdb")),
			telemetry.WithApplicationName(Component))
		if err != nil {
			return err
		}
		defer reader.Close()
		src = reader
	}

	inf, err := newInformers(client, cfg.Kubernetes.Namespaces, cfg.Kubernetes.LabelSelector)
	if err != nil {
		return err
	}
	synced := func() bool { return inf.synced() }

	ctx, cancel := context.WithCancelCause(ctx)
	var wg sync.WaitGroup
	defer func() {
		// Stop everything, then wait for it: informers and servers end with ctx.
		cancel(nil)
		inf.shutdown()
		wg.Wait()
	}()
	fail := func(err error) {
		if err != nil && ctx.Err() == nil {
			cancel(err)
		}
	}
	wg.Go(func() {
		fail(httpserve.Serve(ctx, cfg.ListenAddr, handler(reg, synced, models, logger), logger, opts.Listening))
	})
	wg.Go(func() { fail(models.Run(ctx)) })
	inf.start(ctx)

	work := func(ctx context.Context) error {
		return lead(ctx, cfg, client, inf, models, src, m, logger)
	}
	if !elect {
		logger.Info("leader election disabled; this replica does the work")
		err = work(ctx)
	} else {
		err = runElected(ctx, leClient, lease, id, defaultLeaseTimings, m, logger, work)
	}
	if cause := context.Cause(ctx); err == nil && cause != nil && !errors.Is(cause, context.Canceled) {
		err = cause
	}
	return err
}

// lead is the leader's work: everything that writes. It returns when ctx ends.
func lead(ctx context.Context, cfg Config, client kubernetes.Interface, inf *informerSet, models *modelsource.Source,
	src fetcher.Source, m *metrics, logger *slog.Logger) error {
	select {
	case <-models.Loaded():
	case <-ctx.Done():
		return nil
	}
	fetch, err := fetcher.New(fetcher.Config{
		Interval: cfg.PollInterval, Overlap: cfg.FetchOverlap, MaxBackoff: cfg.FetchMaxBackoff,
	}, src, func() fetcher.Grid {
		b := models.Current()
		return fetcher.Grid{Step: b.WindowStep, Window: b.WindowSamples}
	}, m, logger.With("component", "fetcher"))
	if err != nil {
		return err
	}
	runner, err := actions.New(actions.Config{
		WebhookURL: cfg.ActionWebhookURL, Command: cfg.ActionCommand,
		Timeout: cfg.ActionTimeout, MaxConcurrent: cfg.ActionMaxConcurrent,
	}, nil, logger.With("component", "actions"))
	if err != nil {
		return err
	}
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	recorder := broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: Component})

	tcfg := tracker.Config{
		MinSamples: cfg.MinSamples, Timeout: cfg.ClassifyTimeout, MinConfidence: cfg.MinConfidence, OpenSetMargin: cfg.OpenSetMargin,
		RaiseWindows: cfg.AnomalyRaiseWindows, ClearWindows: cfg.AnomalyClearWindows, TopFeatures: cfg.TopFeatures,
	}
	if err := tcfg.Validate(); err != nil {
		return err
	}
	deps := tracker.Deps{
		Fetcher:   fetcherAdapter{fetch},
		Models:    models,
		Publisher: publish.New(client, recorder, logger.With("component", "publish")),
		Actions:   runner,
		Observer:  m,
		Logger:    logger.With("component", "tracker"),
	}
	ctrl, err := controller.New(inf.pods, func(pod *corev1.Pod) (controller.Runner, error) {
		return tracker.New(tcfg, trackedPod(pod, inf.images()), deps), nil
	}, m, logger.With("component", "controller"))
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var fetchErr error
	wg.Go(func() {
		if fetchErr = fetch.Run(ctx); fetchErr != nil {
			cancel()
		}
	})
	err = ctrl.Run(ctx, cfg.Workers)
	cancel()
	wg.Wait()
	return errors.Join(err, fetchErr)
}

// trackedPod copies what a tracker needs from a cached pod, so the cache object is never held
// or modified. The pod facts come from cluster.NewPodInfo, as in training.
func trackedPod(pod *corev1.Pod, images *cluster.ImageIndex) tracker.Pod {
	info := cluster.NewPodInfo(pod, images)
	return tracker.Pod{
		Pod:         publish.Pod{NamespacedName: info.Pod, UID: info.UID},
		Node:        info.Node,
		StartTime:   info.StartTime,
		Extra:       features.Extra{ImageSizeBytes: float64(info.ImageSizeBytes)},
		Annotations: maps.Clone(pod.Annotations),
	}
}

// fetcherAdapter gives the tracker the fetcher behind its small interface.
type fetcherAdapter struct{ *fetcher.Fetcher }

// Subscribe implements tracker.Fetcher.
func (a fetcherAdapter) Subscribe(pod types.NamespacedName, since time.Time, samples int) tracker.Subscription {
	return a.Fetcher.Subscribe(pod, since, samples)
}

// leaseTimings are the leader election's durations: client-go's usual values in production,
// short ones in tests.
type leaseTimings struct {
	duration, renewDeadline, retryPeriod time.Duration
}

var defaultLeaseTimings = leaseTimings{duration: 15 * time.Second, renewDeadline: 10 * time.Second, retryPeriod: 2 * time.Second}

// runElected runs work while this replica holds the lease, through leClient, which should be a
// client of its own: lease renewals must not queue behind thousands of annotation patches in the
// shared client's rate limiter. The work stops before the lease is released (ReleaseOnCancel),
// so two replicas never write at once. It returns nil when ctx ends, and an error when the
// lease is lost, so the process restarts as a follower.
func runElected(ctx context.Context, leClient kubernetes.Interface, lease types.NamespacedName, identity string,
	timings leaseTimings, m *metrics, logger *slog.Logger, work func(context.Context) error) error {
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Name: lease.Name, Namespace: lease.Namespace},
		Client:     leClient.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: identity},
	}

	// The elector's context ends only after the work has stopped, which is what makes
	// ReleaseOnCancel safe.
	electCtx, stopElect := context.WithCancel(context.WithoutCancel(ctx))
	defer stopElect()
	var (
		mu       sync.Mutex
		stopping bool
		working  sync.WaitGroup
		workErr  error
	)
	stopAfterWork := context.AfterFunc(ctx, func() {
		mu.Lock()
		stopping = true
		mu.Unlock()
		working.Wait()
		stopElect()
	})
	defer stopAfterWork()

	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		Name:            Component,
		ReleaseOnCancel: true,
		LeaseDuration:   timings.duration,
		RenewDeadline:   timings.renewDeadline,
		RetryPeriod:     timings.retryPeriod,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(leCtx context.Context) {
				mu.Lock()
				if stopping {
					mu.Unlock()
					return
				}
				working.Add(1)
				mu.Unlock()
				defer working.Done()
				logger.Info("leading", "lease", lease.String(), "identity", identity)
				m.Leading(true)
				defer m.Leading(false)
				wctx, cancel := context.WithCancel(leCtx)
				defer cancel()
				defer context.AfterFunc(ctx, cancel)()
				if err := work(wctx); err != nil {
					mu.Lock()
					workErr = err
					mu.Unlock()
					stopElect()
				}
			},
			OnStoppedLeading: func() { logger.Info("not leading", "identity", identity) },
			OnNewLeader: func(id string) {
				if id != identity {
					logger.Info("following", "leader", id)
				}
			},
		},
	})
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	le.Run(electCtx)
	working.Wait()
	mu.Lock()
	defer mu.Unlock()
	switch {
	case workErr != nil:
		return workErr
	case ctx.Err() == nil:
		return errors.New("leader election lost")
	}
	return nil
}

// identity is this replica's name in the lease.
func identity(cfg Config) (string, error) {
	if cfg.PodName != "" {
		return cfg.PodName, nil
	}
	host, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("leader identity: %w", err)
	}
	return host, nil
}

func leaseNamespace(cfg Config) string {
	switch {
	case cfg.LeaseNamespace != "":
		return cfg.LeaseNamespace
	case cfg.PodNamespace != "":
		return cfg.PodNamespace
	}
	if b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil && len(b) > 0 {
		return string(b)
	}
	return metav1.NamespaceDefault
}

// informerSet is the pod informers (one per watched namespace, or one for all) and the node
// informer that image sizes come from.
type informerSet struct {
	factories []informers.SharedInformerFactory
	pods      map[string]coreinformers.PodInformer
	nodes     coreinformers.NodeInformer

	nodeChanges atomic.Int64 // bumped by every node event
	mu          sync.Mutex
	index       *cluster.ImageIndex
	indexedAt   int64 // nodeChanges the index was built at
}

func newInformers(client kubernetes.Interface, namespaces []string, selector string) (*informerSet, error) {
	s := &informerSet{pods: make(map[string]coreinformers.PodInformer)}
	tweak := informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = selector })
	if len(namespaces) == 0 {
		namespaces = []string{metav1.NamespaceAll}
	}
	for _, ns := range namespaces {
		f := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(ns), tweak,
			informers.WithTransform(trimPod))
		s.factories = append(s.factories, f)
		s.pods[ns] = f.Core().V1().Pods()
		s.pods[ns].Informer() // registers it with the factory before Start
	}
	nf := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTransform(stripManagedFields))
	s.factories = append(s.factories, nf)
	s.nodes = nf.Core().V1().Nodes()
	bump := func(any) { s.nodeChanges.Add(1) }
	_, err := s.nodes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: bump, DeleteFunc: bump,
		UpdateFunc: func(oldObj, newObj any) {
			if o, ok := oldObj.(*corev1.Node); ok {
				if n, ok := newObj.(*corev1.Node); ok && imagesEqual(o.Status.Images, n.Status.Images) {
					return // heartbeats and conditions do not move images
				}
			}
			bump(newObj)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("node informer: %w", err)
	}
	return s, nil
}

func imagesEqual(a, b []corev1.ContainerImage) bool {
	return slices.EqualFunc(a, b, func(x, y corev1.ContainerImage) bool {
		return x.SizeBytes == y.SizeBytes && slices.Equal(x.Names, y.Names)
	})
}

func (s *informerSet) start(ctx context.Context) {
	for _, f := range s.factories {
		f.Start(ctx.Done())
	}
}

func (s *informerSet) shutdown() {
	for _, f := range s.factories {
		f.Shutdown()
	}
}

func (s *informerSet) synced() bool {
	for _, p := range s.pods {
		if !p.Informer().HasSynced() {
			return false
		}
	}
	return s.nodes.Informer().HasSynced()
}

// images returns the image index over all nodes, rebuilt only after nodes' images changed, the
// same index training looks image sizes up in.
func (s *informerSet) images() *cluster.ImageIndex {
	s.mu.Lock()
	defer s.mu.Unlock()
	if gen := s.nodeChanges.Load(); s.index == nil || gen != s.indexedAt {
		cached, err := s.nodes.Lister().List(labels.Everything())
		if err != nil {
			return s.index
		}
		nodes := make([]corev1.Node, len(cached))
		for i, n := range cached {
			nodes[i] = *n // shallow: NewImageIndex only reads
		}
		s.index, s.indexedAt = cluster.NewImageIndex(nodes), gen
	}
	return s.index
}

// trimPod keeps only the fields the watcher reads of a pod (identity, its own annotations,
// node, first container's image, phase and start), so the cache of many thousands of pods
// stays small; foreign annotations (a kubectl last-applied-configuration is kilobytes) are
// never needed, since writes are merge patches of the watcher's keys. Tombstones hold objects
// trimmed when they were stored.
func trimPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	var own map[string]string
	for k, v := range pod.Annotations {
		if strings.HasPrefix(k, publish.Prefix) {
			if own == nil {
				own = make(map[string]string)
			}
			own[k] = v
		}
	}
	out := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID, ResourceVersion: pod.ResourceVersion,
			Annotations:       own,
			CreationTimestamp: pod.CreationTimestamp, DeletionTimestamp: pod.DeletionTimestamp,
		},
		Spec:   corev1.PodSpec{NodeName: pod.Spec.NodeName},
		Status: corev1.PodStatus{Phase: pod.Status.Phase, StartTime: pod.Status.StartTime},
	}
	if len(pod.Spec.Containers) > 0 {
		c := pod.Spec.Containers[0]
		out.Spec.Containers = []corev1.Container{{Name: c.Name, Image: c.Image}}
		for _, st := range pod.Status.ContainerStatuses {
			if st.Name == c.Name {
				out.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: st.Name, ImageID: st.ImageID}}
			}
		}
	}
	return out, nil
}

// stripManagedFields drops managedFields from cached nodes: the watcher never reads them and
// they are a large share of an object's memory.
func stripManagedFields(obj any) (any, error) {
	if acc, err := meta.Accessor(obj); err == nil {
		acc.SetManagedFields(nil)
	}
	return obj, nil
}

// handler serves /metrics, /healthz and /readyz.
func handler(reg *prometheus.Registry, synced func() bool, models *modelsource.Source, logger *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", httpserve.MetricsHandler(reg, logger))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		switch {
		case !synced():
			http.Error(w, "informer caches not synced", http.StatusServiceUnavailable)
		case models.Current() == nil:
			http.Error(w, "no model loaded", http.StatusServiceUnavailable)
		default:
			fmt.Fprintln(w, "ok")
		}
	})
	return mux
}
