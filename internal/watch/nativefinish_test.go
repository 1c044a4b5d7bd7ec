package watch

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// An ECS-native rollout judged by a recheck records when the service
// deployment finished (ECS's finishedAt), not when the timer fired: that
// fires on a whole minute, at least a minute after it was asked, and the
// bake's estimate can only run long, so history's finished_at and the
// PushToRunning metric would run late by minutes. Service deployments: the
// fake; the table: moto.
func TestNativeEndIsTheServiceDeploymentsFinish(t *testing.T) {
	f := newNativeFixture(t)
	ctx := context.Background()
	digest := f.pushImage(t, "main-zzf")
	rec, arn := f.nativeDeploy(t, "web-staging", "staging", "web", "main-zzf", digest, true)
	f.clock.advance(time.Minute)
	f.ecs.Advance(arn, types.ServiceDeploymentLifecycleStageBakeTime, 100)
	if _, err := f.w.Handle(ctx, ecsEvent(t, "ecs-deployment-completed.json", "staging", "web", rec.DeploymentID)); err != nil {
		t.Fatal(err)
	}
	f.clock.advance(10 * time.Minute)
	f.ecs.End(arn, types.ServiceDeploymentStatusSuccessful, "", "")
	finished := f.clock.Now()
	f.clock.advance(4 * time.Minute) // the timer fires later than ECS finished
	if _, err := f.w.Handle(ctx, recheckCommand(t, rec.DeploymentID)); err != nil {
		t.Fatal(err)
	}
	got := f.record(t, rec.DeploymentID)
	if !got.FinishedAt.Equal(finished) {
		t.Errorf("finished_at = %s, want the service deployment's finishedAt %s (off by %s)", got.FinishedAt, finished, got.FinishedAt.Sub(finished))
	}
}
