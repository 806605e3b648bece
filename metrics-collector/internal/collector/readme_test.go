package collector

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/podtype/podtype/shared/config"
)

var updateREADME = flag.Bool("update", false, "rewrite the README's configuration table")

// TestREADMEConfig keeps the README's configuration table equal to what the Config struct says,
// so documentation cannot go stale; -update rewrites it.
func TestREADMEConfig(t *testing.T) {
	path := filepath.Join("..", "..", "..", "README.md")
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := config.ReplaceSection(doc, "metrics-collector", config.MarkdownTable(config.Describe(Config{})))
	if err != nil {
		t.Fatal(err)
	}
	if *updateREADME {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if string(got) != string(doc) {
		t.Errorf("README.md configuration table of metrics-collector is stale: run go test ./metrics-collector/internal/collector -run TestREADMEConfig -update")
	}
}
