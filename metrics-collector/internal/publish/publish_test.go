package publish

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/podtype/podtype/shared/features"
	"github.com/podtype/podtype/shared/iforest"
	"github.com/podtype/podtype/shared/model"
)

// bundle returns a small valid bundle; different seeds give different bundles.
func bundle(t *testing.T, seed uint64) *model.Bundle {
	t.Helper()
	names := []string{"cpu_cores_mean", "memory_usage_bytes_mean"}
	classes := []string{"mysql", "nginx"}
	x := [][]float64{{0, 0}, {0, 1}, {1, 0}, {1, 1}, {0.5, 0.2}, {0.1, 0.9}}
	y := []int{0, 0, 1, 1, 0, 1}
	clf, err := model.TrainClassifier(context.Background(), x, y, classes, names, model.TrainOptions{Algorithm: model.AlgorithmID3})
	if err != nil {
		t.Fatal(err)
	}
	// The type models' forests are over anomaly vectors; any rows of that width will do here.
	n := len(features.AnomalyNames())
	rows := make([][]float64, len(x))
	for i := range x {
		rows[i] = slices.Repeat(x[i][:1], n)
	}
	forest, err := iforest.Train(rows, iforest.Config{Trees: 5, Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	tm := &model.TypeModel{Forest: forest, Threshold: 0.6, Mean: make([]float64, n), Std: slices.Repeat([]float64{0.5}, n)}
	return &model.Bundle{
		CreatedAt:           time.Unix(1_700_000_000+int64(seed), 0).UTC(),
		FeatureVersion:      features.Version,
		FeatureNames:        names,
		AnomalyFeatureNames: features.AnomalyNames(),
		Classes:             classes,
		WindowStep:          10 * time.Second,
		WindowSamples:       12,
		Classifier:          clf,
		Types:               map[string]*model.TypeModel{"mysql": tm, "nginx": tm},
	}
}

func server(t *testing.T, s *Store) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(Handler(s, prometheus.NewRegistry(), slog.New(slog.DiscardHandler)))
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func TestHandlerBeforeFirstBundle(t *testing.T) {
	srv := server(t, &Store{})
	tests := []struct {
		path string
		want int
	}{
		{"/model", http.StatusServiceUnavailable},
		{"/readyz", http.StatusServiceUnavailable},
		{"/healthz", http.StatusOK},
		{"/metrics", http.StatusOK},
		{"/nothing", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, _ := get(t, srv.URL+tt.path)
			if resp.StatusCode != tt.want {
				t.Errorf("GET %s = %d, want %d", tt.path, resp.StatusCode, tt.want)
			}
			if tt.path == "/model" && resp.Header.Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
		})
	}
}

func TestPublishAndServe(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "model.json.gz") // Publish creates the directory
	store := &Store{}
	srv := server(t, store)

	first, err := store.Publish(path, bundle(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	resp, body := get(t, srv.URL+"/model")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /model = %d", resp.StatusCode)
	}
	etag := resp.Header.Get("ETag")
	if etag == "" || etag != first.ETag || !strings.HasPrefix(etag, `"`) {
		t.Errorf("ETag %q, want the snapshot's strong tag %q", etag, first.ETag)
	}
	onDisk, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(body, onDisk) {
		t.Error("served bytes differ from the file")
	}
	b, err := model.Decode(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("served bundle does not decode: %v", err)
	}
	if resp.Header.Get("X-Model-Version") != b.Version {
		t.Errorf("X-Model-Version %q, bundle version %q", resp.Header.Get("X-Model-Version"), b.Version)
	}

	t.Run("conditional GET", func(t *testing.T) {
		tests := []struct {
			name, ifNoneMatch string
			want              int
		}{
			{"same tag", etag, http.StatusNotModified},
			{"weak form of the same tag", "W/" + etag, http.StatusNotModified},
			{"one of several", `"other", ` + etag, http.StatusNotModified},
			{"any", "*", http.StatusNotModified},
			{"other tag", `"other"`, http.StatusOK},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				resp, body := get(t, srv.URL+"/model", "If-None-Match", tt.ifNoneMatch)
				if resp.StatusCode != tt.want {
					t.Errorf("If-None-Match %s: status %d, want %d", tt.ifNoneMatch, resp.StatusCode, tt.want)
				}
				if tt.want == http.StatusNotModified && len(body) != 0 {
					t.Errorf("304 with a %d-byte body", len(body))
				}
			})
		}
	})

	t.Run("replace keeps the previous bundle", func(t *testing.T) {
		second, err := store.Publish(path, bundle(t, 2))
		if err != nil {
			t.Fatal(err)
		}
		if second.ETag == first.ETag {
			t.Fatal("a different bundle got the same ETag")
		}
		prev, err := os.ReadFile(path + ".prev")
		if err != nil {
			t.Fatalf("previous bundle not kept: %v", err)
		}
		if !bytes.Equal(prev, onDisk) {
			t.Error("path.prev is not the previous bundle")
		}
		resp, _ := get(t, srv.URL+"/model", "If-None-Match", etag)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("ETag") != second.ETag {
			t.Errorf("after a new bundle, the old tag got %d with ETag %s; want 200 with %s", resp.StatusCode, resp.Header.Get("ETag"), second.ETag)
		}
		if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 2 {
			t.Errorf("directory holds %d files, want the bundle and .prev (no temp files left)", len(entries))
		}
	})

	t.Run("damaged file is not served", func(t *testing.T) {
		cur, _ := store.Current()
		bad := filepath.Join(dir, "damaged.json.gz")
		if err := os.WriteFile(bad, cur.Data[:len(cur.Data)/2], 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := store.Load(bad); err == nil {
			t.Fatal("a truncated bundle loaded")
		}
		if now, _ := store.Current(); now != cur {
			t.Error("a failed load replaced the served bundle")
		}
		resp, _ := get(t, srv.URL+"/readyz")
		if resp.StatusCode != http.StatusOK {
			t.Errorf("readyz = %d with a bundle served", resp.StatusCode)
		}
	})
}

func TestPublishInvalidBundle(t *testing.T) {
	path := filepath.Join(t.TempDir(), "model.json.gz")
	store := &Store{}
	b := bundle(t, 1)
	b.Types["nginx"] = nil
	if _, err := store.Publish(path, b); err == nil {
		t.Fatal("an invalid bundle was published")
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an invalid bundle left a file: %v", err)
	}
	if _, err := store.Current(); !errors.Is(err, ErrNoBundle) {
		t.Errorf("Current = %v, want ErrNoBundle", err)
	}
}
