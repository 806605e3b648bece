package telemetry

// Telegraf's measurements this package reads. The kubernetes_* ones come from inputs.kubernetes
// (kubelet /stats/summary); docker_container_blkio from inputs.docker, present only on nodes
// whose runtime is Docker and whose Telegraf runs that input.
const (
	MeasurementPodContainer = "kubernetes_pod_container"
	MeasurementPodNetwork   = "kubernetes_pod_network"
	MeasurementPodVolume    = "kubernetes_pod_volume"
	MeasurementDockerBlkio  = "docker_container_blkio"
)

// Tag keys Telegraf writes and this package reads.
const (
	TagNamespace = "namespace"      // kubernetes_*
	TagPod       = "pod_name"       // kubernetes_*
	TagNode      = "node_name"      // kubernetes_*
	TagContainer = "container_name" // kubernetes_pod_container; the Docker container name on docker_*
	TagVolume    = "volume_name"    // kubernetes_pod_volume

	// inputs.docker turns Docker container labels into tags; the kubelet (dockershim,
	// cri-dockerd) labels every container with its pod.
	TagDockerPodNamespace = "io.kubernetes.pod.namespace"
	TagDockerPodName      = "io.kubernetes.pod.name"
	TagDockerContainer    = "io.kubernetes.container.name"
	// TagDevice is "major:minor" per block device, or "total" on the row inputs.docker sums over
	// devices (its default total_include has "blkio"). Only "total" rows are read, so devices are
	// never counted twice.
	TagDevice = "device"
	// TagEngineHost is the Docker host name, which is the node name on kubeadm-style clusters.
	TagEngineHost = "engine_host"
)

// DeviceTotal is the TagDevice value of the per-container sum over devices.
const DeviceTotal = "total"

// Source is one Telegraf field and how it becomes (part of) a Metric.
type Source struct {
	Measurement string
	Field       string
	Metric      Metric
	// Counter marks a cumulative field; the metric is its per-second rate.
	Counter bool
	// Scale converts the value (or rate) to the metric's unit, e.g. 1e-9 for nanocores to cores.
	Scale float64
	// Fallback marks a source used only where the metric's primary source of the same container
	// has no value at that grid point.
	Fallback bool
	// ZeroIsMissing marks a field where 0 means "the kubelet did not report it" (Telegraf writes 0
	// for absent stats) rather than a real value, so such samples are ignored.
	ZeroIsMissing bool
	// Restarts marks the counter whose decreases are counted as restarts of its container
	// (ContainerRestarts): one counter only, so that a restart is never counted twice.
	Restarts bool
}

// Sources returns every Telegraf field the package reads, grouped by measurement, in a stable
// order (the order of the Flux filter). The slice is fresh on every call.
func Sources() []Source {
	return []Source{
		{MeasurementPodContainer, "cpu_usage_core_nanoseconds", CPUCores, true, 1e-9, false, true, true},
		{MeasurementPodContainer, "cpu_usage_nanocores", CPUCores, false, 1e-9, true, false, false},
		{MeasurementPodContainer, "memory_usage_bytes", MemoryUsageBytes, false, 1, false, false, false},
		{MeasurementPodContainer, "memory_working_set_bytes", MemoryWorkingSetBytes, false, 1, false, false, false},
		{MeasurementPodContainer, "memory_rss_bytes", MemoryRSSBytes, false, 1, false, false, false},
		{MeasurementPodContainer, "memory_page_faults", PageFaultsPerSecond, true, 1, false, false, false},
		{MeasurementPodContainer, "memory_major_page_faults", MajorPageFaultsPerSecond, true, 1, false, false, false},
		{MeasurementPodContainer, "rootfs_used_bytes", RootfsUsedBytes, false, 1, false, false, false},
		{MeasurementPodContainer, "logsfs_used_bytes", LogsfsUsedBytes, false, 1, false, false, false},
		{MeasurementPodNetwork, "rx_bytes", NetworkRxBytesPerSecond, true, 1, false, false, false},
		{MeasurementPodNetwork, "tx_bytes", NetworkTxBytesPerSecond, true, 1, false, false, false},
		{MeasurementPodNetwork, "rx_errors", NetworkRxErrorsPerSecond, true, 1, false, false, false},
		{MeasurementPodNetwork, "tx_errors", NetworkTxErrorsPerSecond, true, 1, false, false, false},
		{MeasurementPodVolume, "used_bytes", VolumeUsedBytes, false, 1, false, false, false},
		{MeasurementDockerBlkio, "io_service_bytes_recursive_read", BlkioReadBytesPerSecond, true, 1, false, false, false},
		{MeasurementDockerBlkio, "io_service_bytes_recursive_write", BlkioWriteBytesPerSecond, true, 1, false, false, false},
	}
}

// sourceIndex returns the position of measurement/field in Sources(), or -1. A switch rather than a
// map keeps the table free of package-level state.
func sourceIndex(measurement, field string) int {
	switch measurement {
	case MeasurementPodContainer:
		switch field {
		case "cpu_usage_core_nanoseconds":
			return 0
		case "cpu_usage_nanocores":
			return 1
		case "memory_usage_bytes":
			return 2
		case "memory_working_set_bytes":
			return 3
		case "memory_rss_bytes":
			return 4
		case "memory_page_faults":
			return 5
		case "memory_major_page_faults":
			return 6
		case "rootfs_used_bytes":
			return 7
		case "logsfs_used_bytes":
			return 8
		}
	case MeasurementPodNetwork:
		switch field {
		case "rx_bytes":
			return 9
		case "tx_bytes":
			return 10
		case "rx_errors":
			return 11
		case "tx_errors":
			return 12
		}
	case MeasurementPodVolume:
		if field == "used_bytes" {
			return 13
		}
	case MeasurementDockerBlkio:
		switch field {
		case "io_service_bytes_recursive_read":
			return 14
		case "io_service_bytes_recursive_write":
			return 15
		}
	}
	return -1
}

// LookupSource returns how measurement/field feeds a Metric; ok is false for fields this package
// does not read.
func LookupSource(measurement, field string) (src Source, ok bool) {
	i := sourceIndex(measurement, field)
	if i < 0 {
		return Source{}, false
	}
	return Sources()[i], true
}

// Sources returns the Telegraf fields m is computed from, primary first.
func (m Metric) Sources() []Source {
	var out []Source
	for _, s := range Sources() {
		if s.Metric == m {
			out = append(out, s)
		}
	}
	return out
}

// IsCounter reports whether m is a per-second rate derived from a cumulative counter (its primary
// source is a counter), as opposed to a gauge passed through.
func (m Metric) IsCounter() bool {
	srcs := m.Sources()
	return len(srcs) > 0 && srcs[0].Counter
}
