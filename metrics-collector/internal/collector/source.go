package collector

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/podtype/podtype/metrics-collector/internal/dataset"
	"github.com/podtype/podtype/shared/cluster"
	"github.com/podtype/podtype/shared/telemetry"
)

// userAgent names the collector in the API server's audit log and InfluxDB's request log.
const userAgent = "podtype-metrics-collector"

// source reads the inventory from the Kubernetes API and telemetry from InfluxDB.
type source struct {
	cfg    Config
	kube   kubernetes.Interface
	reader *telemetry.Reader
	logger *slog.Logger
	// restrict is set when a label selector narrows the inventory: telemetry cannot tell pod
	// labels, so the query then names the inventory's pods instead of whole namespaces.
	restrict []types.NamespacedName
}

func newSource(cfg Config, logger *slog.Logger) (*source, error) {
	kube, _, err := cluster.NewClientset(cfg.Kubernetes, userAgent)
	if err != nil {
		return nil, err
	}
	reader, err := telemetry.NewReader(cfg.InfluxDB, telemetry.WithLogger(logger), telemetry.WithApplicationName(userAgent))
	if err != nil {
		return nil, err
	}
	return &source{cfg: cfg, kube: kube, reader: reader, logger: logger}, nil
}

// Pods lists the pods of NAMESPACES matching LABEL_SELECTOR with their type and image size.
func (s *source) Pods(ctx context.Context) ([]dataset.Pod, error) {
	infos, err := cluster.Inventory(ctx, s.kube, s.cfg.Kubernetes.Namespaces, s.cfg.Kubernetes.LabelSelector)
	if err != nil {
		return nil, err
	}
	pods := make([]dataset.Pod, 0, len(infos))
	s.restrict = s.restrict[:0]
	for _, info := range infos {
		pods = append(pods, podFromInfo(info, s.cfg.Classes))
		if s.cfg.Kubernetes.LabelSelector != "" {
			s.restrict = append(s.restrict, info.Pod)
		}
	}
	return pods, nil
}

// podFromInfo labels one inventory entry. A pod whose type is not among classes keeps the name
// it would have had, so the report can say which types were left out.
func podFromInfo(info cluster.PodInfo, classes []string) dataset.Pod {
	// cluster.PodType reads labels and the first container's image of a Pod object.
	obj := &corev1.Pod{}
	obj.Labels = info.Labels
	if info.Image != "" {
		obj.Spec.Containers = []corev1.Container{{Image: info.Image}}
	}
	typ, _, _ := cluster.PodType(obj, classes)
	return dataset.Pod{Name: info.Pod, Type: typ, ImageSizeBytes: float64(info.ImageSizeBytes)}
}

// Series reads every pod of NAMESPACES in one Flux query.
func (s *source) Series(ctx context.Context, from, to time.Time, step time.Duration, window int) ([]*telemetry.Series, error) {
	q := telemetry.Query{Start: from, Stop: to, Namespaces: s.cfg.Kubernetes.Namespaces, Pods: s.restrict}
	if s.cfg.Kubernetes.LabelSelector != "" && len(s.restrict) == 0 {
		return nil, nil // the selector matches no pod: nothing to read
	}
	byPod, err := s.reader.Series(ctx, q, step, telemetry.RestartWindow(window))
	if err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	out := make([]*telemetry.Series, 0, len(byPod))
	for _, ser := range byPod {
		out = append(out, ser)
	}
	slices.SortFunc(out, func(a, b *telemetry.Series) int {
		return cmp.Or(cmp.Compare(a.Pod.Namespace, b.Pod.Namespace), cmp.Compare(a.Pod.Name, b.Pod.Name))
	})
	return out, nil
}
