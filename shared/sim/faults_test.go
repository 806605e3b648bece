package sim

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseFaults(t *testing.T) {
	tests := []struct {
		in      string
		want    []FaultSpec
		wantErr string
	}{
		{in: "", want: nil},
		{
			in: "pod=mysql-1,fault=memory_leak,start=2m,duration=3m; pod=nginx-7kq2x , fault=network_flood, start=10m;",
			want: []FaultSpec{
				{Pod: "mysql-1", Kind: MemoryLeak, Start: 2 * time.Minute, Duration: 3 * time.Minute},
				{Pod: "nginx-7kq2x", Kind: NetworkFlood, Start: 10 * time.Minute},
			},
		},
		{
			in:   "namespace=other,pod=redis-2,fault=restart_loop,start=0s",
			want: []FaultSpec{{Namespace: "other", Pod: "redis-2", Kind: RestartLoop}},
		},
		{in: "pod=a,fault=cpu_saturation", wantErr: "missing start="},
		{in: "fault=cpu_saturation,start=1m", wantErr: "missing pod="},
		{in: "pod=a,fault=oom,start=1m", wantErr: `unknown fault "oom"`},
		{in: "pod=a,fault=disk_fill,start=soon", wantErr: "start=soon"},
		{in: "pod=a,fault=disk_fill,start=-1m", wantErr: "start -1m0s is negative"},
		{in: "pod=a,fault=disk_fill,start=1m,duration=0s", wantErr: "duration must be positive"},
		{in: "pod=a,fault=disk_fill,start=1m,color=red", wantErr: `unknown key "color"`},
		{in: "pod=a,pod=b,fault=disk_fill,start=1m", wantErr: `key "pod" given twice`},
		{in: "pod=a;pod", wantErr: "fault entry 1"},
		{in: "pod=a,fault=disk_fill,start=1m;pod", wantErr: `fault entry 2 "pod": "pod" is not key=value`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseFaults(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseFaults(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseFaults(%q): %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseFaults(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			// String is the inverse of parsing.
			var parts []string
			for _, f := range got {
				parts = append(parts, f.String())
			}
			again, err := ParseFaults(strings.Join(parts, ";"))
			if err != nil || !reflect.DeepEqual(again, got) {
				t.Errorf("round trip through String: %+v, %v", again, err)
			}
		})
	}
}

func TestFaultPodResolution(t *testing.T) {
	c := newTestCluster(t, func(c *Config) { c.Types = []string{"mysql", "redis"}; c.PodsPerType = 2 })
	tests := []struct {
		spec    FaultSpec
		wantErr string
	}{
		{spec: FaultSpec{Pod: "redis-2", Kind: DiskFill}},
		{spec: FaultSpec{Pod: c.Pods()[0].Name, Kind: DiskFill}},
		{spec: FaultSpec{Pod: "redis-3", Kind: DiskFill}, wantErr: "no 3-th redis pod"},
		{spec: FaultSpec{Pod: "nginx-1", Kind: DiskFill}, wantErr: "no pod sim/nginx-1"},
		{spec: FaultSpec{Namespace: "other", Pod: "redis-1", Kind: DiskFill}, wantErr: "no pod other/redis-1"},
		{spec: FaultSpec{Pod: "redis-1", Kind: "melt"}, wantErr: `unknown fault "melt"`},
	}
	for _, tt := range tests {
		t.Run(tt.spec.String(), func(t *testing.T) {
			err := c.InjectFault(tt.spec)
			if tt.wantErr == "" && err != nil {
				t.Fatalf("InjectFault: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("InjectFault error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestFaultsAreVisible checks that each fault moves its signal far outside the pod's own baseline, over
// windows the size the classifier uses.
func TestFaultsAreVisible(t *testing.T) {
	tests := []struct {
		kind  FaultKind
		check func(t *testing.T, base, during rates, s Sample, par podParams)
	}{
		{CPUSaturation, func(t *testing.T, base, during rates, _ Sample, par podParams) {
			if during.cpu < 0.85*par.cpuLimit || during.cpu < 3*base.cpu {
				t.Errorf("cpu %.3f cores during, %.3f before, limit %.2f: want near the limit", during.cpu, base.cpu, par.cpuLimit)
			}
		}},
		{MemoryLeak, func(t *testing.T, base, during rates, s Sample, _ podParams) {
			if during.rss < 1.3*base.rss && s.Restarts == 0 {
				t.Errorf("rss %.0f MiB during, %.0f MiB before, no OOM kill: want a clear leak", during.rss/mib, base.rss/mib)
			}
		}},
		{NetworkFlood, func(t *testing.T, base, during rates, _ Sample, _ podParams) {
			if during.rx < 8*base.rx {
				t.Errorf("rx %.0f B/s during, %.0f before: want x10 or more", during.rx, base.rx)
			}
		}},
		{DiskFill, func(t *testing.T, base, during rates, _ Sample, _ podParams) {
			if during.rootfs < 2*mib || during.rootfs < 100*(base.rootfs+1) {
				t.Errorf("rootfs grows %.0f B/s during, %.0f before: want MiB/s", during.rootfs, base.rootfs)
			}
		}},
		{RestartLoop, func(t *testing.T, _, _ rates, s Sample, _ podParams) {
			if s.Restarts < 3 {
				t.Errorf("%d restarts in 5 minutes: want a loop", s.Restarts)
			}
		}},
	}
	for _, tt := range tests {
		for _, typ := range Types() {
			t.Run(string(tt.kind)+"/"+typ, func(t *testing.T) {
				c := newTestCluster(t, func(c *Config) {
					c.Types = []string{typ}
					c.PodsPerType = 1
					c.Faults = []FaultSpec{{Pod: typ + "-1", Kind: tt.kind, Start: 20 * time.Minute, Duration: 5 * time.Minute}}
				})
				p := c.Pods()[0]
				c.Advance(testStart.Add(14 * time.Minute))
				base := observe(c, 5*time.Minute, 10*time.Second)[p.Name]
				c.Advance(testStart.Add(20 * time.Minute))
				during := observe(c, 4*time.Minute+50*time.Second, 10*time.Second)[p.Name]
				s, _ := c.Sample(p.Namespace, p.Name)
				tt.check(t, base, during, s, c.pods[nsName(p)].model.par)
			})
		}
	}
}

func TestFaultLabels(t *testing.T) {
	path := filepath.Join(t.TempDir(), "labels.jsonl")
	c := newTestCluster(t, func(c *Config) {
		c.Types = []string{"nginx", "mysql"}
		c.PodsPerType = 1
		c.LabelsFile = path
		c.Faults = []FaultSpec{
			{Pod: "nginx-1", Kind: NetworkFlood, Start: time.Minute, Duration: 2 * time.Minute},
			{Pod: "mysql-1", Kind: MemoryLeak, Start: 2 * time.Minute, Duration: 10 * time.Minute},
		}
	})
	names := map[string]string{}
	for _, p := range c.Pods() {
		names[p.Type] = p.Name
	}
	read := func() string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	c.Advance(testStart.Add(59 * time.Second))
	if got := read(); got != "" {
		t.Fatalf("labels before any fault started: %q", got)
	}
	// Written when the fault starts, not when it ends, and flushed at once.
	c.Advance(testStart.Add(90 * time.Second))
	want := `{"namespace":"sim","pod":"` + names["nginx"] + `","fault":"network_flood","start":"2025-03-04T05:01:00Z","end":"2025-03-04T05:03:00Z"}` + "\n"
	if got := read(); got != want {
		t.Fatalf("labels after the first start:\n got %q\nwant %q", got, want)
	}
	c.Advance(testStart.Add(5 * time.Minute))
	// Deleting a pod mid-fault corrects the end.
	if err := c.DeletePod(t.Context(), "sim", names["mysql"]); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(read()), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 lines (start, start, correction), got %d:\n%s", len(lines), read())
	}
	labels, err := ReadFaultLabels(strings.NewReader(read()))
	if err != nil {
		t.Fatal(err)
	}
	wantLabels := []FaultLabel{
		{Namespace: "sim", Pod: names["nginx"], Fault: NetworkFlood, Start: testStart.Add(time.Minute), End: testStart.Add(3 * time.Minute)},
		{Namespace: "sim", Pod: names["mysql"], Fault: MemoryLeak, Start: testStart.Add(2 * time.Minute), End: testStart.Add(5 * time.Minute)},
	}
	if !reflect.DeepEqual(labels, wantLabels) {
		t.Errorf("ReadFaultLabels:\n got %+v\nwant %+v", labels, wantLabels)
	}
}

func TestReadFaultLabelsErrors(t *testing.T) {
	tests := []struct{ name, in, wantErr string }{
		{"not json", "{\n", "line 1"},
		{"missing end", `{"namespace":"a","pod":"b","fault":"disk_fill","start":"2025-01-01T00:00:00Z"}`, "lacks"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ReadFaultLabels(strings.NewReader(tt.in)); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestRandomFaultsAreSeeded(t *testing.T) {
	run := func(seed uint64) string {
		var buf bytes.Buffer
		c := newTestCluster(t, func(c *Config) { c.Seed = seed; c.FaultRate = 2; c.PodsPerType = 2 })
		c.labels.w = &buf
		for s := time.Minute; s <= 2*time.Hour; s += time.Minute {
			c.Advance(testStart.Add(s))
		}
		return buf.String()
	}
	a, b, other := run(7), run(7), run(8)
	if n := strings.Count(a, "\n"); n < 10 {
		t.Fatalf("%d random faults on 16 pods in 2h at 2/h: want many", n)
	}
	if a != b {
		t.Errorf("same seed, different random faults:\n%s\n%s", a, b)
	}
	if a == other {
		t.Errorf("different seeds, same random faults")
	}
}
