package config

import (
	"errors"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Kubernetes is how the services reach the API server and which pods they look at.
type Kubernetes struct {
	Kubeconfig    string  `env:"KUBECONFIG" desc:"kubeconfig path(s), colon separated; empty means in-cluster service account"`
	Namespaces    List    `env:"NAMESPACES" desc:"comma-separated namespaces to watch; empty means all"`
	LabelSelector string  `env:"LABEL_SELECTOR" desc:"label selector the pods must match, e.g. podtype.io/watch=true; empty means all"`
	QPS           float32 `env:"KUBE_QPS" envDefault:"20" desc:"client-side rate limit for API requests per second"`
	Burst         int     `env:"KUBE_BURST" envDefault:"40" desc:"burst allowed above KUBE_QPS"`
}

// Validate checks the values; errors name the variable and its value.
func (c Kubernetes) Validate() error {
	var errs []error
	for _, ns := range c.Namespaces {
		if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
			errs = append(errs, Invalid("NAMESPACES", c.Namespaces.String(), "namespace %q: %s", ns, strings.Join(msgs, "; ")))
		}
	}
	if _, err := labels.Parse(c.LabelSelector); err != nil {
		errs = append(errs, Invalid("LABEL_SELECTOR", c.LabelSelector, "%v", err))
	}
	if !(c.QPS > 0) {
		errs = append(errs, Invalid("KUBE_QPS", strconv.FormatFloat(float64(c.QPS), 'g', -1, 32), "must be positive"))
	}
	if c.Burst < 1 {
		errs = append(errs, Invalid("KUBE_BURST", strconv.Itoa(c.Burst), "must be at least 1"))
	}
	return errors.Join(errs...)
}

// List is a comma-separated list variable. Items are trimmed and empty items dropped, so
// "a, b," is [a b] and "" is empty.
type List []string

// UnmarshalText implements encoding.TextUnmarshaler, which env uses for this type.
func (l *List) UnmarshalText(b []byte) error {
	var out List
	for _, item := range strings.Split(string(b), ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	*l = out
	return nil
}

// String joins the items with commas, the form they are configured in.
func (l List) String() string { return strings.Join(l, ",") }
