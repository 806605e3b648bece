// Package sim is a simulated Kubernetes cluster for tests and training data: pods of known workload types
// (mysql, nginx, redis, ...) whose behaviour follows per-type profiles, fake kubelets that serve their
// metrics in the kubelet's /stats/summary and /pods formats, fault injection with ground-truth labels, and
// registration of the simulated Nodes and Pods in a real kube-apiserver through client-go.
//
// Nothing runs on a node: no kubelet, scheduler or controller-manager. Pods are created with
// spec.nodeName set and their status is written through the status subresource, as a kubelet would.
//
// Every value is deterministic: the metrics of a pod at time T depend only on the seed, the pod's identity
// (namespace, name, start time), T and the faults applied to it. Each pod's model is stepped on a fixed
// grid of Config.Step from its start, so how often Advance is called does not change the values.
package sim
