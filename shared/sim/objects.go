package sim

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// kubeletVersion is what simulated nodes report; it matches the local stack's kube-apiserver.
const kubeletVersion = "v1.36.3"

// podObject is the pod as created through the API: bound to its node (no scheduler runs) and without a
// service account token (no controller-manager issues one).
func podObject(p *simPod) *corev1.Pod {
	par := &p.model.par
	c := corev1.Container{
		Name:  p.prof.Container,
		Image: p.image.Spec,
		Ports: []corev1.ContainerPort{{Name: "main", ContainerPort: p.prof.Port, Protocol: corev1.ProtocolTCP}},
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{
				corev1.ResourceCPU:    *resource.NewMilliQuantity(int64(par.cpuRequest*1000), resource.DecimalSI),
				corev1.ResourceMemory: *resource.NewQuantity(int64(par.memRequest), resource.BinarySI),
			},
			Limits: corev1.ResourceList{
				corev1.ResourceCPU:    *resource.NewMilliQuantity(int64(par.cpuLimit*1000), resource.DecimalSI),
				corev1.ResourceMemory: *resource.NewQuantity(int64(par.memLimit), resource.BinarySI),
			},
		},
		TerminationMessagePath:   corev1.TerminationMessagePathDefault,
		TerminationMessagePolicy: corev1.TerminationMessageReadFile,
		ImagePullPolicy:          corev1.PullIfNotPresent,
	}
	pod := &corev1.Pod{
		TypeMeta: metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{
			Name:              p.name,
			Namespace:         p.namespace,
			UID:               types.UID(p.uid),
			Labels:            p.labels,
			Annotations:       map[string]string{AnnotationType: p.typ},
			CreationTimestamp: metav1.NewTime(p.start),
		},
		Spec: corev1.PodSpec{
			NodeName:                      p.node.name,
			Containers:                    []corev1.Container{c},
			AutomountServiceAccountToken:  ptrTo(false),
			EnableServiceLinks:            ptrTo(false),
			RestartPolicy:                 corev1.RestartPolicyAlways,
			TerminationGracePeriodSeconds: ptrTo[int64](30),
			DNSPolicy:                     corev1.DNSClusterFirst,
		},
	}
	if v := p.prof.Volume; v != nil {
		vol := corev1.Volume{Name: v.Name}
		if v.PVC {
			vol.PersistentVolumeClaim = &corev1.PersistentVolumeClaimVolumeSource{ClaimName: v.Name + "-" + p.name}
		} else {
			vol.ConfigMap = &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: p.name + "-" + v.Name}}
		}
		pod.Spec.Volumes = []corev1.Volume{vol}
		pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: v.Name, MountPath: "/" + v.Name}}
	}
	return pod
}

// podStatus is the status a kubelet would report for a running pod.
func podStatus(p *simPod) corev1.PodStatus {
	s := &p.model.last
	started := metav1.NewTime(s.ContainerStart)
	podStart := metav1.NewTime(p.start)
	cond := func(t corev1.PodConditionType, at metav1.Time) corev1.PodCondition {
		return corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: at}
	}
	cs := corev1.ContainerStatus{
		Name:         p.prof.Container,
		State:        corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}},
		Ready:        true,
		RestartCount: s.Restarts,
		Image:        p.image.Ref(),
		ImageID:      p.image.DigestRef(),
		ContainerID:  fakeContainerID(p.uid, s.Restarts),
		Started:      ptrTo(true),
	}
	if s.Restarts > 0 {
		exit := int32(1)
		if s.LastTermination == "OOMKilled" {
			exit = 137
		}
		cs.LastTerminationState = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode:    exit,
			Reason:      s.LastTermination,
			StartedAt:   metav1.NewTime(p.model.previousStart),
			FinishedAt:  started,
			ContainerID: fakeContainerID(p.uid, s.Restarts-1),
		}}
	}
	return corev1.PodStatus{
		Phase: corev1.PodRunning,
		Conditions: []corev1.PodCondition{
			cond(corev1.PodReadyToStartContainers, podStart),
			cond(corev1.PodInitialized, podStart),
			cond(corev1.PodReady, started),
			cond(corev1.ContainersReady, started),
			cond(corev1.PodScheduled, podStart),
		},
		HostIP:            p.node.ip,
		HostIPs:           []corev1.HostIP{{IP: p.node.ip}},
		PodIP:             p.ip,
		PodIPs:            []corev1.PodIP{{IP: p.ip}},
		StartTime:         &podStart,
		QOSClass:          corev1.PodQOSBurstable,
		ContainerStatuses: []corev1.ContainerStatus{cs},
	}
}

