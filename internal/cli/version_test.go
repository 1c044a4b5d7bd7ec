package cli

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		info *debug.BuildInfo
		ok   bool
		want string
	}{
		{"released", &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0ad2c6e"}}}, true,
			"autodeploy v1.2.3, commit 0ad2c6e"},
		{"a clone with changes", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0ad2c6e"}, {Key: "vcs.modified", Value: "true"}}}, true,
			"autodeploy (devel), commit 0ad2c6e (with uncommitted changes)"},
		{"nothing recorded", &debug.BuildInfo{}, true, "autodeploy (devel), commit unknown"},
		{"no build info", nil, false, "autodeploy (devel), commit unknown"},
	} {
		if got := versionLine(tc.info, tc.ok); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	for _, arg := range []string{"--version", "version"} {
		if r := cli(t, nil, "", arg); r.code != 0 || !strings.HasPrefix(r.stdout, "autodeploy ") || !strings.Contains(r.stdout, ", commit ") {
			t.Errorf("autodeploy %s: %+v", arg, r)
		}
	}
}
