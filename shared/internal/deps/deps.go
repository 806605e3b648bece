// Package deps pins the module's dependencies while the packages that use them are being written.
// TODO(bootstrap): delete once every dependency is imported by real code.
package deps

import (
	_ "github.com/caarlos0/env/v10"
	_ "github.com/influxdata/influxdb-client-go/v2"
	_ "github.com/influxdata/influxdb-client-go/v2/api"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/prometheus/client_golang/prometheus/testutil"
	_ "github.com/sjwhitworth/golearn/base"
	_ "github.com/sjwhitworth/golearn/evaluation"
	_ "github.com/sjwhitworth/golearn/meta"
	_ "github.com/sjwhitworth/golearn/trees"
	_ "k8s.io/api/core/v1"
	_ "k8s.io/apimachinery/pkg/types"
	_ "k8s.io/client-go/informers"
	_ "k8s.io/client-go/kubernetes"
	_ "k8s.io/client-go/kubernetes/fake"
	_ "k8s.io/client-go/tools/cache"
	_ "k8s.io/client-go/tools/clientcmd"
	_ "k8s.io/client-go/tools/leaderelection"
	_ "k8s.io/client-go/tools/record"
	_ "k8s.io/client-go/util/workqueue"
	_ "k8s.io/klog/v2"
	_ "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)
