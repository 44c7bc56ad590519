package daemon

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"lookout/config"
)

// TestReadmeConfigExamples keeps the README honest: every YAML example in it
// must load and build (collectors decode their own keys strictly), so a
// renamed key cannot leave a broken example behind.
func TestReadmeConfigExamples(t *testing.T) {
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(data), -1)
	if len(blocks) < 2 {
		t.Fatalf("found %d yaml blocks in README.md; the examples moved?", len(blocks))
	}
	for i, b := range blocks {
		text := b[1]
		// Fragments of a sources list are shown indented under an
		// implied `sources:`.
		if strings.HasPrefix(text, "  - id:") {
			text = "sources:\n" + text
		}
		setPlaceholders(t, text)
		cfg, err := config.Parse([]byte(text), "README.md example")
		if err != nil {
			t.Errorf("example %d does not load: %v\n%s", i+1, err, text)
			continue
		}
		if err := Check(cfg); err != nil {
			t.Errorf("example %d does not build: %v\n%s", i+1, err, text)
		}
	}
}

// The shipped config.yaml must build too, not only parse.
func TestExampleConfigBuilds(t *testing.T) {
	text, err := os.ReadFile("../config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	setPlaceholders(t, string(text))
	cfg, err := config.Parse(text, "config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(cfg); err != nil {
		t.Fatal(err)
	}
}

// setPlaceholders does for the test what check-config does for users: unset
// secrets get a placeholder so everything else can be built.
func setPlaceholders(t *testing.T, text string) {
	for _, v := range config.ReferencedEnv([]byte(text)) {
		if os.Getenv(v) == "" {
			t.Setenv(v, config.CheckPlaceholder)
		}
	}
}
