// Package modelsource keeps the watcher's current model bundle: loaded from the
// metrics-collector's GET /model (conditional on the ETag) or from a file, re-checked
// periodically, validated, and swapped atomically. An invalid new bundle never replaces a good
// one: the last good model stays in use and the failure is logged and counted.
package modelsource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/podtype/podtype/shared/features"
	"github.com/podtype/podtype/shared/model"
)

// Config says where the bundle comes from.
type Config struct {
	// URL is the collector's bundle endpoint (GET /model); it wins over Path when both are set.
	URL string
	// Path is a bundle file, e.g. a mounted ConfigMap or volume.
	Path string
	// Refresh is how often the source is re-checked once a model is loaded.
	Refresh time.Duration
}

// Observer is told about loads; the service's metrics implement it.
type Observer interface {
	ModelLoaded(version string)
	ModelLoadFailed()
}

// Source holds the current bundle. Current is safe for any number of goroutines; Run is the
// only writer.
type Source struct {
	cfg    Config
	client *http.Client
	obs    Observer
	logger *slog.Logger

	current    atomic.Pointer[snapshot]
	loadedOnce sync.Once
	loaded     chan struct{}

	// Only touched by the goroutine in Run (or a caller of Refresh, never both).
	etag      string
	fileStamp fileStamp
}

// snapshot pairs a bundle with the channel closed when it is replaced, so waiters need no
// polling and no lock.
type snapshot struct {
	bundle   *model.Bundle
	replaced chan struct{}
}

type fileStamp struct {
	modTime time.Time
	size    int64
}

// New returns a Source; client may be nil for a default client (the bundle can be large, so
// its timeout is generous).
func New(cfg Config, client *http.Client, obs Observer, logger *slog.Logger) (*Source, error) {
	if cfg.URL == "" && cfg.Path == "" {
		return nil, errors.New("modelsource: neither a URL nor a path is configured")
	}
	if cfg.Refresh <= 0 {
		return nil, fmt.Errorf("modelsource: refresh %v: must be > 0", cfg.Refresh)
	}
	if client == nil {
		client = &http.Client{Timeout: 2 * time.Minute}
	}
	return &Source{cfg: cfg, client: client, obs: obs, logger: logger, loaded: make(chan struct{})}, nil
}

// Current returns the bundle in use, or nil before the first successful load. Callers keep the
// pointer for as long as they need a consistent model; the bundle is never modified.
func (s *Source) Current() *model.Bundle {
	b, _ := s.Watch()
	return b
}

// Watch returns the bundle in use (nil before the first load) and a channel that is closed when
// it is replaced; a nil channel before the first load never fires, so wait on Loaded first.
func (s *Source) Watch() (*model.Bundle, <-chan struct{}) {
	snap := s.current.Load()
	if snap == nil {
		return nil, nil
	}
	return snap.bundle, snap.replaced
}

// Loaded is closed once a model is available.
func (s *Source) Loaded() <-chan struct{} { return s.loaded }

// Run loads the bundle now and re-checks it every Refresh until ctx ends. Until the first model
// arrives it retries sooner (from 1 s, doubling up to Refresh), since nothing can be classified
// without one. It returns nil when ctx ends.
func (s *Source) Run(ctx context.Context) error {
	retry := time.Second
	for {
		wait := s.cfg.Refresh
		if _, err := s.Refresh(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			s.logger.Error("model load failed; keeping the last good model", "source", s.describe(), "err", err)
			if s.Current() == nil {
				wait = min(retry, s.cfg.Refresh)
				retry *= 2
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// Refresh checks the source once and swaps in a new, valid bundle. changed reports a swap.
// On any error the current bundle stays.
func (s *Source) Refresh(ctx context.Context) (changed bool, err error) {
	b, err := s.fetch(ctx)
	if err == nil && b != nil {
		err = Check(b)
	}
	if err != nil {
		s.obs.ModelLoadFailed()
		return false, fmt.Errorf("model %s: %w", s.describe(), err)
	}
	if b == nil { // not modified
		return false, nil
	}
	if old := s.Current(); old != nil && old.Version == b.Version {
		return false, nil
	}
	if old := s.current.Swap(&snapshot{bundle: b, replaced: make(chan struct{})}); old != nil {
		close(old.replaced)
	}
	s.obs.ModelLoaded(b.Version)
	s.loadedOnce.Do(func() { close(s.loaded) })
	s.logger.Info("model loaded", "source", s.describe(), "version", b.Version, "classes", b.Classes,
		"window_samples", b.WindowSamples, "window_step", b.WindowStep)
	return true, nil
}

// Check validates b and that it was built for this binary's feature code: a bundle trained on
// another feature layout would be fed vectors whose positions mean something else.
func Check(b *model.Bundle) error {
	if err := b.Validate(); err != nil {
		return err
	}
	if b.FeatureVersion != features.Version {
		return fmt.Errorf("feature version %d: this watcher computes version %d", b.FeatureVersion, features.Version)
	}
	if !slices.Equal(b.FeatureNames, features.Names()) {
		return fmt.Errorf("feature names (%d) differ from this watcher's (%d)", len(b.FeatureNames), len(features.Names()))
	}
	if b.WindowSamples < 1 || b.WindowStep <= 0 {
		return fmt.Errorf("window %d x %v: must be positive", b.WindowSamples, b.WindowStep)
	}
	return nil
}

// fetch returns the new bundle, or nil when the source has not changed since the last load.
func (s *Source) fetch(ctx context.Context) (*model.Bundle, error) {
	if s.cfg.URL != "" {
		return s.fetchURL(ctx)
	}
	return s.fetchFile()
}

func (s *Source) fetchURL(ctx context.Context) (*model.Bundle, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.cfg.URL, nil)
	if err != nil {
		return nil, err
	}
	if s.etag != "" && s.Current() != nil {
		req.Header.Set("If-None-Match", s.etag)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotModified:
		return nil, nil
	case http.StatusOK:
	default:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil, fmt.Errorf("GET: status %s", resp.Status)
	}
	b, err := model.Decode(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	// Remember the tag only once the body decoded: a transfer cut short must be fetched again,
	// while a complete bundle that fails Check would fail it again and is skipped until it changes.
	s.etag = resp.Header.Get("ETag")
	return b, nil
}

func (s *Source) fetchFile() (*model.Bundle, error) {
	fi, err := os.Stat(s.cfg.Path)
	if err != nil {
		return nil, err
	}
	stamp := fileStamp{modTime: fi.ModTime(), size: fi.Size()}
	if stamp == s.fileStamp && s.Current() != nil {
		return nil, nil
	}
	b, err := model.ReadFile(s.cfg.Path)
	if err != nil {
		return nil, err
	}
	s.fileStamp = stamp
	return b, nil
}

func (s *Source) describe() string {
	if s.cfg.URL != "" {
		return s.cfg.URL
	}
	return s.cfg.Path
}
