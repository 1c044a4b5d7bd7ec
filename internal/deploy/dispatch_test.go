package deploy

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecrevent"
)

// recordingDispatcher stands in for a work queue: it takes the jobs and
// answers queued, or fails the dispatch.
type recordingDispatcher struct {
	jobs []string
	err  error
	// fail, when set, is each job's failure instead of queued.
	fail func(j Job) (reason string, retryable bool)
}

func (r *recordingDispatcher) Dispatch(_ context.Context, push ecrevent.Push, jobs []Job) (Summary, error) {
	sum := Summary{EventID: push.EventID}
	for _, j := range jobs {
		r.jobs = append(r.jobs, j.Rule.Name+"/"+j.Target.Cluster+"/"+j.Target.Service+"#"+strconv.Itoa(j.Index))
		res := Result{Rule: j.Rule.Name, Cluster: j.Target.Cluster, Service: j.Target.Service, Outcome: Queued}
		if r.fail != nil {
			res.Outcome = Failed
			res.Reason, res.Retryable = r.fail(j)
		}
		sum.Results = append(sum.Results, res)
	}
	return sum, r.err
}

func TestDispatchSeam(t *testing.T) {
	ctx := context.Background()
	ev := pushEvent(t, "web", "main-4f2a9c1", t0)
	t.Run("in-process by default", func(t *testing.T) {
		f := newFixture(t)
		sum, err := f.d.Handle(ctx, ev)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(map[string]string{"staging/web/web-staging": "deployed", "staging/web-worker/web-staging": "deployed"}, outcomes(sum)); diff != "" {
			t.Errorf("outcomes (-want +got):\n%s", diff)
		}
	})
	t.Run("explicit in-process equals the default", func(t *testing.T) {
		f := newFixture(t)
		f.d.Dispatcher = InProcess{f.d}
		sum, err := f.d.Handle(ctx, ev)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(map[string]string{"staging/web/web-staging": "deployed", "staging/web-worker/web-staging": "deployed"}, outcomes(sum)); diff != "" {
			t.Errorf("outcomes (-want +got):\n%s", diff)
		}
	})
	t.Run("a dispatcher takes the jobs, with their index, and deploys nothing here", func(t *testing.T) {
		f := newFixture(t)
		q := &recordingDispatcher{}
		f.d.Dispatcher = q
		sum, err := f.d.Handle(ctx, ev)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"web-staging/staging/web#0", "web-staging/staging/web-worker#1"}, q.jobs); diff != "" {
			t.Errorf("dispatched (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(map[string]string{"staging/web/web-staging": "queued", "staging/web-worker/web-staging": "queued"}, outcomes(sum)); diff != "" {
			t.Errorf("outcomes (-want +got):\n%s", diff)
		}
		if f.ecs.calls["RegisterTaskDefinition"]+f.ecs.calls["UpdateService"] != 0 {
			t.Errorf("the intake deployed: %v", f.ecs.calls)
		}
	})
	t.Run("a failed dispatch fails the invocation", func(t *testing.T) {
		f := newFixture(t)
		f.d.Dispatcher = &recordingDispatcher{err: errors.New("queue unavailable")}
		if _, err := f.d.Handle(ctx, ev); err == nil {
			t.Error("no error")
		}
	})
	t.Run("DeployTarget is the per-target path", func(t *testing.T) {
		f := newFixture(t)
		push, err := ecrevent.Parse(ev)
		if err != nil {
			t.Fatal(err)
		}
		jobs, _ := Match(f.d.Rules, f.d.Central, push)
		res := f.d.DeployTarget(ctx, push, jobs[1])
		if res.Outcome != Deployed || res.Service != "web-worker" {
			t.Errorf("result %+v", res)
		}
		if again := f.d.DeployTarget(ctx, push, jobs[1]); again.Outcome != Skipped {
			t.Errorf("again: %s (%s), want skipped", again.Outcome, again.Reason)
		}
	})
}

// A dispatcher's permanent failure never reaches the per-target path: the
// seam counts each, and notifies them once per event and rule, however
// often Lambda retries the push; a transient one is not notified (the push
// is retried).
func TestDispatchFailuresAreNotified(t *testing.T) {
	ctx := context.Background()
	ev := pushEvent(t, "web", "main-4f2a9c1", t0)
	f := newFixture(t)
	notices := &memNotifier{}
	f.d.Notifier = notices
	f.d.Dispatcher = &recordingDispatcher{fail: func(j Job) (string, bool) {
		if j.Target.Service == "web-worker" {
			return "not queued: throttled (will retry)", true
		}
		return "no work queue for place 123456789012/eu-west-1 (the stack makes one per target place)", false
	}}
	for range 2 { // Lambda's retry of the push
		if _, err := f.d.Handle(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if len(notices.messages) != 1 || !strings.Contains(notices.messages[0], "staging/web NOT deployed web:main-4f2a9c1") ||
		!strings.Contains(notices.messages[0], "no work queue for place") {
		t.Errorf("notices = %q, want one for staging/web", notices.messages)
	}
	if n := strings.Count(f.logs.String(), `"Deploys":1,"outcome":"failed","rule":"web-staging","service":"staging/web"`); n != 2 {
		t.Errorf("%d failed deploys counted, want 2 (one per dispatch)\n%s", n, f.logs)
	}
	if strings.Contains(f.logs.String(), `"service":"staging/web-worker"`) {
		t.Errorf("a transient dispatch failure was counted as a deploy:\n%s", f.logs)
	}
}

// Many targets of one rule failing alike are one notice listing them.
func TestDispatchFailuresOneNoticePerRule(t *testing.T) {
	f := newFixture(t)
	notices := &memNotifier{}
	f.d.Notifier = notices
	f.d.Dispatcher = &recordingDispatcher{fail: func(Job) (string, bool) { return "no work queue for place x", false }}
	if _, err := f.d.Handle(context.Background(), pushEvent(t, "web", "main-4f2a9c1", t0)); err != nil {
		t.Fatal(err)
	}
	if len(notices.messages) != 1 || !strings.Contains(notices.messages[0], "staging/web and 1 more targets NOT deployed") ||
		!strings.Contains(notices.messages[0], "2 targets of rule web-staging not handed to the work queue: staging/web: no work queue for place x; staging/web-worker: no work queue for place x") {
		t.Errorf("notices = %q", notices.messages)
	}
}
