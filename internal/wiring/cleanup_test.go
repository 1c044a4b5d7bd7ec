package wiring

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/reconcile"
)

// Clean-up is wired where it runs: with a work queue the sweep sends items
// (to the queue of each place) and the worker runs them (the watcher's item
// after a completion: wiring/watcher's TestWatcherCleanups); without, the
// sweep runs them itself. The sweep always reads the marks.
func TestCleanupWiring(t *testing.T) {
	const url = "https://sqs.eu-west-1.amazonaws.com/111111111111/autodeploy-work"
	for _, tc := range []struct {
		name     string
		queueURL string
	}{{"no queue", ""}, {"queue", url}} {
		t.Run(tc.name, func(t *testing.T) {
			f := New(runtime(t, tc.queueURL))
			_, s := f.Intake()
			if s.Marks == nil {
				t.Error("the sweep reads no clean-up marks")
			}
			if tc.queueURL == "" {
				if s.Cleanup == nil || s.CleanupQueue != nil {
					t.Errorf("in-process: Cleanup %v, CleanupQueue %v; want the sweep's own runner", s.Cleanup, s.CleanupQueue)
				}
				return
			}
			q, ok := s.CleanupQueue.(*reconcile.CleanupQueue)
			if !ok || s.Cleanup != nil {
				t.Fatalf("queued: CleanupQueue %T, Cleanup %v; want the work queue only", s.CleanupQueue, s.Cleanup)
			}
			if q.BaseURL != url || q.Central != f.rt.Central {
				t.Errorf("cleanup queue %q in %v", q.BaseURL, q.Central)
			}
			if _, ok := q.SQS.(*sqs.Client); !ok {
				t.Errorf("cleanup queue SQS %T", q.SQS)
			}
			h, err := f.Worker()
			if err != nil {
				t.Fatal(err)
			}
			if h.Cleanup == nil || h.Cleanup.History == nil || h.Cleanup.Marks == nil || h.Cleanup.SSM == nil {
				t.Errorf("the worker's cleanup runner is incomplete: %+v", h.Cleanup)
			}
		})
	}
}
