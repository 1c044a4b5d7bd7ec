package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// TestValidateWarnsCleanupNotCarriedOut: a rules file that sets cleanup:
// (in defaults or on a rule) is valid, and validate says once, naming the
// rules, that nothing acts on it yet; a file without it gets no warning.
func TestValidateWarnsCleanupNotCarriedOut(t *testing.T) {
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
		name, body, warning string
	}{
		{"none", "version: 1\nrules:\n" + fmt.Sprintf(rule, "a", "s", "") + fmt.Sprintf(rule, "b", "t", ""), ""},
		{"one rule", "version: 1\nrules:\n" + fmt.Sprintf(rule, "a", "s", "") + fmt.Sprintf(rule, "b", "t", ", cleanup: {keep: 5}"),
			"warning: rule b: " + rules.CleanupNotCarriedOut + "\n"},
		{"defaults", "version: 1\ndefaults:\n  cleanup: {keep: 10, delete: true}\nrules:\n" + fmt.Sprintf(rule, "a", "s", "") + fmt.Sprintf(rule, "b", "t", ""),
			"warning: rules a, b: " + rules.CleanupNotCarriedOut + "\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := cli(t, nil, "", "validate", file(t, tt.body))
			if r.code != 0 || !strings.Contains(r.stdout, "2 rules, valid") {
				t.Fatalf("validate: %+v", r)
			}
			if r.stderr != tt.warning {
				t.Errorf("stderr %q, want %q", r.stderr, tt.warning)
			}
		})
	}
}
