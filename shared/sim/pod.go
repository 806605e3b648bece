package sim

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// PodInfo describes one simulated pod.
type PodInfo struct {
	Namespace string
	Name      string
	// Type is the true workload type, whatever labels the pod carries.
	Type  string
	Node  string
	UID   types.UID
	Image Image
	// Labels are the pod's labels (a copy).
	Labels map[string]string
	Start  time.Time
	IP     string
}

// simNode is one simulated node and the caches of what its kubelet serves.
type simNode struct {
	name   string
	index  int // from 1
	ip     string
	pods   []*simPod // sorted by namespace/name
	nextIP int
	// podsGen is bumped when the node's pods come, go or restart: what its /pods serves changed.
	podsGen uint64

	capacity nodeCapacity
	retired  retiredTotals // counters of deleted pods, so the node's counters never go back

	summary encodedCache
	podList encodedCache
}

// retiredTotals are the final counters of a node's deleted pods.
type retiredTotals struct {
	counters
	rx, tx, rxErr, txErr float64
}

// simPod is one simulated pod. Its fields are guarded by Cluster.mu.
type simPod struct {
	namespace, name, typ string
	ordinal              int
	prof                 *Profile
	node                 *simNode
	uid                  string
	image                Image
	labels               map[string]string
	start                time.Time
	ip                   string
	model                *podModel
	faults               []*fault
	random               randomFaults
	statusRestarts       int32 // restart count last written to the API
	api                  int   // apiNone, apiCreating, apiRegistered
}

// addPodLocked creates a pod of typ in memory. c.mu must be held (or c not yet shared).
func (c *Cluster) addPodLocked(typ string) (*simPod, error) {
	prof, err := findProfile(c.catalog, typ)
	if err != nil {
		return nil, err
	}
	seed, ns := c.cfg.Seed, c.cfg.Namespace
	c.ordinals[typ]++
	ordinal := c.ordinals[typ]
	var name string
	for attempt := 0; ; attempt++ {
		name = typ + "-" + shortID(seed, typ, ordinal, attempt)
		if !c.used[name] {
			break
		}
	}
	c.used[name] = true

	id := newRand(seed, streamIdentity, ns, name)
	image := prof.Images[id.IntN(len(prof.Images))]
	labels := map[string]string{LabelManagedBy: FieldManager}
	switch u := id.Float64(); {
	case u < c.cfg.UnlabelledShare:
	case u < c.cfg.UnlabelledShare+c.cfg.AppLabelShare:
		labels[LabelApp] = typ
	default:
		labels[LabelName] = typ
		labels["app.kubernetes.io/instance"] = name
	}
	par := drawParams(id, prof, c.cfg.PartialMemoryShare)

	node := slices.MinFunc(c.nodes, func(a, b *simNode) int {
		return cmp.Or(cmp.Compare(len(a.pods), len(b.pods)), cmp.Compare(a.index, b.index))
	})
	node.nextIP++
	p := &simPod{
		namespace: ns, name: name, typ: typ, ordinal: ordinal, prof: prof, node: node,
		uid:    fakeUID(seed, ns, name),
		image:  image,
		labels: labels,
		start:  c.now,
		ip:     fmt.Sprintf("10.%d.%d.%d", node.index, node.nextIP/250, node.nextIP%250+2),
		model:  newPodModel(prof, par, newRand(seed, streamMetrics, ns, name), c.now, c.cfg.Step, c.cfg.DayLength),
		random: randomFaults{
			r:           newRand(seed, streamFaults, ns, name, "random"),
			ratePerHour: c.cfg.FaultRate,
			kinds:       c.cfg.faultKinds(),
			minDur:      c.cfg.FaultMinDuration,
			maxDur:      c.cfg.FaultMaxDuration,
		},
	}
	p.random.schedule(c.now)
	i, _ := slices.BinarySearchFunc(node.pods, name, func(q *simPod, name string) int {
		return cmp.Or(cmp.Compare(q.namespace, ns), cmp.Compare(q.name, name))
	})
	node.pods = slices.Insert(node.pods, i, p)
	c.pods[types.NamespacedName{Namespace: ns, Name: name}] = p
	node.podsGen++
	return p, nil
}

// effectsAt returns the combined effects of the faults active at t, and the labels of those that start and
// of those that end as planned.
func (p *simPod) effectsAt(t time.Time, seed uint64) (fx effects, started, ended []FaultLabel) {
	for !p.random.next.IsZero() && !p.random.next.After(t) {
		kind, start, end := p.random.draw()
		r := newRand(seed, streamFaults, p.namespace, p.name, string(kind), strconv.FormatInt(start.UnixNano(), 10))
		p.faults = append(p.faults, newFault(kind, start, end, r, p.prof, p.model.par))
	}
	p.faults = slices.DeleteFunc(p.faults, func(f *fault) bool {
		if t.Before(f.end) {
			return false
		}
		if f.active {
			ended = append(ended, p.label(f, f.end))
		}
		return true
	})
	for _, f := range p.faults {
		if t.Before(f.start) {
			continue
		}
		if !f.active {
			f.active = true
			started = append(started, p.label(f, f.end))
		}
		fx = fx.combine(f.fx)
	}
	return fx, started, ended
}

// endFaults drops the pod's faults; those active get a label ending at now.
func (p *simPod) endFaults(now time.Time) []FaultLabel {
	var ended []FaultLabel
	for _, f := range p.faults {
		if f.active && now.Before(f.end) {
			ended = append(ended, p.label(f, now))
		}
	}
	p.faults = nil
	p.random.next = time.Time{}
	return ended
}

func (p *simPod) label(f *fault, end time.Time) FaultLabel {
	return FaultLabel{Namespace: p.namespace, Pod: p.name, Fault: f.kind, Start: f.start, End: end}
}

func (p *simPod) info() PodInfo {
	return PodInfo{
		Namespace: p.namespace, Name: p.name, Type: p.typ, Node: p.node.name,
		UID: types.UID(p.uid), Image: p.image, Labels: maps.Clone(p.labels), Start: p.start, IP: p.ip,
	}
}
