// Package features turns one pod's metric window into a fixed-length feature vector.
//
// It is the only place features are computed: the trainer (metrics-collector) and the
// inference side (pod-watcher) both call Extract, so a model never sees vectors built by
// different code than the one it was trained on. Anything that changes the vector — its
// length, order, or the meaning of a value — must bump Version, which model bundles store.
//
// Vector layout (see Names): for every telemetry.Metric in telemetry.Metrics() order, the
// statistics mean, std, min, max, p25, p75, iqr, slope, present; then image_size_log2 and
// availability.
//
// Input conventions:
//   - NaN is a missing sample. ±Inf and negative values are bad input for gauges and rates
//     alike (no metric we collect can be negative: a negative rate comes from a counter reset
//     that telemetry failed to catch), so they are treated as missing too.
//   - Telegraf writes 0 for a field the kubelet did not report, so a metric that is 0 or
//     missing at every grid point of the window is "absent": present=0 and all its
//     statistics are 0. A metric with at least one positive value is present and its zeros
//     are real zeros.
//   - Runs of at most Options.MaxGap missing samples with a value on both sides are filled by
//     linear interpolation. Gaps at the window edges are never extrapolated, longer gaps stay
//     missing; statistics are computed over the samples that have a value.
//   - availability is the share of grid points at which at least one present metric has a
//     sample of its own (interpolated points do not count: they are not data).
//   - std is the population standard deviation; p25/p75 interpolate between closest ranks
//     (Hyndman & Fan type 7); slope is the least-squares slope in units per second over the
//     samples' grid times.
package features

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/podtype/podtype/shared/telemetry"
)

// Version identifies the feature vector layout and semantics; bump it on any change.
const Version = 4

// ErrNoData means the window does not carry enough data to describe the pod yet. It is
// returned wrapped (with the pod and the numbers that failed); callers test it with
// errors.Is and usually wait for more data rather than treating it as a failure.
var ErrNoData = errors.New("features: window has too little data")

// Extra carries per-pod facts that are not time series.
type Extra struct {
	// ImageSizeBytes is the size of the pod's main container image; NaN or 0 when unknown.
	ImageSizeBytes float64
}

// Per-metric statistics, in vector order.
const (
	statMean = iota
	statStd
	statMin
	statMax
	statP25
	statP75
	statIQR
	statSlope
	statPresent
	numStats
)

// numFeatures is the vector length: the per-metric block plus image_size_log2 and availability.
const numFeatures = int(telemetry.NumMetrics)*numStats + 2

// Names returns the feature names in vector order, e.g. "cpu_cores_mean", ...,
// "image_size_log2", "availability". The slice is fresh on every call.
func Names() []string {
	stats := [numStats]string{"mean", "std", "min", "max", "p25", "p75", "iqr", "slope", "present"}
	names := make([]string, 0, numFeatures)
	for _, m := range telemetry.Metrics() {
		for _, s := range stats {
			names = append(names, m.String()+"_"+s)
		}
	}
	return append(names, "image_size_log2", "availability")
}

// Options are the data-quality knobs of feature extraction. Models must be trained and
// scored with the same options; Extract always uses DefaultOptions, and Version only
// describes those, so ExtractWith is meant for experiments and tests.
type Options struct {
	// MaxGap is the longest run of consecutive missing samples that is interpolated.
	MaxGap int
	// MinAvailability is the smallest share of grid points with data a window needs.
	MinAvailability float64
	// MinSamples is the smallest number of grid points with data a window needs; below
	// three, spread and slope say nothing.
	MinSamples int
}

// DefaultOptions returns the options Extract uses.
func DefaultOptions() Options {
	return Options{MaxGap: 2, MinAvailability: 0.5, MinSamples: 3}
}

