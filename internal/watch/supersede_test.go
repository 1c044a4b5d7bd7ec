package watch

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

// Push 1's deployment of svc-00 completes; before the watcher
// hears it (EventBridge latency, or Lambda's retry a minute later), push 2
// deploys svc-00 again. The late completion of push 1 must not end push 2's
// deployment, which runs and is newer, as "superseded": push 2's own end
// (here, a failure) is then dropped as "outcome already recorded", its
// failed digest is never remembered, and sweeps redeploy it. The store is
// moto; the events are ECS's sample events.
func TestLateCompletionLeavesTheNewerDeploymentAlone(t *testing.T) {
	w, store, _, _ := fleetWatcher(t, "one", 1)
	ctx := context.Background()
	put := func(event, tag, digest, depl, td string, at time.Time) {
		if err := store.Put(ctx, history.Record{Rule: "one", Repository: "web", Tag: tag, Digest: digest,
			Account: testenv.Account, Region: testenv.Region, Cluster: "fleet", Service: "svc-00",
			DeploymentID: depl, EventID: event, Outcome: "deployed", ToTaskDefinition: td, PushedAt: at, DeployedAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	d2 := "sha256:" + strings.Repeat("cd", 32)
	put("push-1", "main-abc", "sha256:"+strings.Repeat("ab", 32), "ecs-svc/1", "arn:aws:ecs:eu-west-1:123456789012:task-definition/svc-00:1", t0)
	put("push-2", "main-def", d2, "ecs-svc/2", "arn:aws:ecs:eu-west-1:123456789012:task-definition/svc-00:2", t0.Add(2*time.Minute))

	// Push 1's completion, heard after push 2 deployed.
	if _, err := w.Handle(ctx, ecsEvent(t, "ecs-deployment-completed.json", "fleet", "svc-00", "ecs-svc/1")); err != nil {
		t.Fatal(err)
	}
	newer, _, err := store.ByDeployment(ctx, "ecs-svc/2")
	if err != nil {
		t.Fatal(err)
	}
	if newer.DeploymentOutcome != "" {
		t.Errorf("push 2's running deployment was ended %q (%s) by the late completion of the older push 1", newer.DeploymentOutcome, newer.DeploymentReason)
	}
	// Push 2's deployment then fails: that is its outcome.
	res, err := w.Handle(ctx, ecsEvent(t, "ecs-deployment-failed.json", "fleet", "svc-00", "ecs-svc/2"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Ignored != "" {
		t.Errorf("push 2's failure was ignored: %q", res.Ignored)
	}
	states, err := store.States(ctx, []string{history.ServiceKey(testenv.Account, testenv.Region, "fleet", "svc-00")})
	if err != nil {
		t.Fatal(err)
	}
	if st := states[history.ServiceKey(testenv.Account, testenv.Region, "fleet", "svc-00")]; !st.DigestFailed(d2) {
		t.Errorf("push 2's failed digest is not remembered: a sweep deploys it again")
	}
}
