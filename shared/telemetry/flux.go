package telemetry

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
)

// DefaultMaxPodFilter is how many explicit pods a query names in its Flux filter; more are
// fetched by namespace and filtered in Go, because a predicate with thousands of terms costs
// InfluxDB more to plan than the surplus rows cost to stream.
const DefaultMaxPodFilter = 50

// Query selects the pod metrics of one time range. One query serves any number of pods: the
// cost per interval must not grow with the number of pods watched.
type Query struct {
	Start, Stop time.Time // [Start, Stop)
	// Namespaces restricts the query to these namespaces; empty means all.
	Namespaces []string
	// Pods, when not empty, restricts the query to these pods, all of which must lie in
	// Namespaces if that is set.
	Pods []types.NamespacedName
}

// plan is a validated Query: the Flux text and, when the pods are too many to name in Flux, the
// set to filter rows by in Go.
type plan struct {
	flux string
	pods map[types.NamespacedName]bool // nil: every row the query returns is wanted
}

// Flux returns the Flux text for q against bucket, naming at most maxPodFilter pods in the filter
// (0 means DefaultMaxPodFilter). With more pods it filters by their namespaces only, and the
// caller must drop other pods' rows itself (Reader does).
//
// InfluxDB 1.8 has no query parameters, so every value is written as a Flux string literal by an
// escaper, and Kubernetes names are checked to be DNS-1123 names first.
func (q Query) Flux(bucket string, maxPodFilter int) (string, error) {
	p, err := q.plan(bucket, maxPodFilter)
	return p.flux, err
}

func (q Query) plan(bucket string, maxPodFilter int) (plan, error) {
	if maxPodFilter <= 0 {
		maxPodFilter = DefaultMaxPodFilter
	}
	if bucket == "" {
		return plan{}, errors.New("query: empty bucket")
	}
	if q.Start.IsZero() || q.Stop.IsZero() || !q.Stop.After(q.Start) {
		return plan{}, fmt.Errorf("query: range [%s, %s) is empty or unset",
			q.Start.Format(time.RFC3339Nano), q.Stop.Format(time.RFC3339Nano))
	}
	namespaces, err := sortedNamespaces(q.Namespaces)
	if err != nil {
		return plan{}, err
	}
	pods, err := sortedPods(q.Pods, namespaces)
	if err != nil {
		return plan{}, err
	}
	var goFilter map[types.NamespacedName]bool
	if len(pods) > maxPodFilter {
		goFilter = make(map[types.NamespacedName]bool, len(pods))
		var podNamespaces []string
		for _, p := range pods {
			goFilter[p] = true
			if len(podNamespaces) == 0 || podNamespaces[len(podNamespaces)-1] != p.Namespace {
				podNamespaces = append(podNamespaces, p.Namespace)
			}
		}
		namespaces, pods = podNamespaces, nil
	}

	var w fluxWriter
	w.printf("from(bucket: %s)\n", w.str(bucket))
	w.printf("  |> range(start: %s, stop: %s)\n", fluxTime(q.Start), fluxTime(q.Stop))
	w.printf("  |> filter(fn: (r) =>\n")
	w.printf("    (%s)", fieldPredicate(&w))
	switch {
	case len(pods) > 0: // implies the namespaces
		w.printf("\n    and (%s)", podPredicate(&w, pods))
	case len(namespaces) > 0:
		w.printf("\n    and (%s)", namespacePredicate(&w, namespaces))
	}
	w.printf(")\n")
	// No keep(columns: ...): InfluxDB 1.8's Flux (v0.65) cannot push keep() into the storage
	// read and copies every table for it. Measured on 660k rows (500 pods, 10 min): 3.0 s with
	// keep() against 1.2 s without at the server, 6-7 s against 3.5-3.9 s end to end; the extra
	// tag columns cost less to parse than keep() costs to run, and gzip makes their bytes cheap.
	if w.err != nil {
		return plan{}, w.err
	}
	return plan{flux: w.b.String(), pods: goFilter}, nil
}

// fieldPredicate selects the Sources() fields, one term per measurement; Docker's blkio only on
// the rows that sum over devices.
func fieldPredicate(w *fluxWriter) string {
	var terms []string
	srcs := Sources()
	for i := 0; i < len(srcs); {
		m := srcs[i].Measurement
		var fields []string
		for ; i < len(srcs) && srcs[i].Measurement == m; i++ {
			fields = append(fields, "r._field == "+w.str(srcs[i].Field))
		}
		term := "r._measurement == " + w.str(m)
		if m == MeasurementDockerBlkio {
			term += " and " + member(w, TagDevice) + " == " + w.str(DeviceTotal)
		}
		terms = append(terms, fmt.Sprintf("(%s and (%s))", term, strings.Join(fields, " or ")))
	}
	return strings.Join(terms, "\n      or ")
}

