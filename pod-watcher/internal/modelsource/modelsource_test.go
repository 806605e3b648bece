package modelsource

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/podtype/podtype/shared/model"

	"github.com/podtype/podtype/pod-watcher/internal/testmodel"
)

type loads struct {
	mu       sync.Mutex
	versions []string
	failed   int
}

func (l *loads) ModelLoaded(v string) { l.mu.Lock(); l.versions = append(l.versions, v); l.mu.Unlock() }
func (l *loads) ModelLoadFailed()     { l.mu.Lock(); l.failed++; l.mu.Unlock() }

func encoded(t *testing.T, b *model.Bundle) []byte {
	t.Helper()
	data, err := testmodel.Encode(b)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func testBundle(t *testing.T, version int) *model.Bundle {
	t.Helper()
	b, err := testmodel.Bundle(version)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// collector serves a bundle like the metrics-collector's GET /model: ETag, If-None-Match.
type collector struct {
	mu       sync.Mutex
	body     []byte
	etag     string
	full     int // 200 responses
	notMod   int // 304 responses
	sentETag []string
}

func (c *collector) set(body []byte, etag string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.body, c.etag = body, etag
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sentETag = append(c.sentETag, r.Header.Get("If-None-Match"))
	if r.Header.Get("If-None-Match") == c.etag {
		c.notMod++
		w.WriteHeader(http.StatusNotModified)
		return
	}
	c.full++
	w.Header().Set("ETag", c.etag)
	_, _ = w.Write(c.body)
}

func newSource(t *testing.T, cfg Config, obs Observer) *Source {
	t.Helper()
	if cfg.Refresh == 0 {
		cfg.Refresh = time.Minute
	}
	s, err := New(cfg, nil, obs, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestURLSourceSwapsAndKeepsLastGood(t *testing.T) {
	b1, b2 := testBundle(t, 1), testBundle(t, 2)
	newer := *testBundle(t, 3)
	newer.FeatureVersion++ // trained by other feature code: must never be used
	c := &collector{}
	c.set(encoded(t, b1), b1.ETag())
	srv := httptest.NewServer(c)
	defer srv.Close()
	obs := &loads{}
	s := newSource(t, Config{URL: srv.URL + "/model"}, obs)

	steps := []struct {
		name        string
		serve       func()
		wantChanged bool
		wantErr     bool
		wantVersion string
	}{
		{"first load", func() {}, true, false, b1.Version},
		{"not modified", func() {}, false, false, b1.Version},
		{"corrupt bundle", func() { c.set([]byte("not gzip"), `"x"`) }, false, true, b1.Version},
		{"other feature version", func() { c.set(encoded(t, &newer), `"y"`) }, false, true, b1.Version},
		{"new bundle", func() { c.set(encoded(t, b2), b2.ETag()) }, true, false, b2.Version},
	}
	for _, st := range steps {
		st.serve()
		_, replaced := s.Watch()
		changed, err := s.Refresh(t.Context())
		if changed != st.wantChanged || (err != nil) != st.wantErr {
			t.Fatalf("%s: changed %v, err %v; want changed %v, error %v", st.name, changed, err, st.wantChanged, st.wantErr)
		}
		if got := s.Current().Version; got != st.wantVersion {
			t.Fatalf("%s: current %s, want %s", st.name, got, st.wantVersion)
		}
		select {
		case <-replaced:
			if !st.wantChanged && replaced != nil {
				t.Errorf("%s: replaced fired without a swap", st.name)
			}
		default:
			if st.wantChanged && replaced != nil {
				t.Errorf("%s: replaced did not fire on a swap", st.name)
			}
		}
	}
	if c.notMod != 1 || c.sentETag[1] != b1.ETag() {
		t.Errorf("conditional requests: %d not-modified, tags sent %q", c.notMod, c.sentETag)
	}
	if len(obs.versions) != 2 || obs.failed != 2 {
		t.Errorf("observer saw loads %v and %d failures, want 2 and 2", obs.versions, obs.failed)
	}
	select {
	case <-s.Loaded():
	default:
		t.Error("Loaded not closed")
	}
}

func TestFileSource(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.bundle")
	b1, b2 := testBundle(t, 1), testBundle(t, 2)
	if err := model.WriteFile(path, b1); err != nil {
		t.Fatal(err)
	}
	s := newSource(t, Config{Path: path}, &loads{})
	if changed, err := s.Refresh(t.Context()); !changed || err != nil {
		t.Fatalf("first load: %v %v", changed, err)
	}
	if changed, err := s.Refresh(t.Context()); changed || err != nil {
		t.Fatalf("unchanged file: %v %v", changed, err)
	}
	if err := os.WriteFile(path, []byte("garbage that is longer than before"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Refresh(t.Context()); err == nil || s.Current().Version != b1.Version {
		t.Fatalf("corrupt file: err %v, current %s", err, s.Current().Version)
	}
	if err := model.WriteFile(path, b2); err != nil {
		t.Fatal(err)
	}
	if changed, err := s.Refresh(t.Context()); !changed || err != nil || s.Current().Version != b2.Version {
		t.Fatalf("new file: %v %v %s", changed, err, s.Current().Version)
	}
}

func TestRunRetriesUntilTheFirstModel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "model.bundle")
	var data bytes.Buffer
	if err := model.Encode(&data, testBundle(t, 1)); err != nil {
		t.Fatal(err)
	}
	synctest.Test(t, func(t *testing.T) {
		obs := &loads{}
		s := newSource(t, Config{Path: path, Refresh: time.Hour}, obs)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- s.Run(ctx) }()
		time.Sleep(5 * time.Second) // retries at 0, 1, 3 s; not an hour apart
		synctest.Wait()
		if err := os.WriteFile(path, data.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Second) // next retry at 7 s
		synctest.Wait()
		select {
		case <-s.Loaded():
		default:
			t.Fatalf("no model 3 s after the file appeared (%d failures)", obs.failed)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

func TestNewValidates(t *testing.T) {
	for _, cfg := range []Config{{Refresh: time.Minute}, {URL: "http://x", Refresh: 0}} {
		if _, err := New(cfg, nil, &loads{}, slog.New(slog.DiscardHandler)); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}
