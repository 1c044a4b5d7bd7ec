package deploy

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecrevent"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/logging"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/notify"
)

// spentBook is a rollout book on a DynamoDB that answered too late: every
// write fails with the context it ran out (a fake: moto is never slow).
type spentBook struct{}

func (spentBook) OpenRollout(context.Context, history.Rollout, []history.RolloutTarget, time.Time) error {
	return nil
}
func (spentBook) Supersede(context.Context, string, string, string, string, time.Time, time.Time) ([]history.Record, error) {
	return nil, nil
}
func (spentBook) ClaimFirstFailure(context.Context, string, string, string, time.Time) (history.Rollout, bool, error) {
	return history.Rollout{}, false, context.DeadlineExceeded
}
func (spentBook) FirstFailureSent(context.Context, string, string, string, time.Time) error {
	return context.DeadlineExceeded
}
func (spentBook) EndRollout(context.Context, string, string, history.RolloutEnd, time.Time) (history.RolloutEnding, error) {
	return history.RolloutEnding{}, context.DeadlineExceeded
}
func (spentBook) RolloutNoticeSent(context.Context, string, string, string, time.Time) error {
	return context.DeadlineExceeded
}

// liveNotifier sends only on a live context, as SNS's client does.
type liveNotifier struct {
	mu   sync.Mutex
	sent []string
}

func (n *liveNotifier) Notify(ctx context.Context, no notify.Notice) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.sent = append(n.sent, no.Outcome+" "+no.Cluster+"/"+no.Service)
	return nil
}

// The notice that replaces an end the rollout could not record is sent on
// a budget of its own: the end's write ran the target's context out, and
// on that context the notice would be lost too. Each fallback path of the
// deploy path is called on a context already ended; calling it twice (a
// retry of the same end) tells twice, never zero times.
func TestAFallbackNoticeGoesOnASpentContext(t *testing.T) {
	push := ecrevent.Push{EventID: "e", Repository: "web", Tag: "1", Digest: "sha256:00"}
	res := Result{Rule: "web", Account: "123456789012", Region: "eu-west-1", Cluster: "c", Service: "s",
		Outcome: Failed, Reason: "throttled (will retry)", Retryable: true}
	for _, tt := range []struct {
		name  string
		calls int
		run   func(ctx context.Context, d *Deployer)
	}{
		{"a parked item's end", 1, func(ctx context.Context, d *Deployer) { d.EndParked(ctx, push, res, 5) }},
		{"a parked item's end, twice", 2, func(ctx context.Context, d *Deployer) { d.EndParked(ctx, push, res, 5) }},
		{"a refused item's end", 1, func(ctx context.Context, d *Deployer) {
			r := res
			r.Retryable, r.Reason = false, "work item refused: rule web has no target 3"
			d.NotDeployed(ctx, push, r)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			n := &liveNotifier{}
			d := &Deployer{Rollouts: spentBook{}, Notifier: n, Log: logging.New(&logs, slog.LevelInfo), Now: time.Now}
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			for range tt.calls {
				tt.run(ctx, d)
			}
			want := make([]string, tt.calls)
			for i := range want {
				want[i] = notify.NotDeployed + " c/s"
			}
			if diff := cmp.Diff(want, n.sent); diff != "" {
				t.Errorf("notices (-want +got):\n%s\nlogs:\n%s", diff, logs.String())
			}
		})
	}
}

// The rule's notice, which follows the rollout's end write on the same
// context, goes on its own budget too: the end's write spent the context
// just as it succeeded.
func TestTheRulesNoticeGoesAfterAnEndThatSpentTheContext(t *testing.T) {
	n := &liveNotifier{}
	var logs bytes.Buffer
	d := &Deployer{Notifier: n, Log: logging.New(&logs, slog.LevelInfo), Now: time.Now}
	ctx, cancel := context.WithCancel(context.Background())
	book := lastEndBook{cancel: cancel}
	end := history.RolloutEnd{ServiceKey: "k", Cluster: "c", Service: "s", Outcome: notify.NotDeployed, At: time.Now()}
	tracked, err := notify.EndTarget(ctx, &book, d.sender(), d.Log, "web", "e", end, time.Now())
	// The mark is lost with the context: logged, no error (a retry would
	// only send the notice again).
	if !tracked || err != nil || !strings.Contains(logs.String(), "its mark not written") {
		t.Fatalf("EndTarget = %v, %v; want tracked, no error, the lost mark logged; logs:\n%s", tracked, err, logs.String())
	}
	if len(n.sent) != 1 {
		t.Errorf("%d rule notices sent, want 1", len(n.sent))
	}
}

// lastEndBook records the last end of a rollout, and its write takes the
// caller's context with it (cancel).
type lastEndBook struct{ cancel context.CancelFunc }

func (b *lastEndBook) EndRollout(_ context.Context, rule, eventID string, end history.RolloutEnd, _ time.Time) (history.RolloutEnding, error) {
	b.cancel()
	return history.RolloutEnding{Tracked: true, Last: true, Counted: true, Owner: "o",
		Rollout: history.Rollout{Rule: rule, EventID: eventID, Expected: 1, Ended: 1},
		Ends:    []history.RolloutEnd{end}}, nil
}

func (b *lastEndBook) RolloutNoticeSent(ctx context.Context, _, _, _ string, _ time.Time) error {
	return ctx.Err()
}
