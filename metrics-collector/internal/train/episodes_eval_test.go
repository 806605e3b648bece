package train

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/podtype/podtype/shared/features"
	"github.com/podtype/podtype/shared/model"
)

// episodeResult is what one raise setting does to a stream of sliding-window verdicts.
type episodeResult struct {
	raise          int
	falseEpisodes  int
	detected       int // faults with an episode opened while their windows show them
	medianLatency  time.Duration
	podHours       float64
	faults         int
	windowDuration time.Duration
}

func (r episodeResult) String() string {
	return fmt.Sprintf("raise %2d (%4.2f windows): %.2f false episodes per pod-hour (%d), %d/%d faults detected, median latency %s",
		r.raise, float64(r.raise)/float64(r.windowDuration/time.Second), float64(r.falseEpisodes)/r.podHours,
		r.falseEpisodes, r.detected, r.faults, r.medianLatency.Round(time.Second))
}

// TestAnomalyEpisodesOnSimulator measures the watcher's alert volume: forests trained as the
// trainer trains them (seed 201, 8 pods per type, 4 minutes from birth), then new pods (seed 301,
// 16 per type, 4 minutes, random faults of every kind) scored on a sliding window at every
// step, as the pod-watcher scores them, and turned into episodes with model.Episodes (clear
// after 5) for several raise settings. An episode is false when no fault touches its windows
// or the window before them; a fault is detected when an episode opens while it runs or
// within two windows of its end. It logs one line per setting (go test -v) and asserts what
// the pod-watcher's default ANOMALY_RAISE_WINDOWS (half the model's window at the default poll
// interval) rests on: against 3 in a row, at most half the false episodes, and no more than 2%
// of the faults lost.
func TestAnomalyEpisodesOnSimulator(t *testing.T) {
	ds := simDataset(t, simRun{seed: 201, duration: 4 * time.Minute}).Dataset
	tr, _ := newTrainer(ds, evalOptions(201), discard())
	models := map[string]*model.TypeModel{}
	for i, c := range tr.classes {
		tm, err := tr.typeModel(tr.idx.byType[c], uint64(i+1))
		if err != nil {
			t.Fatal(err)
		}
		models[c] = tm
	}

	run := simRun{seed: 301, duration: 4 * time.Minute, podsPerType: 16}
	sc := simulate(t, run)
	step, samples, win := run.windowStep(), run.windowSamples(), run.window()
	type verdict struct {
		end       time.Time
		anomalous bool
	}
	verdicts := map[types.NamespacedName][]verdict{}
	windows := 0
	for _, info := range sc.pods {
		pod := types.NamespacedName{Namespace: info.Namespace, Name: info.Name}
		s, ok := sc.series.Series(pod)
		if !ok {
			continue
		}
		tm := models[info.Type]
		extra := features.Extra{ImageSizeBytes: float64(info.Image.SizeBytes)}
		for i := samples; i <= s.Len(); i++ {
			x, err := features.Extract(s.Slice(i-samples, i), extra)
			if err != nil {
				continue // a gap: neither verdict, as in the watcher
			}
			score, err := tm.Score(x)
			if err != nil {
				t.Fatal(err)
			}
			verdicts[pod] = append(verdicts[pod], verdict{s.Time(i - 1).Add(step), tm.Anomalous(score)})
			windows++
		}
	}
	byPod := map[types.NamespacedName][]int{}
	for i, f := range sc.faults {
		byPod[f.Pod] = append(byPod[f.Pod], i)
	}
	// faultAt returns the fault whose windows an episode opening at `at` shows, or -1.
	faultAt := func(pod types.NamespacedName, at time.Time) int {
		for _, i := range byPod[pod] {
			if f := sc.faults[i]; f.Start.Before(at) && at.Before(f.End.Add(2*win)) {
				return i
			}
		}
		return -1
	}
	var results []episodeResult
	for _, raise := range []int{1, 3, samples / 4, samples / 2, samples, samples + samples/4} {
		r := episodeResult{raise: raise, podHours: float64(windows) * step.Hours(), faults: len(sc.faults), windowDuration: win}
		latency := map[int]time.Duration{}
		for pod, vs := range verdicts {
			e := model.Episodes{Raise: raise, Clear: 5}
			for _, v := range vs {
				if e.Observe(v.anomalous) != model.Raised {
					continue
				}
				i := faultAt(pod, v.end)
				if i < 0 {
					r.falseEpisodes++
					continue
				}
				if _, ok := latency[i]; !ok {
					latency[i] = v.end.Sub(sc.faults[i].Start)
				}
			}
		}
		lat := slices.Sorted(maps.Values(latency))
		r.detected = len(lat)
		if len(lat) > 0 {
			r.medianLatency = lat[len(lat)/2]
		}
		results = append(results, r)
	}
	var b strings.Builder
	for _, r := range results {
		fmt.Fprintln(&b, r)
	}
	t.Logf("%d pods, %.1f pod-hours of %s windows every %s, %d faults:\n%s", len(verdicts), results[0].podHours, win, step, len(sc.faults), b.String())
	three, half := results[1], results[3]
	if 2*half.falseEpisodes > three.falseEpisodes {
		t.Errorf("half a window opens more than half the false episodes of 3 in a row:\n%s\n%s", half, three)
	}
	if float64(three.detected-half.detected) > 0.02*float64(three.faults) {
		t.Errorf("half a window detects more than 2%% fewer faults than 3 in a row:\n%s\n%s", half, three)
	}
}
