package reconcile

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/deploy"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecrevent"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/emulator"
)

// queueStub takes what a work queue would, answering queued.
type queueStub struct{ jobs []deploy.Job }

func (q *queueStub) Dispatch(_ context.Context, push ecrevent.Push, jobs []deploy.Job) (deploy.Summary, error) {
	sum := deploy.Summary{EventID: push.EventID}
	for _, j := range jobs {
		q.jobs = append(q.jobs, j)
		sum.Results = append(sum.Results, deploy.Result{Rule: j.Rule.Name, Cluster: j.Target.Cluster, Service: j.Target.Service,
			Outcome: deploy.Queued, Reason: "message m-1"})
	}
	return sum, nil
}

// A sweep goes through the deployer's dispatcher: with a work queue, a
// target behind is queued, and its line says so (not "deployed"); what is in
// sync is not queued; nothing is deployed by the sweep itself.
func TestSweepQueuesWhatIsBehind(t *testing.T) {
	f := newFixture(t, sweepRules)
	images := f.repo(t, "web", "main-1", "v1.0.0", "main-2", "v1.1.0")
	old := emulator.Registry + "/web:seed"
	stagingFrom := f.service(t, "staging", "web", old)
	f.service(t, "prod", "web", emulator.Registry+"/web@"+images["v1.1.0"])
	f.service(t, "prod", "web-next", old)
	f.service(t, "staging", "gone", emulator.Registry+"/gone:1")
	q := &queueStub{}
	f.sweeper.Deployer.Dispatcher = q

	rep, got := f.sweep(t, "sweep-q")
	want := map[string]string{"staging/web": Queued, "prod/web": InSync, "staging/gone": Failed, "prod/web-next": Skipped}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("sweep (-want +got):\n%s\n%s", diff, f.logs)
	}
	if len(q.jobs) != 1 || q.jobs[0].Rule.Name != "web-staging" || q.jobs[0].Index != 0 || q.jobs[0].Target.Service != "web" {
		t.Errorf("queued %+v", q.jobs)
	}
	if rep.Drift != 1 {
		t.Errorf("drift = %d, want 1", rep.Drift)
	}
	if arn, _ := f.running(t, "staging", "web"); arn != stagingFrom {
		t.Errorf("the sweep deployed %s itself", arn)
	}
}
