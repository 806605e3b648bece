package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// FaultKind names an injected fault; the names are the labels written to the labels file.
type FaultKind string

// The faults the simulator can inject. Each is strong enough to move a window's features well outside
// the type's normal range, and shaped like the real incident.
const (
	// CPUSaturation pins CPU at 90-99% of the pod's limit (a busy loop, a runaway query).
	CPUSaturation FaultKind = "cpu_saturation"
	// MemoryLeak grows RSS steadily until the container is OOM-killed (4-10 minutes), then again.
	MemoryLeak FaultKind = "memory_leak"
	// NetworkFlood multiplies received traffic by 10-50 with more errors and some CPU.
	NetworkFlood FaultKind = "network_flood"
	// DiskFill writes 4-16 MiB/s into the container's writable layer.
	DiskFill FaultKind = "disk_fill"
	// RestartLoop crashes the container every 15-45 s: counters reset, memory drops, warm-up repeats.
	RestartLoop FaultKind = "restart_loop"
)

// DefaultFaultDuration is the duration of a scheduled fault that does not set one.
const DefaultFaultDuration = 5 * time.Minute

// FaultKinds returns all fault kinds.
func FaultKinds() []FaultKind {
	return []FaultKind{CPUSaturation, MemoryLeak, NetworkFlood, DiskFill, RestartLoop}
}

// ParseFaultKind returns the kind named s.
func ParseFaultKind(s string) (FaultKind, error) {
	k := FaultKind(strings.TrimSpace(s))
	if !slices.Contains(FaultKinds(), k) {
		return "", fmt.Errorf("unknown fault %q (known: %v)", s, FaultKinds())
	}
	return k, nil
}

// FaultSpec schedules one fault on one pod.
type FaultSpec struct {
	// Namespace of the pod; empty means the simulator's namespace.
	Namespace string
	// Pod is a pod name, or "<type>-<n>" for the n-th pod (from 1) of that type in creation order.
	Pod string
	// Kind is the fault.
	Kind FaultKind
	// Start is the offset from the simulation start.
	Start time.Duration
	// Duration is how long the fault lasts; 0 means DefaultFaultDuration.
	Duration time.Duration
}

// String returns the spec in the syntax ParseFaults reads.
func (f FaultSpec) String() string {
	var b strings.Builder
	if f.Namespace != "" {
		fmt.Fprintf(&b, "namespace=%s,", f.Namespace)
	}
	fmt.Fprintf(&b, "pod=%s,fault=%s,start=%s", f.Pod, f.Kind, f.Start)
	if f.Duration != 0 {
		fmt.Fprintf(&b, ",duration=%s", f.Duration)
	}
	return b.String()
}

// Validate reports the first invalid field.
func (f FaultSpec) Validate() error {
	switch {
	case f.Pod == "":
		return fmt.Errorf("fault %q: pod is empty", f)
	case !slices.Contains(FaultKinds(), f.Kind):
		return fmt.Errorf("fault %q: unknown fault %q (known: %v)", f, f.Kind, FaultKinds())
	case f.Start < 0:
		return fmt.Errorf("fault %q: start %s is negative", f, f.Start)
	case f.Duration < 0:
		return fmt.Errorf("fault %q: duration %s is negative", f, f.Duration)
	}
	return nil
}

// ParseFaults reads a schedule: entries separated by ';', each a comma-separated list of key=value with the
// keys pod, fault, start (a Go duration from the simulation start) and optionally duration and namespace:
//
//	pod=mysql-1,fault=memory_leak,start=2m,duration=3m;pod=nginx-7kq2x,fault=network_flood,start=10m
func ParseFaults(s string) ([]FaultSpec, error) {
	var out []FaultSpec
	for i, entry := range strings.Split(s, ";") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		f, err := parseFault(entry)
		if err != nil {
			return nil, fmt.Errorf("fault entry %d %q: %w", i+1, entry, err)
		}
		out = append(out, f)
	}
	return out, nil
}

