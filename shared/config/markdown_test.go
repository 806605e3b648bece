package config

import (
	"strings"
	"testing"
)

func TestMarkdownTable(t *testing.T) {
	got := MarkdownTable([]Var{
		{Name: "A_URL", Default: "http://x", Description: "where a|b lives"},
		{Name: "A_PASSWORD", Description: "password", Secret: true},
	})
	want := "| Variable | Default | Description |\n|---|---|---|\n" +
		"| `A_URL` | `http://x` | where a\\|b lives |\n" +
		"| `A_PASSWORD` | — | password (secret) |\n"
	if got != want {
		t.Errorf("MarkdownTable =\n%s\nwant\n%s", got, want)
	}
}

func TestReplaceSection(t *testing.T) {
	doc := "intro\n<!-- BEGIN CONFIG svc -->\nold\n<!-- END CONFIG svc -->\nrest\n"
	tests := []struct {
		name, doc, section, want, wantErr string
	}{
		{name: "replaces", doc: doc, section: "svc",
			want: "intro\n<!-- BEGIN CONFIG svc -->\nnew\n<!-- END CONFIG svc -->\nrest\n"},
		{name: "missing begin", doc: doc, section: "other", wantErr: `BEGIN CONFIG other`},
		{name: "missing end", doc: "<!-- BEGIN CONFIG svc -->\nold\n", section: "svc", wantErr: `END CONFIG svc`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReplaceSection([]byte(tt.doc), tt.section, "new\n")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}
