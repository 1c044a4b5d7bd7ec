package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

type template struct {
	Parameters map[string]struct{ Type, Default string }
	Resources  map[string]struct {
		Type       string
		Properties map[string]any
	}
}

// synth synthesizes the example and lints its template with cfn-lint
// (no finding accepted: the service's ECS-native properties are checked
// against CloudFormation's schema).
func synth(t *testing.T, p Props) template {
	t.Helper()
	app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(t.TempDir())})
	NewServiceStack(app, "ShopService", p)
	path := *app.Synth(nil).GetStackArtifact(jsii.String("ShopService")).TemplateFullPath()
	if out, err := exec.Command(testenv.CfnLintBinary(t), "--format", "parseable", path).CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("cfn-lint (%v):\n%s", err, out)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var tmpl template
	if err := json.Unmarshal(data, &tmpl); err != nil {
		t.Fatal(err)
	}
	return tmpl
}

// idOf is the logical id of the one resource of typ whose id starts with
// prefix.
func (tm template) idOf(t *testing.T, typ, prefix string) string {
	t.Helper()
	var found []string
	for id, r := range tm.Resources {
		if r.Type == typ && strings.HasPrefix(id, prefix) {
			found = append(found, id)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d %s resources %s*: %v", len(found), typ, prefix, found)
	}
	return found[0]
}

// The service is on the ECS controller with the BLUE_GREEN strategy, the
// bake time and one PAUSE hook at the stage asked (rolling back at its
// timeout), its load balancer with the advanced configuration ECS shifts
// traffic with (the alternate target group, both listener rules, the
// infrastructure role), and its image is the parameter ecr-autodeploy
// publishes. The service's own fields are the ones ecr-autodeploy reads
// (rollout.KindOf: controller and strategy) and never changes.
func TestBlueGreenWithAPause(t *testing.T) {
	for _, tc := range []struct {
		name           string
		bake           float64
		stage          string
		timeoutMinutes float64
	}{
		{name: "after test traffic", bake: 10, stage: "POST_TEST_TRAFFIC_SHIFT", timeoutMinutes: 60},
		{name: "before scale-up", bake: 5, stage: "PRE_SCALE_UP", timeoutMinutes: 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tm := synth(t, Props{Cluster: "prod", Service: "shop", Container: "app", Prefix: "/ecr-autodeploy", Repository: "shop",
				BakeMinutes: tc.bake, PauseStage: tc.stage, TimeoutMinutes: tc.timeoutMinutes})
			svc := tm.Resources[tm.idOf(t, "AWS::ECS::Service", "Service")].Properties
			if diff := cmp.Diff(map[string]any{"Type": "ECS"}, svc["DeploymentController"]); diff != "" {
				t.Errorf("deployment controller (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(map[string]any{
				"Strategy":          "BLUE_GREEN",
				"BakeTimeInMinutes": tc.bake,
				"LifecycleHooks": []any{map[string]any{
					"TargetType":           "PAUSE",
					"LifecycleStages":      []any{tc.stage},
					"TimeoutConfiguration": map[string]any{"TimeoutInMinutes": tc.timeoutMinutes, "Action": "ROLLBACK"},
				}},
				"DeploymentCircuitBreaker": map[string]any{"Enable": true, "Rollback": true},
			}, svc["DeploymentConfiguration"]); diff != "" {
				t.Errorf("deployment configuration (-want +got):\n%s", diff)
			}
			getAtt := func(id, attr string) map[string]any { return map[string]any{"Fn::GetAtt": []any{id, attr}} }
			blue, green := tm.idOf(t, "AWS::ElasticLoadBalancingV2::TargetGroup", "Blue"), tm.idOf(t, "AWS::ElasticLoadBalancingV2::TargetGroup", "Green")
			if diff := cmp.Diff([]any{map[string]any{
				"ContainerName":  "app",
				"ContainerPort":  float64(port),
				"TargetGroupArn": map[string]any{"Ref": blue},
				"AdvancedConfiguration": map[string]any{
					"AlternateTargetGroupArn": map[string]any{"Ref": green},
					"ProductionListenerRule":  map[string]any{"Ref": tm.idOf(t, "AWS::ElasticLoadBalancingV2::ListenerRule", "ProductionRule")},
					"TestListenerRule":        map[string]any{"Ref": tm.idOf(t, "AWS::ElasticLoadBalancingV2::ListenerRule", "TestRule")},
					"RoleArn":                 getAtt(tm.idOf(t, "AWS::IAM::Role", "EcsInfrastructureRole"), "Arn"),
				},
			}}, svc["LoadBalancers"]); diff != "" {
				t.Errorf("load balancers (-want +got):\n%s", diff)
			}
			// Both listener rules forward only, blue at 100 and green at 0:
			// ECS moves the weights.
			for _, rule := range []string{"ProductionRule", "TestRule"} {
				actions := tm.Resources[tm.idOf(t, "AWS::ElasticLoadBalancingV2::ListenerRule", rule)].Properties["Actions"]
				want := []any{map[string]any{"Type": "forward", "ForwardConfig": map[string]any{"TargetGroups": []any{
					map[string]any{"TargetGroupArn": map[string]any{"Ref": blue}, "Weight": 100.0},
					map[string]any{"TargetGroupArn": map[string]any{"Ref": green}, "Weight": 0.0},
				}}}}
				if diff := cmp.Diff(want, actions); diff != "" {
					t.Errorf("%s actions (-want +got):\n%s", rule, diff)
				}
			}
			role := tm.Resources[tm.idOf(t, "AWS::IAM::Role", "EcsInfrastructureRole")].Properties
			if got := jsonOf(role); !strings.Contains(got, "AmazonECSInfrastructureRolePolicyForLoadBalancers") || !strings.Contains(got, "ecs.amazonaws.com") {
				t.Errorf("infrastructure role %s: want ECS trusted with AmazonECSInfrastructureRolePolicyForLoadBalancers", got)
			}
			var param string
			for id, prm := range tm.Parameters {
				if prm.Type == "AWS::SSM::Parameter::Value<String>" && prm.Default == "/ecr-autodeploy/prod/shop/app" {
					param = id
				}
			}
			task := tm.Resources[tm.idOf(t, "AWS::ECS::TaskDefinition", "Task")].Properties
			if image := task["ContainerDefinitions"].([]any)[0].(map[string]any)["Image"]; param == "" || !cmp.Equal(map[string]any{"Ref": param}, image) {
				t.Errorf("the container's image is %v, want the published parameter's (%q)", image, param)
			}
			if diff := cmp.Diff(map[string]any{"Ref": tm.idOf(t, "AWS::ECS::TaskDefinition", "Task")}, svc["TaskDefinition"]); diff != "" {
				t.Errorf("task definition (-want +got):\n%s", diff)
			}
		})
	}
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
