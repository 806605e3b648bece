// Package tracker is the lifecycle of one pod: wait for enough metrics, decide its type (or
// `unknown`), then score every new window with that type's isolation forest and report anomaly
// episodes with hysteresis. One Tracker runs in one goroutine per pod; it never polls: it sleeps
// until the shared fetcher hands it a window, the model changes, its timeout expires or its pod
// goes away.
package tracker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/podtype/podtype/shared/features"
	"github.com/podtype/podtype/shared/model"
	"github.com/podtype/podtype/shared/telemetry"

	"github.com/podtype/podtype/pod-watcher/internal/actions"
	"github.com/podtype/podtype/pod-watcher/internal/publish"
)

// Config is the per-pod policy.
type Config struct {
	// MinSamples is the number of samples with data a pod needs before it is classified; the
	// model's window length is the floor; 0 means two windows (see need).
	MinSamples int
	// Timeout is how long a pod may wait for that data. Only time in which the fetcher could
	// read InfluxDB counts (see Fetcher.HealthyTime): an outage pauses every pod's clock.
	Timeout time.Duration
	// MinConfidence is the classifier probability below which the type is unknown.
	MinConfidence float64
	// OpenSetMargin is how far above its anomaly threshold a window must score for the nearest
	// type's forest to reject a new pod as unknown. The threshold is a high quantile of normal
	// windows, so a single normal window exceeds it now and then; anomalies guard against that
	// with RaiseWindows, the one-window decision with this margin.
	OpenSetMargin float64
	// RaiseWindows anomalous windows in a row open an anomaly episode; ClearWindows normal
	// windows in a row close it.
	RaiseWindows, ClearWindows int
	// TopFeatures is how many deviating features an anomaly reports.
	TopFeatures int
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.MinSamples < 0:
		return fmt.Errorf("tracker: min samples %d: must be >= 0", c.MinSamples)
	case c.Timeout <= 0:
		return fmt.Errorf("tracker: timeout %v: must be > 0", c.Timeout)
	case math.IsNaN(c.MinConfidence) || c.MinConfidence < 0 || c.MinConfidence > 1:
		return fmt.Errorf("tracker: min confidence %v: must be in [0,1]", c.MinConfidence)
	case math.IsNaN(c.OpenSetMargin) || c.OpenSetMargin < 0 || c.OpenSetMargin >= 1:
		return fmt.Errorf("tracker: open-set margin %v: must be in [0,1)", c.OpenSetMargin)
	case c.RaiseWindows < 1:
		return fmt.Errorf("tracker: raise windows %d: must be >= 1", c.RaiseWindows)
	case c.ClearWindows < 1:
		return fmt.Errorf("tracker: clear windows %d: must be >= 1", c.ClearWindows)
	case c.TopFeatures < 1:
		return fmt.Errorf("tracker: top features %d: must be >= 1", c.TopFeatures)
	}
	return nil
}

// Pod is what a tracker knows about its pod, copied from the informer's object when it starts.
type Pod struct {
	publish.Pod
	Node string
	// StartTime is status.startTime (creation time when unset); samples before it belong to
	// an earlier pod of the same name.
	StartTime time.Time
	Extra     features.Extra
	// Annotations are the pod's annotations at start, read for the watcher's own record.
	Annotations map[string]string
}

// Subscription delivers a pod's latest window: the most recent samples since the pod started,
// at most the number subscribed for. A newer window replaces one not yet received.
type Subscription interface {
	C() <-chan *telemetry.Series
	Close()
}

// Fetcher is the shared batched reader.
type Fetcher interface {
	Subscribe(pod types.NamespacedName, since time.Time, samples int) Subscription
	// HealthyTime is a clock that runs only while reads succeed.
	HealthyTime() time.Duration
}

// Models is the model source.
type Models interface {
	Watch() (*model.Bundle, <-chan struct{})
}

// Publisher writes annotations and Events.
type Publisher interface {
	Annotate(ctx context.Context, pod publish.Pod, changes publish.Changes) error
	Event(pod publish.Pod, eventType, reason, message string)
}