func parseFault(entry string) (FaultSpec, error) {
	var f FaultSpec
	seen := map[string]bool{}
	for _, kv := range strings.Split(entry, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || v == "" {
			return f, fmt.Errorf("%q is not key=value", kv)
		}
		if seen[k] {
			return f, fmt.Errorf("key %q given twice", k)
		}
		seen[k] = true
		var err error
		switch k {
		case "pod":
			f.Pod = v
		case "namespace":
			f.Namespace = v
		case "fault":
			f.Kind, err = ParseFaultKind(v)
		case "start":
			f.Start, err = time.ParseDuration(v)
		case "duration":
			f.Duration, err = time.ParseDuration(v)
			if err == nil && f.Duration == 0 {
				err = fmt.Errorf("duration must be positive")
			}
		default:
			return f, fmt.Errorf("unknown key %q (known: pod, namespace, fault, start, duration)", k)
		}
		if err != nil {
			return f, fmt.Errorf("%s=%s: %w", k, v, err)
		}
	}
	for _, k := range []string{"pod", "fault", "start"} {
		if !seen[k] {
			return f, fmt.Errorf("missing %s=", k)
		}
	}
	return f, f.Validate()
}

// fault is one fault instance on one pod.
type fault struct {
	kind       FaultKind
	start, end time.Time // planned interval [start, end)
	fx         effects
	active     bool // started and its label written
}

// newFault draws the fault's intensity from r, relative to the pod's size so that every type is hit alike.
func newFault(kind FaultKind, start, end time.Time, r *rand.Rand, p *Profile, par podParams) *fault {
	f := &fault{kind: kind, start: start, end: end}
	u := r.Float64()
	switch kind {
	case CPUSaturation:
		f.fx.cpuSaturation = 0.9 + 0.09*u
	case MemoryLeak:
		headroom := 0.98*par.memLimit - p.RSSBytes*par.dataScale - kernelMemoryBytes
		f.fx.leakPerSecond = math.Max(headroom, 64*mib) / (240 + 360*u)
	case NetworkFlood:
		f.fx.flood = 10 + 40*u
	case DiskFill:
		f.fx.fillPerSecond = (4 + 12*u) * mib
	case RestartLoop:
		f.fx.crashAfter = 15 + 30*u
	}
	return f
}

// combine merges the effects of overlapping faults.
func (e effects) combine(o effects) effects {
	e.cpuSaturation = math.Max(e.cpuSaturation, o.cpuSaturation)
	e.leakPerSecond += o.leakPerSecond
	e.flood = math.Max(e.flood, o.flood)
	e.fillPerSecond += o.fillPerSecond
	if o.crashAfter > 0 && (e.crashAfter == 0 || o.crashAfter < e.crashAfter) {
		e.crashAfter = o.crashAfter
	}
	return e
}

// randomFaults draws a pod's random faults as a Poisson process of ratePerHour, one fault at a time.
type randomFaults struct {
	r           *rand.Rand
	ratePerHour float64
	kinds       []FaultKind
	minDur      time.Duration
	maxDur      time.Duration
	next        time.Time // start of the next random fault; zero when disabled
}

func (g *randomFaults) schedule(after time.Time) {
	if g.ratePerHour <= 0 || len(g.kinds) == 0 {
		g.next = time.Time{}
		return
	}
	gap := g.r.ExpFloat64() / g.ratePerHour * float64(time.Hour)
	g.next = after.Add(time.Duration(gap))
}

// draw returns the kind and end of the fault starting at g.next and schedules the one after it.
func (g *randomFaults) draw() (FaultKind, time.Time, time.Time) {
	start := g.next
	kind := g.kinds[g.r.IntN(len(g.kinds))]
	dur := g.minDur + time.Duration(g.r.Float64()*float64(g.maxDur-g.minDur))
	end := start.Add(dur)
	g.schedule(end)
	return kind, start, end
}
