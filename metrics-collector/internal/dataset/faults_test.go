package dataset

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestReadFaults(t *testing.T) {
	in := strings.Join([]string{
		`{"namespace":"sim","pod":"mysql-abcde","fault":"cpu_saturation","start":"2026-01-02T15:00:00Z","end":"2026-01-02T15:05:00Z"}`,
		``,
		`{"namespace":"sim","pod":"nginx-bcdfg","fault":"memory_leak","start":"2026-01-02T15:01:00Z","end":"2026-01-02T15:09:00Z"}`,
		// Correction: the mysql fault ended early.
		`{"namespace":"sim","pod":"mysql-abcde","fault":"cpu_saturation","start":"2026-01-02T15:00:00Z","end":"2026-01-02T15:02:00Z"}`,
	}, "\n")
	got, err := ReadFaults(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d faults, want 2 (the correction replaces the first end): %+v", len(got), got)
	}
	if want := t0.Add(2 * time.Minute); !got[0].End.Equal(want) || got[0].Name != "cpu_saturation" || got[0].Pod != nn("sim", "mysql-abcde") {
		t.Errorf("first fault = %+v, want sim/mysql-abcde cpu_saturation ending %s", got[0], want)
	}
	idx := newFaultIndex(got)
	if n, share := idx.overlap(nn("sim", "mysql-abcde"), t0.Add(3*time.Minute), t0.Add(4*time.Minute)); n != "" || share != 0 {
		t.Errorf("window after the corrected end overlaps %q (%v), want none", n, share)
	}
	if n, share := idx.overlap(nn("sim", "nginx-bcdfg"), t0.Add(8*time.Minute), t0.Add(10*time.Minute)); n != "memory_leak" || share != 0.5 {
		t.Errorf("window half over the leak: %q, %v; want memory_leak, 0.5", n, share)
	}
}

func TestFaultOverlap(t *testing.T) {
	pod := nn("ns", "p")
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	idx := newFaultIndex([]Fault{
		{Pod: pod, Name: "a", Start: at(0), End: at(30)},
		{Pod: pod, Name: "b", Start: at(20), End: at(45)}, // overlaps a: counted once
		{Pod: pod, Name: "c", Start: at(100), End: at(110)},
		{Pod: nn("ns", "other"), Name: "x", Start: at(0), End: at(1000)},
	})
	tests := []struct {
		from, to  int
		name      string
		wantShare float64
	}{
		{0, 60, "a", 0.75},      // a covers 30 s, b 25 s; union 45 of 60
		{30, 60, "b", 0.5},      // only b's [30,45)
		{45, 100, "", 0},        // touches both ends, covers nothing
		{90, 120, "c", 1.0 / 3}, // c inside
		{200, 260, "", 0},
	}
	for _, tt := range tests {
		name, share := idx.overlap(pod, at(tt.from), at(tt.to))
		if name != tt.name || share != tt.wantShare {
			t.Errorf("[%d,%d): %q %v, want %q %v", tt.from, tt.to, name, share, tt.name, tt.wantShare)
		}
	}
}

func TestReadFaultsErrors(t *testing.T) {
	tests := []struct{ name, line, want string }{
		{"not json", `{"namespace":`, "line 1"},
		{"unknown field", `{"namespace":"a","pod":"b","fault":"x","start":"2026-01-02T15:00:00Z","end":"2026-01-02T15:01:00Z","podd":1}`, "unknown field"},
		{"no pod", `{"namespace":"a","fault":"x","start":"2026-01-02T15:00:00Z","end":"2026-01-02T15:01:00Z"}`, "pod"},
		{"no end", `{"namespace":"a","pod":"b","fault":"x","start":"2026-01-02T15:00:00Z"}`, "end"},
		{"end before start", `{"namespace":"a","pod":"b","fault":"x","start":"2026-01-02T15:00:00Z","end":"2026-01-02T14:00:00Z"}`, "not after start"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadFaults(strings.NewReader(tt.line))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

func TestReadFaultsFile(t *testing.T) {
	if f, err := ReadFaultsFile(""); err != nil || f != nil {
		t.Errorf("empty path: %v, %v; want no faults and no error", f, err)
	}
	if _, err := ReadFaultsFile(filepath.Join(t.TempDir(), "missing.jsonl")); err == nil {
		t.Error("missing file: no error; a mistyped path must not silently train on faults")
	}
	p := filepath.Join(t.TempDir(), "labels.jsonl")
	if err := os.WriteFile(p, []byte("\n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if f, err := ReadFaultsFile(p); err != nil || len(f) != 0 {
		t.Errorf("blank file: %v, %v; want no faults", f, err)
	}
}
