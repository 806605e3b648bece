package actions

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/podtype/podtype/shared/features"
)

// hostile is a pod name (as far as an action is concerned: names reach it as data) full of
// shell syntax. If any of it were interpreted, the marker file would appear.
func hostile(dir string) Anomaly {
	marker := filepath.Join(dir, "pwned")
	return Anomaly{
		Namespace: "shop",
		Pod:       "db-0; touch " + marker + " $(touch " + marker + ") `touch " + marker + "` ' \" | & > <",
		UID:       "uid-1",
		Type:      "mysql",
		Score:     0.71,
		Threshold: 0.6,
		Since:     time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Features:  []features.Deviation{{Feature: "cpu_cores_mean", Value: 3, Mean: 0.5, Z: 12}},
	}
}

func newRunner(t *testing.T, cfg Config) *Runner {
	t.Helper()
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.MaxConcurrent == 0 {
		cfg.MaxConcurrent = 2
	}
	r, err := New(cfg, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestCommandGetsDataNotShell(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh to play the operator's script")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	// The operator's script: writes its env and stdin. It quotes its input properly; the
	// point is that the watcher never builds a shell string from pod data.
	script := filepath.Join(dir, "action.sh")
	if err := os.WriteFile(script, []byte(`#!/bin/sh
printf '%s\n' "$PODTYPE_POD" > "$1"
printf '%s\n' "$PODTYPE_FEATURES" >> "$1"
cat >> "$1"
`), 0o755); err != nil {
		t.Fatal(err)
	}
	a := hostile(dir)
	r := newRunner(t, Config{Command: []string{sh, script, out}})
	if err := r.Run(t.Context(), a); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "pwned")); err == nil {
		t.Fatal("pod name was executed")
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitN(string(b), "\n", 3)
	if lines[0] != a.Pod {
		t.Errorf("PODTYPE_POD = %q, want the name byte for byte %q", lines[0], a.Pod)
	}
	if lines[1] != "cpu_cores_mean" {
		t.Errorf("PODTYPE_FEATURES = %q", lines[1])
	}
	var got Anomaly
	if err := json.Unmarshal([]byte(lines[2]), &got); err != nil {
		t.Fatalf("stdin is not the anomaly as JSON: %v", err)
	}
	if got.Pod != a.Pod || got.Score != a.Score {
		t.Errorf("stdin anomaly %+v", got)
	}
}

func TestCommandTimeoutAndFailure(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	tests := []struct {
		name    string
		script  string
		timeout time.Duration
		want    string
	}{
		{"killed after the timeout", "sleep 60", 100 * time.Millisecond, "context deadline exceeded"},
		{"exit status with output", "echo broken >&2; exit 3", time.Minute, `exit status 3 (output: "broken\n")`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRunner(t, Config{Command: []string{sh, "-c", tt.script}, Timeout: tt.timeout})
			err := r.Run(t.Context(), hostile(t.TempDir()))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestWebhook(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		wantErr bool
	}{
		{"accepted", http.StatusAccepted, false},
		{"refused", http.StatusInternalServerError, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got Anomaly
			var contentType string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				contentType = r.Header.Get("Content-Type")
				body, _ := io.ReadAll(r.Body)
				_ = json.Unmarshal(body, &got)
				w.WriteHeader(tt.status)
			}))
			defer srv.Close()
			a := hostile(t.TempDir())
			r := newRunner(t, Config{WebhookURL: srv.URL + "/hook"})
			err := r.Run(t.Context(), a)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v, want error %v", err, tt.wantErr)
			}
			if contentType != "application/json" || got.Pod != a.Pod || got.Features[0].Feature != "cpu_cores_mean" {
				t.Errorf("webhook got %q %+v", contentType, got)
			}
		})
	}
}

func TestNewValidates(t *testing.T) {
	tests := []Config{
		{Timeout: 0, MaxConcurrent: 1},
		{Timeout: time.Second, MaxConcurrent: 0},
		{Timeout: time.Second, MaxConcurrent: 1, Command: []string{""}},
	}
	for _, cfg := range tests {
		if _, err := New(cfg, nil, slog.New(slog.DiscardHandler)); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
	r, err := New(Config{Timeout: time.Second, MaxConcurrent: 1}, nil, slog.New(slog.DiscardHandler))
	if err != nil || r.Enabled() {
		t.Errorf("no action configured: Enabled = %v, err %v", r.Enabled(), err)
	}
}
