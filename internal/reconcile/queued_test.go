package reconcile

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/deploy"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecrevent"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/emulator"
)

// queueStub takes what a work queue would, answering queued.
type queueStub struct {
	mu    sync.Mutex
	jobs  []deploy.Job
	calls []string // per Dispatch: rule@tag: services
}

func (q *queueStub) Dispatch(_ context.Context, push ecrevent.Push, jobs []deploy.Job) (deploy.Summary, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var names []string
	for _, j := range jobs {
		names = append(names, j.Target.Cluster+"/"+j.Target.Service)
	}
	q.calls = append(q.calls, jobs[0].Rule.Name+"@"+push.Tag+": "+strings.Join(names, ","))
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
	t.Parallel()
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

// With a work queue, the sweep hands the targets behind to it one push at a
// time (a rule and its newest digest), not one dispatch per target: the
// queue then sends them ten to a call. Each line says its own result.
func TestSweepQueuesOnePushPerRule(t *testing.T) {
	t.Parallel()
	f := newFixture(t, `version: 1
rules:
  - name: fleet
    repository: web
    tags: ["main-*"]
    targets: [{cluster: fleet, service: a}, {cluster: fleet, service: b}, {cluster: fleet, service: c}, {cluster: fleet, service: d}]
  - name: prod
    repository: web
    semver: ">= 1.0.0"
    targets: [{cluster: prod, service: a}, {cluster: prod, service: b}]
`)
	images := f.repo(t, "web", "main-1", "v1.0.0", "main-2")
	old := emulator.Registry + "/web:seed"
	for _, svc := range []string{"a", "b", "d"} {
		f.service(t, "fleet", svc, old)
	}
	f.service(t, "fleet", "c", emulator.Registry+"/web@"+images["main-2"])
	f.service(t, "prod", "a", old)
	f.service(t, "prod", "b", old)
	q := &queueStub{}
	f.sweeper.Deployer.Dispatcher = q

	rep, got := f.sweep(t, "sweep-batch")
	want := map[string]string{"fleet/a": Queued, "fleet/b": Queued, "fleet/c": InSync, "fleet/d": Queued, "prod/a": Queued, "prod/b": Queued}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("sweep (-want +got):\n%s\n%s", diff, f.logs)
	}
	slices.Sort(q.calls)
	if diff := cmp.Diff([]string{"fleet@main-2: fleet/a,fleet/b,fleet/d", "prod@v1.0.0: prod/a,prod/b"}, q.calls); diff != "" {
		t.Errorf("dispatches (-want +got):\n%s", diff)
	}
	for _, l := range rep.Lines {
		if l.Outcome == Queued && l.Reason != "message m-1" {
			t.Errorf("%s/%s: reason %q, want the queue's", l.Cluster, l.Service, l.Reason)
		}
	}
	if n := strings.Count(f.logs.String(), `"msg":"reconcile"`); n != len(rep.Lines) {
		t.Errorf("%d reconcile lines logged for %d targets", n, len(rep.Lines))
	}
	if rep.Drift != 5 {
		t.Errorf("drift = %d, want 5", rep.Drift)
	}
}
