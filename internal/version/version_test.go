package version

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func TestFromBuild(t *testing.T) {
	rev := []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.modified", Value: "false"}}
	tests := []struct {
		name         string
		version, rev string
		bi           *debug.BuildInfo
		want         Info
	}{
		{"no build info", "", "", nil, Info{Devel, "", runtime.Version()}},
		{"stamped, no build info", "v0.1.0", "deadbeef", nil, Info{"v0.1.0", "deadbeef", runtime.Version()}},
		{"stamped wins over build info", "v0.2.0", "deadbeef",
			&debug.BuildInfo{Main: debug.Module{Path: modulePath, Version: "v0.1.0"}, Settings: rev},
			Info{"v0.2.0", "deadbeef", runtime.Version()}},
		{"go install @v0.1.0", "", "",
			&debug.BuildInfo{Main: debug.Module{Path: modulePath, Version: "v0.1.0"}},
			Info{"v0.1.0", "", runtime.Version()}},
		{"checkout with VCS stamping", "", "",
			&debug.BuildInfo{Main: debug.Module{Path: modulePath, Version: "v0.0.0-20261125100000-abc123abc123+dirty"}, Settings: rev},
			Info{"v0.0.0-20261125100000-abc123abc123+dirty", "abc123", runtime.Version()}},
		{"go run: (devel)", "", "",
			&debug.BuildInfo{Main: debug.Module{Path: modulePath, Version: "(devel)"}},
			Info{Devel, "", runtime.Version()}},
		{"stamped version, revision from VCS", "v0.1.0", "",
			&debug.BuildInfo{Main: debug.Module{Path: modulePath}, Settings: rev},
			Info{"v0.1.0", "abc123", runtime.Version()}},
		{"a dependency of another program", "", "",
			&debug.BuildInfo{Main: debug.Module{Path: "example.com/app", Version: "v1.0.0"}, Settings: rev,
				Deps: []*debug.Module{{Path: "github.com/redis/go-redis/v9", Version: "v9.23.0"}, {Path: modulePath, Version: "v0.1.0"}}},
			Info{"v0.1.0", "", runtime.Version()}},
		{"a replaced dependency", "", "",
			&debug.BuildInfo{Main: debug.Module{Path: "example.com/app"},
				Deps: []*debug.Module{{Path: modulePath, Version: "v0.1.0", Replace: &debug.Module{Path: "../shardseq", Version: ""}}}},
			Info{Devel, "", runtime.Version()}},
		{"not in the build at all", "", "",
			&debug.BuildInfo{Main: debug.Module{Path: "example.com/app", Version: "v1.0.0"}, Settings: rev},
			Info{Devel, "", runtime.Version()}},
	}
	for _, tc := range tests {
		if got := fromBuild(tc.version, tc.rev, tc.bi); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestString(t *testing.T) {
	for _, tc := range []struct {
		in   Info
		want string
	}{
		{Info{"v0.1.0", "abc123", "go1.26.0"}, "v0.1.0 (commit abc123) go1.26.0"},
		{Info{Devel, "", "go1.26.0"}, "(devel) go1.26.0"},
	} {
		if got := tc.in.String(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestGetIsStable(t *testing.T) {
	if a, b := Get(), Get(); a != b || a.Version == "" || a.GoVersion == "" {
		t.Fatalf("Get: %+v then %+v", a, b)
	}
}
