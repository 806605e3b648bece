package sim

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"
)

// FaultLabel is one line of the labels file: the ground truth of one fault interval. A later line with the
// same namespace, pod, fault and start corrects the end (the pod was deleted or the simulator stopped
// before the planned end).
type FaultLabel struct {
	Namespace string    `json:"namespace"`
	Pod       string    `json:"pod"`
	Fault     FaultKind `json:"fault"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
}

// labelWriter appends labels as JSON lines, one Write per line so a reader never sees half a line and a
// crash loses nothing that was reported.
type labelWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (lw *labelWriter) write(l FaultLabel) error {
	if lw == nil || lw.w == nil {
		return nil
	}
	l.Start, l.End = l.Start.UTC(), l.End.UTC()
	b, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("fault label %s/%s %s: %w", l.Namespace, l.Pod, l.Fault, err)
	}
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if _, err := lw.w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("fault label %s/%s %s: write: %w", l.Namespace, l.Pod, l.Fault, err)
	}
	return nil
}

// ReadFaultLabels reads a labels file and returns one label per fault interval, in order of first
// appearance, with corrections applied.
func ReadFaultLabels(r io.Reader) ([]FaultLabel, error) {
	type key struct {
		ns, pod string
		kind    FaultKind
		start   int64
	}
	var out []FaultLabel
	index := map[key]int{}
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var l FaultLabel
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, fmt.Errorf("fault labels line %d: %w", line, err)
		}
		if l.Pod == "" || l.Fault == "" || l.Start.IsZero() || l.End.IsZero() {
			return nil, fmt.Errorf("fault labels line %d: %q lacks pod, fault, start or end", line, sc.Text())
		}
		k := key{l.Namespace, l.Pod, l.Fault, l.Start.UnixNano()}
		if i, ok := index[k]; ok {
			out[i].End = l.End
			continue
		}
		index[k] = len(out)
		out = append(out, l)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("fault labels: %w", err)
	}
	return out, nil
}
