package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// `autodeploy validate` says what each gated rule's digests wait for, in
// the order the deployer asks (scan, then approval, then the bake before
// promotion), so that an operator sees the gates as they will act.
func TestValidateSaysTheGates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "autodeploy.yaml")
	body := "version: 1\nrules:\n" +
		"  - {name: a, repository: web, tags: [x], approval: {expires: 1h}, scan: {block: [CRITICAL]}, targets: [{cluster: c, service: s}]}\n" +
		"  - {name: b, repository: web, tags: [y], targets: [{cluster: c, service: t}], promote: {tag: \"ok-{tag}\", bake: 15m, alarms: [t-5xx]}}\n" +
		"  - {name: c, repository: web, tags: [z], targets: [{cluster: c, service: u}]}\n"
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	r := cli(t, nil, "", "validate", path)
	if r.code != 0 {
		t.Fatalf("validate: %+v", r)
	}
	var got []string
	for _, l := range strings.Split(r.stdout, "\n") {
		if strings.HasPrefix(l, "gates: ") {
			got = append(got, l)
		}
	}
	want := []string{
		"gates: rule a deploys only a clean scan (blocks CRITICAL; waits 30m for a result); then waits for a person's approval (autodeploy approve; expires after 1h)",
		"gates: rule b promotes to ok-{tag} only after a 15m bake with none of t-5xx in ALARM",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("validate's gate lines (-want +got):\n%s\n%s", diff, r.stdout)
	}
}
