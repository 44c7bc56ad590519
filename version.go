package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
)

// Set with -ldflags "-X main.version=v1.2.3 -X main.revision=<commit> …"
// by builds that have no .git to read (a container build, a tarball);
// otherwise what the Go toolchain recorded in the binary is used: `go build`
// inside a git checkout stamps the module version, the commit, its time and
// whether the tree had uncommitted changes.
var (
	version    = ""
	revision   = ""
	commitTime = ""
	modified   = "" // "true" when the tree had uncommitted changes
)

// buildDesc says which build a binary is: what `lookout version` prints.
type buildDesc struct {
	Version  string `json:"version"`
	Revision string `json:"revision,omitempty"`    // full commit hash
	Time     string `json:"commit_time,omitempty"` // commit time, RFC 3339
	Modified bool   `json:"modified"`              // built from a tree with uncommitted changes
	Go       string `json:"go"`
	Platform string `json:"platform"` // GOOS/GOARCH
	CGO      bool   `json:"cgo"`      // SQLite needs it; a build without it cannot open the store
}

// describeBuild reads bi (nil: no build info) and the -X overrides.
func describeBuild(bi *debug.BuildInfo) buildDesc {
	d := buildDesc{Version: "dev", Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	goos, goarch := runtime.GOOS, runtime.GOARCH
	if bi != nil {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			d.Version = v
		}
		if bi.GoVersion != "" {
			d.Go = bi.GoVersion
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				d.Revision = s.Value
			case "vcs.time":
				d.Time = s.Value
			case "vcs.modified":
				d.Modified = s.Value == "true"
			case "CGO_ENABLED":
				d.CGO = s.Value == "1"
			case "GOOS":
				goos = s.Value
			case "GOARCH":
				goarch = s.Value
			}
		}
	}
	d.Platform = goos + "/" + goarch
	if version != "" {
		d.Version = version
	}
	if revision != "" {
		d.Revision = revision
	}
	if commitTime != "" {
		d.Time = commitTime
	}
	if modified != "" {
		d.Modified = modified == "true"
	}
	return d
}

func currentBuild() buildDesc {
	bi, _ := debug.ReadBuildInfo()
	return describeBuild(bi)
}

// buildVersion is the one-word version the daemon logs at start.
func buildVersion() string { return currentBuild().Version }

func (d buildDesc) writeText(w io.Writer) {
	fmt.Fprintln(w, "lookout", d.Version)
	rev := d.Revision
	switch {
	case rev == "":
		rev = "unknown (built without version control information)"
	case d.Modified:
		rev += " (modified: built with uncommitted changes)"
	}
	fmt.Fprintf(w, "  commit  %s\n", rev)
	if d.Time != "" {
		fmt.Fprintf(w, "  date    %s\n", d.Time)
	}
	cgo := "cgo"
	if !d.CGO {
		cgo = "no cgo: SQLite will not open"
	}
	fmt.Fprintf(w, "  go      %s %s, %s\n", d.Go, d.Platform, cgo)
}

func cmdVersion(args []string) error {
	fs := newFlags("version")
	format := fs.String("format", "text", "text or json")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("unexpected argument %q", pos[0])
	}
	d := currentBuild()
	switch *format {
	case "text":
		d.writeText(os.Stdout)
		return nil
	case "json":
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(d)
	}
	return fmt.Errorf("--format must be text or json")
}