// Actions runs anomaly actions.
type Actions interface {
	Enabled() bool
	Run(ctx context.Context, a actions.Anomaly) error
}

// Observer receives what the service's metrics count.
type Observer interface {
	// Classified counts a decision; FirstClassification measures a pod's first one.
	Classified(podType string)
	FirstClassification(sinceStart, sinceFirstSample time.Duration)
	ClassificationTimedOut()
	AnomalyScore(pod types.NamespacedName, podType string, score float64)
	// ForgetPod removes the pod's per-pod series for podType.
	ForgetPod(pod types.NamespacedName, podType string)
	AnomalyRaised(podType string)
	ActionDone(err error)
}

// Deps are the collaborators shared by all trackers.
type Deps struct {
	Fetcher   Fetcher
	Models    Models
	Publisher Publisher
	Actions   Actions
	Observer  Observer
	Logger    *slog.Logger
}

type state int

const (
	stateWaiting state = iota // subscribed, timeout armed
	stateScoring              // subscribed, type known and armed with its forest
	stateIdle                 // decided (unknown, or a type without forest): waits for a new class list
	stateDone                 // timed out; nothing more to do
)

// Tracker follows one pod. Create it with New and call Run in its own goroutine.
type Tracker struct {
	cfg Config
	pod Pod
	d   Deps
	log *slog.Logger

	state    state
	bundle   *model.Bundle   // model in use
	replaced <-chan struct{} // closed when bundle is replaced
	decided  *model.Bundle   // model that decided the type; its class list is the reference

	sub      Subscription
	deadline time.Duration // HealthyTime at which waiting ends
	timer    *time.Timer
	first    time.Time // time of the pod's first sample, zero until seen
	measured bool      // the first decision's latency was observed
	samples  int       // samples with data in the last window while waiting

	podType  string
	scored   bool // podType has a per-pod score series
	episodes model.Episodes
	openedAt time.Time

	actions sync.WaitGroup
}

// New returns a tracker for pod; Run does the work.
func New(cfg Config, pod Pod, d Deps) *Tracker {
	return &Tracker{
		cfg:      cfg,
		pod:      pod,
		d:        d,
		log:      d.Logger.With("pod", pod.NamespacedName.String()),
		episodes: model.Episodes{Raise: cfg.RaiseWindows, Clear: cfg.ClearWindows},
	}
}

// Run follows the pod until ctx ends (the pod is gone or the watcher stops) or its wait times
// out. On return nothing of the pod is left: subscription closed, its metric series removed,
// its actions finished.
func (t *Tracker) Run(ctx context.Context) {
	defer t.actions.Wait()
	defer t.cleanup()

	t.bundle, t.replaced = t.d.Models.Watch()
	if t.bundle == nil {
		t.log.Error("tracker started without a model")
		return
	}
	if !t.adopt() {
		t.startWaiting()
	}
	for t.state != stateDone {
		var windows <-chan *telemetry.Series
		if t.sub != nil {
			windows = t.sub.C()
		}
		var timeout <-chan time.Time
		if t.state == stateWaiting {
			timeout = t.timer.C
		}
		select {
		case <-ctx.Done():
			return
		case <-t.replaced:
			t.modelChanged()
		case w := <-windows:
			t.window(ctx, w)
		case <-timeout:
			t.checkTimeout(ctx)
		}
	}
}

func (t *Tracker) cleanup() {
	if t.timer != nil {
		t.timer.Stop()
	}
	t.unsubscribe()
	t.forgetScore()
}

// adopt takes over the decision the annotations record, if it was made by the model in use: a
// restarted watcher must neither announce it again nor re-run an open episode's action.
func (t *Tracker) adopt() bool {
	rec, ok := publish.ParseRecord(t.pod.Annotations)
	if !ok || rec.ModelVersion != t.bundle.Version {
		return false
	}
	t.decided = t.bundle
	if rec.State == publish.StateUnclassified {
		t.state = stateDone
		return true
	}
	if rec.Type != publish.TypeUnknown && !slices.Contains(t.bundle.Classes, rec.Type) {
		return false // hand-edited or foreign; decide anew
	}
	t.podType = rec.Type
	t.episodes.Resume(rec.Anomalous)
	if rec.Anomalous {
		t.openedAt = time.Now()
	}
	t.log.Debug("adopted recorded decision", "type", rec.Type, "model", rec.ModelVersion, "anomaly", rec.Anomalous)
	t.arm()
	return true
}

