package sim

import (
	"testing"
	"time"
)

// testStart is a fixed simulation start so tests and golden files are reproducible.
var testStart = time.Date(2025, 3, 4, 5, 0, 0, 0, time.UTC)

// newTestCluster builds a cluster starting at testStart; edit adjusts the default config.
func newTestCluster(t testing.TB, edit func(*Config)) *Cluster {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Start = testStart
	if edit != nil {
		edit(&cfg)
	}
	c, err := New(cfg, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// rates are a pod's mean rates and gauges over a window.
type rates struct {
	cpu, faults, majors, rx, tx float64 // per second (cpu in cores)
	usage, workingSet, rss      float64 // mean bytes
	logs, rootfs                float64 // growth per second
}

// observe advances c from its current time for d in steps of every, and returns each pod's mean rates.
// Windows that contain a container restart are skipped for the counter rates.
func observe(c *Cluster, d, every time.Duration) map[string]rates {
	type acc struct {
		r            rates
		n, gaugeN    float64
		first, prev  Sample
		logs, rootfs float64
	}
	accs := map[string]*acc{}
	for _, p := range c.Pods() {
		s, _ := c.Sample(p.Namespace, p.Name)
		accs[p.Name] = &acc{first: s, prev: s}
	}
	end := c.Now().Add(d)
	for t := c.Now().Add(every); !t.After(end); t = t.Add(every) {
		c.Advance(t)
		for _, p := range c.Pods() {
			a := accs[p.Name]
			s, _ := c.Sample(p.Namespace, p.Name)
			dt := s.Time.Sub(a.prev.Time).Seconds()
			a.r.usage += float64(s.MemoryUsageBytes)
			a.r.workingSet += float64(s.MemoryWorkingSetBytes)
			a.r.rss += float64(s.MemoryRSSBytes)
			a.gaugeN++
			if s.Restarts == a.prev.Restarts && dt > 0 {
				a.r.cpu += float64(s.CPUCoreNanoSeconds-a.prev.CPUCoreNanoSeconds) / 1e9 / dt
				a.r.faults += float64(s.PageFaults-a.prev.PageFaults) / dt
				a.r.majors += float64(s.MajorPageFaults-a.prev.MajorPageFaults) / dt
				a.r.rx += float64(s.RxBytes-a.prev.RxBytes) / dt
				a.r.tx += float64(s.TxBytes-a.prev.TxBytes) / dt
				a.logs += max(0, float64(s.LogsUsedBytes)-float64(a.prev.LogsUsedBytes))
				a.rootfs += float64(s.RootfsUsedBytes) - float64(a.prev.RootfsUsedBytes)
				a.n++
			}
			a.prev = s
		}
	}
	out := map[string]rates{}
	for name, a := range accs {
		r := a.r
		if a.n > 0 {
			r.cpu, r.faults, r.majors, r.rx, r.tx = r.cpu/a.n, r.faults/a.n, r.majors/a.n, r.rx/a.n, r.tx/a.n
		}
		if a.gaugeN > 0 {
			r.usage, r.workingSet, r.rss = r.usage/a.gaugeN, r.workingSet/a.gaugeN, r.rss/a.gaugeN
		}
		secs := a.prev.Time.Sub(a.first.Time).Seconds()
		r.logs, r.rootfs = a.logs/secs, a.rootfs/secs
		out[name] = r
	}
	return out
}
