package sim

import (
	"fmt"
	"time"
)

const (
	kib = 1024.0
	mib = 1024 * kib
	gib = 1024 * mib
)

// Profile is the behaviour of one workload type at load 1 and dataset scale 1. Each pod multiplies the
// traffic-driven parts by its own load level and the memory/data parts by its own dataset scale, follows a
// daily sinusoid with its own phase and adds autocorrelated noise (see podModel).
//
// The numbers are the order of magnitude of a small production instance; what matters for classification
// is that ratios differ between types: tx/rx, RSS/working set, page faults per CPU second, burst periods,
// log growth per request, warm-up curves.
type Profile struct {
	// Type is the workload type, the class name the classifier learns ("mysql").
	Type string
	// Container is the name of the pod's only container.
	Container string
	// Images are the images pods of this type run; each pod picks one.
	Images []Image
	// Port is the container port the workload listens on.
	Port int32

	// CPUCores is the mean CPU use at load 1, in cores.
	CPUCores float64
	// Noise is the standard deviation of the log of the autocorrelated traffic noise.
	Noise float64
	// DailyAmplitude is the relative amplitude of the daily load sinusoid.
	DailyAmplitude float64
	// WarmUp is the time constant of the warm-up after a container start (buffer pools, caches, JIT).
	WarmUp time.Duration
	// WarmUpCPU is the extra relative CPU right after start, decaying with WarmUp.
	WarmUpCPU float64

	// RSSBytes is the steady-state anonymous memory.
	RSSBytes float64
	// RSSFloor is the share of RSSBytes present right after start; the rest fills during warm-up.
	RSSFloor float64
	// CacheBytes is the steady-state page cache and shared memory charged to the container's cgroup.
	CacheBytes float64
	// ActiveCacheShare is the share of CacheBytes the kernel counts as active (part of the working set).
	ActiveCacheShare float64
	// MemoryFollowsLoad is how much RSS follows the traffic (0: fixed pools, 1: per-request workers).
	MemoryFollowsLoad float64
	// MemorySaw is a garbage-collection sawtooth on RSS, if any.
	MemorySaw *Sawtooth

	// PageFaultsPerCoreSecond is the minor page fault rate per core of CPU used.
	PageFaultsPerCoreSecond float64
	// MajorFaultsPerSecond is the steady major page fault rate at load 1.
	MajorFaultsPerSecond float64
	// WarmUpMajorFaultsPerSecond is the extra major fault rate right after start (reads from disk).
	WarmUpMajorFaultsPerSecond float64

	// RxBytesPerSecond is the received traffic at load 1.
	RxBytesPerSecond float64
	// TxPerRx is the ratio of transmitted to received bytes.
	TxPerRx float64
	// ErrorsPerGiB is the network error rate per GiB of traffic, in each direction.
	ErrorsPerGiB float64

	// RootfsBytes is the size of the container's writable layer after start.
	RootfsBytes float64
	// RootfsGrowthBytesPerSecond is the growth of the writable layer (temp files).
	RootfsGrowthBytesPerSecond float64
	// LogBytesPerSecond is the background log output to stdout.
	LogBytesPerSecond float64
	// LogBytesPerRxByte is the access-log output per received byte (one line per request).
	LogBytesPerRxByte float64

	// Volume is the pod's volume, if any.
	Volume *VolumeProfile
	// Burst is the type's periodic activity (RDB saves, checkpoints, autovacuum), if any.
	Burst *BurstProfile

	// MinCPULimit is the smallest CPU limit a pod of this type gets, in cores.
	MinCPULimit float64
}

// Sawtooth is a periodic linear growth of RSS by Amplitude (relative), then a drop.
type Sawtooth struct {
	Period    time.Duration
	Amplitude float64
}

// VolumeProfile is the pod's one volume.
type VolumeProfile struct {
	// Name is the volume name in the pod spec.
	Name string
	// PVC makes it a PersistentVolumeClaim ("data-<pod>"); otherwise it is a ConfigMap volume.
	PVC bool
	// InitialBytes is the used size at pod creation, scaled by the pod's dataset scale.
	InitialBytes float64
	// GrowthBytesPerSecond is the growth at load 1 (inserts, journals).
	GrowthBytesPerSecond float64
	// SnapshotShare, if > 0, makes the volume hold a snapshot of SnapshotShare*RSS rewritten at each burst end.
	SnapshotShare float64
	// CapacityBytes is the volume size.
	CapacityBytes float64
}

