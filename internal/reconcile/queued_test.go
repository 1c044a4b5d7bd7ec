package reconcile

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/deploy"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecrevent"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/emulator"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work/queue"
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

// With a work queue, a target queued by one sweep is not queued again by
// the next while its item may still wait in the queue (a 1,000-target drain
// of one place outlasts reconcile.every): the sweep notes each queued item
// on the service's state item, one UpdateItem per target queued, and a
// later sweep (or a retry of the same one) finds the note naming the same
// digest, says queued, and counts it waiting. A note older than the queue's
// retry span, or naming another digest, queues the target again; a note
// that cannot be written leaves the item queued and the sweep whole.
func TestSweepLeavesQueuedTargetsAlone(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		// before runs before the first sweep, between after it.
		before, between func(t *testing.T, f *fixture)
		// second is the second sweep's id and how long after the first it runs.
		second    string
		after     time.Duration
		wantJobs  int
		wantLine  string // the second sweep's reason for staging/web
		wantNotes int    // UpdateItem calls of the second sweep; -1: not counted (failed and retried)
	}{
		{name: "a retry of the same sweep", second: "sweep-1", after: time.Minute,
			wantJobs: 1, wantLine: "already queued by sweep-1 at 2026-11-26T10:00:00Z, not queued again while its item may wait in the work queue"},
		{name: "the next sweep while the item waits", second: "sweep-2", after: 10 * time.Minute,
			wantJobs: 1, wantLine: "already queued by sweep-1 at 2026-11-26T10:00:00Z, not queued again while its item may wait in the work queue"},
		{name: "the next sweep past the retry span", second: "sweep-2", after: queue.RetrySpan,
			wantJobs: 2, wantLine: "message m-1", wantNotes: 1},
		{name: "a note of another digest", second: "sweep-2", after: time.Minute, wantJobs: 2, wantLine: "message m-1", wantNotes: 1,
			between: func(t *testing.T, f *fixture) {
				// The first sweep's note is replaced by one of an older digest.
				key := history.ServiceKey(testenv.Account, testenv.Region, "staging", "web")
				if err := f.store.NoteQueued(context.Background(), key, history.Queued{Digest: "sha256:older", At: start, By: "sweep-0"}); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "a note not written", second: "sweep-2", after: time.Minute, wantJobs: 2, wantLine: "message m-1", wantNotes: -1,
			before: func(t *testing.T, f *fixture) { f.proxy.Fail("UpdateItem", 100) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, sweepRules)
			f.repo(t, "web", "main-1", "v1.0.0", "main-2", "v1.1.0")
			f.service(t, "staging", "web", emulator.Registry+"/web:seed")
			q := &queueStub{}
			f.sweeper.Deployer.Dispatcher = q
			now := start
			f.sweeper.Now = func() time.Time { return now }
			if tt.before != nil {
				tt.before(t, f)
			}
			_ = f.proxy.Calls()
			_, got := f.sweep(t, "sweep-1")
			if got["staging/web"] != Queued {
				t.Fatalf("first sweep: staging/web %s\n%s", got["staging/web"], f.logs)
			}
			if n := f.proxy.Calls()["UpdateItem"]; tt.wantNotes >= 0 && n != 1 {
				t.Errorf("first sweep noted its queued item in %d calls, want 1", n)
			}
			if tt.between != nil {
				tt.between(t, f)
			}
			now = start.Add(tt.after)
			_ = f.proxy.Calls()
			rep, got := f.sweep(t, tt.second)
			if got["staging/web"] != Queued {
				t.Errorf("second sweep: staging/web %s, want %s", got["staging/web"], Queued)
			}
			if diff := cmp.Diff(tt.wantLine, reason(rep, "staging", "web")); diff != "" {
				t.Errorf("second sweep's reason (-want +got):\n%s", diff)
			}
			if len(q.jobs) != tt.wantJobs {
				t.Errorf("two sweeps queued %d items for staging/web, want %d\n%s", len(q.jobs), tt.wantJobs, f.logs)
			}
			if want := 2 - tt.wantJobs; rep.Waiting != want {
				t.Errorf("second sweep counted %d waiting, want %d", rep.Waiting, want)
			}
			if rep.Drift != 1 {
				t.Errorf("second sweep's drift = %d, want 1 (a target waiting is behind)", rep.Drift)
			}
			if tt.wantNotes < 0 && !strings.Contains(f.logs.String(), "the queued item is not noted") {
				t.Errorf("a note not written is not logged:\n%s", f.logs)
			}
			if n := f.proxy.Calls()["UpdateItem"]; tt.wantNotes >= 0 && n != tt.wantNotes {
				t.Errorf("second sweep made %d UpdateItem calls, want %d (one per target queued)", n, tt.wantNotes)
			}
		})
	}
}
