package dataset

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/podtype/podtype/shared/features"
)

// csvFixed are the columns before the features, in order.
var csvFixed = []string{"namespace", "pod", "node", "type", "window_start", "window_end", "fault"}

// CSVHeader returns the header row: identity and label columns, then one column per feature.
// Identity columns are for people joining the data with their own; they are never features.
func CSVHeader(featureNames []string) []string {
	return append(slices.Clone(csvFixed), featureNames...)
}

// WriteCSV writes one row per window, normal and fault windows alike (fault is empty for a
// normal window). Floats are written in the shortest form that reads back to the same value,
// so a from-CSV training sees exactly the vectors an online training saw.
func WriteCSV(w io.Writer, ds *Dataset) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader(ds.FeatureNames)); err != nil {
		return fmt.Errorf("csv header: %w", err)
	}
	winLen := time.Duration(ds.WindowSamples) * ds.WindowStep
	row := make([]string, len(csvFixed)+len(ds.FeatureNames))
	all := append(slices.Clone(ds.Normal), ds.Faults...)
	SortWindows(all)
	for _, win := range all {
		if len(win.Features) != len(ds.FeatureNames) {
			return fmt.Errorf("pod %s: window at %s: %d features, header has %d", win.Pod, win.Start.Format(time.RFC3339), len(win.Features), len(ds.FeatureNames))
		}
		row = append(row[:0], win.Pod.Namespace, win.Pod.Name, win.Node, win.Type,
			win.Start.UTC().Format(time.RFC3339Nano), win.Start.Add(winLen).UTC().Format(time.RFC3339Nano), win.Fault)
		for _, v := range win.Features {
			row = append(row, strconv.FormatFloat(v, 'g', -1, 64))
		}
		if err := cw.Write(row); err != nil {
			return fmt.Errorf("csv: %w", err)
		}
	}
	cw.Flush()
	return cw.Error()
}

// ReadCSV reads a WriteCSV file back. The feature columns must be exactly features.Names() of
// this build: a file from another feature version would silently mean different things.
// Rows whose window length differs from opt's window, or whose values are not finite numbers,
// are errors naming the line; rows of types outside opt.Classes are counted as excluded pods.
func ReadCSV(r io.Reader, opt Options) (*Dataset, error) {
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	names := features.Names()
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, errors.New("csv: empty file")
	}
	if err != nil {
		return nil, fmt.Errorf("csv header: %w", err)
	}
	want := CSVHeader(names)
	if err := checkHeader(header, want); err != nil {
		return nil, fmt.Errorf("csv header (feature version %d): %w", features.Version, err)
	}
	classes := map[string]bool{}
	for _, c := range opt.Classes {
		classes[c] = true
	}
	winLen := time.Duration(opt.WindowSamples) * opt.WindowStep
	ds := &Dataset{
		FeatureNames:  names,
		WindowStep:    opt.WindowStep,
		WindowSamples: opt.WindowSamples,
		Excluded:      newExclusions(),
	}
	otherType := map[types.NamespacedName]string{}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			return nil, fmt.Errorf("csv: %w", err)
		}
		win, err := parseRow(rec, len(csvFixed), names)
		if err != nil {
			return nil, fmt.Errorf("csv line %d: %w", line, err)
		}
		end, err := time.Parse(time.RFC3339Nano, rec[5])
		if err != nil {
			return nil, fmt.Errorf("csv line %d: window_end %q: %w", line, rec[5], err)
		}
		if got := end.Sub(win.Start); got != winLen {
			return nil, fmt.Errorf("csv line %d: window is %s long, but WINDOW_SAMPLES x WINDOW_STEP = %d x %s = %s",
				line, got, opt.WindowSamples, opt.WindowStep, winLen)
		}
		if !classes[win.Type] {
			otherType[win.Pod] = win.Type
			continue
		}
		if ds.From.IsZero() || win.Start.Before(ds.From) {
			ds.From = win.Start
		}
		if end.After(ds.To) {
			ds.To = end
		}
		ds.Samples += opt.WindowSamples
		if win.Fault == "" {
			ds.Normal = append(ds.Normal, win)
		} else {
			ds.Faults = append(ds.Faults, win)
		}
	}
	for _, typ := range otherType {
		ds.Excluded.pod(ReasonOtherType, typ)
	}
	if len(ds.Normal) == 0 {
		return ds, errors.New("csv: no normal windows of the configured classes")
	}
	SortWindows(ds.Normal)
	SortWindows(ds.Faults)
	return ds, nil
}

func parseRow(rec []string, fixed int, names []string) (Window, error) {
	start, err := time.Parse(time.RFC3339Nano, rec[4])
	if err != nil {
		return Window{}, fmt.Errorf("window_start %q: %w", rec[4], err)
	}
	win := Window{
		Pod:      types.NamespacedName{Namespace: rec[0], Name: rec[1]},
		Node:     rec[2],
		Type:     rec[3],
		Start:    start,
		Fault:    rec[6],
		Features: make([]float64, len(names)),
	}
	if win.Pod.Namespace == "" || win.Pod.Name == "" || win.Type == "" {
		return Window{}, fmt.Errorf("namespace %q, pod %q and type %q must all be set", rec[0], rec[1], rec[3])
	}
	for i, name := range names {
		s := rec[fixed+i]
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return Window{}, fmt.Errorf("pod %s: %s %q: %w", win.Pod, name, s, err)
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return Window{}, fmt.Errorf("pod %s: %s = %v: want a finite number", win.Pod, name, v)
		}
		win.Features[i] = v
	}
	return win, nil
}

// checkHeader names the first column where got and want part.
func checkHeader(got, want []string) error {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Errorf("column %d is %q, want %q", i+1, got[i], want[i])
		}
	}
	if len(got) != len(want) {
		return fmt.Errorf("%d columns, want %d", len(got), len(want))
	}
	return nil
}
