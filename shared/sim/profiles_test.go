package sim

import (
	"math"
	"reflect"
	"slices"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

func TestCatalogIsConsistent(t *testing.T) {
	seenSpec := map[string]bool{}
	for _, p := range catalog() {
		t.Run(p.Type, func(t *testing.T) {
			if p.Container == "" || p.Port == 0 || len(p.Images) < 2 {
				t.Errorf("container %q, port %d, %d images: want a name, a port and several images", p.Container, p.Port, len(p.Images))
			}
			for _, im := range p.Images {
				if seenSpec[im.Spec] {
					t.Errorf("image %s listed twice", im.Spec)
				}
				seenSpec[im.Spec] = true
				if im.SizeBytes < 5e6 || im.SizeBytes > 1e9 {
					t.Errorf("image %s: size %d bytes is implausible", im.Spec, im.SizeBytes)
				}
			}
			for name, v := range map[string]float64{
				"CPUCores": p.CPUCores, "RSSBytes": p.RSSBytes, "RSSFloor": p.RSSFloor, "CacheBytes": p.CacheBytes,
				"RxBytesPerSecond": p.RxBytesPerSecond, "TxPerRx": p.TxPerRx, "PageFaultsPerCoreSecond": p.PageFaultsPerCoreSecond,
			} {
				if !(v > 0) {
					t.Errorf("%s = %v, want > 0", name, v)
				}
			}
			if p.RSSFloor > 1 || p.ActiveCacheShare > 1 || p.WarmUp <= 0 {
				t.Errorf("RSSFloor %v, ActiveCacheShare %v, WarmUp %v out of range", p.RSSFloor, p.ActiveCacheShare, p.WarmUp)
			}
		})
	}
	if got := len(Types()); got < 8 {
		t.Errorf("%d types, want at least 8", got)
	}
}

// signature is what distinguishes a type: ratios and rates averaged over its pods.
type signature struct {
	cpu, usage, rssShare, faultsPerCore, txPerRx, majors, logsPerRx float64
}

func (s signature) fields() map[string]float64 {
	return map[string]float64{
		"cpu": s.cpu, "usage": s.usage, "rss/usage": s.rssShare, "faults/cpu": s.faultsPerCore,
		"tx/rx": s.txPerRx, "major faults": s.majors, "logs/rx": s.logsPerRx,
	}
}

// typeSignatures runs 8 warm pods of every type for 30 minutes.
func typeSignatures(t *testing.T) map[string]signature {
	t.Helper()
	c := newTestCluster(t, func(c *Config) { c.PodsPerType = 8; c.PartialMemoryShare = 0 })
	c.Advance(testStart.Add(20 * time.Minute)) // past every warm-up
	obs := observe(c, 30*time.Minute, 10*time.Second)
	sums := map[string]*signature{}
	counts := map[string]float64{}
	for _, p := range c.Pods() {
		r := obs[p.Name]
		s := sums[p.Type]
		if s == nil {
			s = &signature{}
			sums[p.Type] = s
		}
		s.cpu += r.cpu
		s.usage += r.usage
		s.rssShare += r.rss / r.usage
		s.faultsPerCore += r.faults / r.cpu
		s.txPerRx += r.tx / r.rx
		s.majors += r.majors
		s.logsPerRx += r.logs / r.rx
		counts[p.Type]++
	}
	out := map[string]signature{}
	for typ, s := range sums {
		n := counts[typ]
		out[typ] = signature{s.cpu / n, s.usage / n, s.rssShare / n, s.faultsPerCore / n, s.txPerRx / n, s.majors / n, s.logsPerRx / n}
	}
	return out
}

// ratio returns max(a,b)/min(a,b), +Inf when exactly one is 0 and 1 when both are.
func ratio(a, b float64) float64 {
	switch {
	case a == b:
		return 1
	case a == 0 || b == 0:
		return math.Inf(1)
	}
	return math.Max(a, b) / math.Min(a, b)
}

func TestTypeSignatures(t *testing.T) {
	sigs := typeSignatures(t)
	types := Types()

	t.Run("every pair differs clearly in some signal", func(t *testing.T) {
		for i, a := range types {
			for _, b := range types[i+1:] {
				fa, fb := sigs[a].fields(), sigs[b].fields()
				best, bestName := 0.0, ""
				for name := range fa {
					if r := ratio(fa[name], fb[name]); r > best {
						best, bestName = r, name
					}
				}
				if best < 1.5 {
					t.Errorf("%s vs %s: largest difference %s x%.2f, want >= x1.5\n%s: %+v\n%s: %+v", a, b, bestName, best, a, sigs[a], b, sigs[b])
				}
			}
		}
	})

	// The deliberately similar pairs: alike on the obvious signals, apart on a finer one.
	tests := []struct {
		a, b     string
		alike    string  // a signal within alikeMax
		alikeMax float64 // max ratio
		apart    string  // a signal at least apartMin apart
		apartMin float64
	}{
		{"mysql", "postgres", "cpu", 1.6, "rss/usage", 2.5},
		{"mysql", "postgres", "tx/rx", 1.5, "faults/cpu", 2.5},
		{"nginx", "httpd", "tx/rx", 1.6, "faults/cpu", 2.5},
		{"nginx", "httpd", "logs/rx", 1.5, "cpu", 1.8},
		{"redis", "memcached", "cpu", 2, "tx/rx", 1.4},
		{"redis", "memcached", "rss/usage", 1.2, "faults/cpu", 1.5},
	}
	for _, tt := range tests {
		t.Run(tt.a+" vs "+tt.b, func(t *testing.T) {
			fa, fb := sigs[tt.a].fields(), sigs[tt.b].fields()
			if r := ratio(fa[tt.alike], fb[tt.alike]); r > tt.alikeMax {
				t.Errorf("%s: %.3g vs %.3g (x%.2f), want within x%.2f", tt.alike, fa[tt.alike], fb[tt.alike], r, tt.alikeMax)
			}
			if r := ratio(fa[tt.apart], fb[tt.apart]); r < tt.apartMin {
				t.Errorf("%s: %.3g vs %.3g (x%.2f), want at least x%.2f apart", tt.apart, fa[tt.apart], fb[tt.apart], r, tt.apartMin)
			}
		})
	}
}

func TestDeterminism(t *testing.T) {
	const d = 7 * time.Minute
	samples := func(c *Cluster) map[string]Sample {
		out := map[string]Sample{}
		for _, p := range c.Pods() {
			out[p.Name], _ = c.Sample(p.Namespace, p.Name)
		}
		return out
	}
	// The same seed gives the same pods and values whether advanced every second or in one jump.
	fine := newTestCluster(t, func(c *Config) { c.PodsPerType = 2 })
	for s := time.Second; s <= d; s += time.Second {
		fine.Advance(testStart.Add(s))
	}
	coarse := newTestCluster(t, func(c *Config) { c.PodsPerType = 2 })
	coarse.Advance(testStart.Add(d))
	other := newTestCluster(t, func(c *Config) { c.PodsPerType = 2; c.Seed = 2 })
	other.Advance(testStart.Add(d))

	t.Run("same seed", func(t *testing.T) {
		if !reflect.DeepEqual(fine.Pods(), coarse.Pods()) {
			t.Fatalf("pods differ:\n%v\n%v", fine.Pods(), coarse.Pods())
		}
		if a, b := samples(fine), samples(coarse); !reflect.DeepEqual(a, b) {
			t.Errorf("samples differ with the Advance cadence:\n%v\n%v", a, b)
		}
	})
	t.Run("other seed", func(t *testing.T) {
		names := func(c *Cluster) []string {
			var out []string
			for _, p := range c.Pods() {
				out = append(out, p.Name)
			}
			return out
		}
		if slices.Equal(names(fine), names(other)) {
			t.Errorf("seed 2 gave the same pod names as seed 1: %v", names(other))
		}
		a, b := samples(fine), samples(other)
		var cpuA, cpuB []uint64
		for _, s := range a {
			cpuA = append(cpuA, s.CPUCoreNanoSeconds)
		}
		for _, s := range b {
			cpuB = append(cpuB, s.CPUCoreNanoSeconds)
		}
		slices.Sort(cpuA)
		slices.Sort(cpuB)
		if slices.Equal(cpuA, cpuB) {
			t.Errorf("seed 2 gave the same CPU counters as seed 1")
		}
	})
}

func TestWarmUp(t *testing.T) {
	// A long day, so the daily cycle does not mask the warm-up.
	c := newTestCluster(t, func(c *Config) { c.PodsPerType = 3; c.PartialMemoryShare = 0; c.DayLength = 24 * time.Hour })
	early := observe(c, 90*time.Second, 10*time.Second)
	c.Advance(testStart.Add(30 * time.Minute))
	late := observe(c, 90*time.Second, 10*time.Second)
	for _, p := range c.Pods() {
		e, l := early[p.Name], late[p.Name]
		if !(l.usage > 1.1*e.usage) {
			t.Errorf("%s (%s): memory %.0f MiB in the first 90s, %.0f MiB after 30m: want it to grow while warming up",
				p.Name, p.Type, e.usage/mib, l.usage/mib)
		}
		prof, _ := ProfileFor(p.Type)
		if prof.WarmUpMajorFaultsPerSecond >= 20 && !(e.majors > 3*l.majors) {
			t.Errorf("%s (%s): major faults %.2f/s early, %.2f/s late: want many more while warming up",
				p.Name, p.Type, e.majors, l.majors)
		}
	}
}

// TestCountersAndBounds steps pods through random faults (restarts included) and checks every sample.
func TestCountersAndBounds(t *testing.T) {
	c := newTestCluster(t, func(c *Config) {
		c.PodsPerType = 2
		c.FaultRate = 4
		c.FaultKinds = []FaultKind{RestartLoop, MemoryLeak, DiskFill, CPUSaturation, NetworkFlood}
		c.PartialMemoryShare = 0
	})
	prev := map[string]Sample{}
	for _, p := range c.Pods() {
		prev[p.Name], _ = c.Sample(p.Namespace, p.Name)
	}
	restarts := 0
	for s := 5 * time.Second; s <= 90*time.Minute; s += 5 * time.Second {
		c.Advance(testStart.Add(s))
		for _, p := range c.Pods() {
			q := prev[p.Name]
			cur, _ := c.Sample(p.Namespace, p.Name)
			prev[p.Name] = cur
			par := c.pods[nsName(p)].model.par
			if cur.Restarts != q.Restarts {
				restarts++
				if !cur.ContainerStart.After(q.ContainerStart) {
					t.Fatalf("%s at %s: restarted but container start %s did not move", p.Name, s, cur.ContainerStart)
				}
			} else if cur.CPUCoreNanoSeconds < q.CPUCoreNanoSeconds || cur.PageFaults < q.PageFaults || cur.MajorPageFaults < q.MajorPageFaults {
				t.Fatalf("%s at %s: a container counter went back without a restart:\n%+v\n%+v", p.Name, s, q, cur)
			}
			if cur.RxBytes < q.RxBytes || cur.TxBytes < q.TxBytes || cur.RxErrors < q.RxErrors || cur.TxErrors < q.TxErrors {
				t.Fatalf("%s at %s: a network counter went back:\n%+v\n%+v", p.Name, s, q, cur)
			}
			if !(cur.MemoryUsageBytes >= cur.MemoryWorkingSetBytes && cur.MemoryWorkingSetBytes >= cur.MemoryRSSBytes && cur.MemoryRSSBytes > 0) {
				t.Fatalf("%s at %s: want usage >= working set >= rss > 0: %+v", p.Name, s, cur)
			}
			if float64(cur.MemoryUsageBytes) > par.memLimit || float64(cur.CPUNanoCores) > par.cpuLimit*1e9+1 || cur.CPUNanoCores == 0 {
				t.Fatalf("%s at %s: cpu %d nanocores / memory %d bytes outside (0, limit %.2f cores / %.0f bytes]",
					p.Name, s, cur.CPUNanoCores, cur.MemoryUsageBytes, par.cpuLimit, par.memLimit)
			}
			if cur.RootfsUsedBytes == 0 || cur.RootfsUsedBytes > 1<<40 || cur.LogsUsedBytes > 1<<30 {
				t.Fatalf("%s at %s: implausible disk use %+v", p.Name, s, cur)
			}
		}
	}
	if restarts < 5 {
		t.Errorf("%d restarts in 90 minutes of frequent faults: the test did not exercise counter resets", restarts)
	}
}

func nsName(p PodInfo) types.NamespacedName {
	return types.NamespacedName{Namespace: p.Namespace, Name: p.Name}
}
