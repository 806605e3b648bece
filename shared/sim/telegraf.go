package sim

import (
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/podtype/podtype/shared/telemetry"
)

// TelegrafField is one field Telegraf's inputs.kubernetes writes for a simulated pod, for the
// in-process harnesses that stand in for Telegraf (the watcher's benchmark feed, the trainer's
// offline evaluation) and must write exactly what the real one writes.
type TelegrafField struct {
	Measurement, Name string
	// Partial marks the memory fields a runtime with partial stats does not report: the
	// kubelet omits them and Telegraf writes 0.
	Partial bool
	sample  func(s *Sample) uint64
}

// Value returns what Telegraf writes for the field when the kubelet reports s.
func (f TelegrafField) Value(s *Sample) float64 {
	if f.Partial && s.MemoryStatsPartial {
		return 0
	}
	return float64(f.sample(s))
}

// TelegrafFields returns the fields Telegraf writes for every pod, in a fixed order.
func TelegrafFields() []TelegrafField {
	c, n, v := telemetry.MeasurementPodContainer, telemetry.MeasurementPodNetwork, telemetry.MeasurementPodVolume
	return []TelegrafField{
		{c, "cpu_usage_nanocores", false, func(s *Sample) uint64 { return s.CPUNanoCores }},
		{c, "cpu_usage_core_nanoseconds", false, func(s *Sample) uint64 { return s.CPUCoreNanoSeconds }},
		{c, "memory_usage_bytes", false, func(s *Sample) uint64 { return s.MemoryUsageBytes }},
		{c, "memory_working_set_bytes", true, func(s *Sample) uint64 { return s.MemoryWorkingSetBytes }},
		{c, "memory_rss_bytes", true, func(s *Sample) uint64 { return s.MemoryRSSBytes }},
		{c, "memory_page_faults", true, func(s *Sample) uint64 { return s.PageFaults }},
		{c, "memory_major_page_faults", true, func(s *Sample) uint64 { return s.MajorPageFaults }},
		{c, "rootfs_used_bytes", false, func(s *Sample) uint64 { return s.RootfsUsedBytes }},
		{c, "logsfs_used_bytes", false, func(s *Sample) uint64 { return s.LogsUsedBytes }},
		{n, "rx_bytes", false, func(s *Sample) uint64 { return s.RxBytes }},
		{n, "tx_bytes", false, func(s *Sample) uint64 { return s.TxBytes }},
		{n, "rx_errors", false, func(s *Sample) uint64 { return s.RxErrors }},
		{n, "tx_errors", false, func(s *Sample) uint64 { return s.TxErrors }},
		{v, "used_bytes", false, func(s *Sample) uint64 { return s.VolumeUsedBytes }},
	}
}

// TelegrafPoint is the point Telegraf writes for field f of pod at t with value v. Container
// and volume are named "main" and "data": the series sum a pod's parts, so only the split into
// parts matters, not the names.
func TelegrafPoint(pod PodInfo, f TelegrafField, t time.Time, v float64) telemetry.Point {
	p := telemetry.Point{
		Pod:         types.NamespacedName{Namespace: pod.Namespace, Name: pod.Name},
		Node:        pod.Node,
		Measurement: f.Measurement,
		Field:       f.Name,
		Time:        t,
		Value:       v,
	}
	switch f.Measurement {
	case telemetry.MeasurementPodContainer:
		p.Container = "main"
	case telemetry.MeasurementPodVolume:
		p.Container = "data"
	}
	return p
}
