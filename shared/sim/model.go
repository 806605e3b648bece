package sim

import (
	"math"
	"math/rand/v2"
	"time"
)

// Kubelet log rotation (containerLogMaxSize 10Mi, containerLogMaxFiles 5): the current file is rotated at
// 10 MiB and up to four rotated files are kept compressed.
const (
	logMaxBytes        = 10 * mib
	logRotatedMaxBytes = 4 * logMaxBytes * logCompression
	logCompression     = 0.1
	pageSize           = 4096
	kernelMemoryBytes  = 1.5 * mib
)

// Sample is what the simulated kubelet reports for one pod at one time.
type Sample struct {
	// Time is the end of the last model step.
	Time time.Time
	// ContainerStart is the start of the current container instance; Restarts counts earlier instances.
	ContainerStart time.Time
	Restarts       int32
	// LastTermination is why the previous instance ended ("OOMKilled", "Error"), empty before any restart.
	LastTermination string

	CPUNanoCores          uint64
	CPUCoreNanoSeconds    uint64 // cumulative for the container instance
	MemoryUsageBytes      uint64
	MemoryWorkingSetBytes uint64
	MemoryRSSBytes        uint64
	PageFaults            uint64 // cumulative for the container instance
	MajorPageFaults       uint64 // cumulative for the container instance
	// MemoryStatsPartial is set for pods whose runtime reports memory usage only: the kubelet then omits
	// working set, RSS and page faults (and Telegraf writes 0 for them).
	MemoryStatsPartial bool

	RootfsUsedBytes uint64
	LogsUsedBytes   uint64
	// Network counters belong to the pod sandbox, so they survive container restarts as on a real node.
	RxBytes  uint64
	RxErrors uint64
	TxBytes  uint64
	TxErrors uint64
	// VolumeUsedBytes is the used size of the pod's volume (Profile.Volume), 0 without one.
	VolumeUsedBytes uint64
}

// podParams are a pod's constants, drawn once from its identity stream.
type podParams struct {
	load        float64 // traffic multiplier, lognormal around 1
	dataScale   float64 // dataset/memory multiplier, lognormal around 1
	phase       float64 // offset of the daily sinusoid, radians
	burstPeriod float64 // seconds
	burstOffset float64 // seconds
	burstLength float64 // seconds
	sawOffset   float64 // seconds
	partialMem  bool
	cpuLimit    float64 // cores
	cpuRequest  float64 // cores
	memLimit    float64 // bytes
	memRequest  float64 // bytes
}

// drawParams draws a pod's constants and derives its resources from its expected peak use, the way a
// careful operator sizes requests (about the mean) and limits (well above the peak).
func drawParams(r *rand.Rand, p *Profile, partialShare float64) podParams {
	par := podParams{
		load:      lognormal(r, 0.5, 0.25, 4),
		dataScale: lognormal(r, 0.4, 0.3, 3),
		phase:     r.NormFloat64() * 0.6,
		sawOffset: r.Float64() * 3600,
	}
	par.partialMem = r.Float64() < partialShare
	if b := p.Burst; b != nil {
		par.burstPeriod = b.Period.Seconds() * (0.8 + 0.45*r.Float64())
		par.burstOffset = r.Float64() * par.burstPeriod
		par.burstLength = b.Duration.Seconds() * math.Sqrt(par.dataScale)
		par.burstLength = math.Min(par.burstLength, par.burstPeriod/2)
	}
	peakCPU := p.CPUCores * par.load * (1 + p.DailyAmplitude) * (1 + p.WarmUpCPU)
	if p.Burst != nil {
		peakCPU += p.Burst.CPUCores * par.dataScale
	}
	par.cpuLimit = math.Max(p.MinCPULimit, roundUp(2.5*peakCPU, 0.1))
	par.cpuRequest = math.Max(0.01, roundUp(p.CPUCores*par.load, 0.01))
	steadyRSS := p.RSSBytes * par.dataScale * (1 + p.MemoryFollowsLoad*p.DailyAmplitude)
	if p.MemorySaw != nil {
		steadyRSS *= 1 + p.MemorySaw.Amplitude
	}
	if p.Burst != nil {
		steadyRSS *= 1 + p.Burst.MemoryShare
	}
	steady := steadyRSS + p.CacheBytes*par.dataScale + kernelMemoryBytes
	par.memLimit = roundUp(1.6*steady, 64*mib)
	par.memRequest = roundUp(steadyRSS+p.CacheBytes*par.dataScale*p.ActiveCacheShare, 16*mib)
	return par
}