// need is the number of samples with data a pod needs for a decision: MinSamples, at least
// one window; by default two windows, so that the decision skips the pod's first window, its
// start-up, which training data from long-running pods rarely contain (the forests then
// reject it and a pod of a known type comes out unknown).
func (t *Tracker) need() int {
	if t.cfg.MinSamples == 0 {
		return 2 * t.bundle.WindowSamples
	}
	return max(t.cfg.MinSamples, t.bundle.WindowSamples)
}

func (t *Tracker) startWaiting() {
	t.state = stateWaiting
	t.podType, t.decided = "", nil
	t.episodes.Resume(false)
	t.subscribe()
	t.deadline = t.d.Fetcher.HealthyTime() + t.cfg.Timeout
	if t.timer == nil {
		t.timer = time.NewTimer(t.cfg.Timeout)
	} else {
		t.timer.Reset(t.cfg.Timeout)
	}
}

// arm enters the state that follows a decision for t.podType under t.bundle.
func (t *Tracker) arm() {
	if tm := t.bundle.Types[t.podType]; t.podType != publish.TypeUnknown && tm != nil && tm.Forest != nil {
		t.state = stateScoring
		t.subscribe()
		return
	}
	// Nothing to score with: free the pod's buffer and wait for a model that knows more.
	t.state = stateIdle
	t.unsubscribe()
	t.forgetScore()
}

func (t *Tracker) subscribe() {
	if t.sub == nil {
		t.sub = t.d.Fetcher.Subscribe(t.pod.NamespacedName, t.pod.StartTime, t.need())
	}
}

func (t *Tracker) unsubscribe() {
	if t.sub != nil {
		t.sub.Close()
		t.sub = nil
	}
}

func (t *Tracker) forgetScore() {
	if t.scored {
		t.d.Observer.ForgetPod(t.pod.NamespacedName, t.podType)
		t.scored = false
	}
}

// modelChanged follows a model swap. A pod decided by a model with the same class list keeps its
// type and is scored by the new forest; a changed class list re-opens the decision.
func (t *Tracker) modelChanged() {
	old := t.bundle
	t.bundle, t.replaced = t.d.Models.Watch()
	t.log.Debug("model changed", "from", old.Version, "to", t.bundle.Version)
	if old.WindowSamples != t.bundle.WindowSamples && t.sub != nil {
		t.unsubscribe() // the buffer must hold the new window
	}
	switch t.state {
	case stateWaiting:
		t.subscribe()
	case stateScoring, stateIdle:
		if !slices.Equal(t.decided.Classes, t.bundle.Classes) {
			t.log.Info("class list changed; classifying again", "model", t.bundle.Version)
			t.forgetScore()
			t.startWaiting()
			return
		}
		t.arm()
	}
}

func (t *Tracker) window(ctx context.Context, w *telemetry.Series) {
	if w == nil {
		return
	}
	switch t.state {
	case stateWaiting:
		t.tryClassify(ctx, w)
	case stateScoring:
		t.score(ctx, w)
	}
}

// lastWindow returns the model's feature vector of the newest window of w. A shorter series
// (a buffer rebuilt after a model change) is not a window the model knows: ErrNoData.
func (t *Tracker) lastWindow(w *telemetry.Series) ([]float64, error) {
	n, size := w.Len(), t.bundle.WindowSamples
	if n < size {
		return nil, fmt.Errorf("pod %s: %d of %d samples: %w", t.pod.NamespacedName, n, size, features.ErrNoData)
	}
	if n > size {
		w = w.Slice(n-size, n) // Extract is pure: the fetcher's window itself needs no copy
	}
	x, err := features.Extract(w, t.pod.Extra)
	if err != nil {
		return nil, fmt.Errorf("pod %s: window ending %s: %w", t.pod.NamespacedName, w.Time(n-1).Format(time.RFC3339), err)
	}
	return x, nil
}

