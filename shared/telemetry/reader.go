package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"sync/atomic"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/influxdata/influxdb-client-go/v2/api"
	influxhttp "github.com/influxdata/influxdb-client-go/v2/api/http"
	"k8s.io/apimachinery/pkg/types"

	"github.com/podtype/podtype/shared/config"
)

// QueryStats describes one finished query, for metrics and logs.
type QueryStats struct {
	Duration time.Duration
	Rows     int // rows converted to Points, before any Go-side pod filter
	Err      error
}

// ReaderOption configures a Reader.
type ReaderOption func(*Reader)

// WithLogger sets the logger; the default discards.
func WithLogger(l *slog.Logger) ReaderOption { return func(r *Reader) { r.log = l } }

// WithQueryHook has fn called after every query (from the goroutine that ran it), e.g. to feed a
// Prometheus histogram and counter.
func WithQueryHook(fn func(QueryStats)) ReaderOption { return func(r *Reader) { r.hook = fn } }

// WithMaxPodFilter sets how many explicit pods a query names in Flux (see Query.Flux).
func WithMaxPodFilter(n int) ReaderOption { return func(r *Reader) { r.maxPodFilter = n } }

// WithApplicationName sets the User-Agent application name sent to InfluxDB.
func WithApplicationName(name string) ReaderOption { return func(r *Reader) { r.appName = name } }

// WithHTTPClient replaces the HTTP client (its Timeout then takes the place of INFLUXDB_TIMEOUT).
func WithHTTPClient(c *http.Client) ReaderOption { return func(r *Reader) { r.httpClient = c } }

// Reader reads Telegraf's pod metrics from InfluxDB with Flux through influxdb-client-go's
// QueryAPI. It is safe for concurrent use.
type Reader struct {
	client       influxdb2.Client
	query        api.QueryAPI
	bucket       string
	log          *slog.Logger
	hook         func(QueryStats)
	maxPodFilter int
	appName      string
	httpClient   *http.Client
	queries      atomic.Int64
}

// NewReader returns a Reader for cfg, which should have passed cfg.Validate. It does not contact
// the server; use Ping for that.
func NewReader(cfg config.InfluxDB, opts ...ReaderOption) (*Reader, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("influxdb reader: %w", err)
	}
	r := &Reader{bucket: cfg.FluxBucket(), appName: "podtype"}
	for _, o := range opts {
		o(r)
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.httpClient == nil {
		// The client library's default client has a fixed 20 s timeout and shared transport;
		// our own honours INFLUXDB_TIMEOUT and can be closed with the Reader.
		r.httpClient = &http.Client{
			Timeout:   cfg.Timeout,
			Transport: http.DefaultTransport.(*http.Transport).Clone(),
		}
	}
	opt := influxdb2.DefaultOptions().
		SetHTTPClient(r.httpClient).
		SetApplicationName(r.appName)
	// InfluxDB 1.8 accepts "username:password" as the token of its 2.x-compatible API.
	r.client = influxdb2.NewClientWithOptions(cfg.URL, cfg.AuthToken(), opt)
	// The org is ignored by 1.8 and required by 2.x.
	r.query = r.client.QueryAPI(cfg.Org)
	return r, nil
}

// Close releases idle connections. The Reader must not be used afterwards.
func (r *Reader) Close() {
	r.client.Close()
	r.httpClient.CloseIdleConnections()
}

// Ping checks that the server answers on /ping (InfluxDB 1.8 and 2.x); it does not check the
// credentials, which the first query does.
func (r *Reader) Ping(ctx context.Context) error {
	if _, err := r.client.Ping(ctx); err != nil {
		return fmt.Errorf("influxdb ping %s: %w", r.client.ServerURL(), err)
	}
	return nil
}

// Queries returns how many queries the Reader has sent, so a caller can show that the number per
// interval does not grow with the number of pods.
func (r *Reader) Queries() int64 { return r.queries.Load() }

