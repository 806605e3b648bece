package sim

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// Labels and annotations the simulator puts on its objects.
const (
	// LabelName is the recommended label carrying the workload type.
	LabelName = "app.kubernetes.io/name"
	// LabelApp is the older label some pods carry instead.
	LabelApp = "app"
	// LabelManagedBy marks every object the simulator creates.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// AnnotationType records a pod's true workload type, also on pods without a type label, so evaluations
	// know the ground truth without it leaking into labels (and Telegraf tags).
	AnnotationType = "cluster-sim.podtype.io/type"
	// FieldManager is the field manager of every write.
	FieldManager = "cluster-sim"
)

// Cluster is a simulated cluster. All methods are safe for concurrent use.
type Cluster struct {
	cfg     Config
	log     *slog.Logger
	catalog []Profile
	start   time.Time
	labels  *labelWriter
	closer  io.Closer

	mu       sync.RWMutex
	now      time.Time
	gen      uint64 // bumped by every Advance: what /stats/summary serves changed
	nodes    []*simNode
	pods     map[types.NamespacedName]*simPod
	used     map[string]bool // every pod name ever used, so names stay unique and stable for a seed
	ordinals map[string]int  // pods created per type
	client   kubernetes.Interface
	churn    *rand.Rand
	closed   bool

	runMu   sync.Mutex
	started bool
	wg      sync.WaitGroup
}

// New builds a cluster of cfg.Nodes nodes and cfg.PodsPerType pods of each type, started at cfg.Start,
// with cfg.Faults scheduled. A nil logger discards logs. Close releases the labels file.
func New(cfg Config, logger *slog.Logger) (*Cluster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Start.IsZero() {
		cfg.Start = time.Now()
	}
	c := &Cluster{
		cfg:      cfg,
		log:      logger,
		catalog:  catalog(),
		start:    cfg.Start,
		now:      cfg.Start,
		labels:   &labelWriter{},
		pods:     map[types.NamespacedName]*simPod{},
		used:     map[string]bool{},
		ordinals: map[string]int{},
		churn:    newRand(cfg.Seed, streamCluster, "churn"),
	}
	for i := 1; i <= cfg.Nodes; i++ {
		c.nodes = append(c.nodes, &simNode{
			name:  fmt.Sprintf("%snode-%d", cfg.NodePrefix, i),
			index: i,
			ip:    fmt.Sprintf("172.20.%d.10", i),
		})
	}
	// Interleave types so every node gets a mix whatever the counts.
	for range cfg.PodsPerType {
		for _, t := range cfg.types() {
			if _, err := c.addPodLocked(t); err != nil {
				return nil, err
			}
		}
	}
	for _, n := range c.nodes {
		n.capacity = sizeNode(n.pods)
	}
	for _, f := range cfg.Faults {
		if err := c.injectLocked(f); err != nil {
			return nil, err
		}
	}
	if cfg.LabelsFile != "" {
		f, err := os.OpenFile(cfg.LabelsFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("fault labels file: %w", err)
		}
		c.labels.w, c.closer = f, f
	}
	return c, nil
}

// StartTime returns the simulation start.
func (c *Cluster) StartTime() time.Time { return c.start }

// Now returns the time of the last Advance (the start before the first).
func (c *Cluster) Now() time.Time {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.now
}

// Nodes returns the node names.
func (c *Cluster) Nodes() []string {
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.name
	}
	return out
}

// Pods returns all pods, sorted by namespace and name.
func (c *Cluster) Pods() []PodInfo {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]PodInfo, 0, len(c.pods))
	for _, p := range c.pods {
		out = append(out, p.info())
	}
	slices.SortFunc(out, func(a, b PodInfo) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return out
}

// Sample returns what the kubelet currently reports for a pod.
func (c *Cluster) Sample(namespace, name string) (Sample, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	p, ok := c.pods[types.NamespacedName{Namespace: namespace, Name: name}]
	if !ok {
		return Sample{}, false
	}
	return p.model.last, true
}

// Advance steps every pod to now and starts and ends faults. Times before the last Advance are ignored.
func (c *Cluster) Advance(now time.Time) {
	var started, ended []FaultLabel
	c.mu.Lock()
	if now.Before(c.now) || c.closed {
		c.mu.Unlock()
		return
	}
	c.now = now
	for _, n := range c.nodes {
		for _, p := range n.pods {
			before := p.model.restarts
			p.model.advanceTo(now, func(t time.Time) effects {
				fx, s, e := p.effectsAt(t, c.cfg.Seed)
				started, ended = append(started, s...), append(ended, e...)
				return fx
			})
			if p.model.restarts != before {
				n.podsGen++
			}
		}
	}
	c.gen++
	c.mu.Unlock()
	c.writeLabels(started, "fault started")
	for _, l := range ended { // as planned: the label written at the start holds
		c.log.Info("fault ended", "namespace", l.Namespace, "pod", l.Pod, "fault", l.Fault, "start", l.Start, "end", l.End)
	}
}

