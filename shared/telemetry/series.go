package telemetry

import (
	"math"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// Metric is one per-pod signal after counters were turned into rates.
type Metric int

// The metrics a Series carries. The order is part of the feature vector layout
// (features.Version), so new metrics go before NumMetrics and bump that version.
const (
	CPUCores                 Metric = iota // rate(cpu_usage_core_nanoseconds)/1e9; fallback cpu_usage_nanocores/1e9
	MemoryUsageBytes                       // memory_usage_bytes (gauge)
	MemoryWorkingSetBytes                  // memory_working_set_bytes (gauge)
	MemoryRSSBytes                         // memory_rss_bytes (gauge)
	PageFaultsPerSecond                    // rate(memory_page_faults)
	MajorPageFaultsPerSecond               // rate(memory_major_page_faults)
	RootfsUsedBytes                        // rootfs_used_bytes (gauge)
	LogsfsUsedBytes                        // logsfs_used_bytes (gauge)
	NetworkRxBytesPerSecond                // rate(kubernetes_pod_network.rx_bytes)
	NetworkTxBytesPerSecond                // rate(tx_bytes)
	NetworkRxErrorsPerSecond               // rate(rx_errors)
	NetworkTxErrorsPerSecond               // rate(tx_errors)
	VolumeUsedBytes                        // sum over volumes of kubernetes_pod_volume.used_bytes (gauge)
	BlkioReadBytesPerSecond                // rate(docker_container_blkio io_service_bytes_recursive_read), where present
	BlkioWriteBytesPerSecond               // rate(... _write), where present
	ContainerRestarts                      // container restarts (decreases of cpu_usage_core_nanoseconds) in the Builder's RestartWindow ending at the grid point
	NumMetrics                             // number of metrics; not a metric
)

var metricNames = [NumMetrics]string{
	CPUCores:                 "cpu_cores",
	MemoryUsageBytes:         "memory_usage_bytes",
	MemoryWorkingSetBytes:    "memory_working_set_bytes",
	MemoryRSSBytes:           "memory_rss_bytes",
	PageFaultsPerSecond:      "page_faults_per_second",
	MajorPageFaultsPerSecond: "major_page_faults_per_second",
	RootfsUsedBytes:          "rootfs_used_bytes",
	LogsfsUsedBytes:          "logsfs_used_bytes",
	NetworkRxBytesPerSecond:  "network_rx_bytes_per_second",
	NetworkTxBytesPerSecond:  "network_tx_bytes_per_second",
	NetworkRxErrorsPerSecond: "network_rx_errors_per_second",
	NetworkTxErrorsPerSecond: "network_tx_errors_per_second",
	VolumeUsedBytes:          "volume_used_bytes",
	BlkioReadBytesPerSecond:  "blkio_read_bytes_per_second",
	BlkioWriteBytesPerSecond: "blkio_write_bytes_per_second",
	ContainerRestarts:        "container_restarts",
}

// String returns the stable snake_case name used in feature names and reports.
func (m Metric) String() string {
	if m < 0 || m >= NumMetrics {
		return "metric(" + strconv.Itoa(int(m)) + ")"
	}
	return metricNames[m]
}

// Metrics returns all metrics in order; the slice is fresh, so callers may modify it.
func Metrics() []Metric {
	ms := make([]Metric, NumMetrics)
	for i := range ms {
		ms[i] = Metric(i)
	}
	return ms
}

// Series is one pod's signals on a regular time grid. Values[m][i] is metric m at Start+i*Step;
// NaN means missing. All Values slices have the same length.
type Series struct {
	Pod    types.NamespacedName
	Node   string
	Start  time.Time
	Step   time.Duration
	Values [NumMetrics][]float64
}

// Len returns the number of grid points (the length of the longest Values slice, so a
// malformed Series never makes callers index past a shorter one unnoticed).
func (s *Series) Len() int {
	n := 0
	for _, v := range s.Values {
		n = max(n, len(v))
	}
	return n
}

// Time returns the timestamp of grid point i.
func (s *Series) Time(i int) time.Time {
	return s.Start.Add(time.Duration(i) * s.Step)
}

// Slice returns samples [i,j) as a new Series that shares no memory with s. Indices are
// clamped to [0, Len()]; a metric shorter than j is padded with NaN (missing).
func (s *Series) Slice(i, j int) *Series {
	n := s.Len()
	i = min(max(i, 0), n)
	j = min(max(j, i), n)
	out := &Series{Pod: s.Pod, Node: s.Node, Start: s.Time(i), Step: s.Step}
	for m, v := range s.Values {
		dst := make([]float64, j-i)
		for k := range dst {
			if i+k < len(v) {
				dst[k] = v[i+k]
			} else {
				dst[k] = math.NaN()
			}
		}
		out.Values[m] = dst
	}
	return out
}

// NewSeries returns a Series of n grid points starting at start, every value NaN (missing).
func NewSeries(pod types.NamespacedName, node string, start time.Time, step time.Duration, n int) *Series {
	n = max(n, 0)
	s := &Series{Pod: pod, Node: node, Start: start, Step: step}
	for m := range s.Values {
		s.Values[m] = nanSlice(n)
	}
	return s
}
