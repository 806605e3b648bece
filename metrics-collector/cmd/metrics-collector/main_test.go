package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		code       int
		wantStdout string
		wantStderr string
	}{
		{name: "env lists the variables", args: []string{"env"}, code: exitOK, wantStdout: "TRAINING_RATIO"},
		{name: "help", args: []string{"help"}, code: exitOK, wantStdout: "export [--out FILE]"},
		{name: "unknown command", args: []string{"fly"}, code: exitUsage, wantStderr: `unknown command "fly"`},
		{name: "unknown flag", args: []string{"train", "--frm-csv", "x"}, code: exitUsage, wantStderr: "frm-csv"},
		{name: "stray argument", args: []string{"serve", "now"}, code: exitUsage, wantStderr: "unexpected arguments"},
		{name: "invalid configuration names the variable", args: []string{"train"}, env: map[string]string{"TRAINING_RATIO": "2"},
			code: exitUsage, wantStderr: `TRAINING_RATIO="2"`},
		{name: "missing csv", args: []string{"train", "--from-csv", "/nonexistent/data.csv"}, env: map[string]string{"REPORT_DIR": ""},
			code: exitFailed, wantStderr: "/nonexistent/data.csv"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var stdout, stderr bytes.Buffer
			if code := run(tt.args, &stdout, &stderr); code != tt.code {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, tt.code, stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.wantStdout) {
				t.Errorf("stdout lacks %q:\n%s", tt.wantStdout, stdout.String())
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.wantStderr, stderr.String())
			}
		})
	}
}
