package stack

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// severalAccounts: a shared registry account, two target accounts in two
// regions (one with two blue/green services, one of them behind a role of
// its own), and a central-account target in another region; one rule
// names its pass-roles.
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
    pass-roles: ["arn:aws:iam::222222222222:role/api-*"]
    targets:
      - {cluster: stage, service: api, account: "222222222222"}
      - cluster: prod
        service: api
        account: "444444444444"
        region: us-east-1
        role: "arn:aws:iam::444444444444:role/custom-deployer"
        codedeploy: {application: api, deployment-group: api-prod}
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
	t.Run("central bus admits exactly what the other accounts forward", func(t *testing.T) {
		admitted := map[string]any{}
		for _, p := range central.resources("AWS::Events::EventBusPolicy") {
			st := p["Statement"].(map[string]any)
			if p["EventBusName"] != "default" || st["Action"] != "events:PutEvents" || st["Effect"] != "Allow" ||
				st["Resource"] != "arn:aws:events:eu-west-1:111111111111:event-bus/default" || st["Sid"] != p["StatementId"] {
				t.Errorf("bus policy %v", p)
			}
			var roots []string
			for _, r := range st["Principal"].(map[string]any)["AWS"].([]any) {
				roots = append(roots, r.(string))
			}
			admitted[strings.Join(roots, ",")+" "+st["Sid"].(string)] = st["Condition"]
		}
		when := func(roles, sources, detailTypes []any) map[string]any {
			return map[string]any{
				"ArnLike":                   map[string]any{"aws:PrincipalArn": roles},
				"ForAllValues:StringEquals": map[string]any{"events:source": sources},
				"StringEquals":              map[string]any{"events:detail-type": detailTypes},
			}
		}
		want := map[string]any{
			"arn:aws:iam::222222222222:root ecr-autodeploy-deployments": when(
				[]any{"arn:aws:iam::*:role/ecr-autodeploy-forward-deployments-eu-west-1"},
				[]any{"aws.ecs"}, []any{"ECS Deployment State Change", "ECS Hook State Change"}),
			"arn:aws:iam::333333333333:root ecr-autodeploy-pushes": when(
				[]any{"arn:aws:iam::*:role/ecr-autodeploy-forward-pushes-eu-west-1"},
				[]any{"aws.ecr"}, []any{"ECR Image Action"}),
			"arn:aws:iam::444444444444:root ecr-autodeploy-deployments-bluegreen": when(
				[]any{"arn:aws:iam::*:role/ecr-autodeploy-forward-deployments-us-east-1"},
				[]any{"aws.ecs", "aws.codedeploy"}, []any{"ECS Deployment State Change", "CodeDeploy Deployment State-change Notification"}),
		}
		if diff := cmp.Diff(want, admitted); diff != "" {
			t.Errorf("admitted (-want +got):\n%s", diff)
		}
		// Each forwarding rule puts events as its stack's named role, of a
		// source and detail type its account's statement admits.
		for id, site := range all {
			if id == "Test" {
				continue
			}
			account := *site.stack.Account()
			for _, r := range site.resources("AWS::Events::Rule") {
				pattern := r["EventPattern"].(map[string]any)
				roleID := r["Targets"].([]any)[0].(map[string]any)["RoleArn"].(map[string]any)["Fn::GetAtt"].([]any)[0].(string)
				roleName, _ := site.template["Resources"].(map[string]any)[roleID].(map[string]any)["Properties"].(map[string]any)["RoleName"].(string)
				if account == "111111111111" {
					if !strings.HasPrefix(roleName, "ecr-autodeploy-forward-") {
						t.Errorf("%s forwards as %q", id, roleName)
					}
					continue // the central account's own: no statement needed
				}
				ok := false
				for key, c := range admitted {
					c := c.(map[string]any)
					ok = ok || strings.Contains(key, "arn:aws:iam::"+account+":root") &&
						slices.Contains(c["ArnLike"].(map[string]any)["aws:PrincipalArn"].([]any), any("arn:aws:iam::*:role/"+roleName)) &&
						slices.Contains(c["ForAllValues:StringEquals"].(map[string]any)["events:source"].([]any), pattern["source"].([]any)[0]) &&
						slices.Contains(c["StringEquals"].(map[string]any)["events:detail-type"].([]any), pattern["detail-type"].([]any)[0])
				}
				if !ok {
					t.Errorf("%s forwards %v as %q, which the central bus does not admit", id, pattern["source"], roleName)
				}
			}
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
		bySid := func(role string) map[string]map[string]any {
			out := map[string]map[string]any{}
			for _, m := range central.policiesOf(t, role) {
				if sid, ok := m["Sid"].(string); ok {
					out[sid] = m
				}
			}
			return out
		}
		// The deployer's sweeps read targets (through their sweep roles)
		// and list registries elsewhere; the worker deploys to the targets
		// only (through their deploy roles). A role the file names is both.
		if diff := cmp.Diff([]any{
			"arn:aws:iam::222222222222:role/ecr-autodeploy-sweep-eu-west-1",
			"arn:aws:iam::333333333333:role/ecr-autodeploy-registry-eu-west-1",
			"arn:aws:iam::444444444444:role/custom-deployer",
			"arn:aws:iam::444444444444:role/ecr-autodeploy-sweep-us-east-1",
		}, bySid("DeployerRole")["AssumeSweepRoles"]["Resource"]); diff != "" {
			t.Errorf("deployer assumes (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]any{
			"arn:aws:iam::222222222222:role/ecr-autodeploy-target-eu-west-1",
			"arn:aws:iam::444444444444:role/custom-deployer",
			"arn:aws:iam::444444444444:role/ecr-autodeploy-target-us-east-1",
		}, bySid("WorkerRole")["AssumeTargetRoles"]["Resource"]); diff != "" {
			t.Errorf("worker assumes (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]any{
			"arn:aws:iam::222222222222:role/ecr-autodeploy-watcher-eu-west-1",
			"arn:aws:iam::333333333333:role/ecr-autodeploy-promote-eu-west-1",
			"arn:aws:iam::444444444444:role/ecr-autodeploy-watcher-us-east-1",
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
		if !roles["Test-deployer-eu-west-1"] || !roles["Test-watcher-eu-west-1"] || !roles["Test-worker-eu-west-1"] {
			t.Errorf("the functions' roles are not named for the other stacks to trust: %v", roles)
		}
	})

	// Each role in another account trusts one central function's role.
	trust := func(functions ...string) map[string]any {
		var arns []any
		for _, f := range functions {
			arns = append(arns, "arn:aws:iam::111111111111:role/Test-"+f+"-eu-west-1")
		}
		return map[string]any{
			"Version": "2012-10-17",
			"Statement": []any{map[string]any{
				"Action": "sts:AssumeRole", "Effect": "Allow",
				"Principal": map[string]any{"AWS": map[string]any{"Fn::Join": []any{"", []any{"arn:", map[string]any{"Ref": "AWS::Partition"}, ":iam::111111111111:root"}}}},
				"Condition": map[string]any{"ArnEquals": map[string]any{"aws:PrincipalArn": arns}},
			}},
		}
	}
	t.Run("registry stack: the deployer reads, the watcher promotes", func(t *testing.T) {
		reg := all["Test-Registry-333333333333-eu-west-1"]
		if diff := cmp.Diff(trust("deployer"), reg.roleNamed("ecr-autodeploy-registry-eu-west-1")["AssumeRolePolicyDocument"]); diff != "" {
			t.Errorf("read role's trust (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(trust("watcher"), reg.roleNamed("ecr-autodeploy-promote-eu-west-1")["AssumeRolePolicyDocument"]); diff != "" {
			t.Errorf("promote role's trust (-want +got):\n%s", diff)
		}
		read := reg.roleStatements(t, "ecr-autodeploy-registry-eu-west-1")
		if diff := cmp.Diff([]string{"ListImagesForSweeps"}, sortedKeys(setOf(mapKeys(read)))); diff != "" {
			t.Errorf("the deployer's read role may do more than list images (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff("ecr:DescribeImages", read["ListImagesForSweeps"]["Action"]); diff != "" || len(read["ListImagesForSweeps"]["Resource"].([]any)) != 2 {
			t.Errorf("sweeps list both repositories: %v", read["ListImagesForSweeps"])
		}
		promote := reg.roleStatements(t, "ecr-autodeploy-promote-eu-west-1")
		if diff := cmp.Diff([]string{"PromoteDigests"}, sortedKeys(setOf(mapKeys(promote)))); diff != "" {
			t.Errorf("the watcher's promote role may do more than promote (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(map[string]any{"Fn::Sub": "arn:${AWS::Partition}:ecr:${AWS::Region}:${AWS::AccountId}:repository/web"}, promote["PromoteDigests"]["Resource"]); diff != "" {
			t.Errorf("promotion (-want +got):\n%s", diff)
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
		// The worker deploys through it; the deployer's sweeps read
		// through the sweep role (TestIntakeDeploysNowhere).
		if diff := cmp.Diff(trust("worker"), role["AssumeRolePolicyDocument"]); diff != "" {
			t.Errorf("trust (-want +got):\n%s", diff)
		}
		// The watcher reads the service deployments of the services here
		// (any may be ECS-native), and nothing else.
		watcher := tgt.roleNamed("ecr-autodeploy-watcher-eu-west-1")
		if diff := cmp.Diff(trust("watcher"), watcher["AssumeRolePolicyDocument"]); diff != "" {
			t.Errorf("watcher role's trust (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"ReadServiceDeployments"}, mapKeys(tgt.roleStatements(t, "ecr-autodeploy-watcher-eu-west-1"))); diff != "" {
			t.Errorf("the watcher's role may do more than read service deployments (-want +got):\n%s", diff)
		}
		st := tgt.roleStatements(t, "ecr-autodeploy-target-eu-west-1")
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
		st := tgt.roleStatements(t, "ecr-autodeploy-target-us-east-1")
		// The deployer's role: only the target without a role of its own.
		if diff := cmp.Diff(map[string]any{"Fn::Sub": "arn:${AWS::Partition}:codedeploy:us-east-1:${AWS::AccountId}:deploymentgroup:web/web-prod"}, st["DeployBlueGreenGroups"]["Resource"]); diff != "" {
			t.Errorf("groups (-want +got):\n%s", diff)
		}
		if _, ok := st["RollConfiguredServices"]; ok {
			t.Error("UpdateService granted on a blue/green service")
		}
		// The watcher's: GetDeployment on every blue/green group here, the
		// one behind a named role too, and nothing else.
		watcher := tgt.roleNamed("ecr-autodeploy-watcher-us-east-1")
		if diff := cmp.Diff(trust("watcher"), watcher["AssumeRolePolicyDocument"]); diff != "" {
			t.Errorf("watcher role's trust (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(map[string]map[string]any{"ReadBlueGreenEndings": {
			"Sid": "ReadBlueGreenEndings", "Effect": "Allow", "Action": "codedeploy:GetDeployment",
			"Resource": []any{
				map[string]any{"Fn::Sub": "arn:${AWS::Partition}:codedeploy:us-east-1:${AWS::AccountId}:deploymentgroup:api/api-prod"},
				map[string]any{"Fn::Sub": "arn:${AWS::Partition}:codedeploy:us-east-1:${AWS::AccountId}:deploymentgroup:web/web-prod"},
			},
		}}, tgt.roleStatements(t, "ecr-autodeploy-watcher-us-east-1")); diff != "" {
			t.Errorf("the watcher's role may do more than read endings (-want +got):\n%s", diff)
		}
		cd := tgt.rule(t, "aws.codedeploy")["EventPattern"].(map[string]any)
		if diff := cmp.Diff([]any{"444444444444"}, cd["account"]); diff != "" {
			t.Errorf("forwarded CodeDeploy accounts (-want +got):\n%s", diff)
		}
	})
	t.Run("warnings of any pass role, where granted", func(t *testing.T) {
		for id, want := range map[string][]string{
			"Test":                               {"web"}, // api names pass-roles
			"Test-Target-222222222222-eu-west-1": {"web"},
			"Test-Target-444444444444-us-east-1": {"web"}, // api's target there names its role
			"Test-Target-111111111111-us-west-2": nil,     // reached with the central functions' own
		} {
			if got := all[id].anyPassRoleWarnings(t); !slices.Equal(got, want) {
				t.Errorf("%s warns for %q, want %q", id, got, want)
			}
		}
	})
	t.Run("target stack in the central account, another region", func(t *testing.T) {
		tgt := all["Test-Target-111111111111-us-west-2"]
		for _, r := range tgt.resources("AWS::IAM::Role") {
			if n, _ := r["RoleName"].(string); !strings.HasPrefix(n, "ecr-autodeploy-forward-") {
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

// roleStatements are the statements, by Sid (or first action), of the
// policies attached to the role of that name.
func (s synthesized) roleStatements(t *testing.T, name string) map[string]map[string]any {
	t.Helper()
	var id string
	for rid, r := range s.resources("AWS::IAM::Role") {
		if r["RoleName"] == name {
			id = rid
		}
	}
	if id == "" {
		t.Fatalf("no role %s", name)
	}
	out := map[string]map[string]any{}
	for _, p := range s.resources("AWS::IAM::Policy") {
		if !cmp.Equal([]any{map[string]any{"Ref": id}}, p["Roles"]) {
			continue
		}
		for _, st := range p["PolicyDocument"].(map[string]any)["Statement"].([]any) {
			m := st.(map[string]any)
			key, _ := m["Sid"].(string)
			if key == "" {
				key = jsonString(m["Action"])
			}
			out[key] = m
		}
	}
	return out
}

func mapKeys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
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
