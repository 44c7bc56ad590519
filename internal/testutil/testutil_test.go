package testutil

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFirstDiff(t *testing.T) {
	for _, tc := range []struct{ got, want, has string }{
		{"a\nb\nc", "a\nx\nc", "line 2"},
		{"a\nb", "a\nb\nc", "line 3"},
		{"a\n", "a", "line 2"},
	} {
		if d := FirstDiff([]byte(tc.got), []byte(tc.want)); !strings.Contains(d, tc.has) {
			t.Errorf("FirstDiff(%q, %q) = %q, want it to name %s", tc.got, tc.want, d, tc.has)
		}
	}
}

// Golden passes on equal content and fails (as a test would see it) on a
// difference or a missing file.
func TestGolden(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.golden")
	if err := os.WriteFile(path, []byte("same\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	Golden(t, path, []byte("same\n"))
	for _, tc := range []struct {
		path string
		got  string
	}{{path, "other\n"}, {filepath.Join(dir, "missing.golden"), "x"}} {
		rec := &recorder{TB: t}
		func() {
			defer func() { _ = recover() }()
			Golden(rec, tc.path, []byte(tc.got))
		}()
		if !rec.failed {
			t.Errorf("Golden(%s, %q) did not fail", tc.path, tc.got)
		}
	}
}

func TestEventually(t *testing.T) {
	n := 0
	Eventually(t, "n to reach 3", time.Second, func() bool { n++; return n >= 3 })
	rec := &recorder{TB: t}
	func() {
		defer func() { _ = recover() }()
		Eventually(rec, "never", 30*time.Millisecond, func() bool { return false })
	}()
	if !rec.failed {
		t.Error("Eventually did not fail on a condition that never holds")
	}
}

// recorder turns failures into a flag (Fatal panics to stop the helper).
type recorder struct {
	testing.TB
	failed bool
}

func (r *recorder) Helper()               {}
func (r *recorder) Errorf(string, ...any) { r.failed = true }
func (r *recorder) Fatalf(string, ...any) { r.failed = true; panic("fatal") }
func (r *recorder) Fatal(...any)          { r.failed = true; panic("fatal") }
func (r *recorder) Name() string          { return "recorder" }