// podModel steps one pod's behaviour on a fixed grid. Not safe for concurrent use; Cluster serialises it.
type podModel struct {
	prof  *Profile
	par   podParams
	rng   *rand.Rand
	step  time.Duration
	dayNs int64

	next time.Time // end of the next step to compute

	containerStart  time.Time
	previousStart   time.Time // start of the instance before the current one
	restarts        int32
	lastTermination string

	traffic, memNoise     float64  // AR(1) noise states, unit variance
	cpuNs, faults, majors float64  // container counters
	lifetime              counters // never reset: what the node's counters add up
	rx, tx, rxErr, txErr  float64  // pod sandbox counters
	rootfs, fill          float64
	logCurrent, logRotate float64
	volume                float64
	leak, prevRSS         float64
	inBurst               bool

	last Sample
}

func newPodModel(p *Profile, par podParams, r *rand.Rand, start time.Time, step, day time.Duration) *podModel {
	m := &podModel{
		prof: p, par: par, rng: r, step: step, dayNs: int64(day),
		next: firstStep(start, step), containerStart: start,
		rootfs: p.RootfsBytes,
	}
	if v := p.Volume; v != nil {
		m.volume = v.InitialBytes * par.dataScale
		if v.SnapshotShare > 0 {
			// A dump from the previous life of the dataset is already on the volume.
			m.volume = v.SnapshotShare * p.RSSBytes * par.dataScale
		}
	}
	m.last = m.sample(start, 0, 0, 0, 0, 0)
	return m
}

// firstStep returns the first step time after start. Steps fall half a step after the multiples
// of step since the Unix epoch, the grid a collector with Telegraf's round_interval scrapes on, and
// Start's ticks a quarter step after the steps: every scrape then sees exactly the steps since the
// previous one, whatever the jitter of either side below a quarter step. A pod's steps on its own
// phase (its start time) would race the ticks: a tick a little early serves no step, the next two,
// and the rates Telegraf derives swing between 0 and twice the truth.
func firstStep(start time.Time, step time.Duration) time.Time {
	return gridAfter(start, step, step/2)
}

// gridAfter returns the first time after t of the grid offset + k·period since the Unix epoch.
func gridAfter(t time.Time, period, offset time.Duration) time.Time {
	n, p := t.UnixNano()-int64(offset), int64(period)
	k := n / p
	if n%p < 0 {
		k-- // floor, also before 1970
	}
	return time.Unix(0, (k+1)*p+int64(offset)).UTC()
}

// effects are what the active faults do to one step; the zero value is a healthy pod.
type effects struct {
	cpuSaturation float64 // share of the CPU limit the pod is pinned at
	leakPerSecond float64 // bytes of RSS added per second
	flood         float64 // multiplier of received traffic
	fillPerSecond float64 // bytes written to the writable layer per second
	crashAfter    float64 // seconds a container instance survives
}

// advanceTo computes every step that ends at or before now. effectsAt returns the faults' effects for the
// step ending at t; it is called once per step, in time order.
func (m *podModel) advanceTo(now time.Time, effectsAt func(t time.Time) effects) {
	for !m.next.After(now) {
		t := m.next
		m.stepAt(t, effectsAt(t))
		m.next = t.Add(m.step)
	}
}

// restart starts a new container instance at t: container counters, writable layer and logs start over,
// warm-up begins again; the pod's network counters and volume stay.
func (m *podModel) restart(t time.Time, reason string) {
	m.previousStart, m.containerStart = m.containerStart, t
	m.restarts++
	m.lastTermination = reason
	m.cpuNs, m.faults, m.majors = 0, 0, 0
	m.rootfs, m.fill = m.prof.RootfsBytes, 0
	m.logCurrent, m.logRotate = 0, 0
	m.leak, m.prevRSS = 0, 0
}

