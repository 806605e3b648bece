package tracker

// transition is what one observation did to an anomaly episode.
type transition int

const (
	unchanged transition = iota
	raised
	cleared
)

// hysteresis opens an episode after raise anomalous windows in a row and closes it after clear
// normal windows in a row, so one noisy window neither raises nor resolves anything.
type hysteresis struct {
	raise, clear      int
	anomalous, normal int // current run lengths
	open              bool
}

func (h *hysteresis) observe(anomalous bool) transition {
	if anomalous {
		h.anomalous++
		h.normal = 0
	} else {
		h.normal++
		h.anomalous = 0
	}
	switch {
	case !h.open && h.anomalous >= h.raise:
		h.open = true
		return raised
	case h.open && h.normal >= h.clear:
		h.open = false
		return cleared
	}
	return unchanged
}

func (h *hysteresis) reset() { h.anomalous, h.normal, h.open = 0, 0, false }
