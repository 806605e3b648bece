// Package actions runs the operator's reaction to an anomaly: a webhook POST and/or a command,
// once per anomaly episode (the caller holds the episode lock, see tracker).
//
// Pod data never reaches a shell: the command is executed directly with fixed arguments, and the
// anomaly travels in environment variables and as JSON on stdin, so a hostile pod name is just
// bytes in a variable.
package actions

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"time"

	"github.com/podtype/podtype/shared/features"
)

// Anomaly is what an action learns about an anomaly episode that just opened.
type Anomaly struct {
	Namespace    string               `json:"namespace"`
	Pod          string               `json:"pod"`
	UID          string               `json:"uid"`
	Node         string               `json:"node,omitempty"`
	Type         string               `json:"type"`
	ModelVersion string               `json:"model_version"`
	Score        float64              `json:"score"`
	Threshold    float64              `json:"threshold"`
	Since        time.Time            `json:"since"`
	Features     []features.Deviation `json:"features"`
}

// Config says which actions run.
type Config struct {
	// WebhookURL receives a POST with the Anomaly as JSON; empty disables it.
	WebhookURL string
	// Command is an executable and its fixed arguments; empty disables it.
	Command []string
	// Timeout bounds each action; the command is killed when it expires.
	Timeout time.Duration
	// MaxConcurrent bounds actions running at once, so a cluster-wide incident cannot fork
	// thousands of processes.
	MaxConcurrent int
}

// Runner runs the configured actions.
type Runner struct {
	cfg    Config
	client *http.Client
	sem    chan struct{}
	logger *slog.Logger
}

// New returns a Runner; client may be nil for http.DefaultClient's transport with cfg.Timeout.
func New(cfg Config, client *http.Client, logger *slog.Logger) (*Runner, error) {
	if cfg.Timeout <= 0 {
		return nil, fmt.Errorf("actions: timeout %v: must be > 0", cfg.Timeout)
	}
	if cfg.MaxConcurrent <= 0 {
		return nil, fmt.Errorf("actions: max concurrent %d: must be > 0", cfg.MaxConcurrent)
	}
	if len(cfg.Command) > 0 && cfg.Command[0] == "" {
		return nil, errors.New("actions: command: empty executable")
	}
	if client == nil {
		client = &http.Client{}
	}
	return &Runner{cfg: cfg, client: client, sem: make(chan struct{}, cfg.MaxConcurrent), logger: logger}, nil
}

// Enabled reports whether any action is configured.
func (r *Runner) Enabled() bool {
	return r != nil && (r.cfg.WebhookURL != "" || len(r.cfg.Command) > 0)
}

// Run runs every configured action for a, each bounded by the timeout, and returns their joined
// errors. It blocks while MaxConcurrent actions are already running.
func (r *Runner) Run(ctx context.Context, a Anomaly) error {
	if !r.Enabled() {
		return nil
	}
	select {
	case r.sem <- struct{}{}:
		defer func() { <-r.sem }()
	case <-ctx.Done():
		return fmt.Errorf("pod %s/%s: actions: %w", a.Namespace, a.Pod, ctx.Err())
	}
	body, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("pod %s/%s: actions: encode: %w", a.Namespace, a.Pod, err)
	}
	var errs []error
	if r.cfg.WebhookURL != "" {
		if err := r.webhook(ctx, body); err != nil {
			errs = append(errs, fmt.Errorf("pod %s/%s: webhook: %w", a.Namespace, a.Pod, err))
		}
	}
	if len(r.cfg.Command) > 0 {
		if err := r.command(ctx, a, body); err != nil {
			errs = append(errs, fmt.Errorf("pod %s/%s: command %s: %w", a.Namespace, a.Pod, r.cfg.Command[0], err))
		}
	}
	return errors.Join(errs...)
}

func (r *Runner) webhook(ctx context.Context, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.cfg.WebhookURL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("POST %s: status %s", r.cfg.WebhookURL, resp.Status)
	}
	return nil
}

// command executes the configured command directly (no shell). The anomaly is in PODTYPE_*
// variables and, as JSON, on stdin; output is kept (bounded) for the error message only.
func (r *Runner) command(ctx context.Context, a Anomaly, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.cfg.Command[0], r.cfg.Command[1:]...)
	cmd.Env = append(os.Environ(), Env(a)...)
	cmd.Stdin = bytes.NewReader(body)
	out := &limitedBuffer{max: 4 << 10}
	cmd.Stdout, cmd.Stderr = out, out
	// A child that ignores the kill must not hold the tracker: give up on its pipes too.
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w after %v", ctx.Err(), r.cfg.Timeout)
		}
		return fmt.Errorf("%w (output: %q)", err, out.String())
	}
	r.logger.Debug("action command done", "pod", a.Namespace+"/"+a.Pod, "output", out.String())
	return nil
}

// Env returns the PODTYPE_* environment a command receives.
func Env(a Anomaly) []string {
	top := ""
	for i, d := range a.Features {
		if i > 0 {
			top += ","
		}
		top += d.Feature
	}
	return []string{
		"PODTYPE_NAMESPACE=" + a.Namespace,
		"PODTYPE_POD=" + a.Pod,
		"PODTYPE_POD_UID=" + a.UID,
		"PODTYPE_NODE=" + a.Node,
		"PODTYPE_TYPE=" + a.Type,
		"PODTYPE_MODEL_VERSION=" + a.ModelVersion,
		"PODTYPE_SCORE=" + strconv.FormatFloat(a.Score, 'f', 4, 64),
		"PODTYPE_THRESHOLD=" + strconv.FormatFloat(a.Threshold, 'f', 4, 64),
		"PODTYPE_SINCE=" + a.Since.UTC().Format(time.RFC3339),
		"PODTYPE_FEATURES=" + top,
	}
}

// limitedBuffer keeps the first max bytes written and drops the rest.
type limitedBuffer struct {
	buf bytes.Buffer
	max int
}

// Write keeps what fits and reports everything written, so the command never blocks on it.
func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// String returns the kept output.
func (b *limitedBuffer) String() string { return b.buf.String() }
