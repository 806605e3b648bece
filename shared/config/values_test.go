package config

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestParseHTTPURL(t *testing.T) {
	tests := []struct {
		in, wantErr string
	}{
		{"http://collector:8080/model", ""},
		{"https://hooks.example.com/x?y=1", ""},
		{"ftp://collector/model", "scheme must be http or https"},
		{"http:///model", "host is missing"},
		{"collector:8080", "scheme must be http or https"},
		{"http://[::1", "missing ']' in host"},
	}
	for _, tt := range tests {
		_, err := ParseHTTPURL(tt.in)
		if got := errText(err); !strings.Contains(got, tt.wantErr) || (tt.wantErr == "") != (err == nil) {
			t.Errorf("ParseHTTPURL(%q) = %v, want %q", tt.in, err, tt.wantErr)
		}
	}
}

func TestParseLogLevel(t *testing.T) {
	tests := []struct {
		in   string
		want slog.Level
		ok   bool
	}{
		{"debug", slog.LevelDebug, true},
		{"INFO", slog.LevelInfo, true},
		{"warn", slog.LevelWarn, true},
		{" warn\n", slog.LevelWarn, true}, // as an env file may leave it
		{"error", slog.LevelError, true},
		{"loud", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseLogLevel(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseLogLevel(%q) = %v, %v; want %v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestWriteEnvTable(t *testing.T) {
	var cfg struct {
		URL      string `env:"SERVICE_URL" envDefault:"http://x" desc:"where it is"`
		Password Secret `env:"SERVICE_PASSWORD" desc:"its password"`
	}
	var b bytes.Buffer
	if err := WriteEnvTable(&b, &cfg); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	want := [][]string{
		{"VARIABLE", "DEFAULT", "DESCRIPTION"},
		{"SERVICE_URL", "http://x", "where", "it", "is"},
		{"SERVICE_PASSWORD", "its", "password"},
		{"SERVICE_PASSWORD_FILE", "path", "of"},
	}
	if len(lines) != len(want) {
		t.Fatalf("table:\n%s", b.String())
	}
	for i, w := range want {
		if f := strings.Fields(lines[i]); len(f) < len(w) || strings.Join(f[:len(w)], " ") != strings.Join(w, " ") {
			t.Errorf("line %d = %q, want it to start with %q", i, lines[i], strings.Join(w, " "))
		}
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