// Validate reports the first option that is out of range.
func (o Options) Validate() error {
	if o.MaxGap < 0 {
		return fmt.Errorf("features: options: MaxGap %d: must be >= 0", o.MaxGap)
	}
	if math.IsNaN(o.MinAvailability) || o.MinAvailability < 0 || o.MinAvailability > 1 {
		return fmt.Errorf("features: options: MinAvailability %v: must be in [0,1]", o.MinAvailability)
	}
	if o.MinSamples < 1 {
		return fmt.Errorf("features: options: MinSamples %d: must be >= 1", o.MinSamples)
	}
	return nil
}

// Extract computes the feature vector of window w with DefaultOptions. It is pure: w is
// not modified and the result depends only on its arguments. The result has
// len(Names()) entries and never contains NaN or Inf.
//
// It returns an error wrapping ErrNoData when fewer than half of the grid points, or fewer
// than three, carry any data, and a plain error for a malformed window (nil, non-positive
// step, metric slices of different lengths).
func Extract(w *telemetry.Series, extra Extra) ([]float64, error) {
	return ExtractWith(w, extra, DefaultOptions())
}

// ExtractWith is Extract with explicit options; see Options for when to use it.
func ExtractWith(w *telemetry.Series, extra Extra, opt Options) ([]float64, error) {
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	if w == nil {
		return nil, errors.New("features: nil series")
	}
	n := w.Len()
	for _, m := range telemetry.Metrics() {
		// An empty slice is how a reader says "this metric does not exist for the pod";
		// any other length mismatch is a bug upstream that must not be papered over.
		if l := len(w.Values[m]); l != 0 && l != n {
			return nil, fmt.Errorf("pod %s: metric %s has %d samples, want %d", w.Pod, m, l, n)
		}
	}
	if n > 0 && w.Step <= 0 {
		return nil, fmt.Errorf("pod %s: step %v: must be positive", w.Pod, w.Step)
	}

	// Which metrics are present decides which grid points count as having data: a point
	// where only absent (all-zero) metrics have values carries no information.
	var present [telemetry.NumMetrics]bool
	for m, v := range w.Values {
		for _, x := range v {
			if valid(x) && x > 0 {
				present[m] = true
				break
			}
		}
	}
	withData := 0
	for i := range n {
		for m, v := range w.Values {
			if present[m] && valid(v[i]) {
				withData++
				break
			}
		}
	}
	availability := 0.0
	if n > 0 {
		availability = float64(withData) / float64(n)
	}
	if withData < opt.MinSamples {
		return nil, fmt.Errorf("pod %s: %d of %d samples have data, need %d: %w",
			w.Pod, withData, n, opt.MinSamples, ErrNoData)
	}
	if availability < opt.MinAvailability {
		return nil, fmt.Errorf("pod %s: availability %.3f < %.3f: %w",
			w.Pod, availability, opt.MinAvailability, ErrNoData)
	}

	out := make([]float64, numFeatures)
	// One scratch allocation per window: the cleaned series, its sample times and a sorted
	// copy, reused across metrics.
	scratch := make([]float64, 4*n)
	s := stater{
		clean:  scratch[:n],
		vals:   scratch[n : 2*n],
		times:  scratch[2*n : 3*n],
		sorted: scratch[3*n:],
		step:   w.Step.Seconds(),
		maxGap: opt.MaxGap,
	}
	for m, v := range w.Values {
		if !present[m] {
			continue // all statistics stay 0, present=0
		}
		s.compute(v, out[m*numStats:(m+1)*numStats])
	}
	out[numFeatures-2] = imageSizeLog2(extra.ImageSizeBytes)
	out[numFeatures-1] = availability
	for i, x := range out {
		out[i] = finite(x)
	}
	return out, nil
}

// valid reports whether x is a usable sample (see the package comment).
func valid(x float64) bool {
	return x >= 0 && !math.IsInf(x, 1) // NaN fails x >= 0
}

// finite maps the few results that can leave float64 range (a slope over a nanosecond
// step of values near MaxFloat64) to the nearest finite value, so no model sees Inf.
func finite(x float64) float64 {
	switch {
	case math.IsNaN(x):
		return 0
	case math.IsInf(x, 1):
		return math.MaxFloat64
	case math.IsInf(x, -1):
		return -math.MaxFloat64
	}
	return x
}

