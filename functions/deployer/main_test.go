package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/emulator"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

// TestBootstrapUnderRIE runs the built bootstrap as Lambda runs it, with the
// rules file beside it and only the environment contract set, against moto.
func TestBootstrapUnderRIE(t *testing.T) {
	m := testenv.StartMoto(t)
	ctx := context.Background()
	table := m.CreateTable(t, "autodeploy-state")
	client := ecs.NewFromConfig(m.AWSConfig())
	if _, err := emulator.SeedService(ctx, client, emulator.Service{
		Cluster: "staging", Name: "web", Family: "web",
		Containers: []emulator.Container{{Name: "app", Image: emulator.Registry + "/web:main-0000000", Env: map[string]string{"TOKEN": "s3cr3t-value"}}},
	}); err != nil {
		t.Fatal(err)
	}

	rie := testenv.StartFunction(t, "deployer", "testdata/autodeploy.yaml", append(m.Env(), "AUTODEPLOY_TABLE="+table))

	event := testenv.Event(t, "ecr-push-main.json")

	// A malformed event is a clear error, and the function keeps serving.
	body, err := rie.Invoke(ctx, []byte(`{"source": "aws.ecr", "detail-type": "ECR Image Action", "detail": 7}`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(body), "errorMessage") || !strings.Contains(string(body), "malformed ECR event") {
		t.Errorf("malformed event answered %s", body)
	}

	body, err = rie.Invoke(ctx, event)
	if err != nil {
		t.Fatal(err)
	}
	var sum struct {
		EventID string `json:"event_id"`
		Results []struct {
			Outcome      string `json:"outcome"`
			To           string `json:"to_task_definition"`
			DeploymentID string `json:"deployment_id"`
		} `json:"results"`
	}
	if err := json.Unmarshal(body, &sum); err != nil {
		t.Fatalf("response %s: %v", body, err)
	}
	if len(sum.Results) != 1 || sum.Results[0].Outcome != "deployed" {
		t.Fatalf("response = %s", body)
	}

	svc, err := client.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("staging"), Services: []string{"web"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(svc.Services[0].TaskDefinition); got != sum.Results[0].To || !strings.HasSuffix(got, "task-definition/web:2") {
		t.Errorf("service runs %s; the function said %s", got, sum.Results[0].To)
	}
	td, err := client.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: svc.Services[0].TaskDefinition})
	if err != nil {
		t.Fatal(err)
	}
	want := emulator.Registry + "/web@sha256:15794219de6dc381cac7805b3e96683d02e81b9cb72265b5cb8c1f501c21d71c"
	if got := aws.ToString(td.TaskDefinition.ContainerDefinitions[0].Image); got != want {
		t.Errorf("image = %s, want %s", got, want)
	}

	// The log ops read: one JSON deploy line with the request id.
	var deployLine map[string]any
	for _, line := range strings.Split(rie.WaitLogs(`"msg":"deploy"`, 1, 5*time.Second), "\n") {
		if strings.HasPrefix(line, "{") && strings.Contains(line, `"msg":"deploy"`) {
			if err := json.Unmarshal([]byte(line), &deployLine); err != nil {
				t.Fatalf("deploy line is not JSON: %s", line)
			}
		}
	}
	if deployLine == nil {
		t.Fatalf("no deploy line in the function's output:\n%s", rie.Logs())
	}
	if deployLine["outcome"] != "deployed" || deployLine["request_id"] == nil || deployLine["request_id"] == "" {
		t.Errorf("deploy line = %v", deployLine)
	}
	if strings.Contains(rie.Logs(), "s3cr3t-value") {
		t.Error("a container environment value reached the log")
	}
}
