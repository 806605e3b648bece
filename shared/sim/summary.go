package sim

import (
	"encoding/json"
	"fmt"
	"math"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// Node sizes and the node's own (non-pod) consumption.
const (
	nodeFsCapacity     = 250 * gib
	nodeFsBaseUsed     = 18 * gib // OS, kubelet, runtime state
	nodeInodes         = 16_000_000
	systemCPUCores     = 0.08 // kubelet + runtime + system daemons
	systemCPUPerPod    = 0.0004
	systemMemoryBytes  = 900 * mib
	systemMemoryPerPod = 1.2 * mib
	systemFaultsPerSec = 120
)

// encodedCache holds one encoded response and the generation it was built for.
type encodedCache struct {
	mu    sync.Mutex
	valid bool
	gen   uint64
	body  []byte
}

// nodeCapacity is what a node offers; sized at New from the pods it got, so usage stays plausible.
type nodeCapacity struct {
	cpuCores float64
	memBytes float64
	pods     int
}

// sizeNode sizes a node for its pods' limits, in the steps machines come in.
func sizeNode(pods []*simPod) nodeCapacity {
	var cpu, mem float64
	for _, p := range pods {
		cpu += p.model.par.cpuLimit
		mem += p.model.par.memLimit
	}
	return nodeCapacity{
		cpuCores: math.Max(16, roundUp(cpu, 8)),
		memBytes: math.Max(64*gib, roundUp(mem, 16*gib)),
		pods:     max(110, 2*len(pods)),
	}
}

// summaryJSON returns the node's encoded /stats/summary for the current generation, building it at most
// once per Advance however many scrapers ask: encoding is the expensive part with thousands of pods.
func (c *Cluster) summaryJSON(n *simNode) ([]byte, error) {
	return c.cached(&n.summary, func() uint64 { return c.gen }, func() any { return c.buildSummaryLocked(n) })
}

// podsJSON returns the node's encoded /pods, rebuilt only when pods came, went or restarted.
func (c *Cluster) podsJSON(n *simNode) ([]byte, error) {
	return c.cached(&n.podList, func() uint64 { return n.podsGen }, func() any { return c.buildPodListLocked(n) })
}

// cached serves ec if it matches the current generation, else builds under the read lock and encodes
// outside it, so Advance waits for the build only, never for the encoding.
func (c *Cluster) cached(ec *encodedCache, gen func() uint64, build func() any) ([]byte, error) {
	ec.mu.Lock()
	defer ec.mu.Unlock()
	c.mu.RLock()
	g := gen()
	if ec.valid && ec.gen == g {
		c.mu.RUnlock()
		return ec.body, nil
	}
	v := build()
	c.mu.RUnlock()
	body, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	ec.valid, ec.gen, ec.body = true, g, body
	return body, nil
}

// podStatsBuf holds everything one pod's stats point to, so a node's summary is a handful of allocations
// instead of dozens per pod.
type podStatsBuf struct {
	container [1]statsapi.ContainerStats
	cpu       statsapi.CPUStats
	mem       statsapi.MemoryStats
	rootfs    statsapi.FsStats
	logs      statsapi.FsStats
	eph       statsapi.FsStats
	net       statsapi.NetworkStats
	iface     [1]statsapi.InterfaceStats
	vol       [1]statsapi.VolumeStats
	pvc       statsapi.PVCReference
	u         [24]uint64
	next      int
}

// ptr stores v in the buffer and returns a pointer to it.
func (b *podStatsBuf) ptr(v uint64) *uint64 {
	p := &b.u[b.next]
	*p = v
	b.next++
	return p
}

// nodeTotals sums a node's pods.
type nodeTotals struct {
	cpuNanoCores, usage, workingSet, rss float64
	ephemeral                            float64
	life                                 counters
	rx, tx, rxErr, txErr                 float64
}

// buildSummaryLocked builds the node's summary. c.mu must be held for reading.
func (c *Cluster) buildSummaryLocked(n *simNode) *statsapi.Summary {
	fsUsed := nodeFsBaseUsed + c.imageBytes()
	for _, p := range n.pods {
		s := &p.model.last
		fsUsed += float64(s.RootfsUsedBytes + s.LogsUsedBytes)
	}
	fsAvail := math.Max(0, nodeFsCapacity-fsUsed)

	bufs := make([]podStatsBuf, len(n.pods))
	s := &statsapi.Summary{Pods: make([]statsapi.PodStats, len(n.pods))}
	tot := nodeTotals{life: n.retired.counters, rx: n.retired.rx, tx: n.retired.tx, rxErr: n.retired.rxErr, txErr: n.retired.txErr}
	for i, p := range n.pods {
		fillPodStats(&s.Pods[i], &bufs[i], p, fsAvail)
		sm := &p.model.last
		tot.cpuNanoCores += float64(sm.CPUNanoCores)
		tot.usage += float64(sm.MemoryUsageBytes)
		tot.workingSet += float64(sm.MemoryWorkingSetBytes)
		tot.rss += float64(sm.MemoryRSSBytes)
		tot.life.add(p.model.lifetime)
		tot.rx += float64(sm.RxBytes)
		tot.tx += float64(sm.TxBytes)
		tot.rxErr += float64(sm.RxErrors)
		tot.txErr += float64(sm.TxErrors)
	}
	s.Node = c.nodeStatsLocked(n, &tot, fsUsed, fsAvail)
	return s
}

func fillPodStats(ps *statsapi.PodStats, b *podStatsBuf, p *simPod, fsAvail float64) {
	sm := &p.model.last
	par := &p.model.par
	at := metav1.NewTime(sm.Time)
	fsCap := b.ptr(nodeFsCapacity)
	avail := b.ptr(u64(fsAvail))

	b.cpu = statsapi.CPUStats{Time: at, UsageNanoCores: b.ptr(sm.CPUNanoCores), UsageCoreNanoSeconds: b.ptr(sm.CPUCoreNanoSeconds)}
	b.mem = statsapi.MemoryStats{Time: at, UsageBytes: b.ptr(sm.MemoryUsageBytes)}
	if !sm.MemoryStatsPartial {
		b.mem.AvailableBytes = b.ptr(u64(par.memLimit - float64(sm.MemoryWorkingSetBytes)))
		b.mem.WorkingSetBytes = b.ptr(sm.MemoryWorkingSetBytes)
		b.mem.RSSBytes = b.ptr(sm.MemoryRSSBytes)
		b.mem.PageFaults = b.ptr(sm.PageFaults)
		b.mem.MajorPageFaults = b.ptr(sm.MajorPageFaults)
	}
	b.rootfs = statsapi.FsStats{Time: at, AvailableBytes: avail, CapacityBytes: fsCap, UsedBytes: b.ptr(sm.RootfsUsedBytes)}
	b.logs = statsapi.FsStats{Time: at, AvailableBytes: avail, CapacityBytes: fsCap, UsedBytes: b.ptr(sm.LogsUsedBytes)}
	b.eph = statsapi.FsStats{Time: at, AvailableBytes: avail, CapacityBytes: fsCap, UsedBytes: b.ptr(sm.RootfsUsedBytes + sm.LogsUsedBytes)}
	b.container[0] = statsapi.ContainerStats{
		Name:      p.prof.Container,
		StartTime: metav1.NewTime(sm.ContainerStart),
		CPU:       &b.cpu,
		Memory:    &b.mem,
		Rootfs:    &b.rootfs,
		Logs:      &b.logs,
	}
	b.iface[0] = statsapi.InterfaceStats{
		Name:    "eth0",
		RxBytes: b.ptr(sm.RxBytes), RxErrors: b.ptr(sm.RxErrors),
		TxBytes: b.ptr(sm.TxBytes), TxErrors: b.ptr(sm.TxErrors),
	}
	b.net = statsapi.NetworkStats{Time: at, InterfaceStats: b.iface[0], Interfaces: b.iface[:]}

	*ps = statsapi.PodStats{
		PodRef:     statsapi.PodReference{Name: p.name, Namespace: p.namespace, UID: p.uid},
		StartTime:  metav1.NewTime(p.start),
		Containers: b.container[:],
		// The pause container's share is negligible: the pod's CPU and memory are its container's.
		CPU:              &b.cpu,
		Memory:           &b.mem,
		Network:          &b.net,
		EphemeralStorage: &b.eph,
	}
	if v := p.prof.Volume; v != nil {
		capacity := v.CapacityBytes
		if !v.PVC {
			capacity = nodeFsCapacity
		}
		b.vol[0] = statsapi.VolumeStats{
			FsStats: statsapi.FsStats{
				Time:           at,
				AvailableBytes: b.ptr(u64(capacity - float64(sm.VolumeUsedBytes))),
				CapacityBytes:  b.ptr(u64(capacity)),
				UsedBytes:      b.ptr(sm.VolumeUsedBytes),
			},
			Name: v.Name,
		}
		if v.PVC {
			b.pvc = statsapi.PVCReference{Name: v.Name + "-" + p.name, Namespace: p.namespace}
			b.vol[0].PVCRef = &b.pvc
		}
		ps.VolumeStats = b.vol[:]
	}
}

// nodeStatsLocked builds the node part: the pods' sums plus the node's own consumption.
func (c *Cluster) nodeStatsLocked(n *simNode, tot *nodeTotals, fsUsed, fsAvail float64) statsapi.NodeStats {
	at := metav1.NewTime(c.now)
	up := c.now.Sub(c.start).Seconds()
	pods := float64(len(n.pods))
	sysCPU := systemCPUCores + systemCPUPerPod*pods
	sysMem := systemMemoryBytes + systemMemoryPerPod*pods
	p := func(v float64) *uint64 { x := u64(v); return &x }

	cpu := &statsapi.CPUStats{
		Time:                 at,
		UsageNanoCores:       p(tot.cpuNanoCores + sysCPU*1e9),
		UsageCoreNanoSeconds: p(tot.life.cpuNs + sysCPU*1e9*up),
	}
	mem := &statsapi.MemoryStats{
		Time:            at,
		AvailableBytes:  p(n.capacity.memBytes - tot.workingSet - sysMem),
		UsageBytes:      p(tot.usage + sysMem*1.3),
		WorkingSetBytes: p(tot.workingSet + sysMem),
		RSSBytes:        p(tot.rss + sysMem*0.8),
		PageFaults:      p(tot.life.faults + systemFaultsPerSec*up),
		MajorPageFaults: p(tot.life.majors + 0.01*up),
	}
	iface := statsapi.InterfaceStats{Name: "eth0", RxBytes: p(tot.rx * 1.02), RxErrors: p(tot.rxErr), TxBytes: p(tot.tx * 1.02), TxErrors: p(tot.txErr)}
	fs := &statsapi.FsStats{
		Time: at, AvailableBytes: p(fsAvail), CapacityBytes: p(nodeFsCapacity), UsedBytes: p(fsUsed),
		Inodes: p(nodeInodes), InodesFree: p(nodeInodes - 200_000 - 50*pods), InodesUsed: p(200_000 + 50*pods),
	}
	imageFs := &statsapi.FsStats{
		Time: at, AvailableBytes: p(fsAvail), CapacityBytes: p(nodeFsCapacity), UsedBytes: p(c.imageBytes()),
	}
	// The kubelet and the runtime are part of the node's own consumption; the rest is the OS.
	sys := func(name string, cpuShare, memShare float64) statsapi.ContainerStats {
		return statsapi.ContainerStats{
			Name:      name,
			StartTime: metav1.NewTime(c.start),
			CPU: &statsapi.CPUStats{
				Time: at, UsageNanoCores: p(cpuShare * sysCPU * 1e9), UsageCoreNanoSeconds: p(cpuShare * sysCPU * 1e9 * up),
			},
			Memory: &statsapi.MemoryStats{
				Time: at, UsageBytes: p(memShare * sysMem * 1.3), WorkingSetBytes: p(memShare * sysMem),
				RSSBytes: p(memShare * sysMem * 0.8), PageFaults: p(cpuShare * systemFaultsPerSec * up), MajorPageFaults: p(0),
			},
		}
	}
	return statsapi.NodeStats{
		NodeName:  n.name,
		StartTime: metav1.NewTime(c.start.Add(-time.Hour)),
		SystemContainers: []statsapi.ContainerStats{
			sys(statsapi.SystemContainerKubelet, 0.35, 0.1), sys(statsapi.SystemContainerRuntime, 0.25, 0.07),
		},
		CPU:     cpu,
		Memory:  mem,
		Network: &statsapi.NetworkStats{Time: at, InterfaceStats: iface, Interfaces: []statsapi.InterfaceStats{iface}},
		Fs:      fs,
		Runtime: &statsapi.RuntimeStats{ImageFs: imageFs, ContainerFs: fs},
	}
}

// imageBytes is the size of the images every node holds (the whole catalog, see registerNodes).
func (c *Cluster) imageBytes() float64 {
	var sum float64
	for _, p := range c.catalog {
		for _, im := range p.Images {
			sum += float64(im.SizeBytes)
		}
	}
	return sum
}
