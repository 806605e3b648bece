package features

import (
	"fmt"
	"math"

	"github.com/podtype/podtype/shared/telemetry"
)

// The anomaly vector is what the per-type isolation forests see. It is derived from the
// classification vector of the same window (AnomalyVector is a pure function of it), so
// the trainer and the watcher cannot compute it differently, and no extra data is needed.
// Its layout is part of Version.
//
// Why a second vector: the classification vector is dominated by levels (CPU, bytes,
// rates), which within one type differ lognormally from pod to pod by more than most
// faults move them, so a forest on it mostly learns "which pod is this". The anomaly
// vector describes behaviour relative to the pod's own level:
//
//   - per metric (CPU, memory usage, working set and RSS, page faults, major faults, the
//     writable layer, received bytes), shape statistics that do not change when the pod's
//     load is scaled: the coefficient of variation (std/mean) and the relative range
//     ((max-min)/mean) on a log scale, and the relative slope (slope/mean, per second) on
//     a signed log-like (asinh) scale. The ratio max/mean was dropped: it moves with the
//     relative range and the spread and added nothing in the offline evaluation;
//   - memory growth split into anonymous memory (RSS) and page cache, relative to usage,
//     and the balance of the two: a leak grows RSS alone, a warm-up both;
//   - cross-metric efficiency ratios, as logs (CPU per network byte, tx per rx byte, page
//     faults and major faults per CPU second, blkio per CPU second) or signed asinh
//     (writable-layer growth per CPU second, volume growth per network KiB), and the
//     memory composition (RSS and working set as shares of usage);
//   - the most container restarts in one window's length ending inside the window (the
//     Builder's RestartWindow is the model's window, so the window before counts too): a
//     restart resets the counters, whose rates survive it, and starts a warm-up that looks
//     like a new pod's, also in the window after the crash, which has no restart of its own;
//   - three log levels (memory usage, received bytes, the writable layer), so that gross
//     level faults still stand out where the ratios move little. CPU and transmitted
//     bytes are represented relative to them (CPU per byte, tx per rx): three levels that
//     all follow the load would count a busy pod three times.
//
// Left out: present flags, image size and availability, which describe the runtime and the
// data pipeline, not the workload's behaviour; network error counters, which tick a
// handful of times a day (their shape is noise, and one error would look like an
// incident); the logs, whose rotation by the kubelet makes a normal window look like a
// restart; the transmitted bytes' shape, which follows the received bytes'.
//
// Missing metrics: a feature that needs a metric absent from the window (present=0, e.g.
// working set on runtimes that do not report it) is not known. AnomalyVector then writes
// the feature's neutral value, that of a flat, idle signal (log(floorRel) for log spreads
// and ranges, 0 for slopes, log ratios and levels, 1 for shares), and AnomalyKnown reports
// it as unknown, so that a model can put its baseline there instead of reading the neutral
// value as behaviour.
//
// Every value is finite: ratios have guarded denominators (a zero or negative one gives
// 0), logs have floors, and every value is clamped to ±maxAnomaly.

// maxAnomaly bounds every anomaly feature. Ratios of a present metric can still explode
// when its mean is a few units of a counter that barely moved; clamping keeps the vector
// finite (JSON-safe, forest-safe) without hiding the deviation, which is far beyond any
// normal value long before the bound.
const maxAnomaly = 1e6

// Floors added before taking logs, in each metric's unit. They sit below anything a
// working pod reports (a tenth of a millicore, one byte per second) so that they only
// decide what "nothing" maps to, not how normal values compare.
const (
	floorCores       = 1e-4
	floorBytesPerSec = 1
	floorBytes       = 1024
	floorPerSecond   = 1e-2
	// floorRel is the floor of relative quantities (spreads, ranges, slopes per second):
	// a tenth of a percent, below the noise of any real signal.
	floorRel = 1e-3
)