// Read runs q as a single Flux query and calls fn with every row as a Point, streaming: rows are
// not collected. It stops at the first error from fn, from the server or from converting a row
// (a field of unexpected type names its measurement and field).
func (r *Reader) Read(ctx context.Context, q Query, fn func(Point) error) (err error) {
	p, err := q.plan(r.bucket, r.maxPodFilter)
	if err != nil {
		return err
	}
	r.queries.Add(1)
	start := time.Now()
	rows := 0
	defer func() {
		if r.hook != nil {
			r.hook(QueryStats{Duration: time.Since(start), Rows: rows, Err: err})
		}
		r.log.DebugContext(ctx, "influxdb query", "start", q.Start, "stop", q.Stop, "namespaces", len(q.Namespaces),
			"pods", len(q.Pods), "rows", rows, "duration", time.Since(start), "err", err)
	}()

	// Cancelling before Close matters: QueryTableResult.Close drains the rest of the response,
	// which for an early stop could be most of it.
	ctx, cancel := context.WithCancel(ctx)
	res, err := r.query.Query(ctx, p.flux)
	if err != nil {
		cancel()
		var herr *influxhttp.Error
		if errors.As(err, &herr) && (herr.StatusCode == http.StatusUnauthorized || herr.StatusCode == http.StatusForbidden) {
			err = fmt.Errorf("%w (check INFLUXDB_USERNAME and INFLUXDB_PASSWORD, or INFLUXDB_TOKEN)", err)
		}
		return fmt.Errorf("influxdb query %s..%s: %w", fluxTime(q.Start), fluxTime(q.Stop), err)
	}
	defer func() {
		cancel()
		_ = res.Close()
	}()
	for res.Next() {
		pt, err := PointFromRecord(res.Record())
		if err != nil {
			return fmt.Errorf("influxdb query %s..%s: %w", fluxTime(q.Start), fluxTime(q.Stop), err)
		}
		rows++
		if p.pods != nil && !p.pods[pt.Pod] {
			continue
		}
		if err := fn(pt); err != nil {
			return err
		}
	}
	if err := res.Err(); err != nil {
		return fmt.Errorf("influxdb query %s..%s after %d rows: %w", fluxTime(q.Start), fluxTime(q.Stop), rows, err)
	}
	return ctx.Err()
}

// Series reads q and returns every pod's Series on the grid of step (built with opts), from its
// first to its last grid point with data inside [q.Start, q.Stop). It reads from a step and the
// Builder's Lead before q.Start, so that the first grid point is as complete as any other (the
// extra step covers a bucket that begins before q.Start). Points the Builder rejects (negative or
// non-finite values) are skipped and logged at warning level, as one bad row should not cost a
// training run or a watch interval.
func (r *Reader) Series(ctx context.Context, q Query, step time.Duration, opts ...BuilderOption) (map[types.NamespacedName]*Series, error) {
	b, err := NewBuilder(step, opts...)
	if err != nil {
		return nil, err
	}
	wide := q
	wide.Start = q.Start.Add(-step - b.Lead())
	var skipped int
	var firstErr error
	err = r.Read(ctx, wide, func(p Point) error {
		if err := b.Add(p); err != nil {
			skipped++
			if firstErr == nil {
				firstErr = err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if skipped > 0 {
		r.log.WarnContext(ctx, "skipped invalid points", "count", skipped, "first", firstErr)
	}
	out := make(map[types.NamespacedName]*Series)
	for _, pod := range b.Pods() {
		s, _ := b.Series(pod)
		// Keep the grid points whose bucket [g, g+step) overlaps [q.Start, q.Stop); this drops
		// the look-back.
		i, j := 0, s.Len()
		for i < j && !s.Time(i).Add(step).After(q.Start) {
			i++
		}
		for j > i && !s.Time(j-1).Before(q.Stop) {
			j--
		}
		if i >= j || allNaN(s, i, j) {
			continue
		}
		out[pod] = s.Slice(i, j)
	}
	return out, nil
}

func allNaN(s *Series, i, j int) bool {
	for _, v := range s.Values {
		for k := i; k < j && k < len(v); k++ {
			if !math.IsNaN(v[k]) {
				return false
			}
		}
	}
	return true
}