func (m *podModel) stepAt(t time.Time, fx effects) {
	p, par := m.prof, &m.par
	dt := m.step.Seconds()

	if fx.crashAfter > 0 && t.Sub(m.containerStart).Seconds() >= fx.crashAfter {
		m.restart(t, "Error")
	}

	// A fixed number of draws per step, whatever the faults, so a fault never shifts the noise of later steps.
	zTraffic, zCPU, zFaults := m.rng.NormFloat64(), m.rng.NormFloat64(), m.rng.NormFloat64()
	zRx, zTx, zMem := m.rng.NormFloat64(), m.rng.NormFloat64(), m.rng.NormFloat64()
	uErr := m.rng.Float64()

	age := t.Sub(m.containerStart).Seconds()
	cold := math.Exp(-age / p.WarmUp.Seconds()) // 1 at start, -> 0 when warm
	warm := 1 - cold

	m.traffic = ar1(m.traffic, zTraffic, dt, 20)
	m.memNoise = ar1(m.memNoise, zMem, dt, 120)
	dayPos := 2*math.Pi*float64(t.UnixNano()%m.dayNs)/float64(m.dayNs) + par.phase
	day := 1 + p.DailyAmplitude*math.Sin(dayPos)
	noise := math.Exp(p.Noise*m.traffic - p.Noise*p.Noise/2)
	demand := par.load * day * noise

	wasBurst := m.inBurst
	m.inBurst = false
	if p.Burst != nil {
		tsec := float64(t.UnixNano()) / 1e9
		m.inBurst = math.Mod(tsec+par.burstOffset, par.burstPeriod) < par.burstLength
	}

	// Network.
	rxRate := p.RxBytesPerSecond * demand * math.Exp(0.08*zRx-0.0032)
	txRate := rxRate * p.TxPerRx * math.Exp(0.08*zTx-0.0032)
	errPerByte := p.ErrorsPerGiB / gib
	if fx.flood > 0 {
		rxRate *= fx.flood
		txRate *= 1.3
		errPerByte *= 20
	}

	// CPU, throttled at the limit as CFS quota does.
	cpu := p.CPUCores * demand * (1 + p.WarmUpCPU*cold) * math.Exp(0.08*zCPU-0.0032)
	if m.inBurst {
		cpu += p.Burst.CPUCores * par.dataScale
	}
	if fx.flood > 0 {
		cpu += p.CPUCores * par.load * 0.04 * fx.flood
	}
	if fx.fillPerSecond > 0 {
		cpu += 0.05
	}
	if fx.cpuSaturation > 0 {
		cpu = par.cpuLimit * fx.cpuSaturation * math.Exp(0.01*zCPU)
	}
	cpu = clamp(cpu, 0.0002, par.cpuLimit)

	// Memory.
	// Workers follow the traffic, within what the pod was sized for (drawParams).
	follow := clamp(day*noise, 1-p.DailyAmplitude, 1+p.DailyAmplitude)
	rss := p.RSSBytes * par.dataScale * (1 + p.MemoryFollowsLoad*(follow-1))
	rss *= p.RSSFloor + (1-p.RSSFloor)*warm
	if s := p.MemorySaw; s != nil {
		rss *= 1 + s.Amplitude*frac((age+par.sawOffset)/s.Period.Seconds())
	}
	rss *= math.Exp(0.004 * m.memNoise)
	if m.inBurst {
		rss *= 1 + p.Burst.MemoryShare
	}
	if fx.leakPerSecond > 0 {
		m.leak += fx.leakPerSecond * dt
	} else {
		m.leak *= math.Exp(-dt / 15) // the leaking cache is flushed once the fault is over
	}
	rss += m.leak
	if rss+kernelMemoryBytes >= 0.98*par.memLimit {
		m.restart(t, "OOMKilled")
		cold, warm = 1, 0
		rss = p.RSSBytes * par.dataScale * p.RSSFloor
	}
	cache := p.CacheBytes * par.dataScale * (0.1 + 0.9*warm)
	if fx.fillPerSecond > 0 {
		cache += math.Min(m.fill, 0.2*par.memLimit) // written files sit in the page cache
	}
	// The kernel reclaims page cache before the cgroup hits its limit.
	cache = math.Min(cache, math.Max(0, 0.97*par.memLimit-rss-kernelMemoryBytes))
	usage := rss + cache + kernelMemoryBytes
	workingSet := rss + cache*p.ActiveCacheShare + kernelMemoryBytes

	// Page faults: proportional to CPU, plus one minor fault per page of new anonymous memory.
	faultRate := p.PageFaultsPerCoreSecond * cpu * math.Exp(0.1*zFaults-0.005)
	majorRate := p.MajorFaultsPerSecond*demand + p.WarmUpMajorFaultsPerSecond*cold
	if m.inBurst {
		faultRate += p.Burst.PageFaultsPerSecond * par.dataScale
		majorRate += p.Burst.MajorFaultsPerSecond
	}
	faultsBefore := m.faults
	m.faults += faultRate*dt + math.Max(0, rss-m.prevRSS)/pageSize
	m.majors += majorRate * dt
	m.prevRSS = rss

	m.cpuNs += cpu * dt * 1e9
	m.rx += rxRate * dt
	m.tx += txRate * dt
	m.rxErr += rxRate * dt * errPerByte * 2 * uErr
	m.txErr += txRate * dt * errPerByte * 2 * (1 - uErr)
	m.lifetime.cpuNs += cpu * dt * 1e9
	m.lifetime.faults += m.faults - faultsBefore
	m.lifetime.majors += majorRate * dt

	// Disk: writable layer, container logs with kubelet rotation, the volume.
	m.rootfs += p.RootfsGrowthBytesPerSecond * dt
	if fx.fillPerSecond > 0 {
		m.fill += fx.fillPerSecond * dt
	} else {
		m.fill = 0 // the runaway files are removed when the fault ends
	}
	m.logCurrent += (p.LogBytesPerSecond + p.LogBytesPerRxByte*rxRate) * dt
	for m.logCurrent >= logMaxBytes {
		m.logCurrent -= logMaxBytes
		m.logRotate = math.Min(m.logRotate+logMaxBytes*logCompression, logRotatedMaxBytes)
	}
	if v := p.Volume; v != nil {
		m.volume = math.Min(m.volume+v.GrowthBytesPerSecond*demand*dt, v.CapacityBytes)
		if v.SnapshotShare > 0 && wasBurst && !m.inBurst {
			m.volume = math.Min(v.SnapshotShare*rss, v.CapacityBytes)
		}
	}

	m.last = m.sample(t, cpu, usage, workingSet, rss, m.rootfs+m.fill)
}

