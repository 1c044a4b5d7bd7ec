package reconcile

import (
	"testing"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

func TestScheduled(t *testing.T) {
	t.Parallel()
	o, ok := Scheduled(testenv.Event(t, "scheduled-reconcile.json"))
	if !ok || o.EventID != "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa" || o.DryRun {
		t.Errorf("Scheduled = %+v, %v", o, ok)
	}
	for _, name := range []string{"ecr-push-main.json", "ecs-deployment-completed.json"} {
		if _, ok := Scheduled(testenv.Event(t, name)); ok {
			t.Errorf("%s taken for a scheduled event", name)
		}
	}
	if _, ok := Scheduled([]byte("{")); ok {
		t.Error("malformed JSON taken for a scheduled event")
	}
}

func TestEventIDIsStablePerDigest(t *testing.T) {
	t.Parallel()
	a, b := EventID("sha256:4a5c0e1f9b2d3c4e5f60718293a4b5c6"), EventID("sha256:4a5c0e1f9b2d3c4e5f60718293a4b5c6")
	if a != b || a != "reconcile-4a5c0e1f9b2d" {
		t.Errorf("EventID = %q, %q", a, b)
	}
}