// BurstProfile is periodic extra activity. Each pod jitters the period by ±20% and has its own offset.
type BurstProfile struct {
	Period   time.Duration
	Duration time.Duration
	// CPUCores is the extra CPU during a burst, scaled by the pod's dataset scale.
	CPUCores float64
	// PageFaultsPerSecond and MajorFaultsPerSecond are the extra fault rates during a burst.
	PageFaultsPerSecond  float64
	MajorFaultsPerSecond float64
	// MemoryShare is the extra RSS during a burst relative to RSS (copy-on-write pages of a fork).
	MemoryShare float64
}

// catalog returns a fresh copy of all profiles (a function, not a package variable, so no caller can change
// another's profiles). Pairs are deliberately close (mysql/postgres, nginx/httpd, redis/memcached) on the
// obvious signals and differ in the finer ones (RSS share of memory, fault rates, bursts, logs).
func catalog() []Profile {
	return []Profile{
		{
			Type: "mysql", Container: "mysql", Port: 3306,
			Images: []Image{
				{Spec: "mysql:8.4", SizeBytes: 172_861_544},
				{Spec: "mysql:8.0", SizeBytes: 165_312_977},
				{Spec: "bitnami/mysql:8.0", SizeBytes: 189_455_120},
			},
			CPUCores: 0.25, Noise: 0.18, DailyAmplitude: 0.45, WarmUp: 180 * time.Second, WarmUpCPU: 0.6,
			RSSBytes: 420 * mib, RSSFloor: 0.35, CacheBytes: 160 * mib, ActiveCacheShare: 0.5, MemoryFollowsLoad: 0.05,
			PageFaultsPerCoreSecond: 900, MajorFaultsPerSecond: 0.4, WarmUpMajorFaultsPerSecond: 25,
			RxBytesPerSecond: 380e3, TxPerRx: 4.2, ErrorsPerGiB: 0.02,
			RootfsBytes: 3 * mib, LogBytesPerSecond: 12,
			Volume:      &VolumeProfile{Name: "data", PVC: true, InitialBytes: 2.5 * gib, GrowthBytesPerSecond: 18e3, CapacityBytes: 20 * gib},
			MinCPULimit: 1,
		},
		{
			Type: "postgres", Container: "postgres", Port: 5432,
			Images: []Image{
				{Spec: "postgres:16", SizeBytes: 153_672_218},
				{Spec: "postgres:16-alpine", SizeBytes: 98_114_380},
				{Spec: "bitnami/postgresql:16", SizeBytes: 95_731_006},
			},
			CPUCores: 0.22, Noise: 0.22, DailyAmplitude: 0.45, WarmUp: 150 * time.Second, WarmUpCPU: 0.5,
			// shared_buffers is shared memory: charged as cache, not RSS, hence the low RSS share.
			RSSBytes: 110 * mib, RSSFloor: 0.6, CacheBytes: 520 * mib, ActiveCacheShare: 0.8, MemoryFollowsLoad: 0.25,
			// One process per connection: far more minor faults per CPU second than mysql's threads.
			PageFaultsPerCoreSecond: 4200, MajorFaultsPerSecond: 0.6, WarmUpMajorFaultsPerSecond: 30,
			RxBytesPerSecond: 330e3, TxPerRx: 3.6, ErrorsPerGiB: 0.02,
			RootfsBytes: 1 * mib, LogBytesPerSecond: 20,
			Volume: &VolumeProfile{Name: "data", PVC: true, InitialBytes: 2 * gib, GrowthBytesPerSecond: 22e3, CapacityBytes: 20 * gib},
			// autovacuum worker every naptime (60s).
			Burst:       &BurstProfile{Period: 60 * time.Second, Duration: 9 * time.Second, CPUCores: 0.12, PageFaultsPerSecond: 2500, MajorFaultsPerSecond: 3, MemoryShare: 0.1},
			MinCPULimit: 1,
		},
		{
			Type: "redis", Container: "redis", Port: 6379,
			Images: []Image{
				{Spec: "redis:7", SizeBytes: 45_318_220},
				{Spec: "redis:7-alpine", SizeBytes: 17_267_511},
				{Spec: "bitnami/redis:7.2", SizeBytes: 38_902_643},
			},
			CPUCores: 0.07, Noise: 0.25, DailyAmplitude: 0.35, WarmUp: 45 * time.Second, WarmUpCPU: 1.5,
			RSSBytes: 280 * mib, RSSFloor: 0.1, CacheBytes: 12 * mib, ActiveCacheShare: 0.3,
			PageFaultsPerCoreSecond: 350, MajorFaultsPerSecond: 0.02, WarmUpMajorFaultsPerSecond: 2,
			RxBytesPerSecond: 160e3, TxPerRx: 1.9, ErrorsPerGiB: 0.01,
			RootfsBytes: 256 * kib, LogBytesPerSecond: 2,
			Volume: &VolumeProfile{Name: "data", PVC: true, SnapshotShare: 0.35, CapacityBytes: 8 * gib},
			// BGSAVE: the forked child compresses the dataset; copy-on-write shows as faults and extra memory.
			Burst:       &BurstProfile{Period: 120 * time.Second, Duration: 4 * time.Second, CPUCores: 0.85, PageFaultsPerSecond: 18000, MemoryShare: 0.12},
			MinCPULimit: 1,
		},
		{
			Type: "memcached", Container: "memcached", Port: 11211,
			Images: []Image{
				{Spec: "memcached:1.6", SizeBytes: 30_127_904},
				{Spec: "memcached:1.6-alpine", SizeBytes: 7_412_331},
				{Spec: "bitnami/memcached:1.6", SizeBytes: 35_840_126},
			},
			// Slabs fill as misses populate the cache: a long warm-up, then flat memory and no disk at all.
			CPUCores: 0.045, Noise: 0.3, DailyAmplitude: 0.35, WarmUp: 600 * time.Second, WarmUpCPU: 0.2,
			RSSBytes: 420 * mib, RSSFloor: 0.02, CacheBytes: 1 * mib, ActiveCacheShare: 1,
			PageFaultsPerCoreSecond: 150,
			RxBytesPerSecond:        210e3, TxPerRx: 1.15, ErrorsPerGiB: 0.01,
			RootfsBytes: 64 * kib,
			MinCPULimit: 0.5,
		},
		{
			Type: "nginx", Container: "nginx", Port: 80,
			Images: []Image{
				{Spec: "nginx:1.25", SizeBytes: 67_271_823},
				{Spec: "nginx:1.25-alpine", SizeBytes: 18_064_401},
				{Spec: "public.ecr.aws/nginx/nginx:1.27", SizeBytes: 69_920_148},
			},
			CPUCores: 0.035, Noise: 0.35, DailyAmplitude: 0.7, WarmUp: 20 * time.Second, WarmUpCPU: 0.3,
			RSSBytes: 14 * mib, RSSFloor: 0.7, CacheBytes: 70 * mib, ActiveCacheShare: 0.55, MemoryFollowsLoad: 0.1,
			PageFaultsPerCoreSecond: 600, MajorFaultsPerSecond: 0.03, WarmUpMajorFaultsPerSecond: 3,
			RxBytesPerSecond: 55e3, TxPerRx: 32, ErrorsPerGiB: 0.05,
			RootfsBytes: 512 * kib, RootfsGrowthBytesPerSecond: 40, LogBytesPerRxByte: 0.36,
			Volume:      &VolumeProfile{Name: "config", InitialBytes: 3 * kib, CapacityBytes: 100 * gib},
			MinCPULimit: 0.5,
		},
		{
			Type: "httpd", Container: "httpd", Port: 80,
			Images: []Image{
				{Spec: "httpd:2.4", SizeBytes: 58_446_300},
				{Spec: "httpd:2.4-alpine", SizeBytes: 22_631_795},
				{Spec: "bitnami/apache:2.4", SizeBytes: 80_218_677},
			},
			// Prefork: more memory, following the number of busy workers, and many faults from process churn.
			CPUCores: 0.09, Noise: 0.35, DailyAmplitude: 0.7, WarmUp: 30 * time.Second, WarmUpCPU: 0.5,
			RSSBytes: 75 * mib, RSSFloor: 0.5, CacheBytes: 45 * mib, ActiveCacheShare: 0.6, MemoryFollowsLoad: 0.6,
			PageFaultsPerCoreSecond: 2800, MajorFaultsPerSecond: 0.05, WarmUpMajorFaultsPerSecond: 3,
			RxBytesPerSecond: 48e3, TxPerRx: 24, ErrorsPerGiB: 0.05,
			RootfsBytes: 1 * mib, LogBytesPerRxByte: 0.42,
			// Children recycled after MaxConnectionsPerChild.
			Burst:       &BurstProfile{Period: 45 * time.Second, Duration: 2 * time.Second, CPUCores: 0.03, PageFaultsPerSecond: 4000},
			MinCPULimit: 0.5,
		},
		{
			Type: "mongo", Container: "mongo", Port: 27017,
			Images: []Image{
				{Spec: "mongo:7", SizeBytes: 251_390_112},
				{Spec: "mongo:6", SizeBytes: 238_771_540},
				{Spec: "bitnami/mongodb:7.0", SizeBytes: 183_650_294},
			},
			CPUCores: 0.18, Noise: 0.2, DailyAmplitude: 0.4, WarmUp: 240 * time.Second, WarmUpCPU: 0.4,
			RSSBytes: 850 * mib, RSSFloor: 0.15, CacheBytes: 300 * mib, ActiveCacheShare: 0.7,
			PageFaultsPerCoreSecond: 1500, MajorFaultsPerSecond: 1.5, WarmUpMajorFaultsPerSecond: 40,
			RxBytesPerSecond: 260e3, TxPerRx: 2.6, ErrorsPerGiB: 0.02,
			RootfsBytes: 2 * mib, LogBytesPerSecond: 260,
			Volume: &VolumeProfile{Name: "data", PVC: true, InitialBytes: 3 * gib, GrowthBytesPerSecond: 28e3, CapacityBytes: 50 * gib},
			// WiredTiger checkpoint every 60s.
			Burst:       &BurstProfile{Period: 60 * time.Second, Duration: 5 * time.Second, CPUCores: 0.25, PageFaultsPerSecond: 1500, MajorFaultsPerSecond: 25},
			MinCPULimit: 1,
		},
		{
			Type: "rabbitmq", Container: "rabbitmq", Port: 5672,
			Images: []Image{
				{Spec: "rabbitmq:3-management", SizeBytes: 112_748_309},
				{Spec: "rabbitmq:3.13", SizeBytes: 91_506_772},
				{Spec: "bitnami/rabbitmq:3.13", SizeBytes: 121_904_835},
			},
			// Erlang schedulers spin: steady CPU with little noise; the VM's GC saws the heap.
			CPUCores: 0.28, Noise: 0.15, DailyAmplitude: 0.3, WarmUp: 60 * time.Second, WarmUpCPU: 0.8,
			RSSBytes: 170 * mib, RSSFloor: 0.5, CacheBytes: 25 * mib, ActiveCacheShare: 0.5, MemoryFollowsLoad: 0.15,
			MemorySaw:               &Sawtooth{Period: 25 * time.Second, Amplitude: 0.18},
			PageFaultsPerCoreSecond: 1300, MajorFaultsPerSecond: 0.05, WarmUpMajorFaultsPerSecond: 4,
			RxBytesPerSecond: 300e3, TxPerRx: 1.05, ErrorsPerGiB: 0.03,
			RootfsBytes: 4 * mib, LogBytesPerSecond: 35,
			Volume:      &VolumeProfile{Name: "data", PVC: true, InitialBytes: 60 * mib, GrowthBytesPerSecond: 1.5e3, CapacityBytes: 8 * gib},
			MinCPULimit: 1,
		},
	}
}

// Types returns the names of all workload types, in catalog order.
func Types() []string {
	ps := catalog()
	out := make([]string, len(ps))
	for i := range ps {
		out[i] = ps[i].Type
	}
	return out
}

// ProfileFor returns a copy of the profile of a workload type.
func ProfileFor(typ string) (Profile, error) {
	p, err := findProfile(catalog(), typ)
	if err != nil {
		return Profile{}, err
	}
	return *p, nil
}

// Images returns every image of the catalog, the set each simulated node reports as pulled.
func Images() []Image {
	var out []Image
	for _, p := range catalog() {
		out = append(out, p.Images...)
	}
	return out
}

func findProfile(ps []Profile, typ string) (*Profile, error) {
	for i := range ps {
		if ps[i].Type == typ {
			return &ps[i], nil
		}
	}
	return nil, fmt.Errorf("unknown workload type %q (known: %v)", typ, Types())
}