// namespacePredicate matches the namespace tag of both Telegraf inputs: the kubelet's rows carry
// "namespace", Docker's the pod label. InfluxDB 1.8 pushes a filter into the storage read when
// every term is r.<tag> ==, !=, =~ or !~ a literal joined by and/or (PushDownFilterRule);
// equality needs no regular-expression quoting on top of the string escaping.
func namespacePredicate(w *fluxWriter, namespaces []string) string {
	var terms []string
	for _, tag := range []string{TagNamespace, TagDockerPodNamespace} {
		for _, ns := range namespaces {
			terms = append(terms, member(w, tag)+" == "+w.str(ns))
		}
	}
	return strings.Join(terms, " or ")
}

func podPredicate(w *fluxWriter, pods []types.NamespacedName) string {
	var terms []string
	for _, tags := range [][2]string{{TagNamespace, TagPod}, {TagDockerPodNamespace, TagDockerPodName}} {
		for _, p := range pods {
			terms = append(terms, fmt.Sprintf("(%s == %s and %s == %s)",
				member(w, tags[0]), w.str(p.Namespace), member(w, tags[1]), w.str(p.Name)))
		}
	}
	return strings.Join(terms, "\n      or ")
}

// member is the Flux expression for column c of record r: r.c when c is an identifier, r["c"]
// otherwise (Docker's label tags contain dots).
func member(w *fluxWriter, c string) string {
	ident := c != ""
	for i, ch := range c {
		if !(ch == '_' || ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || i > 0 && ch >= '0' && ch <= '9') {
			ident = false
		}
	}
	if ident {
		return "r." + c
	}
	return "r[" + w.str(c) + "]"
}

func fluxTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func sortedNamespaces(in []string) ([]string, error) {
	out := slices.Clone(in)
	for _, ns := range out {
		if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
			return nil, fmt.Errorf("query: namespace %q: %s", ns, strings.Join(msgs, "; "))
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func sortedPods(in []types.NamespacedName, namespaces []string) ([]types.NamespacedName, error) {
	out := slices.Clone(in)
	for _, p := range out {
		if msgs := validation.IsDNS1123Label(p.Namespace); len(msgs) > 0 {
			return nil, fmt.Errorf("query: pod %s: namespace %q: %s", p, p.Namespace, strings.Join(msgs, "; "))
		}
		if msgs := validation.IsDNS1123Subdomain(p.Name); len(msgs) > 0 {
			return nil, fmt.Errorf("query: pod %s: name %q: %s", p, p.Name, strings.Join(msgs, "; "))
		}
		if len(namespaces) > 0 {
			if _, found := slices.BinarySearch(namespaces, p.Namespace); !found {
				return nil, fmt.Errorf("query: pod %s is outside the namespaces %q", p, namespaces)
			}
		}
	}
	slices.SortFunc(out, func(x, y types.NamespacedName) int {
		return cmp.Or(cmp.Compare(x.Namespace, y.Namespace), cmp.Compare(x.Name, y.Name))
	})
	return slices.Compact(out), nil
}

// fluxWriter builds Flux text and keeps the first escaping error, so the builder reads straight.
type fluxWriter struct {
	b   strings.Builder
	err error
}

func (w *fluxWriter) printf(format string, args ...any) { fmt.Fprintf(&w.b, format, args...) }

func (w *fluxWriter) str(s string) string {
	lit, err := FluxString(s)
	if err != nil && w.err == nil {
		w.err = err
	}
	return lit
}

// FluxString returns s as a double-quoted Flux string literal: backslash, double quote and the
// interpolation opener "${" are escaped, newline, carriage return and tab by name, other ASCII
// control characters as \xNN (escapes as in the Flux v0.65 spec, the version InfluxDB 1.8 runs).
// Invalid UTF-8 is an error: Flux source is UTF-8.
func FluxString(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("flux string %q: invalid UTF-8", s)
	}
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == '"':
			b.WriteString(`\"`)
		case r == '$' && strings.HasPrefix(s[i+1:], "{"):
			b.WriteString(`\$`) // with the following "{" this is Flux's escape `\${`
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r) // Flux's byte escape
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String(), nil
}
