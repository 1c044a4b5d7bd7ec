package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/emulator"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/reconcile"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

// The built bootstrap under aws-lambda-rie answers EventBridge's scheduled
// event with a sweep: an image pushed with no event reaches its service.
func TestScheduledSweepUnderRIE(t *testing.T) {
	m := testenv.StartMoto(t)
	ctx := context.Background()
	table := m.CreateTable(t, "autodeploy-state")
	digest := m.Repository(t, "web", "main-9f8e7d6")["main-9f8e7d6"]
	client := ecs.NewFromConfig(m.AWSConfig())
	if _, err := emulator.SeedService(ctx, client, emulator.Service{Cluster: "staging", Name: "web", Family: "web",
		Containers: []emulator.Container{{Name: "app", Image: emulator.Registry + "/web:main-0000000"}}}); err != nil {
		t.Fatal(err)
	}
	rie := testenv.StartFunction(t, "deployer", "testdata/autodeploy.yaml", append(m.Env(), "AUTODEPLOY_TABLE="+table))
	body, err := rie.Invoke(ctx, testenv.Event(t, "scheduled-reconcile.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep reconcile.Report
	if err := json.Unmarshal(body, &rep); err != nil || len(rep.Lines) != 1 {
		t.Fatalf("answer %s: %v", body, err)
	}
	if l := rep.Lines[0]; l.Outcome != reconcile.Deployed || l.NewestTag != "main-9f8e7d6" || l.NewestDigest != digest || rep.Drift != 1 {
		t.Errorf("sweep = %+v", rep)
	}
	// The next sweep finds it in sync.
	body, err = rie.Invoke(ctx, testenv.Event(t, "scheduled-reconcile.json"))
	if err != nil || !strings.Contains(string(body), `"outcome":"in_sync"`) {
		t.Errorf("second sweep: %s, %v", body, err)
	}
	logs := rie.WaitLogs(`"msg":"reconcile"`, 2, 5*time.Second)
	if n := strings.Count(logs, `"msg":"reconcile"`); n != 2 {
		t.Errorf("%d reconcile lines in the function's log, want one per sweep", n)
	}
}
