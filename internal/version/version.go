// Package version tells which shardseq a binary is: the version and commit
// `make build` stamps in with -ldflags, or else what the Go toolchain
// recorded (`go install .../cmd/shardseq@v0.1.0` records the module version;
// a build in a checkout with VCS stamping records the commit).
package version

import (
	"runtime"
	"runtime/debug"
)

// Stamped by `make build`:
//
//	-ldflags "-X github.com/shardseq/shardseq/internal/version.version=v0.1.0
//	          -X github.com/shardseq/shardseq/internal/version.revision=<commit>"
var version, revision string

// modulePath is looked up in the build info: shardseq may be the main module
// (our binary) or a dependency (a program embedding server or client).
const modulePath = "github.com/shardseq/shardseq"

// Devel is the version of a build nobody stamped (go run, go build in a
// checkout without VCS information), as the Go toolchain itself says.
const Devel = "(devel)"

// Info is what a binary knows of its own build.
type Info struct {
	Version   string // v0.1.0, a pseudo-version, or Devel
	Revision  string // the commit; "" when unknown
	GoVersion string // go1.26.0
}

// Get returns the build's Info.
func Get() Info {
	bi, _ := debug.ReadBuildInfo()
	return fromBuild(version, revision, bi)
}

// String is the one-line form `shardseq version` prints, without the
// platform: "v0.1.0 (commit 38ee1f4...) go1.26.0".
func (i Info) String() string {
	s := i.Version
	if i.Revision != "" {
		s += " (commit " + i.Revision + ")"
	}
	return s + " " + i.GoVersion
}

// fromBuild decides the Info: stamped values win, then the build info.
func fromBuild(stampedVersion, stampedRevision string, bi *debug.BuildInfo) Info {
	info := Info{Version: stampedVersion, Revision: stampedRevision, GoVersion: runtime.Version()}
	if bi == nil {
		if info.Version == "" {
			info.Version = Devel
		}
		return info
	}
	mod, main := &bi.Main, bi.Main.Path == modulePath
	if !main {
		mod = nil
		for _, d := range bi.Deps {
			if d.Path == modulePath {
				mod = d
				if d.Replace != nil {
					mod = d.Replace
				}
				break
			}
		}
	}
	if info.Version == "" && mod != nil {
		info.Version = mod.Version
	}
	if info.Version == "" {
		info.Version = Devel
	}
	if info.Revision == "" && main { // vcs.* describe the main module only
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				info.Revision = s.Value
			}
		}
	}
	return info
}
