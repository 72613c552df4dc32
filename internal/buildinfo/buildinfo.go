// Package buildinfo carries the version stamped in at link time, for `patjanitor
// version`, the build_info metric and the User-Agent header.
package buildinfo

import (
	"runtime"
	"runtime/debug"
)

// Set with -ldflags "-X github.com/patjanitor/patjanitor/internal/buildinfo.Version=…"
// (and Commit). These are the one kind of package-level variable the project has:
// the linker can only write variables.
var (
	Version = "dev"
	Commit  = ""
)

// Info describes the running binary.
type Info struct {
	Version   string
	Commit    string
	GoVersion string
}

// Get returns the build information, falling back to the VCS revision the Go
// toolchain embeds when no commit was stamped.
func Get() Info {
	i := Info{Version: Version, Commit: Commit, GoVersion: runtime.Version()}
	if i.Commit == "" {
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" {
					i.Commit = s.Value
				}
			}
		}
	}
	if i.Commit == "" {
		i.Commit = "unknown"
	}
	return i
}
