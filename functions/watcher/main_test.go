package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

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
