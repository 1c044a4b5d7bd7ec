package watch

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

// The watcher's invocation that counted a rollout's last end and claimed its
// notice dies (its 1-minute timeout) before it sends. Lambda retries the
// event twice, about 1 and 3 minutes later (the stack's RetryAttempts 2),
// then parks it in the watcher's failure queue. The claim holds only until
// the dead invocation's deadline (and claimSkew): a retry takes it over and
// sends the rule's notice once. Store on moto; ECS's sample events.
func TestWatcherRetryTakesOverADeadClaimersNotice(t *testing.T) {
	w, store, rec, _ := fleetWatcher(t, "fleet", 2)
	clock := t0
	w.Now = func() time.Time { return clock }
	ctx := context.Background()
	digest := "sha256:" + strings.Repeat("ab", 32)
	if err := store.OpenRollout(ctx, history.Rollout{Rule: "fleet", EventID: "push-1", Repository: "web", Tag: "main-abc",
		Digest: digest, PushedAt: t0}, fleetTargets(2), t0); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := store.Put(ctx, history.Record{Rule: "fleet", Repository: "web", Tag: "main-abc", Digest: digest,
			Account: testenv.Account, Region: testenv.Region, Cluster: "fleet", Service: fmt.Sprintf("svc-%02d", i),
			DeploymentID: fmt.Sprintf("ecs-svc/%d", 100+i), EventID: "push-1", Outcome: "deployed",
			PushedAt: t0, DeployedAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Handle(ctx, ecsEvent(t, "ecs-deployment-completed.json", "fleet", "svc-00", "ecs-svc/100")); err != nil {
		t.Fatal(err)
	}
	// svc-01's completion: the first invocation records and counts it, claims
	// the notice, and dies before sending (played by its two store calls).
	r1, _, err := store.ByDeployment(ctx, "ecs-svc/101")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.SetOutcome(ctx, r1, history.Completed, "", clock); err != nil {
		t.Fatal(err)
	}
	dying, cancel := context.WithTimeout(ctx, time.Minute) // Lambda's deadline for the watcher
	defer cancel()
	got, err := store.EndRollout(dying, "fleet", "push-1", history.RolloutEnd{ServiceKey: history.ServiceKey(testenv.Account, testenv.Region, "fleet", "svc-01"),
		Account: testenv.Account, Region: testenv.Region, Cluster: "fleet", Service: "svc-01", Outcome: history.Completed, At: clock}, clock)
	if err != nil || !got.Last {
		t.Fatalf("the dying invocation's claim: %+v, %v", got, err)
	}
	// Lambda's two retries of the event.
	var last error
	for _, after := range []time.Duration{time.Minute, 3 * time.Minute} {
		clock = t0.Add(after)
		_, last = w.Handle(ctx, ecsEvent(t, "ecs-deployment-completed.json", "fleet", "svc-01", "ecs-svc/101"))
	}
	if len(rec.messages) != 1 {
		t.Errorf("after Lambda's last retry (last error: %v, pending: %v): %d notices, want the rule's one", last, errors.Is(last, history.ErrNoticePending), len(rec.messages))
	}
}