// anomalyFeature is one entry of the anomaly vector: a function of the classification
// vector and the metrics it needs.
type anomalyFeature struct {
	name string
	// needs are the metrics that must be present for the value to mean something.
	needs []telemetry.Metric
	// value computes the feature from the classification vector; only called when every
	// metric in needs is present.
	value func(x []float64) float64
	// neutral is written when a needed metric is absent: the value of a flat, idle signal.
	neutral float64
}

// stat returns statistic s of metric m from the classification vector x.
func stat(x []float64, m telemetry.Metric, s int) float64 { return x[int(m)*numStats+s] }

func present(x []float64, m telemetry.Metric) bool { return stat(x, m, statPresent) > 0 }

// ratio is num/den for a positive den and 0 otherwise, clamped to ±maxAnomaly.
func ratio(num, den float64) float64 {
	if !(den > 0) {
		return 0
	}
	return clampAnomaly(num / den)
}

func clampAnomaly(v float64) float64 {
	switch {
	case math.IsNaN(v):
		return 0
	case v > maxAnomaly:
		return maxAnomaly
	case v < -maxAnomaly:
		return -maxAnomaly
	}
	return v
}

// logf is log(v + floor) for v >= 0 (v < 0, which Extract never produces, counts as 0).
func logf(v, floor float64) float64 { return math.Log(max(v, 0) + floor) }

