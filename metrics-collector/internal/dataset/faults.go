package dataset

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// Fault is one labelled fault interval of one pod: ground truth from whoever injected it.
type Fault struct {
	Pod   types.NamespacedName
	Name  string
	Start time.Time
	End   time.Time
}

// faultLine is the JSON-lines schema: {"namespace","pod","fault","start","end"}, times in RFC 3339.
type faultLine struct {
	Namespace string    `json:"namespace"`
	Pod       string    `json:"pod"`
	Fault     string    `json:"fault"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
}

// ReadFaults parses a ground-truth labels stream, one JSON object per line; blank lines are skipped.
// A later line with the same namespace, pod, fault and start corrects the end of the earlier one
// (an injector writes the planned end first and corrects it when the fault stops early).
// A fault without an end, or ending before it starts, is an error naming its line: silently
// dropping it would let fault windows leak into the normal training data.
func ReadFaults(r io.Reader) ([]Fault, error) {
	type key struct {
		pod   types.NamespacedName
		name  string
		start int64
	}
	var faults []Fault
	pos := map[key]int{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var fl faultLine
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&fl); err != nil {
			return nil, fmt.Errorf("fault labels line %d: %w", n, err)
		}
		switch {
		case fl.Namespace == "" || fl.Pod == "":
			return nil, fmt.Errorf("fault labels line %d: namespace %q and pod %q must both be set", n, fl.Namespace, fl.Pod)
		case fl.Start.IsZero() || fl.End.IsZero():
			return nil, fmt.Errorf("fault labels line %d: pod %s/%s: start and end must both be set", n, fl.Namespace, fl.Pod)
		case !fl.End.After(fl.Start):
			return nil, fmt.Errorf("fault labels line %d: pod %s/%s: end %s is not after start %s",
				n, fl.Namespace, fl.Pod, fl.End.Format(time.RFC3339), fl.Start.Format(time.RFC3339))
		}
		name := fl.Fault
		if name == "" {
			name = "unnamed"
		}
		f := Fault{
			Pod:   types.NamespacedName{Namespace: fl.Namespace, Name: fl.Pod},
			Name:  name,
			Start: fl.Start,
			End:   fl.End,
		}
		k := key{f.Pod, f.Name, f.Start.UnixNano()}
		if i, ok := pos[k]; ok {
			faults[i].End = f.End
			continue
		}
		pos[k] = len(faults)
		faults = append(faults, f)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("fault labels: %w", err)
	}
	return faults, nil
}

// ReadFaultsFile reads a labels file. An empty path means "no ground truth" and returns no faults;
// a path that does not exist is an error, because a mistyped path would otherwise train on faults.
func ReadFaultsFile(path string) ([]Fault, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("fault labels: %w", err)
	}
	defer f.Close()
	faults, err := ReadFaults(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return faults, nil
}

// faultIndex answers "which fault does this pod window overlap" for many windows.
type faultIndex map[types.NamespacedName][]Fault

func newFaultIndex(faults []Fault) faultIndex {
	idx := make(faultIndex, len(faults))
	for _, f := range faults {
		idx[f.Pod] = append(idx[f.Pod], f)
	}
	return idx
}

// overlap returns the share of [start, end) covered by pod's faults (overlapping faults counted
// once) and the name of the fault covering most of it; "" and 0 when none touches the window.
func (idx faultIndex) overlap(pod types.NamespacedName, start, end time.Time) (name string, share float64) {
	type span struct{ from, to time.Time }
	var spans []span
	var best time.Duration
	for _, f := range idx[pod] {
		from, to := later(f.Start, start), earlier(f.End, end)
		if !from.Before(to) {
			continue
		}
		spans = append(spans, span{from, to})
		if d := to.Sub(from); d > best {
			best, name = d, f.Name
		}
	}
	if len(spans) == 0 {
		return "", 0
	}
	slices.SortFunc(spans, func(a, b span) int { return a.from.Compare(b.from) })
	var covered time.Duration
	cur := spans[0]
	for _, sp := range spans[1:] {
		if sp.from.After(cur.to) {
			covered += cur.to.Sub(cur.from)
			cur = sp
			continue
		}
		cur.to = later(cur.to, sp.to)
	}
	covered += cur.to.Sub(cur.from)
	return name, float64(covered) / float64(end.Sub(start))
}

// touches reports whether any of pod's faults overlaps [start, end).
func (idx faultIndex) touches(pod types.NamespacedName, start, end time.Time) bool {
	name, _ := idx.overlap(pod, start, end)
	return name != ""
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
