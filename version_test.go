package main

import (
	"runtime/debug"
	"strings"
	"testing"
)

func setOverrides(t *testing.T, v, rev, when, mod string) {
	t.Helper()
	old := [4]string{version, revision, commitTime, modified}
	version, revision, commitTime, modified = v, rev, when, mod
	t.Cleanup(func() { version, revision, commitTime, modified = old[0], old[1], old[2], old[3] })
}

func TestDescribeBuildFromVCS(t *testing.T) {
	setOverrides(t, "", "", "", "")
	bi := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "lookout", Version: "v0.0.0-20261202141312-1c2e420abcde+dirty"},
		Settings: []debug.BuildSetting{
			{Key: "CGO_ENABLED", Value: "1"},
			{Key: "GOARCH", Value: "arm64"},
			{Key: "GOOS", Value: "linux"},
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "1c2e420abcde0123456789abcdef0123456789ab"},
			{Key: "vcs.time", Value: "2026-12-02T14:13:12Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	d := describeBuild(bi)
	want := buildDesc{
		Version:  "v0.0.0-20261202141312-1c2e420abcde+dirty",
		Revision: "1c2e420abcde0123456789abcdef0123456789ab",
		Time:     "2026-12-02T14:13:12Z",
		Modified: true,
		Go:       "go1.26.8",
		Platform: "linux/arm64",
		CGO:      true,
	}
	if d != want {
		t.Fatalf("describeBuild:\n got %+v\nwant %+v", d, want)
	}
	var b strings.Builder
	d.writeText(&b)
	for _, s := range []string{
		"lookout v0.0.0-20261202141312-1c2e420abcde+dirty\n",
		"commit  1c2e420abcde0123456789abcdef0123456789ab (modified",
		"date    2026-12-02T14:13:12Z",
		"go      go1.26.8 linux/arm64, cgo\n",
	} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("version text lacks %q:\n%s", s, b.String())
		}
	}
}

// A build outside a checkout (go test, go run, a container build without
// -X flags) says so rather than print an empty commit.
func TestDescribeBuildWithoutVCS(t *testing.T) {
	setOverrides(t, "", "", "", "")
	for _, bi := range []*debug.BuildInfo{nil, {Main: debug.Module{Version: "(devel)"}}} {
		d := describeBuild(bi)
		if d.Version != "dev" || d.Revision != "" || d.Modified {
			t.Errorf("describeBuild(%v) = %+v", bi, d)
		}
		var b strings.Builder
		d.writeText(&b)
		if !strings.Contains(b.String(), "commit  unknown") {
			t.Errorf("no 'unknown' commit line:\n%s", b.String())
		}
	}
}

// The -X flags scripts/release.sh and the Dockerfile pass win over what the
// toolchain recorded.
func TestDescribeBuildLinkerOverrides(t *testing.T) {
	setOverrides(t, "v1.4.0", "feedbeef", "2026-12-01T00:00:00Z", "false")
	bi := &debug.BuildInfo{
		Main: debug.Module{Version: "v0.0.0-x"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0000"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	d := describeBuild(bi)
	if d.Version != "v1.4.0" || d.Revision != "feedbeef" || d.Time != "2026-12-01T00:00:00Z" || d.Modified {
		t.Fatalf("overrides not applied: %+v", d)
	}
	if buildVersion() != "v1.4.0" {
		t.Fatalf("buildVersion() = %q", buildVersion())
	}
}