func imageSizeLog2(b float64) float64 {
	// Below one byte the size is meaningless (and log2 would go negative), so it counts as unknown.
	if math.IsNaN(b) || math.IsInf(b, 0) || b <= 1 {
		return 0
	}
	return math.Log2(b)
}

// stater computes one metric's statistics using caller-owned scratch space.
type stater struct {
	clean, vals, times, sorted []float64
	step                       float64
	maxGap                     int
}

// compute writes the statistics of raw (which has at least one positive sample) into dst.
func (s *stater) compute(raw []float64, dst []float64) {
	n := len(raw)
	clean := s.clean[:n]
	for i, x := range raw {
		if valid(x) {
			clean[i] = x
		} else {
			clean[i] = math.NaN()
		}
	}
	interpolate(clean, s.maxGap)

	vals, times := s.vals[:0], s.times[:0]
	for i, x := range clean {
		if !math.IsNaN(x) {
			vals = append(vals, x)
			times = append(times, float64(i)*s.step)
		}
	}
	k := float64(len(vals))

	lo, hi := vals[0], vals[0]
	sum := 0.0
	for _, x := range vals {
		lo, hi = min(lo, x), max(hi, x)
		sum += x
	}
	mean := sum / k
	if math.IsInf(sum, 0) {
		// Values near MaxFloat64 overflow the sum; a running mean of non-negative values cannot.
		mean = 0
		for i, x := range vals {
			mean += (x - mean) / float64(i+1)
		}
	}

	// Deviations are divided by the largest value before squaring so that huge (but
	// finite) inputs cannot overflow; hi > 0 because the metric is present.
	var ss, tMean float64
	for _, x := range vals {
		d := (x - mean) / hi
		ss += d * d
	}
	std := hi * math.Sqrt(ss/k)

	for _, t := range times {
		tMean += t
	}
	tMean /= k
	slope := 0.0
	if len(vals) > 1 {
		var sxy, sxx float64
		for i, x := range vals {
			dt := times[i] - tMean
			sxy += dt * ((x - mean) / hi)
			sxx += dt * dt
		}
		slope = hi * (sxy / sxx)
	}

	sorted := append(s.sorted[:0], vals...)
	slices.Sort(sorted)
	p25, p75 := quantile(sorted, 0.25), quantile(sorted, 0.75)

	dst[statMean] = mean
	dst[statStd] = std
	dst[statMin] = lo
	dst[statMax] = hi
	dst[statP25] = p25
	dst[statP75] = p75
	dst[statIQR] = p75 - p25
	dst[statSlope] = slope
	dst[statPresent] = 1
}

// interpolate fills interior runs of at most maxGap NaNs in v linearly between their
// neighbours. Runs touching either end are left alone: extrapolating would invent a trend.
func interpolate(v []float64, maxGap int) {
	for i := 0; i < len(v); {
		if !math.IsNaN(v[i]) {
			i++
			continue
		}
		j := i
		for j < len(v) && math.IsNaN(v[j]) {
			j++
		}
		// v[i:j] is a run of NaNs; v[i-1] and v[j] are its neighbours if they exist.
		if i > 0 && j < len(v) && j-i <= maxGap {
			a, b := v[i-1], v[j]
			span := float64(j - i + 1)
			for k := i; k < j; k++ {
				v[k] = a + (b-a)*float64(k-i+1)/span
			}
		}
		i = j
	}
}

// quantile returns the p-quantile of sorted (non-empty) by linear interpolation between
// closest ranks (Hyndman & Fan type 7, the NumPy and R default), so that small windows
// still give values between samples rather than jumping from one sample to the next.
func quantile(sorted []float64, p float64) float64 {
	h := p * float64(len(sorted)-1)
	i := int(h)
	if i+1 >= len(sorted) {
		return sorted[len(sorted)-1]
	}
	frac := h - float64(i)
	return sorted[i] + frac*(sorted[i+1]-sorted[i])
}
