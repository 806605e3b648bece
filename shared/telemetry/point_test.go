package telemetry

import (
	"strings"
	"testing"
	"time"

	"github.com/influxdata/influxdb-client-go/v2/api/query"
	"k8s.io/apimachinery/pkg/types"
)

func TestPointFromValues(t *testing.T) {
	ts := time.Date(2025, 1, 1, 0, 0, 10, 0, time.UTC)
	container := func(v any) map[string]any {
		return map[string]any{
			"_measurement": MeasurementPodContainer, "_field": "memory_usage_bytes", "_time": ts, "_value": v,
			"namespace": "ns", "pod_name": "p", "node_name": "n1", "container_name": "app", "image": "nginx:1.25",
		}
	}
	tests := []struct {
		name    string
		in      map[string]any
		want    Point
		wantErr string
	}{
		{
			name: "int64", in: container(int64(42)),
			want: Point{Pod: types.NamespacedName{Namespace: "ns", Name: "p"}, Node: "n1", Container: "app",
				Measurement: MeasurementPodContainer, Field: "memory_usage_bytes", Time: ts, Value: 42},
		},
		{
			name: "uint64 beyond int64", in: container(uint64(1) << 63),
			want: Point{Pod: types.NamespacedName{Namespace: "ns", Name: "p"}, Node: "n1", Container: "app",
				Measurement: MeasurementPodContainer, Field: "memory_usage_bytes", Time: ts, Value: 9223372036854775808},
		},
		{
			name: "float64", in: container(1.5),
			want: Point{Pod: types.NamespacedName{Namespace: "ns", Name: "p"}, Node: "n1", Container: "app",
				Measurement: MeasurementPodContainer, Field: "memory_usage_bytes", Time: ts, Value: 1.5},
		},
		{name: "string value", in: container("12"), wantErr: "kubernetes_pod_container.memory_usage_bytes of pod ns/p at 2025-01-01T00:00:10Z: value 12 has type string"},
		{name: "bool value", in: container(true), wantErr: "has type bool"},
		{name: "null value", in: container(nil), wantErr: "has type <nil>"},
		{
			name: "volume part is the volume name",
			in: map[string]any{"_measurement": MeasurementPodVolume, "_field": "used_bytes", "_time": ts, "_value": int64(1),
				"namespace": "ns", "pod_name": "p", "node_name": "n1", "volume_name": "data"},
			want: Point{Pod: types.NamespacedName{Namespace: "ns", Name: "p"}, Node: "n1", Container: "data",
				Measurement: MeasurementPodVolume, Field: "used_bytes", Time: ts, Value: 1},
		},
		{
			name: "network is pod level",
			in: map[string]any{"_measurement": MeasurementPodNetwork, "_field": "rx_bytes", "_time": ts, "_value": int64(1),
				"namespace": "ns", "pod_name": "p", "node_name": "n1"},
			want: Point{Pod: types.NamespacedName{Namespace: "ns", Name: "p"}, Node: "n1",
				Measurement: MeasurementPodNetwork, Field: "rx_bytes", Time: ts, Value: 1},
		},
		{
			name: "docker blkio from pod labels",
			in: map[string]any{"_measurement": MeasurementDockerBlkio, "_field": "io_service_bytes_recursive_read", "_time": ts,
				"_value": int64(4096), "io.kubernetes.pod.namespace": "ns", "io.kubernetes.pod.name": "p",
				"io.kubernetes.container.name": "app", "container_name": "k8s_app_p_ns_uid_0", "engine_host": "n1", "device": "total"},
			want: Point{Pod: types.NamespacedName{Namespace: "ns", Name: "p"}, Node: "n1", Container: "k8s_app_p_ns_uid_0",
				Measurement: MeasurementDockerBlkio, Field: "io_service_bytes_recursive_read", Time: ts, Value: 4096},
		},
		{
			name: "unknown field",
			in: map[string]any{"_measurement": MeasurementPodContainer, "_field": "rootfs_capacity_bytes", "_time": ts, "_value": int64(1),
				"namespace": "ns", "pod_name": "p"},
			wantErr: "kubernetes_pod_container.rootfs_capacity_bytes: not a field",
		},
		{
			name:    "no pod",
			in:      map[string]any{"_measurement": MeasurementPodNetwork, "_field": "rx_bytes", "_time": ts, "_value": int64(1), "namespace": "ns"},
			wantErr: "without pod name",
		},
		{
			name:    "no time",
			in:      map[string]any{"_measurement": MeasurementPodNetwork, "_field": "rx_bytes", "_value": int64(1), "namespace": "ns", "pod_name": "p"},
			wantErr: "row without _time",
		},
		{name: "empty row", in: map[string]any{}, wantErr: "not a field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := PointFromValues(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
	if _, err := PointFromRecord(nil); err == nil {
		t.Error("PointFromRecord(nil) succeeded")
	}
	if p, err := PointFromRecord(query.NewFluxRecord(0, container(int64(3)))); err != nil || p.Value != 3 {
		t.Errorf("PointFromRecord = %+v, %v", p, err)
	}
}

func TestSources(t *testing.T) {
	seen := map[Metric]bool{}
	for i, s := range Sources() {
		if got := sourceIndex(s.Measurement, s.Field); got != i {
			t.Errorf("sourceIndex(%s, %s) = %d, want %d", s.Measurement, s.Field, got, i)
		}
		if got, ok := LookupSource(s.Measurement, s.Field); !ok || got != s {
			t.Errorf("LookupSource(%s, %s) = %+v, %v", s.Measurement, s.Field, got, ok)
		}
		if s.Scale <= 0 {
			t.Errorf("%s.%s has scale %v", s.Measurement, s.Field, s.Scale)
		}
		seen[s.Metric] = true
	}
	// ContainerRestarts has no field of its own: it counts the decreases of one counter.
	var restartSources []Source
	for _, s := range Sources() {
		if s.Restarts {
			restartSources = append(restartSources, s)
		}
	}
	if len(restartSources) != 1 || !restartSources[0].Counter || restartSources[0].Fallback {
		t.Errorf("restart sources %+v: want exactly one primary counter", restartSources)
	}
	for _, m := range Metrics() {
		if m == ContainerRestarts {
			if seen[m] {
				t.Errorf("metric %v has a source of its own", m)
			}
			continue
		}
		if !seen[m] {
			t.Errorf("metric %v has no source", m)
		}
		if srcs := m.Sources(); len(srcs) == 0 || srcs[0].Fallback {
			t.Errorf("metric %v: first source %+v is not a primary", m, srcs)
		}
	}
	counters := map[Metric]bool{
		CPUCores: true, PageFaultsPerSecond: true, MajorPageFaultsPerSecond: true,
		NetworkRxBytesPerSecond: true, NetworkTxBytesPerSecond: true, NetworkRxErrorsPerSecond: true,
		NetworkTxErrorsPerSecond: true, BlkioReadBytesPerSecond: true, BlkioWriteBytesPerSecond: true,
	}
	for _, m := range Metrics() {
		if m.IsCounter() != counters[m] {
			t.Errorf("%v.IsCounter() = %v", m, m.IsCounter())
		}
	}
	if _, ok := LookupSource(MeasurementPodContainer, "nope"); ok {
		t.Error("LookupSource found an unknown field")
	}
}
