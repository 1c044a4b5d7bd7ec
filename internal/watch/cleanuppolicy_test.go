package watch

import (
	"context"
	"testing"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// TestCompletionCleanupTakesEveryRulesPolicy: staging and prod may share
// the family web. The completion's item is decided as the sweep's is
// (reconcile.FamilyCleanup over every target of the place, since the
// watcher cannot tell which run the family): the most any rule keeps (10),
// deleting only when every rule deletes (prod does not), naming both rules
// and both services. The history table is moto's (the fixture), the queue
// a recorder.
func TestCompletionCleanupTakesEveryRulesPolicy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	cfg, err := rules.Parse("autodeploy.yaml", []byte(`version: 1
rules:
  - name: web-staging
    repository: web
    tags: ["main-*"]
    cleanup: {keep: 2, delete: true}
    targets: [{cluster: staging, service: web}]
  - name: web-prod
    repository: web
    semver: ">= 1.0.0"
    cleanup: {keep: 10}
    targets: [{cluster: prod, service: web}]
`))
	if err != nil {
		t.Fatal(err)
	}
	f.w.Rules = cfg
	sent := &cleanupRecorder{}
	f.w.Cleanups = sent
	f.deployed(t, "web-staging", "staging", "web", "main-1", f.pushImage(t, "main-1"), "ecs-svc/11")
	if _, err := f.w.Handle(ctx, ecsEvent(t, "ecs-deployment-completed.json", "staging", "web", "ecs-svc/11")); err != nil {
		t.Fatal(err)
	}
	if len(sent.cmds) != 1 {
		t.Fatalf("queued %d cleanups, want 1", len(sent.cmds))
	}
	if c := sent.cmds[0]; c.Keep < 10 || c.Delete {
		t.Errorf("completion's cleanup of web: keep %d delete %v, naming %v — web-prod (prod/web, also in the item) keeps 10 and does not delete; the sweep would send keep 10, delete false", c.Keep, c.Delete, c.Services)
	}
	if c := sent.cmds[0]; len(c.Rules) != 2 || len(c.Services) != 2 {
		t.Errorf("completion's cleanup: rules %v, services %+v: want both rules and both services", c.Rules, c.Services)
	}
}