// AddPods creates n pods of a type, on the least loaded nodes, starting now. Once the cluster is
// registered they are also created in the API.
func (c *Cluster) AddPods(ctx context.Context, typ string, n int) ([]PodInfo, error) {
	if n < 0 {
		return nil, fmt.Errorf("add pods: count %d is negative", n)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, errors.New("add pods: cluster is closed")
	}
	added := make([]*simPod, 0, n)
	for range n {
		p, err := c.addPodLocked(typ)
		if err != nil {
			c.mu.Unlock()
			return nil, fmt.Errorf("add pods: %w", err)
		}
		added = append(added, p)
	}
	client := c.client
	infos := make([]PodInfo, len(added))
	for i, p := range added {
		infos[i] = p.info()
	}
	c.mu.Unlock()
	if client != nil {
		if err := c.createPods(ctx, client, added); err != nil {
			return infos, err
		}
	}
	return infos, nil
}

// DeletePod removes a pod; active faults on it end now. Once the cluster is registered the pod is also
// deleted in the API, at once (GracePeriodSeconds=0: no kubelet would confirm a graceful deletion).
func (c *Cluster) DeletePod(ctx context.Context, namespace, name string) error {
	key := types.NamespacedName{Namespace: namespace, Name: name}
	c.mu.Lock()
	p, ok := c.pods[key]
	if !ok {
		c.mu.Unlock()
		return fmt.Errorf("delete pod %s: not in the simulation", key)
	}
	delete(c.pods, key)
	n := p.node
	n.pods = slices.DeleteFunc(n.pods, func(q *simPod) bool { return q == p })
	n.retired.add(p.model.lifetime)
	last := &p.model.last
	n.retired.rx += float64(last.RxBytes)
	n.retired.tx += float64(last.TxBytes)
	n.retired.rxErr += float64(last.RxErrors)
	n.retired.txErr += float64(last.TxErrors)
	ended := p.endFaults(c.now)
	n.podsGen++
	client := c.client
	c.mu.Unlock()
	c.writeLabels(ended, "fault ended early: pod deleted")
	if client != nil {
		return deletePodAPI(ctx, client, namespace, name)
	}
	return nil
}

// InjectFault schedules a fault. A start in the past (relative to the last Advance) starts it now.
func (c *Cluster) InjectFault(f FaultSpec) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.injectLocked(f)
}

// Close ends active faults (their labels are corrected to end now) and closes the labels file. The cluster
// must not be advanced any more.
func (c *Cluster) Close() error {
	var ended []FaultLabel
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	for _, n := range c.nodes {
		for _, p := range n.pods {
			ended = append(ended, p.endFaults(c.now)...)
		}
	}
	c.mu.Unlock()
	c.writeLabels(ended, "fault ended early: simulator stopped")
	if c.closer != nil {
		if err := c.closer.Close(); err != nil {
			return fmt.Errorf("fault labels file: %w", err)
		}
	}
	return nil
}

func (c *Cluster) writeLabels(labels []FaultLabel, msg string) {
	slices.SortStableFunc(labels, func(a, b FaultLabel) int { return a.Start.Compare(b.Start) })
	for _, l := range labels {
		c.log.Info(msg, "namespace", l.Namespace, "pod", l.Pod, "fault", l.Fault, "start", l.Start, "end", l.End)
		if err := c.labels.write(l); err != nil {
			c.log.Error("cannot write fault label", "err", err)
		}
	}
}

// injectLocked resolves and schedules a fault. c.mu must be held.
func (c *Cluster) injectLocked(f FaultSpec) error {
	if err := f.Validate(); err != nil {
		return err
	}
	p, err := c.resolvePodLocked(f)
	if err != nil {
		return fmt.Errorf("fault %q: %w", f, err)
	}
	start := c.start.Add(f.Start)
	if start.Before(c.now) {
		start = c.now
	}
	dur := cmp.Or(f.Duration, DefaultFaultDuration)
	r := newRand(c.cfg.Seed, streamFaults, p.namespace, p.name, string(f.Kind), strconv.FormatInt(start.UnixNano(), 10))
	p.faults = append(p.faults, newFault(f.Kind, start, start.Add(dur), r, p.prof, p.model.par))
	return nil
}

// resolvePodLocked finds the pod a spec names: by name, else "<type>-<n>" as the n-th pod of that type.
func (c *Cluster) resolvePodLocked(f FaultSpec) (*simPod, error) {
	ns := cmp.Or(f.Namespace, c.cfg.Namespace)
	if p, ok := c.pods[types.NamespacedName{Namespace: ns, Name: f.Pod}]; ok {
		return p, nil
	}
	i := strings.LastIndexByte(f.Pod, '-')
	n, err := strconv.Atoi(f.Pod[i+1:])
	if i <= 0 || err != nil || n < 1 {
		return nil, fmt.Errorf("no pod %s/%s", ns, f.Pod)
	}
	typ := f.Pod[:i]
	for _, p := range c.pods {
		if p.namespace == ns && p.typ == typ && p.ordinal == n {
			return p, nil
		}
	}
	return nil, fmt.Errorf("no pod %s/%s (and no %d-th %s pod)", ns, f.Pod, n, typ)
}
