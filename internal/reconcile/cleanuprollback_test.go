package reconcile

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/cleanup"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work"
)

// TestCleanupKeepsTheDefaultRollbackTargetPastFailedDeploys: web:10 →
// web:12 completed (the revision `autodeploy rollback` returns to by default
// is web:10, history.RollbackTarget), then three pushes failed and ECS
// rolled each back (12→13, 12→14, 12→15); web:11 was an earlier deploy that
// rolled back. With keep 3 the runner counts only deploys that completed
// (reading history.RollbackReach records, not keep), and always protects
// the default rollback target: web:10 stays beside the newest three, the
// running 12 and the one before it. ECS and history are fakes.
func TestCleanupKeepsTheDefaultRollbackTargetPastFailedDeploys(t *testing.T) {
	f := &familyECS{services: []types.Service{{ServiceName: aws.String("web"), Status: aws.String("ACTIVE"),
		TaskDefinition: aws.String(tdARN + "web:12"),
		Deployments:    []types.Deployment{{Status: aws.String("PRIMARY"), TaskDefinition: aws.String(tdARN + "web:12")}}}}}
	for i := 1; i <= 15; i++ {
		f.active = append(f.active, fmt.Sprintf("web:%d", i))
	}
	rec := func(from, to int, outcome string) history.Record {
		return history.Record{Rule: "web", Outcome: "deployed", DeploymentOutcome: outcome,
			FromTaskDefinition: fmt.Sprintf("%sweb:%d", tdARN, from), ToTaskDefinition: fmt.Sprintf("%sweb:%d", tdARN, to)}
	}
	h := fakeHistory{rec(12, 15, history.RolledBack), rec(12, 14, history.RolledBack), rec(12, 13, history.RolledBack),
		rec(10, 12, history.Completed), rec(10, 11, history.RolledBack)}
	r := &CleanupRunner{ECS: func(string, string) CleanupECS { return f }, History: h, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	cmd := work.Cleanup{Account: "111111111111", Region: "eu-west-1", Family: "web", Keep: 3,
		Services: []work.CleanupService{{Cluster: "prod", Service: "web"}}, Rules: []string{"web"}, Origin: "test"}
	if _, err := r.Run(context.Background(), cmd, cleanup.NewBudget(100)); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(f.deregistered, "web:10") {
		t.Errorf("deregistered %s: web:10, the revision `autodeploy rollback` returns to by default (the last completed deploy 10→12), is gone; "+
			"ACTIVE left: %s — the rollback is refused and offers --to 11, the revision whose deployment ECS rolled back",
			strings.Join(f.deregistered, ", "), strings.Join(f.active, ", "))
	}
	if want := []string{"web:9", "web:8", "web:7", "web:6", "web:5", "web:4", "web:3", "web:2", "web:1"}; !slices.Equal(f.deregistered, want) {
		t.Errorf("deregistered %v, want %v: the newest three (15, 14, 13), the running 12, the one before it (11) and the rollback target 10 stay", f.deregistered, want)
	}
	if got := history.RollbackTarget(h, tdARN+"web:12"); got != tdARN+"web:10" {
		t.Errorf("history.RollbackTarget = %q, want web:10 (the one the CLI's rollback returns to)", got)
	}
}
