package telemetry

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/influxdata/influxdb-client-go/v2/api/query"
	"k8s.io/apimachinery/pkg/types"
)

// Point is one Telegraf field value of one pod, as read from InfluxDB.
type Point struct {
	Pod  types.NamespacedName
	Node string
	// Container is the part of the pod the value belongs to, which keeps its samples apart from
	// the pod's other parts of the same field: the container name (kubernetes_pod_container), the
	// volume name (kubernetes_pod_volume), the Docker container name (docker_container_blkio),
	// or "" for pod-level values (kubernetes_pod_network).
	Container   string
	Measurement string
	Field       string
	Time        time.Time
	Value       float64
}

// PointFromRecord converts one row of the Flux query built by Query.Flux.
func PointFromRecord(r *query.FluxRecord) (Point, error) {
	if r == nil {
		return Point{}, errors.New("nil flux record")
	}
	return PointFromValues(r.Values())
}

// PointFromValues converts one Flux row given as column -> value, the shape
// influxdb-client-go's FluxRecord.Values returns: strings for tags, time.Time for _time, and int64,
// uint64 or float64 for _value depending on the field's type in InfluxDB (Telegraf writes the
// kubelet's uint64 stats as integers, which 1.8 returns as long). Any other value type, or a row
// without pod, namespace or time, is an error naming the measurement and field.
func PointFromValues(v map[string]any) (Point, error) {
	m, _ := v["_measurement"].(string)
	f, _ := v["_field"].(string)
	src := sourceIndex(m, f)
	if src < 0 {
		return Point{}, fmt.Errorf("%s.%s: not a field this reader knows", m, f)
	}
	p := Point{Measurement: m, Field: f}
	str := func(k string) string { s, _ := v[k].(string); return s }
	switch m {
	case MeasurementDockerBlkio:
		p.Pod = types.NamespacedName{Namespace: str(TagDockerPodNamespace), Name: str(TagDockerPodName)}
		p.Node = str(TagEngineHost)
		p.Container = str(TagContainer)
		if p.Container == "" {
			p.Container = str(TagDockerContainer)
		}
	default:
		p.Pod = types.NamespacedName{Namespace: str(TagNamespace), Name: str(TagPod)}
		p.Node = str(TagNode)
		switch m {
		case MeasurementPodContainer:
			p.Container = str(TagContainer)
		case MeasurementPodVolume:
			p.Container = str(TagVolume)
		}
	}
	if p.Pod.Namespace == "" || p.Pod.Name == "" {
		return Point{}, fmt.Errorf("%s.%s: row without pod name or namespace tags", m, f)
	}
	t, ok := v["_time"].(time.Time)
	if !ok || t.IsZero() {
		return Point{}, fmt.Errorf("%s.%s of pod %s: row without _time (got %T)", m, f, p.Pod, v["_time"])
	}
	p.Time = t
	switch x := v["_value"].(type) {
	case int64:
		p.Value = float64(x)
	case uint64:
		p.Value = float64(x)
	case float64:
		p.Value = x
	default:
		return Point{}, fmt.Errorf("%s.%s of pod %s at %s: value %v has type %T, want int64, uint64 or float64",
			m, f, p.Pod, t.Format(time.RFC3339Nano), x, x)
	}
	return p, nil
}

// validate reports why a Point cannot be used, naming the pod, measurement and field.
func (p Point) validate() error {
	switch {
	case p.Pod.Namespace == "" || p.Pod.Name == "":
		return fmt.Errorf("%s.%s: point without pod name or namespace", p.Measurement, p.Field)
	case sourceIndex(p.Measurement, p.Field) < 0:
		return fmt.Errorf("pod %s: %s.%s: not a field this package knows", p.Pod, p.Measurement, p.Field)
	case p.Time.IsZero():
		return fmt.Errorf("pod %s: %s.%s: point without time", p.Pod, p.Measurement, p.Field)
	case math.IsNaN(p.Value) || math.IsInf(p.Value, 0) || p.Value < 0:
		return fmt.Errorf("pod %s: %s.%s at %s: value %v is not a finite non-negative number",
			p.Pod, p.Measurement, p.Field, p.Time.Format(time.RFC3339Nano), p.Value)
	}
	return nil
}
