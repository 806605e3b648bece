package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
)

func TestParseFlags(t *testing.T) {
	base := []string{"--binary", "b", "--name", "n", "--tag", testRef, "--version", "v", "--source", "s", "--output", "o.tar"}
	tests := []struct {
		name        string
		args        []string
		epoch       string
		wantCreated time.Time
		wantErr     string
	}{
		{"defaults to the epoch", base, "", time.Unix(0, 0).UTC(), ""},
		{"SOURCE_DATE_EPOCH", base, "1700000000", time.Unix(1700000000, 0).UTC(), ""},
		{"--created wins", append(base, "--created", "2026-01-02T03:04:05+01:00"), "1700000000", time.Date(2026, 1, 2, 2, 4, 5, 0, time.UTC), ""},
		{"bad SOURCE_DATE_EPOCH", base, "yesterday", time.Time{}, "SOURCE_DATE_EPOCH"},
		{"negative time", append(base, "--created", "-5"), "", time.Time{}, "--created"},
		{"no output", base[:len(base)-2], "", time.Time{}, "--output"},
		{"stray argument", append(base, "extra"), "", time.Time{}, "unexpected"},
		{"bad label", append(base, "--label", "novalue"), "", time.Time{}, "KEY=VALUE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, out, err := parseFlags(tt.args, io.Discard, tt.epoch)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if out != "o.tar" || !s.Created.Equal(tt.wantCreated) || s.User != "65532:65532" {
				t.Errorf("got out=%q created=%v user=%q", out, s.Created, s.User)
			}
		})
	}
}

func TestRunExitCodes(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"help", []string{"-h"}, 0},
		{"usage error", []string{"--nope"}, 2},
		{"build error", []string{"--binary", "/nonexistent/bin", "--name", "n", "--tag", testRef, "--version", "v", "--source", "s", "--output", "o.tar"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			if got := run(tt.args, io.Discard, &stderr); got != tt.want {
				t.Errorf("run = %d, want %d; stderr:\n%s", got, tt.want, stderr.String())
			}
		})
	}
}
