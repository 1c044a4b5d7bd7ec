package watch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work"
)

// cleanupRulesYAML: web-prod cleans up and publishes; web-staging does
// not clean up; both target services in the central place.
const cleanupRulesYAML = `version: 1
rules:
  - name: web-staging
    repository: web
    tags: ["main-*"]
    targets:
      - {cluster: staging, service: web}
  - name: web-prod
    repository: web
    semver: ">= 1.0.0"
    cleanup: {keep: 5, delete: true}
    publish: {ssm-prefix: /ecr-autodeploy}
    targets: [{cluster: prod, service: web}]
`

type cleanupRecorder struct {
	mu   sync.Mutex
	cmds []work.Cleanup
	err  error
}

func (r *cleanupRecorder) SendDelayed(_ context.Context, cmds []work.Cleanup, delay time.Duration) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	if delay != CleanupDelay {
		return fmt.Errorf("a completion's cleanup sent with delay %s, want %s (after the rest of its push's deploys)", delay, CleanupDelay)
	}
	r.cmds = append(r.cmds, cmds...)
	return nil
}

// A completion the watcher records for a target whose rule has cleanup:
// queues one cleanup of the revision's family in its place, naming every
// target of the place; the same event delivered again records nothing and
// queues nothing; a completion of a rule without cleanup: and a failure
// queue none; a queue that refuses fails no event (the sweep cleans).
func TestCompletionQueuesOneCleanup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	cfg, err := rules.Parse("autodeploy.yaml", []byte(cleanupRulesYAML))
	if err != nil {
		t.Fatal(err)
	}
	f.w.Rules = cfg
	sent := &cleanupRecorder{}
	f.w.Cleanups = sent

	f.deployed(t, "web-prod", "prod", "web", "v1.0.0", f.pushImage(t, "v1.0.0"), "ecs-svc/10")
	for delivery := 1; delivery <= 2; delivery++ {
		if _, err := f.w.Handle(ctx, ecsEvent(t, "ecs-deployment-completed.json", "prod", "web", "ecs-svc/10")); err != nil {
			t.Fatalf("delivery %d: %v", delivery, err)
		}
	}
	want := []work.Cleanup{{Account: testenv.Account, Region: testenv.Region, Family: "web", Keep: 5, Delete: true,
		Services: []work.CleanupService{{Cluster: "staging", Service: "web"}, {Cluster: "prod", Service: "web"}},
		Rules:    []string{"web-prod"}, Origin: "completion of deployment ecs-svc/10"}}
	if diff := cmp.Diff(want, sent.cmds); diff != "" {
		t.Errorf("cleanups queued (-want +got):\n%s", diff)
	}

	sent.cmds = nil
	f.deployed(t, "web-staging", "staging", "web", "main-1", f.pushImage(t, "main-1"), "ecs-svc/11")
	if _, err := f.w.Handle(ctx, ecsEvent(t, "ecs-deployment-completed.json", "staging", "web", "ecs-svc/11")); err != nil {
		t.Fatal(err)
	}
	if len(sent.cmds) != 0 {
		t.Errorf("a rule without cleanup: queued %+v", sent.cmds)
	}

	sent.err = errors.New("SQS unavailable")
	f.deployed(t, "web-prod", "prod", "web", "v1.1.0", f.pushImage(t, "v1.1.0"), "ecs-svc/12")
	if _, err := f.w.Handle(ctx, ecsEvent(t, "ecs-deployment-completed.json", "prod", "web", "ecs-svc/12")); err != nil {
		t.Errorf("a cleanup not queued failed the event: %v", err)
	}
}
