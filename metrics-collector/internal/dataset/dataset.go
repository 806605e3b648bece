// Package dataset turns per-pod telemetry into labelled feature windows: the training data of the
// metrics-collector. Labels come from the Kubernetes inventory, never from pod names, and windows
// that overlap a labelled fault are kept apart so they can measure anomaly recall without ever
// being trained on.
package dataset

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/podtype/podtype/shared/features"
	"github.com/podtype/podtype/shared/telemetry"
)

// Reasons a pod is left out of the dataset (keys of Exclusions.Pods).
const (
	// ReasonOtherType: the pod's type is not one of the configured classes.
	ReasonOtherType = "other_type"
	// ReasonNotInInventory: InfluxDB has data for a pod the Kubernetes API no longer knows, so it
	// has no trustworthy label.
	ReasonNotInInventory = "not_in_inventory"
	// ReasonNoUsableWindow: the pod is of a known type but none of its windows had enough data.
	ReasonNoUsableWindow = "no_usable_window"
)

// Reasons a window of a kept pod is left out (keys of Exclusions.Windows).
const (
	// ReasonTooLittleData: features.ErrNoData, the window is mostly gaps.
	ReasonTooLittleData = "too_little_data"
	// ReasonFaultBoundary: a labelled fault covers part of the window, but less than
	// Options.FaultMinOverlap. Such a window is neither normal (it must not teach the forest
	// that a fault's onset is normal) nor a fault window (it mostly shows normal behaviour, so
	// missing it says little about the detector).
	ReasonFaultBoundary = "fault_boundary"
	// ReasonFaultAftermath: no fault touches the window, but one touches the window before it.
	// A fault's effects outlast its label: the restart counts look a window back
	// (telemetry.RestartWindow), leaked memory is freed, runaway files are removed. Such a
	// window is not normal (as training data it teaches the forest that the fault's traces
	// are, and a type with a few of them calibrates its threshold towards 1; in validation,
	// flagging it is the same incident, not a false alarm), nor a fault window.
	ReasonFaultAftermath = "fault_aftermath"
)

// DefaultFaultMinOverlap labels a window by majority: it is a fault window when a fault covers
// at least half of it.
const DefaultFaultMinOverlap = 0.5

// UnknownType is the type recorded for excluded pods whose type could not be determined.
const UnknownType = "unknown"

// Pod is what the trainer knows about a pod from the Kubernetes API.
type Pod struct {
	Name types.NamespacedName
	// Type is the pod's workload type as derived from its labels or image; it may be a type outside
	// the configured classes, or "" when nothing could be derived.
	Type string
	// ImageSizeBytes is the size of the pod's main image on its node; 0 when unknown.
	ImageSizeBytes float64
}

// Window is one pod's feature vector over WindowSamples grid points.
type Window struct {
	Pod   types.NamespacedName
	Node  string
	Type  string
	Start time.Time
	// Fault names the labelled fault covering most of the window; "" for a normal window.
	Fault string
	// FaultShare is the share of the window covered by labelled faults (0 for a normal window).
	FaultShare float64
	Features   []float64
}

// Exclusions counts what was left out and why, so a report can show how much data was not used.
type Exclusions struct {
	// Pods counts left-out pods by reason, then by pod type (UnknownType when there is none).
	Pods map[string]map[string]int `json:"pods"`
	// Windows counts left-out windows of kept pods by reason.
	Windows map[string]int `json:"windows"`
}

func newExclusions() Exclusions {
	return Exclusions{Pods: map[string]map[string]int{}, Windows: map[string]int{}}
}

func (e *Exclusions) pod(reason, typ string) {
	if typ == "" {
		typ = UnknownType
	}
	if e.Pods[reason] == nil {
		e.Pods[reason] = map[string]int{}
	}
	e.Pods[reason][typ]++
}