func (t *Tracker) tryClassify(ctx context.Context, w *telemetry.Series) {
	first, count := dataPoints(w)
	if count == 0 {
		return
	}
	if t.first.IsZero() {
		t.first = first
	}
	t.samples = count
	if count < t.need() {
		return
	}
	x, err := t.lastWindow(w)
	if err != nil {
		if !errors.Is(err, features.ErrNoData) {
			t.log.Warn("cannot extract features", "err", err)
		}
		return
	}
	dec, err := Classify(t.bundle, x, t.cfg.MinConfidence, t.cfg.OpenSetMargin)
	if err != nil {
		t.log.Error("classification failed", "err", err)
		return
	}
	now := time.Now()
	t.timer.Stop()
	t.podType, t.decided = dec.Type, t.bundle
	t.d.Observer.Classified(dec.Type)
	if !t.measured {
		t.measured = true
		t.d.Observer.FirstClassification(now.Sub(t.pod.StartTime), now.Sub(t.first))
	}
	t.log.Info("classified", "type", dec.Type, "nearest", dec.Nearest, "confidence", dec.Confidence,
		"score", dec.Score, "threshold", dec.Threshold, "model", t.bundle.Version, "samples", count)
	if err := t.d.Publisher.Annotate(ctx, t.pod.Pod, publish.Classification(dec.Type, dec.Confidence, t.bundle.Version, now)); err != nil {
		t.log.Error("cannot annotate classification", "err", err)
	}
	t.d.Publisher.Event(t.pod.Pod, corev1.EventTypeNormal, publish.ReasonClassified, classifiedMessage(dec, t.bundle.Version))
	t.arm()
	if t.state == stateScoring {
		// The deciding window is the first one scored.
		t.scoreVector(ctx, x)
	}
}

func (t *Tracker) checkTimeout(ctx context.Context) {
	if left := t.deadline - t.d.Fetcher.HealthyTime(); left > 0 {
		// InfluxDB was unreachable for part of the wait; that time does not count.
		t.timer.Reset(left)
		return
	}
	t.log.Info("classification timed out", "timeout", t.cfg.Timeout, "samples", t.samples, "need", t.need())
	t.d.Observer.ClassificationTimedOut()
	if err := t.d.Publisher.Annotate(ctx, t.pod.Pod, publish.Unclassified(t.bundle.Version, time.Now())); err != nil {
		t.log.Error("cannot annotate timeout", "err", err)
	}
	t.d.Publisher.Event(t.pod.Pod, corev1.EventTypeWarning, publish.ReasonClassificationTimeout,
		fmt.Sprintf(msgTimeout, t.cfg.Timeout, t.samples, t.need()))
	t.state = stateDone
}

func (t *Tracker) score(ctx context.Context, w *telemetry.Series) {
	x, err := t.lastWindow(w)
	if err != nil {
		// A gap is neither normal nor anomalous: the hysteresis counts stand still.
		if !errors.Is(err, features.ErrNoData) {
			t.log.Warn("cannot extract features", "err", err)
		}
		return
	}
	t.scoreVector(ctx, x)
}

func (t *Tracker) scoreVector(ctx context.Context, x []float64) {
	tm := t.bundle.Types[t.podType]
	s, err := tm.Score(x)
	if err != nil {
		t.log.Error("scoring failed", "type", t.podType, "err", err)
		return
	}
	t.d.Observer.AnomalyScore(t.pod.NamespacedName, t.podType, s)
	t.scored = true
	switch t.episodes.Observe(tm.Anomalous(s)) {
	case model.Raised:
		t.raise(ctx, x, s, tm)
	case model.Cleared:
		t.resolve(ctx, s, tm)
	}
}

