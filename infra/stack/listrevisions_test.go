package stack

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The roles that deploy — the central worker's, and a target stack's
// deploy role — may list task definitions, on "*" (ECS takes no resource
// for it): clean-up lists a family's revisions, and a rollback those it
// may go back to. The sweep role deploys nothing and gets none.
func TestDeployRolesListTaskDefinitions(t *testing.T) {
	all := synthAll(t, severalAccounts)
	for _, tt := range []struct {
		stack, role string
		want        []string
	}{
		{"Test", "WorkerRole", []string{`"*"`}},
		{"Test-Target-222222222222-eu-west-1", "TargetRole", []string{`"*"`}},
		{"Test-Target-222222222222-eu-west-1", "SweepRole", nil},
	} {
		t.Run(tt.stack+" "+tt.role, func(t *testing.T) {
			s, ok := all[tt.stack]
			if !ok {
				t.Fatalf("no stack %s", tt.stack)
			}
			got := actions(s.policiesOf(t, tt.role))["ecs:ListTaskDefinitions"]
			slices.Sort(got)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ecs:ListTaskDefinitions resources (-want +got):\n%s", diff)
			}
		})
	}
}
