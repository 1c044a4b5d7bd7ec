package stack

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// The deployer may write and read only the parameters under the publishing
// rules' prefixes, in their targets' regions, and nothing in Parameter Store
// when no rule publishes.
func TestPublishPermissions(t *testing.T) {
	if _, ok := synth(t).statements(t)["PublishRunningImages"]; ok {
		t.Error("Parameter Store granted though no rule publishes")
	}
	s := synth(t, func(p *Props) {
		cfg, err := rules.Parse("p.yaml", []byte(rulesYAML+
			"  - name: published\n    repository: web\n    tags: [\"rc-*\"]\n    publish: {ssm-prefix: /ecr-autodeploy}\n"+
			"    targets:\n      - {cluster: qa, service: web}\n      - {cluster: qa, service: web, region: us-east-1}\n"+
			"      - {cluster: qa, service: api, role: \"arn:aws:iam::222222222222:role/autodeploy-target\"}\n"))
		if err != nil {
			t.Fatal(err)
		}
		p.Rules = cfg
	})
	st := s.statements(t)["PublishRunningImages"]
	want := []any{
		map[string]any{"Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/ecr-autodeploy/qa/web/*"},
		map[string]any{"Fn::Sub": "arn:${AWS::Partition}:ssm:us-east-1:${AWS::AccountId}:parameter/ecr-autodeploy/qa/web/*"},
	}
	if diff := cmp.Diff([]any{"ssm:PutParameter", "ssm:GetParameter"}, st["Action"]); diff != "" {
		t.Errorf("actions (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, st["Resource"]); diff != "" {
		t.Errorf("parameters (-want +got):\n%s", diff)
	}
	s.nagClean(t)
	s.lintClean(t)
}
