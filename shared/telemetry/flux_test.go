package telemetry

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from golden file; got:\n%s", path, got)
	}
}

func pods(n int) []types.NamespacedName {
	var out []types.NamespacedName
	for i := range n {
		out = append(out, types.NamespacedName{Namespace: []string{"shop", "db"}[i%2], Name: fmt.Sprintf("pod-%03d", i)})
	}
	return out
}

func TestQueryFluxGolden(t *testing.T) {
	start := time.Date(2025, 1, 2, 3, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		bucket string
		q      Query
		max    int
	}{
		{"all_namespaces.flux", "k3s_telegraf_ds/autogen", Query{Start: start, Stop: start.Add(time.Hour)}, 0},
		{
			"namespaces.flux", "k3s_telegraf_ds/autogen",
			Query{Start: start, Stop: start.Add(10 * time.Minute), Namespaces: []string{"shop", "db", "shop"}}, 0,
		},
		{
			"few_pods.flux", "k3s_telegraf_ds/autogen",
			Query{
				// Non-UTC input, sub-second precision: printed as UTC RFC 3339.
				Start: start.In(time.FixedZone("CET", 3600)).Add(500 * time.Millisecond), Stop: start.Add(time.Minute),
				Namespaces: []string{"db", "shop"},
				Pods:       []types.NamespacedName{{Namespace: "shop", Name: "web-7d4b9c-x2x"}, {Namespace: "db", Name: "mysql-0"}},
			}, 0,
		},
		{
			// More pods than the filter may name: only their namespaces go to InfluxDB.
			"many_pods.flux", "k3s_telegraf_ds/autogen",
			Query{Start: start, Stop: start.Add(time.Minute), Pods: pods(5)}, 4,
		},
		{
			"odd_bucket.flux", "we\"ird\\db/${rp}",
			Query{Start: start, Stop: start.Add(time.Minute)}, 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.q.Flux(tt.bucket, tt.max)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tt.name, got)
		})
	}
}

func TestQueryPlanGoFilter(t *testing.T) {
	start := time.Date(2025, 1, 2, 3, 0, 0, 0, time.UTC)
	q := Query{Start: start, Stop: start.Add(time.Minute), Pods: pods(5)}
	p, err := q.plan("b", 4)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.pods) != 5 || !p.pods[types.NamespacedName{Namespace: "db", Name: "pod-001"}] {
		t.Errorf("Go-side pod filter = %v, want the 5 pods", p.pods)
	}
	if strings.Contains(p.flux, "pod-001") {
		t.Error("Flux names pods although there are more than the maximum")
	}
	p, err = q.plan("b", 5)
	if err != nil {
		t.Fatal(err)
	}
	if p.pods != nil || !strings.Contains(p.flux, `r.pod_name == "pod-001"`) {
		t.Errorf("with 5 allowed, want the pods in Flux and no Go filter; got %v\n%s", p.pods, p.flux)
	}
}

func TestQueryFluxRejects(t *testing.T) {
	start := time.Date(2025, 1, 2, 3, 0, 0, 0, time.UTC)
	ok := Query{Start: start, Stop: start.Add(time.Minute)}
	tests := []struct {
		name    string
		bucket  string
		mutate  func(q *Query)
		wantErr string
	}{
		{"injection in namespace", "b", func(q *Query) { q.Namespaces = []string{`x") |> drop() //`} }, `namespace "x\") |> drop() //"`},
		{"interpolation in namespace", "b", func(q *Query) { q.Namespaces = []string{"${secrets}"} }, "namespace"},
		{"upper case namespace", "b", func(q *Query) { q.Namespaces = []string{"Shop"} }, `namespace "Shop"`},
		{"injection in pod name", "b", func(q *Query) {
			q.Pods = []types.NamespacedName{{Namespace: "a", Name: `p" or true or r._field == "`}}
		}, "name"},
		{"pod without namespace", "b", func(q *Query) { q.Pods = []types.NamespacedName{{Name: "p"}} }, "pod /p"},
		{"pod outside namespaces", "b", func(q *Query) {
			q.Namespaces = []string{"a"}
			q.Pods = []types.NamespacedName{{Namespace: "b", Name: "p"}}
		}, "outside the namespaces"},
		{"empty range", "b", func(q *Query) { q.Stop = q.Start }, "empty or unset"},
		{"unset start", "b", func(q *Query) { q.Start = time.Time{} }, "empty or unset"},
		{"empty bucket", "", func(q *Query) {}, "empty bucket"},
		{"invalid UTF-8 bucket", "db\xff", func(q *Query) {}, "invalid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := ok
			tt.mutate(&q)
			got, err := q.Flux(tt.bucket, 0)
			if err == nil {
				t.Fatalf("Flux succeeded:\n%s", got)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
		})
	}
}

// Expected literals were checked with Flux v0.65.1's own parser (parser.ParseString), the Flux
// of InfluxDB 1.8.10, to decode back to the input.
func TestFluxString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", `"plain"`},
		{"", `""`},
		{`x") |> drop() //`, `"x\") |> drop() //"`},
		{`a\b`, `"a\\b"`},
		{`\"`, `"\\\""`},
		{"${x}", `"\${x}"`},
		{"$x and $", `"$x and $"`},
		{"a$${b", `"a$\${b"`},
		{`\${`, `"\\\${"`},
		{"line\nbreak\r\ttab", `"line\nbreak\r\ttab"`},
		{"nul\x00bell\x07del\x7f", `"nul\x00bell\x07del\x7f"`},
		{"grüße ✓", `"grüße ✓"`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := FluxString(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("FluxString(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
	if _, err := FluxString("bad\xc3"); err == nil {
		t.Error("invalid UTF-8 accepted")
	}
}

func TestMember(t *testing.T) {
	for in, want := range map[string]string{
		"namespace":                   "r.namespace",
		"_field":                      "r._field",
		"io.kubernetes.pod.namespace": `r["io.kubernetes.pod.namespace"]`,
		"9lives":                      `r["9lives"]`,
	} {
		var w fluxWriter
		if got := member(&w, in); got != want {
			t.Errorf("member(%q) = %s, want %s", in, got, want)
		}
	}
}
