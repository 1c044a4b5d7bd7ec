package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/emulator"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

// TestBootstrapUnderRIE runs the built watcher as Lambda runs it on the
// sample events: a failed deployment, its circuit-breaker rollback, and a
// late "completed" that must not turn the rollback into a success.
func TestBootstrapUnderRIE(t *testing.T) {
	m := testenv.StartMoto(t)
	ctx := context.Background()
	table := m.CreateTable(t, "autodeploy-state")
	store := history.NewStore(dynamodb.NewFromConfig(m.AWSConfig()), table)
	pushed := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	if err := store.Put(ctx, history.Record{
		Rule: "web-staging", Repository: "web", RegistryAccount: testenv.Account, RegistryRegion: testenv.Region,
		Tag: "main-4f2a9c1", Digest: "sha256:15794219de6dc381cac7805b3e96683d02e81b9cb72265b5cb8c1f501c21d71c",
		Account: testenv.Account, Region: testenv.Region, Cluster: "staging", Service: "web",
		DeploymentID: "ecs-svc/1111111111111111111", EventID: "1a0c4c1e-5b8f-4c2e-9d65-0c3e2f1a7b01",
		Outcome: "deployed", PushedAt: pushed, DeployedAt: pushed.Add(3 * time.Second),
	}); err != nil {
		t.Fatal(err)
	}

	rie := testenv.StartFunction(t, "watcher", "testdata/autodeploy.yaml", append(m.Env(), "AUTODEPLOY_TABLE="+table))

	for _, step := range []struct{ sample, want string }{
		{"ecs-deployment-in-progress.json", `"ignored":"deployment still in progress"`},
		{"ecs-deployment-failed.json", `"outcome":"failed"`},
		{"ecs-deployment-rollback.json", `"outcome":"rolled_back"`},
		{"ecs-deployment-completed.json", `"ignored":"outcome already recorded"`},
	} {
		body, err := rie.Invoke(ctx, testenv.Event(t, step.sample))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(body), step.want) {
			t.Errorf("%s answered %s, want %s", step.sample, body, step.want)
		}
	}
	rec, found, err := store.ByDeployment(ctx, "ecs-svc/1111111111111111111")
	if err != nil || !found || rec.DeploymentOutcome != history.RolledBack {
		t.Errorf("history outcome = %q (found %v, %v), want rolled_back", rec.DeploymentOutcome, found, err)
	}
	var outcomes []string
	for _, line := range strings.Split(rie.WaitLogs(`"msg":"deployment"`, 2, 5*time.Second), "\n") {
		if !strings.HasPrefix(line, "{") || !strings.Contains(line, `"msg":"deployment"`) {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not JSON: %s", line)
		}
		if m["request_id"] == nil {
			t.Errorf("deployment line without request_id: %s", line)
		}
		outcomes = append(outcomes, m["outcome"].(string))
	}
	if strings.Join(outcomes, ",") != "failed,rolled_back" {
		t.Errorf("deployment lines = %v, want failed then rolled_back", outcomes)
	}
}

// TestBlueGreenUnderRIE: the built watcher on CodeDeploy's sample events,
// for deployments made in moto's CodeDeploy (whose GetDeployment it reads
// to learn whether a failure was rolled back).
func TestBlueGreenUnderRIE(t *testing.T) {
	m := testenv.StartMoto(t)
	ctx := context.Background()
	table := m.CreateTable(t, "autodeploy-state")
	store := history.NewStore(dynamodb.NewFromConfig(m.AWSConfig()), table)
	cd := codedeploy.NewFromConfig(m.AWSConfig())
	if err := emulator.SeedDeploymentGroup(ctx, cd, "web", "web-staging", "staging", "web"); err != nil {
		t.Fatal(err)
	}
	pushed := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	ids := map[string]string{}
	for _, tag := range []string{"main-good", "main-bad"} {
		out, err := cd.CreateDeployment(ctx, &codedeploy.CreateDeploymentInput{ApplicationName: aws.String("web"), DeploymentGroupName: aws.String("web-staging")})
		if err != nil {
			t.Fatal(err)
		}
		ids[tag] = aws.ToString(out.DeploymentId)
		if err := store.Put(ctx, history.Record{
			Rule: "web-staging", Repository: "web", RegistryAccount: testenv.Account, RegistryRegion: testenv.Region,
			Tag: tag, Digest: "sha256:" + strings.Repeat(tag[5:6], 64), Account: testenv.Account, Region: testenv.Region,
			Cluster: "staging", Service: "web", DeploymentID: ids[tag], EventID: "push-" + tag,
			Outcome: "deployed", PushedAt: pushed, DeployedAt: pushed.Add(3 * time.Second),
		}); err != nil {
			t.Fatal(err)
		}
	}
	rie := testenv.StartFunction(t, "watcher", "testdata/autodeploy.yaml", append(m.Env(), "AUTODEPLOY_TABLE="+table))
	for _, step := range []struct{ sample, tag, want string }{
		{"codedeploy-start.json", "main-good", `"ignored":"deployment still in progress"`},
		{"codedeploy-success.json", "main-good", `"outcome":"completed"`},
		{"codedeploy-success.json", "main-good", `"ignored":"outcome already recorded"`},
		{"codedeploy-failure.json", "main-bad", `"outcome":"failed"`},
	} {
		var ev map[string]any
		if err := json.Unmarshal(testenv.Event(t, step.sample), &ev); err != nil {
			t.Fatal(err)
		}
		ev["detail"].(map[string]any)["deploymentId"] = ids[step.tag]
		data, _ := json.Marshal(ev)
		body, err := rie.Invoke(ctx, data)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(body), step.want) {
			t.Errorf("%s for %s answered %s, want %s", step.sample, step.tag, body, step.want)
		}
	}
	rec, _, err := store.ByDeployment(ctx, ids["main-bad"])
	if err != nil || rec.DeploymentOutcome != history.Failed || rec.DeploymentReason != "CodeDeploy deployment failed" {
		t.Errorf("failed deployment recorded as %q %q (%v)", rec.DeploymentOutcome, rec.DeploymentReason, err)
	}
}
