// Package telemetry reads the pod metrics Telegraf writes to InfluxDB and turns them into
// per-pod Series on a regular time grid.
//
// Schema: Telegraf's inputs.kubernetes measurements kubernetes_pod_container, _network and
// _volume (and, where Docker is the runtime, inputs.docker's docker_container_blkio); see
// Sources for the fields read and how each becomes a Metric.
//
// Reading: one Flux query per time range covers any number of pods (Query, Reader), so the
// query rate does not grow with the pod count. InfluxDB 1.8 has no query parameters; every
// value is written as an escaped Flux string literal (FluxString) after Kubernetes names were
// checked to be DNS-1123 names.
//
// Shaping: Builder aligns samples on timestamps, turns cumulative counters into per-second
// rates per container (surviving counter resets) before summing a pod's containers, and keeps
// state between calls so that feeding it interval by interval gives the same result as one batch.
package telemetry
