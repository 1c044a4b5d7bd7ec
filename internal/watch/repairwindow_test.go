package watch

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rollout"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

// A record a repair wrote late (a worker killed after UpdateService, its
// item back after the queue's 18-minute visibility timeout; or an older
// version's repair, at the repair's time, with no service deployment ARN):
// the listing from DeployedAt less a few minutes misses the service
// deployment, so the newest match of the service's latest deployments is
// read before the watcher would take the COMPLETED event's word — while the
// canary still bakes. Service deployments: the fake; the table: moto.
func TestLateRecordStillFindsItsServiceDeployment(t *testing.T) {
	t.Parallel()
	f := newNativeFixture(t)
	ctx := context.Background()
	digest := f.pushImage(t, "main-zz2")
	f.ecs.AddService("staging", "web", canary(), "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:1")
	td := "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:2"
	out, err := f.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("staging"), Service: aws.String("web"), TaskDefinition: aws.String(td)})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(out.Service.CurrentServiceDeployment)
	f.clock.advance(18 * time.Minute) // the worker died; its item comes back
	rec := history.Record{Rule: "web-staging", Repository: "web", RegistryAccount: testenv.Account, RegistryRegion: testenv.Region,
		Tag: "main-zz2", Digest: digest, Account: testenv.Account, Region: testenv.Region, Cluster: "staging", Service: "web",
		ToTaskDefinition: td, DeploymentID: rollout.PrimaryDeployment(out.Service, td), EventID: "push-main-zz2", Outcome: "deployed",
		Reason:   "recorded by a retry: the deploy's own history write was lost",
		Rollout:  rollout.Kind{Family: rollout.ECSNative, Strategy: types.DeploymentStrategyCanary}.String(),
		PushedAt: t0, DeployedAt: f.clock.Now()}
	if err := f.store.Put(ctx, rec); err != nil {
		t.Fatal(err)
	}
	f.ecs.Advance(arn, types.ServiceDeploymentLifecycleStageBakeTime, 100)
	f.clock.advance(16 * time.Minute)
	f.ecs.Advance(arn, types.ServiceDeploymentLifecycleStageBakeTime, 100) // still baking
	res, err := f.w.Handle(ctx, ecsEvent(t, "ecs-deployment-completed.json", "staging", "web", rec.DeploymentID))
	if err != nil || res.Outcome != InProgress {
		t.Errorf("COMPLETED while the repaired deploy's canary bakes: %+v, %v; want in_progress", res, err)
	}
	if got := f.record(t, rec.DeploymentID); got.DeploymentOutcome != "" {
		t.Errorf("recorded %q (%s) while the service deployment still bakes", got.DeploymentOutcome, got.DeploymentReason)
	}
}