func (t *Tracker) raise(ctx context.Context, x []float64, score float64, tm *model.TypeModel) {
	now := time.Now()
	t.openedAt = now
	devs := tm.Explain(x, t.cfg.TopFeatures)
	names := make([]string, len(devs))
	for i, d := range devs {
		names[i] = d.Feature
	}
	t.log.Warn("anomaly detected", "type", t.podType, "score", score, "threshold", tm.Threshold, "features", names)
	t.d.Observer.AnomalyRaised(t.podType)
	if err := t.d.Publisher.Annotate(ctx, t.pod.Pod, publish.Anomaly(true, score, names)); err != nil {
		t.log.Error("cannot annotate anomaly", "err", err)
	}
	t.d.Publisher.Event(t.pod.Pod, corev1.EventTypeWarning, publish.ReasonAnomalyDetected,
		fmt.Sprintf(msgAnomaly, t.podType, score, tm.Threshold, t.cfg.RaiseWindows, formatDeviations(devs)))
	if !t.d.Actions.Enabled() {
		return
	}
	// The episode is the lock: this runs once per raise, and the next raise needs a clear first.
	a := actions.Anomaly{
		Namespace: t.pod.Namespace, Pod: t.pod.Name, UID: string(t.pod.UID), Node: t.pod.Node,
		Type: t.podType, ModelVersion: t.bundle.Version, Score: score, Threshold: tm.Threshold,
		Since: now, Features: devs,
	}
	t.actions.Add(1)
	go func() {
		defer t.actions.Done()
		err := t.d.Actions.Run(ctx, a)
		t.d.Observer.ActionDone(err)
		if err != nil {
			t.log.Error("anomaly action failed", "err", err)
		}
	}()
}

func (t *Tracker) resolve(ctx context.Context, score float64, tm *model.TypeModel) {
	lasted := time.Now().Sub(t.openedAt).Round(time.Second)
	t.log.Info("anomaly resolved", "type", t.podType, "score", score, "lasted", lasted)
	if err := t.d.Publisher.Annotate(ctx, t.pod.Pod, publish.Anomaly(false, score, nil)); err != nil {
		t.log.Error("cannot annotate anomaly resolution", "err", err)
	}
	t.d.Publisher.Event(t.pod.Pod, corev1.EventTypeNormal, publish.ReasonAnomalyResolved,
		fmt.Sprintf(msgResolved, t.podType, lasted, score, tm.Threshold, t.cfg.ClearWindows))
}

// dataPoints returns the time of the first grid point of w with any value and how many points
// have one.
func dataPoints(w *telemetry.Series) (first time.Time, count int) {
	for i := range w.Len() {
		for m := range w.Values {
			if i < len(w.Values[m]) && !math.IsNaN(w.Values[m][i]) {
				if count == 0 {
					first = w.Time(i)
				}
				count++
				break
			}
		}
	}
	return first, count
}

// Event messages.
const (
	msgClassified = "classified as %s (confidence %.2f, anomaly score %.3f of threshold %.3f, model %s)"
	msgUnknown    = "classified as unknown: nearest type %s (confidence %.2f) rejected: %s (model %s)"
	msgTimeout    = "not enough metrics after %v of waiting (%d of %d samples); marked unclassified"
	msgAnomaly    = "%s anomaly: score %.3f above threshold %.3f for %d windows; top deviations: %s"
	msgResolved   = "%s anomaly resolved after %v: score %.3f within threshold %.3f for %d windows"
)

func classifiedMessage(d Decision, version string) string {
	if d.Type == publish.TypeUnknown {
		return fmt.Sprintf(msgUnknown, d.Nearest, d.Confidence, d.Why, version)
	}
	return fmt.Sprintf(msgClassified, d.Type, d.Confidence, d.Score, d.Threshold, version)
}

func formatDeviations(devs []features.Deviation) string {
	parts := make([]string, len(devs))
	for i, d := range devs {
		parts[i] = fmt.Sprintf("%s z=%+.1f (%.4g vs %.4g)", d.Feature, d.Z, d.Value, d.Mean)
	}
	return strings.Join(parts, ", ")
}
