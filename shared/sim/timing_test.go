package sim

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"
)

func TestFirstStepAndNextTick(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	steps := []struct {
		start string
		step  time.Duration
		want  string
	}{
		{"2026-11-21T10:00:00Z", time.Second, "2026-11-21T10:00:00.5Z"},
		{"2026-11-21T10:00:00.4Z", time.Second, "2026-11-21T10:00:00.5Z"},
		{"2026-11-21T10:00:00.5Z", time.Second, "2026-11-21T10:00:01.5Z"},
		{"2026-11-21T10:00:00.9Z", time.Second, "2026-11-21T10:00:01.5Z"},
		{"2026-11-21T10:00:03Z", 10 * time.Second, "2026-11-21T10:00:05Z"},
		{"1969-12-31T23:59:59.2Z", time.Second, "1969-12-31T23:59:59.5Z"},
	}
	for _, tt := range steps {
		if got := firstStep(at(tt.start), tt.step); !got.Equal(at(tt.want)) {
			t.Errorf("firstStep(%s, %v) = %s, want %s", tt.start, tt.step, got.Format(time.RFC3339Nano), tt.want)
		}
	}
	ticks := []struct {
		now        string
		tick, step time.Duration
		want       string
	}{
		{"2026-11-21T10:00:00Z", time.Second, time.Second, "2026-11-21T10:00:00.75Z"},
		{"2026-11-21T10:00:00.75Z", time.Second, time.Second, "2026-11-21T10:00:01.75Z"},
		{"2026-11-21T10:00:00.8Z", time.Second, time.Second, "2026-11-21T10:00:01.75Z"},
		{"2026-11-21T10:00:01Z", 2 * time.Second, time.Second, "2026-11-21T10:00:02.75Z"},
		{"2026-11-21T10:00:00Z", time.Second, 2 * time.Second, "2026-11-21T10:00:00.5Z"},
		{"1969-12-31T23:59:59.8Z", time.Second, time.Second, "1970-01-01T00:00:00.75Z"},
	}
	for _, tt := range ticks {
		if got := nextTick(at(tt.now), tt.tick, tt.step); !got.Equal(at(tt.want)) {
			t.Errorf("nextTick(%s, %v, %v) = %s, want %s", tt.now, tt.tick, tt.step, got.Format(time.RFC3339Nano), tt.want)
		}
	}
}

// TestScrapesSeeOneStepEach drives a cluster the way Start and Telegraf do, with jitter on both
// sides: ticks at nextTick, scrapes just after whole seconds. Every scrape of every pod, also of
// pods added between two ticks, must see exactly one step more than the scrape before; otherwise the
// rates Telegraf derives alternate between 0 and twice the truth.
func TestScrapesSeeOneStepEach(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Types, cfg.PodsPerType = []string{"mysql", "redis"}, 2
	base := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	cfg.Start = base.Add(-20*time.Minute + 123456789)
	c, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	jitter := func(max time.Duration) time.Duration { return time.Duration(r.Int64N(int64(max))) }
	last := map[string]time.Time{}
	now := base
	for second := range 60 {
		if second%7 == 3 {
			// Added at the time of the last tick, as AddPods does between two ticks.
			if _, err := c.AddPods(context.Background(), "mysql", 1); err != nil {
				t.Fatal(err)
			}
		}
		now = nextTick(now, cfg.Tick, cfg.Step).Add(jitter(200 * time.Millisecond))
		c.Advance(now)
		scrape := base.Add(time.Duration(second+1)*time.Second + jitter(200*time.Millisecond))
		for _, p := range c.Pods() {
			s, _ := c.Sample(p.Namespace, p.Name)
			if prev, ok := last[p.Name]; ok && s.Time.Sub(prev) != cfg.Step {
				t.Fatalf("scrape at %s: %s moved %v since the previous scrape, want one step of %v",
					scrape.Format(time.RFC3339Nano), p.Name, s.Time.Sub(prev), cfg.Step)
			}
			last[p.Name] = s.Time
		}
		if now.After(scrape) {
			t.Fatalf("tick %s after scrape %s", now, scrape)
		}
	}
	if len(last) != 4+9 {
		t.Errorf("%d pods scraped, want 13", len(last))
	}
}
