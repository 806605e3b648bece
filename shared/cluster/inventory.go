package cluster

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/pager"
)

// listPageSize bounds each list response, so a large cluster is read in pieces rather than one
// response the API server has to build in memory.
const listPageSize = 500

// PodInfo is what the services need to know about a pod besides its metrics.
type PodInfo struct {
	Pod            types.NamespacedName
	UID            types.UID
	Node           string
	Image          string // first container's image as in the spec
	ImageID        string // first container's image ID from its status; empty before it started
	ImageSizeBytes int64  // 0 when unknown
	Labels         map[string]string
	StartTime      time.Time // status.startTime, else the creation time
	Phase          corev1.PodPhase
}

// NewPodInfo describes pod, looking its image size up in images (which may be nil). It copies
// what it keeps, so pod may come from an informer's cache.
func NewPodInfo(pod *corev1.Pod, images *ImageIndex) PodInfo {
	info := PodInfo{
		Pod:    types.NamespacedName{Namespace: pod.Namespace, Name: pod.Name},
		UID:    pod.UID,
		Node:   pod.Spec.NodeName,
		Labels: maps.Clone(pod.Labels), // pod may be an informer's cached object
		Phase:  pod.Status.Phase,
	}
	info.StartTime = pod.CreationTimestamp.Time
	if pod.Status.StartTime != nil {
		info.StartTime = pod.Status.StartTime.Time
	}
	if len(pod.Spec.Containers) > 0 {
		c := pod.Spec.Containers[0]
		info.Image = c.Image
		for _, st := range pod.Status.ContainerStatuses {
			if st.Name == c.Name {
				info.ImageID = st.ImageID
			}
		}
	}
	if size, ok := images.SizeOf(info.Node, info.Image, info.ImageID); ok {
		info.ImageSizeBytes = size
	}
	return info
}

// Inventory lists the pods in namespaces (all when empty) matching the label selector, in pages
// of 500, and the nodes once for image sizes. The result is sorted by namespace and name.
func Inventory(ctx context.Context, client kubernetes.Interface, namespaces []string, selector string) ([]PodInfo, error) {
	var nodes []corev1.Node
	err := pager.New(func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
		return client.CoreV1().Nodes().List(ctx, opts)
	}).EachListItem(ctx, metav1.ListOptions{Limit: listPageSize}, func(obj runtime.Object) error {
		n, ok := obj.(*corev1.Node)
		if !ok {
			return fmt.Errorf("node list returned %T", obj)
		}
		nodes = append(nodes, *n)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	images := NewImageIndex(nodes)

	if len(namespaces) == 0 {
		namespaces = []string{metav1.NamespaceAll}
	}
	var out []PodInfo
	for _, ns := range slices.Compact(slices.Sorted(slices.Values(namespaces))) {
		err := pager.New(func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			return client.CoreV1().Pods(ns).List(ctx, opts)
		}).EachListItem(ctx, metav1.ListOptions{Limit: listPageSize, LabelSelector: selector}, func(obj runtime.Object) error {
			p, ok := obj.(*corev1.Pod)
			if !ok {
				return fmt.Errorf("pod list returned %T", obj)
			}
			out = append(out, NewPodInfo(p, images))
			return nil
		})
		if err != nil {
			where := "all namespaces"
			if ns != metav1.NamespaceAll {
				where = "namespace " + ns
			}
			return nil, fmt.Errorf("list pods in %s (selector %q): %w", where, selector, err)
		}
	}
	slices.SortFunc(out, func(a, b PodInfo) int {
		return cmp.Or(cmp.Compare(a.Pod.Namespace, b.Pod.Namespace), cmp.Compare(a.Pod.Name, b.Pod.Name))
	})
	return out, nil
}
