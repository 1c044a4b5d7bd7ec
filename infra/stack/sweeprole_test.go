package stack

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// deployActions are what moves a service or writes an image: the intake,
// and any role it may assume, is allowed none of them.
var deployActions = []string{"ecs:UpdateService", "ecs:RegisterTaskDefinition", "ecs:TagResource", "iam:PassRole",
	"ecs:ContinueServiceDeployment", "ecs:StopServiceDeployment", "codedeploy:CreateDeployment",
	"codedeploy:RegisterApplicationRevision", "ecr:PutImage"}

// trustedARNs are the central roles a role's trust policy admits (its
// aws:PrincipalArn condition), nil for a service's role.
func trustedARNs(role map[string]any) []string {
	var out []string
	doc, _ := role["AssumeRolePolicyDocument"].(map[string]any)
	for _, st := range asList(doc["Statement"]) {
		cond, _ := st.(map[string]any)["Condition"].(map[string]any)
		eq, _ := cond["ArnEquals"].(map[string]any)
		for _, a := range asList(eq["aws:PrincipalArn"]) {
			out = append(out, a.(string))
		}
		if a, ok := eq["aws:PrincipalArn"].(string); ok {
			out = append(out, a)
		}
	}
	return out
}

// The intake (the deployer) deploys nowhere: neither its own role nor any
// role in another account that trusts it may move a service, register or
// tag a revision, pass a role, or deploy through CodeDeploy; it may assume
// only the target stacks' sweep roles, the registries' read roles and the
// roles the rules file names (which are both functions', documented so).
// The worker assumes only deploy roles. Each role of a target or registry
// stack trusts exactly one central function. (It was a review's finding:
// the target role trusted the worker and the deployer, so the intake could
// deploy in every other account.)
func TestIntakeDeploysNowhere(t *testing.T) {
	all := synthAll(t, severalAccounts)
	central := all["Test"]
	deployer := "arn:aws:iam::111111111111:role/" + deployerRoleName("Test", rulesPlaces[0])
	worker := "arn:aws:iam::111111111111:role/" + workerRoleName("Test", rulesPlaces[0])
	named := []string{"arn:aws:iam::444444444444:role/custom-deployer"} // severalAccounts' api/prod names its role

	noDeploy := func(t *testing.T, where string, allowed map[string][]string) {
		t.Helper()
		for _, a := range deployActions {
			if allowed[a] != nil {
				t.Errorf("%s allows %s on %v", where, a, allowed[a])
			}
		}
	}
	t.Run("the central deployer", func(t *testing.T) {
		allowed := actions(central.policiesOf(t, "DeployerRole"))
		noDeploy(t, "the deployer's role", allowed)
		for _, res := range allowed["sts:AssumeRole"] {
			for _, arn := range asStrings(res) {
				if !strings.Contains(arn, ":role/ecr-autodeploy-sweep-") && !strings.Contains(arn, ":role/ecr-autodeploy-registry-") && !slices.Contains(named, arn) {
					t.Errorf("the deployer may assume %s, neither a sweep, a registry nor a named role", arn)
				}
			}
		}
	})
	t.Run("the central worker", func(t *testing.T) {
		for _, res := range actions(central.policiesOf(t, "WorkerRole"))["sts:AssumeRole"] {
			for _, arn := range asStrings(res) {
				if !strings.Contains(arn, ":role/ecr-autodeploy-target-") && !slices.Contains(named, arn) {
					t.Errorf("the worker may assume %s, neither a deploy nor a named role", arn)
				}
			}
		}
	})
	sweepRoles := 0
	for id, s := range all {
		if id == "Test" {
			continue
		}
		for rid, r := range s.resources("AWS::IAM::Role") {
			trusted := trustedARNs(r)
			if name, _ := r["RoleName"].(string); !strings.HasPrefix(name, "ecr-autodeploy-forward-") && len(trusted) != 1 {
				t.Errorf("%s: role %s (%s) trusts %d central roles, want exactly one: %v", id, rid, name, len(trusted), trusted)
			}
			if slices.Contains(trusted, deployer) {
				if r["RoleName"] != nil && strings.HasPrefix(r["RoleName"].(string), "ecr-autodeploy-sweep-") {
					sweepRoles++
				}
				noDeploy(t, id+": role "+rid+", which the deployer may assume,", actions(s.policiesOf(t, rid)))
			}
			if slices.Contains(trusted, worker) && r["RoleName"] != nil && !strings.HasPrefix(r["RoleName"].(string), "ecr-autodeploy-target-") {
				t.Errorf("%s: the worker is trusted by %s, not a deploy role", id, r["RoleName"])
			}
		}
	}
	if sweepRoles != 2 {
		t.Errorf("%d sweep roles, want one per target stack in another account (2)", sweepRoles)
	}

	// The sweep roles read what a sweep reads: every service here that
	// names no role (blue/green ones too), their revisions, and their
	// published parameters (read and, when stale, written).
	for _, tc := range []struct {
		stack, role string
		services    []any
		parameters  any
	}{
		{"Test-Target-222222222222-eu-west-1", "ecr-autodeploy-sweep-eu-west-1", []any{
			map[string]any{"Fn::Sub": "arn:${AWS::Partition}:ecs:${AWS::Region}:222222222222:service/stage/api"},
			map[string]any{"Fn::Sub": "arn:${AWS::Partition}:ecs:${AWS::Region}:222222222222:service/stage/web"},
		}, map[string]any{"Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/ecr-autodeploy/stage/api/*"}},
		{"Test-Target-444444444444-us-east-1", "ecr-autodeploy-sweep-us-east-1", []any{
			map[string]any{"Fn::Sub": "arn:${AWS::Partition}:ecs:us-east-1:444444444444:service/prod/web"}, // api/prod names its role
		}, nil},
	} {
		t.Run("sweep role of "+tc.stack, func(t *testing.T) {
			s := all[tc.stack]
			if diff := cmp.Diff(map[string]any{
				"Version": "2012-10-17",
				"Statement": []any{map[string]any{
					"Action": "sts:AssumeRole", "Effect": "Allow",
					"Principal": map[string]any{"AWS": map[string]any{"Fn::Join": []any{"", []any{"arn:", map[string]any{"Ref": "AWS::Partition"}, ":iam::111111111111:root"}}}},
					"Condition": map[string]any{"ArnEquals": map[string]any{"aws:PrincipalArn": []any{deployer}}},
				}},
			}, s.roleNamed(tc.role)["AssumeRolePolicyDocument"]); diff != "" {
				t.Errorf("trust (-want +got):\n%s", diff)
			}
			st := s.roleStatements(t, tc.role)
			want := map[string]map[string]any{
				"DescribeConfiguredServices": {"Sid": "DescribeConfiguredServices", "Effect": "Allow", "Action": "ecs:DescribeServices", "Resource": tc.services},
				"DescribeRevisions":          {"Sid": "DescribeRevisions", "Effect": "Allow", "Action": "ecs:DescribeTaskDefinition", "Resource": "*"},
			}
			if len(tc.services) == 1 {
				want["DescribeConfiguredServices"]["Resource"] = tc.services[0]
			}
			if tc.parameters != nil {
				want["PublishRunningImages"] = map[string]any{"Sid": "PublishRunningImages", "Effect": "Allow",
					"Action": []any{"ssm:PutParameter", "ssm:GetParameter"}, "Resource": tc.parameters}
			}
			if diff := cmp.Diff(want, st); diff != "" {
				t.Errorf("the sweep role's grants (-want +got):\n%s", diff)
			}
		})
	}
	if all["Test-Target-111111111111-us-west-2"].roleNamed("ecr-autodeploy-sweep-us-west-2") != nil {
		t.Error("a sweep role in the central account, whose deployer reads with its own credentials")
	}
}

// asStrings are the plain-string resources of a statement's resources as
// actions gives them (JSON); intrinsics are left out.
func asStrings(resourceJSON string) []string {
	var v any
	if err := json.Unmarshal([]byte(resourceJSON), &v); err != nil {
		return []string{resourceJSON}
	}
	if one, ok := v.(string); ok {
		return []string{one}
	}
	var out []string
	for _, r := range asList(v) {
		if str, ok := r.(string); ok {
			out = append(out, str)
		}
	}
	return out
}
