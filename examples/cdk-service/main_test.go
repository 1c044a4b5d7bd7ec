package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"
)

// The synthesized template reads the image from the parameter ecr-autodeploy
// publishes (a CloudFormation parameter of type
// AWS::SSM::Parameter::Value<String>, resolved at every deploy) and names no
// image itself: a `cdk deploy` of it cannot revert a deploy.
func TestImageComesFromTheParameter(t *testing.T) {
	app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(t.TempDir())})
	p := Props{Cluster: "prod", Service: "web", Container: "app", Prefix: "/ecr-autodeploy", Repository: "web"}
	NewServiceStack(app, "WebService", p)
	path := *app.Synth(nil).GetStackArtifact(jsii.String("WebService")).TemplateFullPath()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var tmpl struct {
		Parameters map[string]struct{ Type, Default string }
		Resources  map[string]struct {
			Type       string
			Properties map[string]any
		}
	}
	if err := json.Unmarshal(data, &tmpl); err != nil {
		t.Fatal(err)
	}
	var param string
	for id, prm := range tmpl.Parameters {
		if prm.Type == "AWS::SSM::Parameter::Value<String>" && prm.Default == "/ecr-autodeploy/prod/web/app" {
			param = id
		}
	}
	if param == "" {
		t.Fatalf("no AWS::SSM::Parameter::Value<String> parameter for /ecr-autodeploy/prod/web/app: %v", tmpl.Parameters)
	}
	var images []any
	for _, r := range tmpl.Resources {
		if r.Type != "AWS::ECS::TaskDefinition" {
			continue
		}
		for _, c := range r.Properties["ContainerDefinitions"].([]any) {
			images = append(images, c.(map[string]any)["Image"])
		}
	}
	if len(images) != 1 {
		t.Fatalf("container images = %v", images)
	}
	if ref, _ := images[0].(map[string]any); ref["Ref"] != param {
		t.Errorf("the container's image is %v, want {Ref: %s}", images[0], param)
	}
	if strings.Contains(string(data), ".dkr.ecr.") || strings.Contains(string(data), `"Image": "`) {
		t.Error("the template names an image")
	}
	if !strings.Contains(string(data), `"DeploymentCircuitBreaker"`) {
		t.Error("no circuit breaker: ECS would never report a failed deployment")
	}
}
