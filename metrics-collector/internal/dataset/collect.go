package dataset

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/podtype/podtype/shared/telemetry"
)

// Source is where a dataset's inputs come from: the Kubernetes inventory and the telemetry store.
// The collector wires it to shared/cluster and shared/telemetry; tests use in-memory values.
type Source interface {
	// Pods lists the pods that may be labelled, with their type and image size.
	Pods(ctx context.Context) ([]Pod, error)
	// Series reads every pod's signals in [from, to) on a grid of step, with container restarts
	// counted over the window grid points ending at each point (telemetry.RestartWindow), in as
	// few queries as the store allows; one series per pod.
	Series(ctx context.Context, from, to time.Time, step time.Duration, window int) ([]*telemetry.Series, error)
}

// DefaultChunkWindows bounds how many windows' worth of data one read fetches: an hour of 10 s
// samples for 60 pods is ~20k points per metric, small enough for one query and one heap.
const DefaultChunkWindows = 30

// Collect reads [to-span, to) chunk by chunk and builds the dataset. Chunks are whole multiples
// of the window length, so no window straddles two reads.
func Collect(ctx context.Context, src Source, to time.Time, span time.Duration, chunkWindows int, opt Options, logger *slog.Logger) (*Dataset, error) {
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	if span <= 0 {
		return nil, fmt.Errorf("dataset: fetch window %s: must be positive", span)
	}
	if chunkWindows <= 0 {
		chunkWindows = DefaultChunkWindows
	}
	winLen := time.Duration(opt.WindowSamples) * opt.WindowStep
	if span < winLen {
		return nil, fmt.Errorf("dataset: fetch window %s is shorter than one feature window (%d x %s)", span, opt.WindowSamples, opt.WindowStep)
	}
	// Align the end to the step grid and use a whole number of windows, so the windows the
	// trainer sees line up with the grid the store aggregates on.
	to = to.Truncate(opt.WindowStep)
	from := to.Add(-(span / winLen) * winLen)

	pods, err := src.Pods(ctx)
	if err != nil {
		return nil, fmt.Errorf("dataset: inventory: %w", err)
	}
	logger.InfoContext(ctx, "inventory read", "pods", len(pods))
	b, err := NewBuilder(pods, opt)
	if err != nil {
		return nil, err
	}
	chunk := time.Duration(chunkWindows) * winLen
	for start := from; start.Before(to); start = start.Add(chunk) {
		end := start.Add(chunk)
		if end.After(to) {
			end = to
		}
		series, err := src.Series(ctx, start, end, opt.WindowStep, opt.WindowSamples)
		if err != nil {
			return nil, fmt.Errorf("dataset: series %s..%s: %w", start.Format(time.RFC3339), end.Format(time.RFC3339), err)
		}
		if err := b.Add(series); err != nil {
			return nil, err
		}
		logger.InfoContext(ctx, "telemetry read", "from", start, "to", end, "series", len(series),
			"normal_windows", len(b.ds.Normal), "fault_windows", len(b.ds.Faults))
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	ds := b.Finish(from, to)
	if len(ds.Normal) == 0 {
		return ds, errors.New("dataset: no usable windows")
	}
	logger.InfoContext(ctx, "dataset built", "normal_windows", len(ds.Normal), "fault_windows", len(ds.Faults),
		"samples", ds.Samples, "excluded_pods", ds.Excluded.Pods, "excluded_windows", ds.Excluded.Windows)
	return ds, nil
}
