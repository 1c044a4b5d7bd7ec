package reconcile

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/cleanup"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// On moto (ECS, and the marks in DynamoDB), the work queue a fake
// (sentCleanups): a family marked clean under keep 2 is sent again when
// its rule adds delete: true, though no newer revision runs — by a warm
// sweeper (which remembered the mark) and after a cold start (which reads
// it)
// — and once the run under the new settings marks it, it is clean again.
func TestSweepCleanMarkIsOfItsSettings(t *testing.T) {
	t.Parallel()
	f, runner := cleanupFixture(t)
	f.sweeper.Deployer.Dispatcher = &queueStub{}
	sent := &sentCleanups{}
	f.sweeper.CleanupQueue = sent
	ctx := context.Background()
	work := func(id string) int {
		t.Helper()
		f.sweep(t, id)
		cmds := sent.take()
		for _, c := range cmds {
			for range 2 { // the budget takes two items
				if _, err := runner.Run(ctx, c, cleanup.NewBudget(CleanupBudget)); err != nil {
					t.Fatal(err)
				}
			}
		}
		return len(cmds)
	}
	if n := work("s1"); n != 1 {
		t.Fatalf("s1 sent %d cleanups, want 1", n)
	}
	if n := work("s2"); n != 0 {
		t.Fatalf("s2 sent %d cleanups of a clean family", n)
	}
	if diff := cmp.Diff([]int{8, 9}, activeRevisions(t, f.ecs, "prod-web")); diff != "" {
		t.Fatalf("ACTIVE prod-web (-want +got):\n%s", diff)
	}

	for _, r := range f.sweeper.Rules.Rules {
		if r.Name == "web-prod" {
			r.Cleanup = &rules.Cleanup{Keep: 2, Delete: true}
		}
	}
	f.sweep(t, "warm")
	got := sent.take()
	if len(got) != 1 || got[0].Family != "prod-web" || !got[0].Delete {
		t.Fatalf("warm, after delete: true was added, sent %+v; want prod-web with delete", got)
	}
	coldStart := func() { // what the sweeper remembered is gone
		f.sweeper.mu.Lock()
		defer f.sweeper.mu.Unlock()
		f.sweeper.clean, f.sweeper.cleanLast = nil, nil
	}
	coldStart()
	f.sweep(t, "cold")
	if got := sent.take(); len(got) != 1 || !got[0].Delete {
		t.Fatalf("cold, after delete: true was added, sent %+v; want prod-web with delete", got)
	}
	if _, err := runner.Run(ctx, got[0], cleanup.NewBudget(CleanupBudget)); err != nil {
		t.Fatal(err)
	}
	if n := work("s3"); n != 0 {
		t.Errorf("s3 sent %d cleanups after the family was cleaned under its new settings", n)
	}
	coldStart()
	f.sweep(t, "cold2")
	if got := sent.take(); len(got) != 0 {
		t.Errorf("a cold sweeper sent %+v after the family was marked clean under its settings", got)
	}
}
