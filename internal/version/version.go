// Package version holds what the build knows of itself: critlab's version
// and the git commit it was built from, set by the Makefile through
// -ldflags -X (see Makefile, LDFLAGS); `go build` without them falls back
// to the VCS stamp Go records, else "dev".
package version

import (
	"runtime/debug"
	"strings"
)

// Set at build time: -X github.com/critlab/critlab/internal/version.Version=...
var (
	// Version is `git describe --tags --always --dirty`.
	Version = ""
	// Commit is the full hash of the commit built.
	Commit = ""
	// Dirty is "true" when the worktree had uncommitted changes.
	Dirty = ""
)

// Info is the build's identity.
type Info struct {
	Version string `json:"version" yaml:"version"`
	Commit  string `json:"commit" yaml:"commit"`
	Dirty   bool   `json:"dirty" yaml:"dirty"`
}

// Get returns the build's identity.
func Get() Info {
	i := Info{Version: Version, Commit: Commit, Dirty: Dirty == "true"}
	if i.Commit == "" {
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				switch s.Key {
				case "vcs.revision":
					i.Commit = s.Value
				case "vcs.modified":
					i.Dirty = s.Value == "true"
				}
			}
		}
	}
	if i.Version == "" {
		i.Version = "dev"
		if i.Commit != "" {
			i.Version += "-" + i.Commit[:min(12, len(i.Commit))]
		}
		if i.Dirty {
			i.Version += "-dirty"
		}
	}
	return i
}

// String is the one-line form `critlab --version` prints.
func (i Info) String() string {
	var b strings.Builder
	b.WriteString(i.Version)
	if i.Commit != "" && !strings.Contains(i.Version, i.Commit[:min(7, len(i.Commit))]) {
		b.WriteString(" (commit " + i.Commit)
		if i.Dirty {
			b.WriteString(", dirty")
		}
		b.WriteString(")")
	}
	return b.String()
}
