package dataset

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCSVRoundTrip(t *testing.T) {
	a, b, c := nn("ns", "db-0"), nn("ns", "web-0"), nn("other", "cache-0")
	inv := []Pod{{Name: a, Type: "mysql", ImageSizeBytes: 123456789}, {Name: b, Type: "nginx"}, {Name: c, Type: "mysql"}}
	fault := Fault{Pod: b, Name: "network_flood", Start: t0.Add(60 * time.Second), End: t0.Add(100 * time.Second)}
	ds := build(t, inv, opts(fault), series(a, 18, 1.3), series(b, 18, 2.7), series(c, 12, 0.1))

	var buf bytes.Buffer
	if err := WriteCSV(&buf, ds); err != nil {
		t.Fatal(err)
	}
	got, err := ReadCSV(bytes.NewReader(buf.Bytes()), opts())
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Normal) != len(ds.Normal) || len(got.Faults) != len(ds.Faults) || len(ds.Faults) != 1 {
		t.Fatalf("read back %d normal, %d fault windows; wrote %d, %d", len(got.Normal), len(got.Faults), len(ds.Normal), len(ds.Faults))
	}
	for _, pair := range [][2][]Window{{ds.Normal, got.Normal}, {ds.Faults, got.Faults}} {
		for i := range pair[0] {
			w, g := pair[0][i], pair[1][i]
			if w.Pod != g.Pod || w.Node != g.Node || w.Type != g.Type || !w.Start.Equal(g.Start) || w.Fault != g.Fault {
				t.Errorf("window %d: read %+v, wrote %+v", i, g, w)
			}
			if !slices.Equal(w.Features, g.Features) {
				t.Errorf("window %d of %s: features differ after the round trip", i, w.Pod)
			}
		}
	}
	if !got.From.Equal(t0) || !got.To.Equal(t0.Add(3*time.Minute)) {
		t.Errorf("data range %s..%s, want %s..%s", got.From, got.To, t0, t0.Add(3*time.Minute))
	}

	// A class filter on reading counts the left-out pods.
	o := opts()
	o.Classes = []string{"nginx", "redis"}
	got, err = ReadCSV(bytes.NewReader(buf.Bytes()), o)
	if err != nil {
		t.Fatal(err)
	}
	if n := got.Excluded.Pods[ReasonOtherType]["mysql"]; n != 2 {
		t.Errorf("excluded mysql pods = %d, want 2", n)
	}
}

func TestReadCSVErrors(t *testing.T) {
	a := nn("ns", "db-0")
	ds := build(t, []Pod{{Name: a, Type: "mysql"}}, opts(), series(a, 6, 1))
	var buf bytes.Buffer
	if err := WriteCSV(&buf, ds); err != nil {
		t.Fatal(err)
	}
	good := buf.String()
	lines := strings.SplitN(good, "\n", 2)
	header, row := lines[0], strings.TrimSuffix(lines[1], "\n")
	fields := strings.Split(row, ",")
	withField := func(i int, v string) string {
		f := slices.Clone(fields)
		f[i] = v
		return header + "\n" + strings.Join(f, ",") + "\n"
	}
	longer := opts()
	longer.WindowSamples = 12

	tests := []struct {
		name, in string
		opt      Options
		want     string
	}{
		{"empty", "", opts(), "empty"},
		{"renamed feature", strings.Replace(good, "cpu_cores_mean", "cpu_mean", 1), opts(), `"cpu_mean", want "cpu_cores_mean"`},
		{"missing column", strings.Replace(header, ",availability", "", 1) + "\n", opts(), "columns"},
		{"other window length", good, longer, "WINDOW_SAMPLES"},
		{"NaN feature", withField(len(csvFixed), "NaN"), opts(), "finite"},
		{"bad number", withField(len(csvFixed)+1, "1x5"), opts(), "line 2: pod ns/db-0: cpu_cores_std"},
		{"extra field", withField(len(csvFixed)+1, "1,5"), opts(), "wrong number of fields"},
		{"bad time", withField(4, "yesterday"), opts(), "window_start"},
		{"no type", withField(3, ""), opts(), "type"},
		{"only other types", good, Options{Classes: []string{"nginx"}, WindowSamples: 6, WindowStep: 10 * time.Second}, "no normal windows"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadCSV(strings.NewReader(tt.in), tt.opt)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestWriteCSVRejectsShortVector(t *testing.T) {
	ds := &Dataset{FeatureNames: []string{"a", "b"}, WindowSamples: 6, WindowStep: time.Second,
		Normal: []Window{{Pod: nn("ns", "p"), Type: "mysql", Start: t0, Features: []float64{1}}}}
	if err := WriteCSV(&bytes.Buffer{}, ds); err == nil {
		t.Error("a window with fewer features than the header was written")
	}
}
