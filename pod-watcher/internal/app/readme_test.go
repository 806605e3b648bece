package app

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/podtype/podtype/shared/config"
)

// TestREADMEConfig keeps the README's configuration table equal to what the Config struct says,
// so documentation cannot go stale; -update rewrites it.
func TestREADMEConfig(t *testing.T) {
	path := filepath.Join("..", "..", "..", "README.md")
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := config.ReplaceSection(doc, "pod-watcher", config.MarkdownTable(config.Describe(Config{})))
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if string(got) != string(doc) {
		t.Errorf("README.md configuration table of pod-watcher is stale: run go test ./pod-watcher/internal/app -run TestREADMEConfig -update")
	}
}
