package model

// Transition is what one verdict did to an anomaly episode.
type Transition int

const (
	Unchanged Transition = iota
	Raised
	Cleared
)

// Episodes turns a pod's stream of per-window verdicts (TypeModel.Anomalous) into anomaly
// episodes with hysteresis: an episode opens after Raise anomalous windows in a row and
// closes after Clear normal windows in a row. The watcher scores a sliding window every poll,
// so one odd sample is in a whole window's worth of verdicts; Raise is what keeps it from
// opening an episode alone. The pod-watcher and the trainer's offline evaluation of alert
// volume use this one type. Set Raise and Clear (both >= 1) before the first Observe.
type Episodes struct {
	Raise, Clear      int
	anomalous, normal int // current run lengths
	open              bool
}

// Observe records one window's verdict and reports whether it opened or closed an episode.
func (e *Episodes) Observe(anomalous bool) Transition {
	if anomalous {
		e.anomalous++
		e.normal = 0
	} else {
		e.normal++
		e.anomalous = 0
	}
	switch {
	case !e.open && e.anomalous >= e.Raise:
		e.open = true
		return Raised
	case e.open && e.normal >= e.Clear:
		e.open = false
		return Cleared
	}
	return Unchanged
}

// Resume continues from a known state (an episode recorded before a restart of the watcher)
// with no run counted yet.
func (e *Episodes) Resume(open bool) { e.anomalous, e.normal, e.open = 0, 0, open }
