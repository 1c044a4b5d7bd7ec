package stack

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

func withRules(t *testing.T, yaml string) func(*Props) {
	return func(p *Props) {
		cfg, err := rules.Parse("bg.yaml", []byte(yaml))
		if err != nil {
			t.Fatal(err)
		}
		p.Rules = cfg
	}
}

const blueGreenNamed = rulesYAML + `  - name: web-bluegreen
    repository: web
    tags: ["rc-*"]
    targets:
      - cluster: prod
        service: checkout
        codedeploy: {application: checkout, deployment-group: checkout-prod}
      - cluster: prod
        service: search
        region: us-east-1
        codedeploy: {application: search, deployment-group: search-prod, hooks: {AfterAllowTestTraffic: search-smoke}}
`

// TestBlueGreenNamedGroups: CodeDeploy rights on exactly the named groups
// and applications, no listing; the event rule hears only those
// applications' ended deployments; the services are described, never
// updated, by the deployer.
func TestBlueGreenNamedGroups(t *testing.T) {
	s := synth(t, withRules(t, blueGreenNamed))
	st := s.statements(t)
	wantGroups := []any{
		map[string]any{"Fn::Sub": "arn:${AWS::Partition}:codedeploy:${AWS::Region}:${AWS::AccountId}:deploymentgroup:checkout/checkout-prod"},
		map[string]any{"Fn::Sub": "arn:${AWS::Partition}:codedeploy:us-east-1:${AWS::AccountId}:deploymentgroup:search/search-prod"},
	}
	wantApps := []any{
		map[string]any{"Fn::Sub": "arn:${AWS::Partition}:codedeploy:${AWS::Region}:${AWS::AccountId}:application:checkout"},
		map[string]any{"Fn::Sub": "arn:${AWS::Partition}:codedeploy:us-east-1:${AWS::AccountId}:application:search"},
	}
	for sid, want := range map[string][]any{"DeployBlueGreenGroups": wantGroups, "RegisterBlueGreenRevisions": wantApps, "ReadBlueGreenEndings": wantGroups} {
		if diff := cmp.Diff(want, st[sid]["Resource"], sortAny()); diff != "" {
			t.Errorf("%s resources (-want +got):\n%s", sid, diff)
		}
	}
	if diff := cmp.Diff([]any{"codedeploy:CreateDeployment", "codedeploy:GetDeployment", "codedeploy:GetDeploymentGroup", "codedeploy:ListDeployments"},
		st["DeployBlueGreenGroups"]["Action"]); diff != "" {
		t.Errorf("deploy actions (-want +got):\n%s", diff)
	}
	if _, ok := st["FindBlueGreenGroups"]; ok {
		t.Error("listing granted though every group is named")
	}
	describe := st["DescribeBlueGreenServices"]
	if describe["Action"] != "ecs:DescribeServices" || len(describe["Resource"].([]any)) != 2 {
		t.Errorf("blue/green services: %v", describe)
	}
	for _, r := range st["RollConfiguredServices"]["Resource"].([]any) {
		if sub := jsonString(r); cmp.Equal(sub, jsonString(map[string]any{"Fn::Sub": "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:service/prod/checkout"})) {
			t.Error("UpdateService granted on a blue/green service")
		}
	}
	rule := s.rule(t, "aws.codedeploy")
	want := map[string]any{
		"source": []any{"aws.codedeploy"}, "detail-type": []any{"CodeDeploy Deployment State-change Notification"},
		"account": []any{"111111111111"},
		"detail":  map[string]any{"state": []any{"SUCCESS", "FAILURE", "STOP"}, "application": []any{"checkout", "search"}},
	}
	if diff := cmp.Diff(want, rule["EventPattern"]); diff != "" {
		t.Errorf("event pattern (-want +got):\n%s", diff)
	}
	s.nagClean(t)
	s.lintClean(t)
}

// TestBlueGreenDiscovery: a target that finds its group gets the listing
// calls on the region's applications, and the rule hears every
// application; without blue/green targets nothing of CodeDeploy is made.
func TestBlueGreenDiscovery(t *testing.T) {
	s := synth(t, withRules(t, rulesYAML+"  - name: found\n    repository: web\n    tags: [\"rc-*\"]\n    targets:\n      - {cluster: prod, service: checkout, codedeploy: {}}\n"))
	st := s.statements(t)
	find := st["FindBlueGreenGroups"]
	if diff := cmp.Diff([]any{"codedeploy:ListApplications", "codedeploy:BatchGetApplications", "codedeploy:ListDeploymentGroups", "codedeploy:BatchGetDeploymentGroups"}, find["Action"]); diff != "" {
		t.Errorf("listing actions (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]any{"Fn::Sub": "arn:${AWS::Partition}:codedeploy:${AWS::Region}:${AWS::AccountId}:application:*"}, find["Resource"]); diff != "" {
		t.Errorf("listing resources (-want +got):\n%s", diff)
	}
	detail := s.rule(t, "aws.codedeploy")["EventPattern"].(map[string]any)["detail"].(map[string]any)
	if _, ok := detail["application"]; ok {
		t.Errorf("a discovering target's rule filters applications: %v", detail)
	}
	s.nagClean(t)
	s.lintClean(t)

	plain := synth(t)
	for sid := range plain.statements(t) {
		if sid == "DeployBlueGreenGroups" || sid == "ReadBlueGreenEndings" || sid == "DescribeBlueGreenServices" {
			t.Errorf("%s granted without blue/green targets", sid)
		}
	}
	for _, r := range plain.resources("AWS::Events::Rule") {
		if p, _ := r["EventPattern"].(map[string]any); p != nil && cmp.Equal([]any{"aws.codedeploy"}, p["source"]) {
			t.Error("a CodeDeploy rule without blue/green targets")
		}
	}
}
