package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestValidateSaysWhatCleansUp: a rules file that sets cleanup: (in
// defaults or on a rule) is valid, and validate says once which rules
// clean up and how (clean-up is carried out: no warning any more); a file
// without it says nothing of it.
func TestValidateSaysWhatCleansUp(t *testing.T) {
	t.Parallel()
	const rule = "  - {name: %s, repository: web, tags: [x], targets: [{cluster: c, service: %s}]%s}\n"
	file := func(t *testing.T, body string) string {
		path := filepath.Join(t.TempDir(), "autodeploy.yaml")
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	for _, tt := range []struct {
		name, body, said string
	}{
		{"none", "version: 1\nrules:\n" + fmt.Sprintf(rule, "a", "s", "") + fmt.Sprintf(rule, "b", "t", ""), ""},
		{"one rule", "version: 1\nrules:\n" + fmt.Sprintf(rule, "a", "s", "") + fmt.Sprintf(rule, "b", "t", ", cleanup: {keep: 5}"),
			"clean-up: rule b (keep 5) deregisters old revisions of its targets' families; autodeploy status shows what the next clean-up would\n"},
		{"defaults", "version: 1\ndefaults:\n  cleanup: {keep: 10, delete: true}\nrules:\n" + fmt.Sprintf(rule, "a", "s", "") + fmt.Sprintf(rule, "b", "t", ""),
			"clean-up: rules a (keep 10, delete), b (keep 10, delete) deregister old revisions of their targets' families; autodeploy status shows what the next clean-up would\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := cli(t, nil, "", "validate", file(t, tt.body))
			if r.code != 0 || !strings.Contains(r.stdout, "2 rules, valid") {
				t.Fatalf("validate: %+v", r)
			}
			if r.stderr != "" || strings.Contains(r.stdout, "clean-up") != (tt.said != "") || !strings.Contains(r.stdout, tt.said) {
				t.Errorf("validate = %+v, want no warning and %q", r, tt.said)
			}
		})
	}
}
