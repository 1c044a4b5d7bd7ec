package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/deploy"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecrevent"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/logging"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/notify"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work"
)

// slowRollouts is a rollout book whose DynamoDB is slow (throttled, or a
// transaction conflict retried): its end write takes longer than the
// worker's CallTimeout and ends with the context. With fail set, the end
// write fails at once instead.
type slowRollouts struct{ fail error }

func (slowRollouts) OpenRollout(context.Context, history.Rollout, []history.RolloutTarget, time.Time) error {
	return nil
}
func (slowRollouts) Supersede(context.Context, string, string, string, string, time.Time, time.Time) ([]history.Record, error) {
	return nil, nil
}
func (slowRollouts) ClaimFirstFailure(context.Context, string, string, string, time.Time) (history.Rollout, bool, error) {
	return history.Rollout{}, false, nil
}
func (slowRollouts) FirstFailureSent(context.Context, string, string, string, time.Time) error {
	return nil
}
func (s slowRollouts) EndRollout(ctx context.Context, _, _ string, _ history.RolloutEnd, _ time.Time) (history.RolloutEnding, error) {
	if s.fail != nil {
		return history.RolloutEnding{}, s.fail
	}
	<-ctx.Done()
	return history.RolloutEnding{}, ctx.Err()
}
func (slowRollouts) RolloutNoticeSent(context.Context, string, string, string, time.Time) error {
	return nil
}

// ctxNotifier is SNS as far as a context goes: a publish on an ended
// context is not sent.
type ctxNotifier struct {
	mu   sync.Mutex
	sent []notify.Notice
}

func (n *ctxNotifier) Notify(ctx context.Context, no notify.Notice) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.sent = append(n.sent, no)
	return nil
}

// A work item that fails transiently on its last receive parks; when its
// end in the rollout cannot be recorded, EndParked falls back to the
// target's own notice. That notice has a budget of its own
// (deploy.NoticeTimeout): sent on the end's context, which a slow end write
// just ran out, nobody would be told the target was not deployed, and the
// rule's rollout never ends either. A parked item delivered twice (a second
// copy on its last receive) is told twice, as a retry of an unrecorded end
// is: never zero times.
func TestAParkedTargetIsToldWhenItsEndRunsOutOfTime(t *testing.T) {
	cfg, err := rules.Parse("autodeploy.yaml", []byte("version: 1\nrules:\n  - name: web\n    repository: web\n    tags: [\"*\"]\n    targets: [{cluster: c, service: s}, {cluster: c, service: s2}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	push := ecrevent.Push{EventID: "e", Account: central.Account, Region: central.Region, Repository: "web", Tag: "1", Digest: "sha256:" + strings.Repeat("0", 64)}
	body, err := work.Encode(work.NewDeployTarget(push, cfg.Rules[0], 0, central))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name       string
		book       slowRollouts
		deliveries int
	}{
		{"end write outlasts CallTimeout", slowRollouts{}, 1},
		{"end write fails at once", slowRollouts{fail: errors.New("ProvisionedThroughputExceededException")}, 1},
		{"slow end, item delivered twice", slowRollouts{}, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			n := &ctxNotifier{}
			h := &Handler{
				Deployer: &deploy.Deployer{Rules: cfg, Central: central, Services: busyServices{}, Rollouts: tt.book,
					Notifier: n, Log: logging.New(&logs, slog.LevelInfo), Now: time.Now},
				SQS: &fakeSQS{mode: "ok"}, QueueURL: "https://sqs.eu-west-1.amazonaws.com/123456789012/autodeploy-work",
				CallTimeout: 100 * time.Millisecond, MaxReceiveCount: 2,
			}
			for i := range tt.deliveries {
				msg := events.SQSMessage{MessageId: "m1", ReceiptHandle: fmt.Sprintf("rh-%d", i), Body: string(body),
					EventSourceARN: "arn:aws:sqs:eu-west-1:123456789012:autodeploy-work",
					Attributes:     map[string]string{"ApproximateReceiveCount": "2"}}
				if _, err := h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{msg}}); err != nil {
					t.Fatal(err)
				}
			}
			if got := strings.Count(logs.String(), "work item parked"); got != tt.deliveries {
				t.Fatalf("%d parked lines, want %d:\n%s", got, tt.deliveries, logs.String())
			}
			var got []string
			for _, no := range n.sent {
				got = append(got, no.Outcome+" "+no.Cluster+"/"+no.Service)
			}
			want := make([]string, tt.deliveries)
			for i := range want {
				want[i] = notify.NotDeployed + " c/s"
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("notices for the parked target (-want +got):\n%s\nlogs:\n%s", diff, logs.String())
			}
			for _, no := range n.sent {
				if !strings.Contains(no.Reason, "parked in the work dead-letter queue after 2 receives") {
					t.Errorf("notice reason %q does not say the item parked", no.Reason)
				}
			}
		})
	}
}
