package cli

import (
	"cmp"
	"runtime/debug"
)

// versionLine is what `autodeploy --version` prints: the module's version
// and the VCS commit it was built from, as the Go toolchain recorded them
// (a `go build` in a clone records the commit; `go install …@v1.2.3` the
// version). "(devel)" and "unknown" say what was not recorded.
func versionLine(info *debug.BuildInfo, ok bool) string {
	if !ok || info == nil {
		return "autodeploy (devel), commit unknown"
	}
	version := cmp.Or(info.Main.Version, "(devel)")
	var commit, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			commit = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = " (with uncommitted changes)"
			}
		}
	}
	return "autodeploy " + version + ", commit " + cmp.Or(commit, "unknown") + modified
}