// anomalyFeatures returns the anomaly vector's definition, in vector order. It is a
// function, not a package variable, so nothing can change the definition at run time.
func anomalyFeatures() []anomalyFeature {
	const (
		cpu    = telemetry.CPUCores
		usage  = telemetry.MemoryUsageBytes
		ws     = telemetry.MemoryWorkingSetBytes
		rss    = telemetry.MemoryRSSBytes
		pf     = telemetry.PageFaultsPerSecond
		major  = telemetry.MajorPageFaultsPerSecond
		root   = telemetry.RootfsUsedBytes
		rx     = telemetry.NetworkRxBytesPerSecond
		tx     = telemetry.NetworkTxBytesPerSecond
		volume = telemetry.VolumeUsedBytes
		bread  = telemetry.BlkioReadBytesPerSecond
		bwrite = telemetry.BlkioWriteBytesPerSecond
	)
	mean := func(x []float64, m telemetry.Metric) float64 { return stat(x, m, statMean) }
	// The metrics whose own shape (spread, trend, range) is part of the vector; see the
	// comment above for those left out. The volume's growth relative to its size is a
	// property of the pod's dataset, not of its behaviour (its growth per network byte is
	// below); blkio comes in bursts that follow the page cache (its rate per CPU second is
	// below).
	shape := []telemetry.Metric{cpu, usage, ws, rss, pf, major, root, rx}
	var fs []anomalyFeature
	for _, m := range shape {
		needs := []telemetry.Metric{m}
		fs = append(fs,
			// Spreads on a log scale: a pod pinned at its CPU limit is ten times steadier
			// than usual, which on a linear scale is a step of a fraction of the normal range.
			anomalyFeature{name: "log_" + m.String() + "_cv", needs: needs, neutral: math.Log(floorRel),
				value: func(x []float64) float64 {
					return math.Log(ratio(stat(x, m, statStd), mean(x, m)) + floorRel)
				}},
			anomalyFeature{name: m.String() + "_rel_slope", needs: needs,
				value: func(x []float64) float64 {
					return math.Asinh(ratio(stat(x, m, statSlope), mean(x, m)) / floorRel)
				}},
			anomalyFeature{name: "log_" + m.String() + "_rel_range", needs: needs, neutral: math.Log(floorRel),
				value: func(x []float64) float64 {
					return math.Log(ratio(stat(x, m, statMax)-stat(x, m, statMin), mean(x, m)) + floorRel)
				}},
		)
	}
	// Memory growth split into its parts, relative to total usage so the parts compare:
	// a leak grows anonymous memory (RSS) without the page cache, a warm-up grows both in a
	// proportion fixed by the workload, a disk fill grows only the cache. The total's own
	// relative slope is memory_usage_bytes_rel_slope above.
	rssGrowth := func(x []float64) float64 { return ratio(stat(x, rss, statSlope), mean(x, usage)) / floorRel }
	cacheGrowth := func(x []float64) float64 {
		return ratio(stat(x, usage, statSlope)-stat(x, rss, statSlope), mean(x, usage)) / floorRel
	}
	fs = append(fs,
		anomalyFeature{name: "rss_growth_per_usage", needs: []telemetry.Metric{rss, usage},
			value: func(x []float64) float64 { return math.Asinh(rssGrowth(x)) }},
		anomalyFeature{name: "cache_growth_per_usage", needs: []telemetry.Metric{rss, usage},
			value: func(x []float64) float64 { return math.Asinh(cacheGrowth(x)) }},
		// Their balance, a log ratio where both grow: very negative for a leak in a warm pod.
		anomalyFeature{name: "cache_vs_rss_growth", needs: []telemetry.Metric{rss, usage},
			value: func(x []float64) float64 { return math.Asinh(cacheGrowth(x)) - math.Asinh(rssGrowth(x)) }},
	)
	fs = append(fs,
		// Work per unit of traffic: a busy loop raises it, a flood of cheap packets lowers it.
		anomalyFeature{name: "log_cpu_per_network_byte", needs: []telemetry.Metric{cpu, rx, tx},
			value: func(x []float64) float64 {
				return logf(mean(x, cpu), floorCores) - logf(mean(x, rx)+mean(x, tx), floorBytesPerSec)
			}},
		// Answer size per request: a protocol property, moved by a flood (rx only).
		anomalyFeature{name: "log_tx_per_rx", needs: []telemetry.Metric{rx, tx},
			value: func(x []float64) float64 {
				return logf(mean(x, tx), floorBytesPerSec) - logf(mean(x, rx), floorBytesPerSec)
			}},
		// Memory composition: a leak grows anonymous memory, a disk fill grows page cache.
		anomalyFeature{name: "rss_share_of_usage", needs: []telemetry.Metric{rss, usage}, neutral: 1,
			value: func(x []float64) float64 { return ratio(mean(x, rss), mean(x, usage)) }},
		anomalyFeature{name: "working_set_share_of_usage", needs: []telemetry.Metric{ws, usage}, neutral: 1,
			value: func(x []float64) float64 { return ratio(mean(x, ws), mean(x, usage)) }},
		// Minor faults per CPU second: new anonymous pages (a leak) fault without extra work.
		anomalyFeature{name: "log_page_faults_per_cpu_second", needs: []telemetry.Metric{pf, cpu},
			value: func(x []float64) float64 {
				return logf(mean(x, pf), floorPerSecond) - logf(mean(x, cpu), floorCores)
			}},
		anomalyFeature{name: "log_major_page_faults_per_cpu_second", needs: []telemetry.Metric{major, cpu},
			value: func(x []float64) float64 {
				return logf(mean(x, major), floorPerSecond) - logf(mean(x, cpu), floorCores)
			}},
		// Writable-layer growth per CPU second, signed and log-like (asinh) in KiB: nothing
		// normal writes MiB/s into the container's layer.
		anomalyFeature{name: "rootfs_growth_per_cpu_second", needs: []telemetry.Metric{root, cpu},
			value: func(x []float64) float64 {
				return math.Asinh(ratio(stat(x, root, statSlope), mean(x, cpu)+floorCores) / 1024)
			}},
		// Volume growth per network byte (inserts per request), signed, asinh of bytes per KiB.
		anomalyFeature{name: "volume_growth_per_network_kib", needs: []telemetry.Metric{volume, rx, tx},
			value: func(x []float64) float64 {
				return math.Asinh(ratio(stat(x, volume, statSlope), (mean(x, rx)+mean(x, tx))/1024+floorRel))
			}},
		anomalyFeature{name: "log_blkio_read_bytes_per_cpu_second", needs: []telemetry.Metric{bread, cpu},
			value: func(x []float64) float64 {
				return logf(mean(x, bread), floorBytesPerSec) - logf(mean(x, cpu), floorCores)
			}},
		anomalyFeature{name: "log_blkio_write_bytes_per_cpu_second", needs: []telemetry.Metric{bwrite, cpu},
			value: func(x []float64) float64 {
				return logf(mean(x, bwrite), floorBytesPerSec) - logf(mean(x, cpu), floorCores)
			}},
		// A container restart resets the counters (their rates survive it) and starts a
		// warm-up that looks like a new pod's; the count, which reaches a window back, is what
		// tells them apart.
		anomalyFeature{name: "container_restarts_max", needs: []telemetry.Metric{telemetry.ContainerRestarts},
			value: func(x []float64) float64 { return stat(x, telemetry.ContainerRestarts, statMax) }},
		// Levels, on a log scale, so gross level faults count even where ratios move little.
		anomalyFeature{name: "log_memory_usage_bytes", needs: []telemetry.Metric{usage},
			value: func(x []float64) float64 { return logf(mean(x, usage), floorBytes) }},
		anomalyFeature{name: "log_network_rx_bytes_per_second", needs: []telemetry.Metric{rx},
			value: func(x []float64) float64 { return logf(mean(x, rx), floorBytesPerSec) }},
		anomalyFeature{name: "log_rootfs_used_bytes", needs: []telemetry.Metric{root},
			value: func(x []float64) float64 { return logf(mean(x, root), floorBytes) }},
	)
	return fs
}

