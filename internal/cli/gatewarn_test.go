package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// rules.GatesNotCarriedOut: `autodeploy validate` warns
// that approval:, scan: and promote.bake are not carried out yet, so that
// an operator who wrote `approval:` does not believe that deploys wait
// for a person while they go straight out.
func TestValidateWarnsGatesAreNotCarriedOut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "autodeploy.yaml")
	body := "version: 1\nrules:\n  - {name: a, repository: web, tags: [x], approval: {expires: 1h}, targets: [{cluster: c, service: s}]}\n"
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	r := cli(t, nil, "", "validate", path)
	if r.code != 0 {
		t.Fatalf("validate: %+v", r)
	}
	if !strings.Contains(r.stdout+r.stderr, rules.GatesNotCarriedOut) {
		t.Errorf("validate of a rule with approval: says nothing of gates not being carried out:\n%s%s", r.stdout, r.stderr)
	}
}
