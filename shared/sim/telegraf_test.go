package sim

import (
	"testing"
	"time"

	"github.com/podtype/podtype/shared/telemetry"
)

func TestTelegrafFields(t *testing.T) {
	b, err := telemetry.NewBuilder(time.Second)
	if err != nil {
		t.Fatal(err)
	}
	full := Sample{MemoryWorkingSetBytes: 7, MemoryRSSBytes: 5, PageFaults: 3, MajorPageFaults: 1, RxBytes: 11, VolumeUsedBytes: 13}
	partial := full
	partial.MemoryStatsPartial = true
	pod := PodInfo{Namespace: "ns", Name: "db-0", Node: "node-1"}
	at := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	container := map[string]string{
		telemetry.MeasurementPodContainer: "main",
		telemetry.MeasurementPodNetwork:   "",
		telemetry.MeasurementPodVolume:    "data",
	}
	fields := TelegrafFields()
	if len(fields) != 14 {
		t.Errorf("%d fields, want the 14 Telegraf writes", len(fields))
	}
	for _, f := range fields {
		want := f.Value(&full)
		if f.Partial {
			want = 0
		}
		if got := f.Value(&partial); got != want {
			t.Errorf("%s %s with partial memory stats = %v, want %v", f.Measurement, f.Name, got, want)
		}
		p := TelegrafPoint(pod, f, at, f.Value(&full))
		if p.Container != container[f.Measurement] || p.Node != "node-1" || p.Pod.Name != "db-0" || !p.Time.Equal(at) {
			t.Errorf("%s %s: point %+v", f.Measurement, f.Name, p)
		}
		// The Builder refuses a field the telemetry package does not read.
		if err := b.Add(p); err != nil {
			t.Errorf("%s %s: %v", f.Measurement, f.Name, err)
		}
	}
}