// buildPodListLocked is the node's /pods: the pods bound to it with their status. c.mu must be held.
func (c *Cluster) buildPodListLocked(n *simNode) *corev1.PodList {
	list := &corev1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}, Items: make([]corev1.Pod, len(n.pods))}
	for i, p := range n.pods {
		list.Items[i] = *podObject(p)
		list.Items[i].Status = podStatus(p)
	}
	return list
}

// nodeObject is the node as created through the API; its status is set separately (nodeStatus).
func nodeObject(n *simNode) *corev1.Node {
	cidr := fmt.Sprintf("10.%d.0.0/16", n.index)
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: n.name,
			Labels: map[string]string{
				"kubernetes.io/hostname":           n.name,
				"kubernetes.io/os":                 "linux",
				"kubernetes.io/arch":               "amd64",
				"node.kubernetes.io/instance-type": "sim.standard",
				LabelManagedBy:                     FieldManager,
			},
		},
		Spec: corev1.NodeSpec{PodCIDR: cidr, PodCIDRs: []string{cidr}},
	}
}

// nodeStatus is the status a kubelet would report: capacity for its pods, Ready, and every catalog image
// pulled, with digest and tag names like containerd reports them.
func nodeStatus(n *simNode, images []Image, now time.Time) corev1.NodeStatus {
	hb := metav1.NewTime(now)
	cond := func(t corev1.NodeConditionType, s corev1.ConditionStatus, reason, msg string) corev1.NodeCondition {
		return corev1.NodeCondition{Type: t, Status: s, Reason: reason, Message: msg, LastHeartbeatTime: hb, LastTransitionTime: hb}
	}
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:              *resource.NewQuantity(int64(n.capacity.cpuCores), resource.DecimalSI),
		corev1.ResourceMemory:           *resource.NewQuantity(int64(n.capacity.memBytes), resource.BinarySI),
		corev1.ResourcePods:             *resource.NewQuantity(int64(n.capacity.pods), resource.DecimalSI),
		corev1.ResourceEphemeralStorage: *resource.NewQuantity(int64(nodeFsCapacity), resource.BinarySI),
	}
	allocatable := corev1.ResourceList{
		corev1.ResourceCPU:              *resource.NewMilliQuantity(int64(n.capacity.cpuCores*1000)-250, resource.DecimalSI),
		corev1.ResourceMemory:           *resource.NewQuantity(int64(n.capacity.memBytes-gib), resource.BinarySI),
		corev1.ResourcePods:             capacity[corev1.ResourcePods],
		corev1.ResourceEphemeralStorage: *resource.NewQuantity(int64(0.9*nodeFsCapacity), resource.BinarySI),
	}
	imgs := make([]corev1.ContainerImage, len(images))
	for i, im := range images {
		imgs[i] = corev1.ContainerImage{Names: []string{im.DigestRef(), im.Ref()}, SizeBytes: im.SizeBytes}
	}
	slices.SortStableFunc(imgs, func(a, b corev1.ContainerImage) int { return cmp.Compare(b.SizeBytes, a.SizeBytes) })
	id := fakeUID(uint64(n.index), "node", n.name)
	return corev1.NodeStatus{
		Capacity:    capacity,
		Allocatable: allocatable,
		Phase:       corev1.NodeRunning,
		Conditions: []corev1.NodeCondition{
			cond(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
			cond(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
			cond(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
			cond(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status"),
		},
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: n.ip},
			{Type: corev1.NodeHostName, Address: n.name},
		},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: 10250}},
		NodeInfo: corev1.NodeSystemInfo{
			MachineID:               id[:8] + id[9:13] + id[14:18] + id[19:23] + id[24:],
			SystemUUID:              id,
			BootID:                  fakeUID(uint64(n.index), "boot", n.name),
			KernelVersion:           "6.8.0-45-generic",
			OSImage:                 "Ubuntu 24.04.1 LTS",
			ContainerRuntimeVersion: "containerd://1.7.22",
			KubeletVersion:          kubeletVersion,
			OperatingSystem:         "linux",
			Architecture:            "amd64",
		},
		Images: imgs,
	}
}

func ptrTo[T any](v T) *T { return &v }
