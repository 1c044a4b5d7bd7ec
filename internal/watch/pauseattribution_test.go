package watch

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
)

// recordOfHook's fallback (the latest ECS-native record naming no service
// deployment, as a repaired record leaves it) takes only a record still in
// flight: a pause of someone else's deployment (an infrastructure deploy's
// UpdateService) after ours ended is not told as our image's, naming its
// rule, tag, digest and deployment. Service deployments: the fake; the
// table: moto.
func TestPauseOfAForeignDeploymentIsNotOurs(t *testing.T) {
	t.Parallel()
	f := newNativeFixture(t)
	ctx := context.Background()
	digest := f.pushImage(t, "main-zz3")
	rec, arn := f.nativeDeploy(t, "web-staging", "staging", "web", "main-zz3", digest, false)
	f.ecs.End(arn, types.ServiceDeploymentStatusSuccessful, "", "")
	if _, err := f.store.SetOutcome(ctx, rec, history.Completed, "", f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	f.clock.advance(3 * time.Hour)
	theirs := f.ecs.StartDeployment(t, "staging", "web", "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:77")
	hook := f.ecs.Pause(theirs, "PRE_PRODUCTION_TRAFFIC_SHIFT", time.Hour)
	ev := hookEvent(t, "hook-evt-zz3", "HOOK_AWAITING_ACTION", "PAUSE", "web", theirs, hook, "PRE_PRODUCTION_TRAFFIC_SHIFT", f.clock.Now().Add(time.Hour))
	// hookEvent stamps updatedAt at t0+1m; the pause is 3 h later.
	res, err := f.w.Handle(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	if res.DeploymentID == rec.DeploymentID {
		t.Errorf("the pause of another service deployment is reported as deployment %s (ended completed)", rec.DeploymentID)
	}
	for _, m := range f.rec.messages {
		if strings.Contains(m, "web:main-zz3") || strings.Contains(m, rec.DeploymentID) {
			t.Errorf("the notice of a foreign pause names our deploy:\n%s", m)
		}
	}
}
