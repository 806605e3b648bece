// Package cluster holds the client-go helpers both services share: the clientset from
// configuration, image sizes from node status, the pod type from labels or image, and a pod
// inventory.
package cluster

import (
	"fmt"
	"path/filepath"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/podtype/podtype/shared/config"
)

// NewClientset returns a clientset and its rest.Config: from the kubeconfig file(s) in
// cfg.Kubeconfig (a KUBECONFIG-style list; a single file must exist), or from the pod's service
// account when that is empty. userAgent names the service in the API server's audit log.
func NewClientset(cfg config.Kubernetes, userAgent string) (kubernetes.Interface, *rest.Config, error) {
	rc, err := restConfig(cfg.Kubeconfig)
	if err != nil {
		return nil, nil, err
	}
	rc.QPS = cfg.QPS
	rc.Burst = cfg.Burst
	if userAgent != "" {
		rc.UserAgent = userAgent
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, nil, fmt.Errorf("kubernetes client for %s: %w", rc.Host, err)
	}
	return cs, rc, nil
}

func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig == "" {
		rc, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("in-cluster kubernetes config (set KUBECONFIG to run outside a cluster): %w", err)
		}
		return rc, nil
	}
	rules := &clientcmd.ClientConfigLoadingRules{}
	if paths := filepath.SplitList(kubeconfig); len(paths) > 1 {
		rules.Precedence = paths // merged like kubectl; missing files are skipped
	} else {
		rules.ExplicitPath = kubeconfig // a missing file is an error
	}
	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", kubeconfig, err)
	}
	return rc, nil
}
