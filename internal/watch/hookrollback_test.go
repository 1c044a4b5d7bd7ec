package watch

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

// `autodeploy rollback` of a paused ECS-native deployment writes
// a row naming the same service deployment (no deployment id, to = the
// source revision). The hook's HOOK_FAILED event that follows must still be
// judged against the product's own deploy record (rolled_back), not the CLI
// row, which is newer and names the same service deployment. Service
// deployments: the fake; the table: moto.
func TestHookAfterCLIRollbackJudgesTheDeploy(t *testing.T) {
	t.Parallel()
	f := newNativeFixture(t)
	ctx := context.Background()
	digest := f.pushImage(t, "main-zz1")
	rec, arn := f.nativeDeploy(t, "web-staging", "staging", "web", "main-zz1", digest, true)
	f.clock.advance(time.Minute)
	hook := f.ecs.Pause(arn, "PRE_PRODUCTION_TRAFFIC_SHIFT", 24*time.Hour)
	f.clock.advance(time.Minute)
	// What internal/cli/rollback.go does on the ECS-native path.
	if _, err := f.ecs.ContinueServiceDeployment(ctx, &ecs.ContinueServiceDeploymentInput{ServiceDeploymentArn: aws.String(arn),
		HookId: aws.String(hook), Action: types.DeploymentLifecycleHookActionRollback}); err != nil {
		t.Fatal(err)
	}
	cli := history.Record{Rule: rules.RollbackRule, Account: testenv.Account, Region: testenv.Region, Cluster: "staging", Service: "web",
		FromTaskDefinition: rec.ToTaskDefinition, ToTaskDefinition: "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:1",
		Rollout: rec.Rollout, ServiceDeploymentARN: arn, EventID: "rollback-1", Outcome: "deployed",
		Reason: "rollback through ECS by the autodeploy CLI", PushedAt: f.clock.Now(), DeployedAt: f.clock.Now()}
	if err := f.store.Put(ctx, cli); err != nil {
		t.Fatal(err)
	}
	f.clock.advance(time.Second)
	ev := hookEvent(t, "hook-evt-zz1", "HOOK_FAILED", "PAUSE", "web", arn, hook, "PRE_PRODUCTION_TRAFFIC_SHIFT", time.Time{})
	res, err := f.w.Handle(ctx, ev)
	if err != nil || res.Outcome != history.RolledBack || res.DeploymentID != rec.DeploymentID {
		t.Errorf("HOOK_FAILED after autodeploy rollback: %+v, %v; want rolled_back of %s", res, err, rec.DeploymentID)
	}
	if got := f.record(t, rec.DeploymentID); got.DeploymentOutcome != history.RolledBack {
		t.Errorf("deploy record outcome %q, want rolled_back", got.DeploymentOutcome)
	}
}
