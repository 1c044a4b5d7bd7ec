package reconcile

import (
	"testing"
)

// On moto, with the work queue a fake (queueStub for the deploys,
// sentCleanups for the cleanups): prod/web is behind (v1.2.0 pushed), so
// the queued sweep hands its deploy to the work queue and sends no cleanup
// of its family prod-web, which the worker could run before or beside the
// deploy's RegisterTaskDefinition (same bucket, same family): the deploy's
// completion sends it. The next sweep, which finds the deploy still queued,
// sends none either.
func TestQueuedSweepLeavesADeployingFamilyToItsCompletion(t *testing.T) {
	t.Parallel()
	f, _ := cleanupFixture(t)
	q := &queueStub{}
	f.sweeper.Deployer.Dispatcher = q
	sent := &sentCleanups{}
	f.sweeper.CleanupQueue = sent
	f.repo2(t, "web", "v1.2.0")

	for _, id := range []string{"s1", "s2"} {
		_, got := f.sweep(t, id)
		if got["prod/web"] != Queued {
			t.Fatalf("%s: prod/web %s, want queued", id, got["prod/web"])
		}
		if cmds := sent.take(); len(cmds) != 0 {
			t.Errorf("%s: the sweep queued prod/web's deploy (%v) and sent cleanups beside it: %+v", id, q.calls, cmds)
		}
	}
}