// Dataset is the labelled window set one training run works on.
type Dataset struct {
	FeatureNames  []string
	WindowStep    time.Duration
	WindowSamples int
	// From and To bound the data that was read (To exclusive).
	From, To time.Time
	// Normal windows train and validate the models; Faults only measure anomaly recall.
	Normal []Window
	Faults []Window
	// Samples is the number of grid points with data inside the kept windows.
	Samples  int
	Excluded Exclusions
}

// PodsByType returns the pods with at least one normal window, per type, sorted by name so that
// anything built on it (the grouped split) is deterministic.
func (d *Dataset) PodsByType() map[string][]types.NamespacedName {
	seen := map[types.NamespacedName]bool{}
	out := map[string][]types.NamespacedName{}
	for _, w := range d.Normal {
		if seen[w.Pod] {
			continue
		}
		seen[w.Pod] = true
		out[w.Type] = append(out[w.Type], w.Pod)
	}
	for _, pods := range out {
		sortPods(pods)
	}
	return out
}

func sortPods(pods []types.NamespacedName) {
	slices.SortFunc(pods, func(a, b types.NamespacedName) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
}

// Options says how series are cut into windows and labelled.
type Options struct {
	// Classes are the pod types to keep; pods of any other type are counted and left out.
	Classes []string
	// WindowSamples grid points of WindowStep each make one window.
	WindowSamples int
	WindowStep    time.Duration
	// Faults is the optional ground truth. A window covered by faults for at least
	// FaultMinOverlap of its length is a fault window; one covered less is left out
	// (ReasonFaultBoundary), and so is the window after a fault (ReasonFaultAftermath); only
	// windows that no fault touches and that follow none are normal.
	Faults []Fault
	// FaultMinOverlap is in (0, 1]; 0 means DefaultFaultMinOverlap.
	FaultMinOverlap float64
}

// Validate reports the first unusable option.
func (o Options) Validate() error {
	switch {
	case len(o.Classes) == 0:
		return errors.New("dataset: no classes")
	case o.WindowSamples < 2:
		return fmt.Errorf("dataset: window samples %d: need at least 2", o.WindowSamples)
	case o.WindowStep <= 0:
		return fmt.Errorf("dataset: window step %s: must be positive", o.WindowStep)
	case !(o.FaultMinOverlap >= 0 && o.FaultMinOverlap <= 1):
		return fmt.Errorf("dataset: fault min overlap %v: want 0 < v <= 1 (0 = default %v)", o.FaultMinOverlap, DefaultFaultMinOverlap)
	}
	return nil
}

// Builder accumulates windows from series read in several chunks. Pod-level exclusions are
// decided in Finish, once every chunk has been seen, so a pod is counted once, not once per chunk.
type Builder struct {
	opt     Options
	classes map[string]bool
	pods    map[types.NamespacedName]Pod
	faults  faultIndex

	ds      *Dataset
	seen    map[types.NamespacedName]bool // pods with any series
	kept    map[types.NamespacedName]bool // pods with at least one usable window
	outside map[types.NamespacedName]bool // pods excluded before windowing
}

// NewBuilder starts a dataset for the given inventory.
func NewBuilder(inventory []Pod, opt Options) (*Builder, error) {
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	b := &Builder{
		opt:     opt,
		classes: make(map[string]bool, len(opt.Classes)),
		pods:    make(map[types.NamespacedName]Pod, len(inventory)),
		faults:  newFaultIndex(opt.Faults),
		ds: &Dataset{
			FeatureNames:  features.Names(),
			WindowStep:    opt.WindowStep,
			WindowSamples: opt.WindowSamples,
			Excluded:      newExclusions(),
		},
		seen:    map[types.NamespacedName]bool{},
		kept:    map[types.NamespacedName]bool{},
		outside: map[types.NamespacedName]bool{},
	}
	if b.opt.FaultMinOverlap == 0 {
		b.opt.FaultMinOverlap = DefaultFaultMinOverlap
	}
	for _, c := range opt.Classes {
		b.classes[c] = true
	}
	for _, p := range inventory {
		b.pods[p.Name] = p
	}
	return b, nil
}

// Add cuts series into non-overlapping windows starting at each series' first sample; a tail
// shorter than a window is dropped (the next chunk starts where this one ended).
func (b *Builder) Add(series []*telemetry.Series) error {
	for _, s := range series {
		if err := b.addSeries(s); err != nil {
			return err
		}
	}
	return nil
}

func (b *Builder) addSeries(s *telemetry.Series) error {
	if s == nil {
		return nil
	}
	b.seen[s.Pod] = true
	pod, ok := b.pods[s.Pod]
	if !ok || !b.classes[pod.Type] {
		b.outside[s.Pod] = true
		return nil
	}
	if s.Step != b.opt.WindowStep {
		return fmt.Errorf("pod %s: series step %s differs from window step %s", s.Pod, s.Step, b.opt.WindowStep)
	}
	n, w := s.Len(), b.opt.WindowSamples
	extra := features.Extra{ImageSizeBytes: pod.ImageSizeBytes}
	for i := 0; i+w <= n; i += w {
		win := s.Slice(i, i+w)
		x, err := features.Extract(win, extra)
		if errors.Is(err, features.ErrNoData) {
			b.ds.Excluded.Windows[ReasonTooLittleData]++
			continue
		}
		if err != nil {
			return fmt.Errorf("pod %s: window at %s: %w", s.Pod, s.Time(i).Format(time.RFC3339), err)
		}
		start := s.Time(i)
		length := time.Duration(w) * s.Step
		end := start.Add(length)
		wd := Window{Pod: s.Pod, Node: s.Node, Type: pod.Type, Start: start, Features: x}
		wd.Fault, wd.FaultShare = b.faults.overlap(s.Pod, start, end)
		switch {
		case wd.Fault == "" && b.faults.touches(s.Pod, start.Add(-length), start):
			b.ds.Excluded.Windows[ReasonFaultAftermath]++
			continue
		case wd.Fault == "":
			b.ds.Normal = append(b.ds.Normal, wd)
		case wd.FaultShare < b.opt.FaultMinOverlap:
			b.ds.Excluded.Windows[ReasonFaultBoundary]++
			continue
		default:
			b.ds.Faults = append(b.ds.Faults, wd)
		}
		b.ds.Samples += samplesWithData(win)
		b.kept[s.Pod] = true
	}
	return nil
}

// samplesWithData counts grid points where any metric has a value.
func samplesWithData(s *telemetry.Series) int {
	n := 0
	for i := range s.Len() {
		for m := range telemetry.NumMetrics {
			if v := s.Values[m][i]; !math.IsNaN(v) {
				n++
				break
			}
		}
	}
	return n
}

// Finish records the pod-level exclusions, sorts the windows by pod and time and returns the dataset.
// The Builder must not be used afterwards.
func (b *Builder) Finish(from, to time.Time) *Dataset {
	for name := range b.seen {
		pod, inInventory := b.pods[name]
		switch {
		case !inInventory:
			b.ds.Excluded.pod(ReasonNotInInventory, UnknownType)
		case b.outside[name]:
			b.ds.Excluded.pod(ReasonOtherType, pod.Type)
		case !b.kept[name]:
			b.ds.Excluded.pod(ReasonNoUsableWindow, pod.Type)
		}
	}
	b.ds.From, b.ds.To = from, to
	SortWindows(b.ds.Normal)
	SortWindows(b.ds.Faults)
	return b.ds
}

// SortWindows orders windows by namespace, pod and start, the order reports and CSV files use.
func SortWindows(ws []Window) {
	slices.SortStableFunc(ws, func(a, b Window) int {
		return cmp.Or(cmp.Compare(a.Pod.Namespace, b.Pod.Namespace), cmp.Compare(a.Pod.Name, b.Pod.Name), a.Start.Compare(b.Start))
	})
}