func (m *podModel) sample(t time.Time, cpu, usage, workingSet, rss, rootfs float64) Sample {
	return Sample{
		Time:                  t,
		ContainerStart:        m.containerStart,
		Restarts:              m.restarts,
		LastTermination:       m.lastTermination,
		CPUNanoCores:          u64(cpu * 1e9),
		CPUCoreNanoSeconds:    u64(m.cpuNs),
		MemoryUsageBytes:      u64(usage),
		MemoryWorkingSetBytes: u64(workingSet),
		MemoryRSSBytes:        u64(rss),
		PageFaults:            u64(m.faults),
		MajorPageFaults:       u64(m.majors),
		MemoryStatsPartial:    m.par.partialMem,
		RootfsUsedBytes:       u64(rootfs),
		LogsUsedBytes:         u64(m.logCurrent + m.logRotate),
		RxBytes:               u64(m.rx),
		RxErrors:              u64(m.rxErr),
		TxBytes:               u64(m.tx),
		TxErrors:              u64(m.txErr),
		VolumeUsedBytes:       u64(m.volume),
	}
}

// counters are cumulative container counters that survive restarts, summed into the node's.
type counters struct {
	cpuNs, faults, majors float64
}

func (a *counters) add(b counters) {
	a.cpuNs += b.cpuNs
	a.faults += b.faults
	a.majors += b.majors
}

// ar1 advances a unit-variance AR(1) process with time constant tau seconds.
func ar1(x, z, dt, tau float64) float64 {
	rho := math.Exp(-dt / tau)
	return rho*x + math.Sqrt(1-rho*rho)*z
}

// lognormal draws exp(N(0, sigma)) normalised to mean 1 and clamped to [lo, hi].
func lognormal(r *rand.Rand, sigma, lo, hi float64) float64 {
	return clamp(math.Exp(sigma*r.NormFloat64()-sigma*sigma/2), lo, hi)
}

func clamp(x, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, x)) }

func frac(x float64) float64 { return x - math.Floor(x) }

func roundUp(x, unit float64) float64 { return math.Ceil(x/unit) * unit }

// u64 converts a non-negative quantity; NaN and negatives (which the model never produces) become 0.
func u64(x float64) uint64 {
	if !(x > 0) {
		return 0
	}
	return uint64(x)
}