// AnomalyNames returns the anomaly feature names in vector order; the slice is fresh on
// every call. They change with Version.
func AnomalyNames() []string {
	fs := anomalyFeatures()
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = f.name
	}
	return names
}

// AnomalyVector returns the anomaly vector of x, a classification vector as Extract returns
// it (len(Names()) finite values). The result has len(AnomalyNames()) finite values; a
// feature whose metrics are absent from the window holds its neutral value (see
// AnomalyKnown). It fails, naming the problem, on a vector of the wrong length or with a
// NaN or infinite value.
func AnomalyVector(x []float64) ([]float64, error) {
	fs := anomalyFeatures()
	out := make([]float64, len(fs))
	if err := anomalyInto(fs, out, nil, x); err != nil {
		return nil, err
	}
	return out, nil
}

// AnomalyKnown reports, for every entry of x's anomaly vector, whether the metrics it needs
// are present in the window. An unknown entry holds a neutral value that says nothing about
// the pod; models substitute their baseline for it.
func AnomalyKnown(x []float64) ([]bool, error) {
	fs := anomalyFeatures()
	known := make([]bool, len(fs))
	if err := anomalyInto(fs, make([]float64, len(fs)), known, x); err != nil {
		return nil, err
	}
	return known, nil
}

// anomalyInto writes the anomaly vector of x into dst and, if known is not nil, which
// entries are known.
func anomalyInto(fs []anomalyFeature, dst []float64, known []bool, x []float64) error {
	if len(x) != numFeatures {
		return fmt.Errorf("features: anomaly vector: classification vector has %d values, want %d (Version %d)", len(x), numFeatures, Version)
	}
	for i, v := range x {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("features: anomaly vector: %s = %v: want a finite value", Names()[i], v)
		}
	}
	for i, f := range fs {
		ok := true
		for _, m := range f.needs {
			if !present(x, m) {
				ok = false
				break
			}
		}
		v := f.neutral
		if ok {
			v = clampAnomaly(f.value(x))
		}
		dst[i] = v
		if known != nil {
			known[i] = ok
		}
	}
	return nil
}
