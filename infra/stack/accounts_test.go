package stack

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// severalAccounts: a shared registry account, two target accounts in two
// regions (one blue/green), and a central-account target in another region.
const severalAccounts = `version: 1
defaults:
  registry: {account: "333333333333"}
rules:
  - name: web
    repository: web
    tags: ["main-*"]
    targets:
      - {cluster: dev, service: web}
      - {cluster: dev, service: web, region: us-west-2}
      - {cluster: stage, service: web, account: "222222222222"}
      - cluster: prod
        service: web
        account: "444444444444"
        region: us-east-1
        codedeploy: {application: web, deployment-group: web-prod}
    promote: {tag: "verified-{tag}"}
  - name: api
    repository: team/api
    tags: ["main-*"]
    publish: {ssm-prefix: /ecr-autodeploy}
    targets:
      - {cluster: stage, service: api, account: "222222222222"}
`

func TestSeveralAccountsStacks(t *testing.T) {
	all := synthAll(t, severalAccounts)
	var ids []string
	for id := range all {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	want := []string{"Test", "Test-Registry-333333333333-eu-west-1", "Test-Target-111111111111-us-west-2",
		"Test-Target-222222222222-eu-west-1", "Test-Target-444444444444-us-east-1"}
	if diff := cmp.Diff(want, ids); diff != "" {
		t.Fatalf("stacks (-want +got):\n%s", diff)
	}
	for id, s := range all {
		parts := strings.Split(id, "-")
		wantEnv := "111111111111/eu-west-1"
		if len(parts) > 2 {
			wantEnv = parts[2] + "/" + strings.Join(parts[3:], "-")
		}
		if got := *s.stack.Account() + "/" + *s.stack.Region(); got != wantEnv {
			t.Errorf("%s env = %s, want %s", id, got, wantEnv)
		}
		t.Run("nag and lint "+id, func(t *testing.T) {
			s.nagClean(t)
			s.lintClean(t)
		})
	}

	central := all["Test"]
	t.Run("central bus admits exactly the other accounts", func(t *testing.T) {
		var admitted []string
		for _, p := range central.resources("AWS::Events::EventBusPolicy") {
			st := p["Statement"].(map[string]any)
			if p["EventBusName"] != "default" || st["Action"] != "events:PutEvents" || st["Effect"] != "Allow" ||
				st["Resource"] != "arn:aws:events:eu-west-1:111111111111:event-bus/default" {
				t.Errorf("bus policy %v", p)
			}
			admitted = append(admitted, st["Principal"].(map[string]any)["AWS"].(string))
		}
		slices.Sort(admitted)
		if diff := cmp.Diff([]string{"arn:aws:iam::222222222222:root", "arn:aws:iam::333333333333:root", "arn:aws:iam::444444444444:root"}, admitted); diff != "" {
			t.Errorf("admitted (-want +got):\n%s", diff)
		}
	})
	t.Run("central rules hear forwarded events", func(t *testing.T) {
		ecr := central.rule(t, "aws.ecr")["EventPattern"].(map[string]any)
		if diff := cmp.Diff([]any{"111111111111", "333333333333"}, ecr["account"]); diff != "" {
			t.Errorf("push accounts (-want +got):\n%s", diff)
		}
		ecs := central.rule(t, "aws.ecs")["EventPattern"].(map[string]any)
		if diff := cmp.Diff([]any{"111111111111", "222222222222", "444444444444"}, ecs["account"]); diff != "" {
			t.Errorf("ECS accounts (-want +got):\n%s", diff)
		}
		cd := central.rule(t, "aws.codedeploy")["EventPattern"].(map[string]any)
		if diff := cmp.Diff([]any{"111111111111", "444444444444"}, cd["account"]); diff != "" {
			t.Errorf("CodeDeploy accounts (-want +got):\n%s", diff)
		}
	})
	t.Run("central functions assume the derived roles", func(t *testing.T) {
		st := central.statements(t)
		if diff := cmp.Diff([]any{
			"arn:aws:iam::222222222222:role/ecr-autodeploy-target-eu-west-1",
			"arn:aws:iam::333333333333:role/ecr-autodeploy-registry-eu-west-1",
			"arn:aws:iam::444444444444:role/ecr-autodeploy-target-us-east-1",
		}, st["AssumeTargetRoles"]["Resource"]); diff != "" {
			t.Errorf("deployer assumes (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]any{
			"arn:aws:iam::333333333333:role/ecr-autodeploy-registry-eu-west-1",
			"arn:aws:iam::444444444444:role/ecr-autodeploy-target-us-east-1",
		}, st["AssumeRegistryAndTargetRoles"]["Resource"]); diff != "" {
			t.Errorf("watcher assumes (-want +got):\n%s", diff)
		}
		// Its own credentials reach only the central account's services.
		if diff := cmp.Diff([]any{
			map[string]any{"Fn::Sub": "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:service/dev/web"},
			map[string]any{"Fn::Sub": "arn:${AWS::Partition}:ecs:us-west-2:${AWS::AccountId}:service/dev/web"},
		}, st["RollConfiguredServices"]["Resource"]); diff != "" {
			t.Errorf("own services (-want +got):\n%s", diff)
		}
		if _, ok := st["PromoteDigests"]; ok {
			t.Error("the central watcher tags images itself though the registry is in another account")
		}
		roles := map[string]bool{}
		for _, r := range central.resources("AWS::IAM::Role") {
			if n, ok := r["RoleName"].(string); ok {
				roles[n] = true
			}
		}
		if !roles["Test-deployer-eu-west-1"] || !roles["Test-watcher-eu-west-1"] {
			t.Errorf("the functions' roles are not named for the other stacks to trust: %v", roles)
		}
	})

	trust := map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{map[string]any{
			"Action": "sts:AssumeRole", "Effect": "Allow",
			"Principal": map[string]any{"AWS": map[string]any{"Fn::Join": []any{"", []any{"arn:", map[string]any{"Ref": "AWS::Partition"}, ":iam::111111111111:root"}}}},
			"Condition": map[string]any{"ArnEquals": map[string]any{"aws:PrincipalArn": []any{
				"arn:aws:iam::111111111111:role/Test-deployer-eu-west-1", "arn:aws:iam::111111111111:role/Test-watcher-eu-west-1"}}},
		}},
	}
	t.Run("registry stack", func(t *testing.T) {
		reg := all["Test-Registry-333333333333-eu-west-1"]
		role := reg.roleNamed("ecr-autodeploy-registry-eu-west-1")
		if diff := cmp.Diff(trust, role["AssumeRolePolicyDocument"]); diff != "" {
			t.Errorf("trust (-want +got):\n%s", diff)
		}
		st := reg.statements(t)
		if diff := cmp.Diff(map[string]any{"Fn::Sub": "arn:${AWS::Partition}:ecr:${AWS::Region}:${AWS::AccountId}:repository/web"}, st["PromoteDigests"]["Resource"]); diff != "" {
			t.Errorf("promotion (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(2, len(st["ListImagesForSweeps"]["Resource"].([]any))); diff != "" {
			t.Errorf("sweeps list both repositories: %v", st["ListImagesForSweeps"])
		}
		fwd := reg.rule(t, "aws.ecr")
		pattern := fwd["EventPattern"].(map[string]any)
		if diff := cmp.Diff([]any{"web", "team/api"}, pattern["detail"].(map[string]any)["repository-name"]); diff != "" {
			t.Errorf("forwarded repositories (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]any{"333333333333"}, pattern["account"]); diff != "" {
			t.Errorf("forwarded account (-want +got):\n%s", diff)
		}
		if got := jsonString(fwd["Targets"]); !strings.Contains(got, "arn:aws:events:eu-west-1:111111111111:event-bus/default") || !strings.Contains(got, "DeadLetterConfig") {
			t.Errorf("forwarding target %s", got)
		}
	})
	t.Run("target stack in another account", func(t *testing.T) {
		tgt := all["Test-Target-222222222222-eu-west-1"]
		role := tgt.roleNamed("ecr-autodeploy-target-eu-west-1")
		if diff := cmp.Diff(trust, role["AssumeRolePolicyDocument"]); diff != "" {
			t.Errorf("trust (-want +got):\n%s", diff)
		}
		st := tgt.statements(t)
		if diff := cmp.Diff([]any{
			map[string]any{"Fn::Sub": "arn:${AWS::Partition}:ecs:${AWS::Region}:222222222222:service/stage/api"},
			map[string]any{"Fn::Sub": "arn:${AWS::Partition}:ecs:${AWS::Region}:222222222222:service/stage/web"},
		}, st["RollConfiguredServices"]["Resource"]); diff != "" {
			t.Errorf("services (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(map[string]any{"StringEquals": map[string]any{"ecs:CreateAction": "RegisterTaskDefinition"}}, st["TagNewRevisions"]["Condition"]); diff != "" {
			t.Errorf("TagResource condition (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(map[string]any{"StringEquals": map[string]any{"iam:PassedToService": "ecs-tasks.amazonaws.com"}}, st["PassTaskRolesToEcsOnly"]["Condition"]); diff != "" {
			t.Errorf("PassRole condition (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(map[string]any{"Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/ecr-autodeploy/stage/api/*"}, st["PublishRunningImages"]["Resource"]); diff != "" {
			t.Errorf("parameters (-want +got):\n%s", diff)
		}
		if _, ok := st["DeployBlueGreenGroups"]; ok {
			t.Error("CodeDeploy granted where no target is blue/green")
		}
		fwd := tgt.rule(t, "aws.ecs")["EventPattern"].(map[string]any)
		if diff := cmp.Diff([]any{"222222222222"}, fwd["account"]); diff != "" || len(fwd["resources"].([]any)) != 2 {
			t.Errorf("forwarded ECS events: %v", fwd)
		}
	})
	t.Run("blue/green target stack", func(t *testing.T) {
		tgt := all["Test-Target-444444444444-us-east-1"]
		st := tgt.statements(t)
		if diff := cmp.Diff(map[string]any{"Fn::Sub": "arn:${AWS::Partition}:codedeploy:us-east-1:${AWS::AccountId}:deploymentgroup:web/web-prod"}, st["DeployBlueGreenGroups"]["Resource"]); diff != "" {
			t.Errorf("groups (-want +got):\n%s", diff)
		}
		if _, ok := st["RollConfiguredServices"]; ok {
			t.Error("UpdateService granted on a blue/green service")
		}
		cd := tgt.rule(t, "aws.codedeploy")["EventPattern"].(map[string]any)
		if diff := cmp.Diff([]any{"444444444444"}, cd["account"]); diff != "" {
			t.Errorf("forwarded CodeDeploy accounts (-want +got):\n%s", diff)
		}
	})
	t.Run("target stack in the central account, another region", func(t *testing.T) {
		tgt := all["Test-Target-111111111111-us-west-2"]
		for _, r := range tgt.resources("AWS::IAM::Role") {
			if n, _ := r["RoleName"].(string); strings.HasPrefix(n, "ecr-autodeploy-target") {
				t.Errorf("a role in the central account, whose functions need none: %v", r)
			}
		}
		fwd := tgt.rule(t, "aws.ecs")["EventPattern"].(map[string]any)
		if diff := cmp.Diff([]any{map[string]any{"Fn::Sub": "arn:${AWS::Partition}:ecs:us-west-2:${AWS::AccountId}:service/dev/web"}}, fwd["resources"]); diff != "" {
			t.Errorf("forwarded services (-want +got):\n%s", diff)
		}
	})
}

// TestSeveralAccountsNeedACentralPlace: a file naming other accounts cannot
// be synthesized without knowing the central account and region.
func TestSeveralAccountsNeedACentralPlace(t *testing.T) {
	cfg := mustParse(t, severalAccounts)
	_, err := NewTopology(cfg, centralUnknown)
	if err == nil || !strings.Contains(err.Error(), "the central stack's account and region must be known") {
		t.Errorf("err = %v", err)
	}
}

var centralUnknown = rules.Place{}

func mustParse(t *testing.T, text string) *rules.Config {
	t.Helper()
	cfg, err := rules.Parse("t.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// roleNamed is the properties of the role of that name (nil if none).
func (s synthesized) roleNamed(name string) map[string]any {
	for _, r := range s.resources("AWS::IAM::Role") {
		if r["RoleName"] == name {
			return r
		}
	}
	return nil
}
