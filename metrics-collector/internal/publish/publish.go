// Package publish hands trained bundles to the pod-watchers: it writes them to the model path
// atomically (the previous one kept beside it) and serves the current one over HTTP, together
// with the collector's health and Prometheus endpoints.
package publish

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/podtype/podtype/shared/model"
)

// ErrNoBundle is returned by Current before any bundle was loaded or published.
var ErrNoBundle = errors.New("publish: no model bundle yet")

// Snapshot is one published bundle as served: the exact file bytes and what identifies them.
type Snapshot struct {
	Data []byte
	// ETag is the bundle's strong entity tag (its payload checksum), so a watcher that already
	// has this bundle gets a 304 and downloads again only after a new training.
	ETag    string
	Version string
	ModTime time.Time
}

// Store holds the bundle currently served. It is safe for concurrent use; the zero value serves
// nothing until Load or Publish succeeds.
type Store struct {
	mu      sync.RWMutex
	current *Snapshot
}

// Current returns the served snapshot or ErrNoBundle. The returned value must not be modified.
func (s *Store) Current() (*Snapshot, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.current == nil {
		return nil, ErrNoBundle
	}
	return s.current, nil
}

// Publish writes b to path with model.WriteFile (temp file + rename, the previous bundle kept as
// path+".prev"), then serves what was written. Only a file that decodes and verifies is served:
// the bytes on disk, not the in-memory bundle, are what a restarted collector would serve.
func (s *Store) Publish(path string, b *model.Bundle) (*Snapshot, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	if err := model.WriteFile(path, b); err != nil {
		return nil, fmt.Errorf("publish %s: %w", path, err)
	}
	return s.Load(path)
}

// Load reads and verifies the bundle file at path and serves it. On error the store keeps
// serving what it had.
func (s *Store) Load(path string) (*Snapshot, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load bundle: %w", err)
	}
	b, err := model.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("load bundle %s: %w", path, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("load bundle: %w", err)
	}
	snap := &Snapshot{
		Data:    data,
		ETag:    b.ETag(),
		Version: b.Version,
		ModTime: fi.ModTime(),
	}
	s.mu.Lock()
	s.current = snap
	s.mu.Unlock()
	return snap, nil
}
