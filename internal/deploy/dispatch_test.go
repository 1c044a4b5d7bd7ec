package deploy

import (
	"context"
	"errors"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecrevent"
)

// recordingDispatcher stands in for a work queue: it takes the jobs and
// answers queued, or fails the dispatch.
type recordingDispatcher struct {
	jobs []string
	err  error
}

func (r *recordingDispatcher) Dispatch(_ context.Context, push ecrevent.Push, jobs []Job) (Summary, error) {
	sum := Summary{EventID: push.EventID}
	for _, j := range jobs {
		r.jobs = append(r.jobs, j.Rule.Name+"/"+j.Target.Cluster+"/"+j.Target.Service+"#"+strconv.Itoa(j.Index))
		sum.Results = append(sum.Results, Result{Rule: j.Rule.Name, Cluster: j.Target.Cluster, Service: j.Target.Service, Outcome: Queued})
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
