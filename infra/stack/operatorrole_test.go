package stack

import (
	"testing"
)

// Operators assume a target stack's deploy role (the CLI): status and plan
// read an ECS-native target's in-flight service deployment through it, and
// continue and rollback act on it, so the role may list and describe them
// and continue and stop them (the fake checks no IAM; AWS would answer
// AccessDenied).
func TestDeployRoleLetsOperatorsActOnServiceDeployments(t *testing.T) {
	all := synthAll(t, severalAccountsNative)
	s, ok := all["Test-Target-222222222222-eu-west-1"]
	if !ok {
		t.Fatal("no target stack for 222222222222")
	}
	var acts []string
	for _, st := range s.roleStatements(t, "ecr-autodeploy-target-eu-west-1") {
		for _, a := range asList(st["Action"]) {
			acts = append(acts, a.(string))
		}
		if a, ok := st["Action"].(string); ok {
			acts = append(acts, a)
		}
	}
	for _, want := range []string{"ecs:ListServiceDeployments", "ecs:DescribeServiceDeployments", "ecs:DescribeServiceRevisions",
		"ecs:ContinueServiceDeployment", "ecs:StopServiceDeployment"} {
		found := false
		for _, a := range acts {
			found = found || a == want
		}
		if !found {
			t.Errorf("the deploy role status/plan read through lacks %s (has %v)", want, acts)
		}
	}
}
