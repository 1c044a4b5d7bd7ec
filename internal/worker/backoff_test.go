package worker

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/deploy"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecrevent"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/lock"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/logging"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work"
)

// fakeSQS is a fake of SQS's ChangeMessageVisibility (the calls are what
// these tests assert, and moto cannot fail or hang one on demand): it
// records each call it applied, and answers per mode.
type fakeSQS struct {
	mode string // "ok", "fail" (refused, not applied), "hang" (no answer), "lost" (applied, answer lost)

	mu    sync.Mutex
	calls []visibilityCall
}

type visibilityCall struct {
	URL, Receipt string
	Seconds      int32
}

func (f *fakeSQS) ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	call := visibilityCall{aws.ToString(in.QueueUrl), aws.ToString(in.ReceiptHandle), in.VisibilityTimeout}
	switch f.mode {
	case "fail":
		return nil, errors.New("AccessDenied: not authorized to perform sqs:ChangeMessageVisibility")
	case "hang":
		<-ctx.Done()
		return nil, ctx.Err()
	}
	f.mu.Lock()
	f.calls = append(f.calls, call)
	f.mu.Unlock()
	if f.mode == "lost" {
		return nil, errors.New("read tcp: connection reset by peer")
	}
	return &sqs.ChangeMessageVisibilityOutput{}, nil
}

func (f *fakeSQS) applied() []visibilityCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]visibilityCall(nil), f.calls...)
}

// busyServices is a fake of the per-service lock (no DynamoDB needed to
// show the worker's side): every service is held by another deploy past
// the worker's wait, the transient failure a lock wait ends in.
type busyServices struct{}

func (busyServices) Take(_ context.Context, key, _ string) (history.Held, error) {
	return nil, &lock.TimeoutError{Key: "service#" + key + "/state", Holder: "ev-other/fleet", Waited: LockWait}
}

// A transiently failed item goes back to the queue it came from after a
// backoff that grows with its receive count; whether the visibility call
// succeeds, fails, hangs or loses its answer, the item is reported failed,
// so it is received again (at worst after the queue's visibility timeout).
// Each case delivers the same message twice, as SQS does.
func TestTransientFailureBacksOff(t *testing.T) {
	cfg, err := rules.Parse("autodeploy.yaml", []byte("version: 1\nrules:\n  - name: web\n    repository: web\n    tags: [\"*\"]\n    targets: [{cluster: c, service: s}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	push := ecrevent.Push{EventID: "e", Account: central.Account, Region: central.Region, Repository: "web", Tag: "1", Digest: "sha256:" + strings.Repeat("0", 64)}
	body, err := work.Encode(work.NewDeployTarget(push, cfg.Rules[0], 0, central))
	if err != nil {
		t.Fatal(err)
	}
	const base = "https://sqs.eu-west-1.amazonaws.com/123456789012/autodeploy-work"
	const place = "arn:aws:sqs:eu-west-1:123456789012:autodeploy-work-222222222222-us-east-1"
	const placeURL = "https://sqs.eu-west-1.amazonaws.com/123456789012/autodeploy-work-222222222222-us-east-1"
	msg := func(receive string) events.SQSMessage {
		return events.SQSMessage{MessageId: "m1", ReceiptHandle: "rh-" + receive, Body: string(body), EventSourceARN: place,
			Attributes: map[string]string{"ApproximateReceiveCount": receive}}
	}
	// Without jitter, to assert the curve: 2 s × 2^(n-1), capped.
	curve := func(n int) time.Duration { return min(BackoffBase<<(n-1), BackoffMax) }
	tests := []struct {
		mode     string
		receives []string
		want     []visibilityCall // applied, in order
		log      string
	}{
		{"ok", []string{"1", "2"}, []visibilityCall{{placeURL, "rh-1", 2}, {placeURL, "rh-2", 4}}, `"msg":"work item returned to the queue"`},
		{"ok", []string{"8", "9"}, []visibilityCall{{placeURL, "rh-8", 256}, {placeURL, "rh-9", 300}}, `"backoff_s":300`},
		{"fail", []string{"1", "1"}, nil, "not backed off; it returns after the queue's visibility timeout"},
		{"hang", []string{"1", "2"}, nil, "context deadline exceeded"},
		{"lost", []string{"1", "1"}, []visibilityCall{{placeURL, "rh-1", 2}, {placeURL, "rh-1", 2}}, "connection reset by peer"},
	}
	for _, tt := range tests {
		t.Run(tt.mode+"-"+tt.receives[0], func(t *testing.T) {
			var logs bytes.Buffer
			fake := &fakeSQS{mode: tt.mode}
			h := &Handler{
				Deployer: &deploy.Deployer{Rules: cfg, Central: central, Services: busyServices{}, Log: logging.New(&logs, slog.LevelInfo), Now: time.Now},
				SQS:      fake, QueueURL: base, Backoff: curve, CallTimeout: 200 * time.Millisecond,
			}
			for _, receive := range tt.receives {
				start := time.Now()
				resp, err := h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{msg(receive)}})
				if err != nil {
					t.Fatal(err)
				}
				want := events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{{ItemIdentifier: "m1"}}}
				if diff := cmp.Diff(want, resp); diff != "" {
					t.Errorf("receive %s: response (-want +got):\n%s", receive, diff)
				}
				if took := time.Since(start); took > 2*time.Second {
					t.Errorf("receive %s took %s: the visibility call must be bounded", receive, took)
				}
			}
			if diff := cmp.Diff(tt.want, fake.applied()); diff != "" {
				t.Errorf("visibility changes (-want +got):\n%s", diff)
			}
			if !strings.Contains(logs.String(), tt.log) {
				t.Errorf("logs lack %s:\n%s", tt.log, logs.String())
			}
		})
	}
}

// A message whose source ARN names no queue cannot be backed off: that is
// logged, and the message is still reported failed (it returns after the
// queue's visibility timeout).
func TestBackoffWithoutAQueue(t *testing.T) {
	var logs bytes.Buffer
	fake := &fakeSQS{mode: "ok"}
	h := &Handler{Deployer: &deploy.Deployer{Rules: &rules.Config{}, Central: central, Log: logging.New(&logs, slog.LevelInfo)},
		SQS: fake, QueueURL: "https://sqs.eu-west-1.amazonaws.com/123456789012/autodeploy-work"}
	resp, err := h.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{{MessageId: "m", Body: "{", EventSourceARN: "not-an-arn"}}})
	if err != nil || len(resp.BatchItemFailures) != 1 {
		t.Fatalf("Handle = %+v, %v; want the message failed", resp, err)
	}
	if len(fake.applied()) != 0 || !strings.Contains(logs.String(), "its queue is unknown") {
		t.Errorf("calls %v; logs:\n%s", fake.applied(), logs.String())
	}
}

// The default backoff stays within its jitter band: half to all of
// 2 s × 2^(n-1), never above five minutes, for any receive count.
func TestDefaultBackoff(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 5, 8, 9, 30, 1000} {
		full := min(BackoffBase<<min(max(n-1, 0), 20), BackoffMax)
		for range 200 {
			if d := DefaultBackoff(n); d < full/2 || d > full {
				t.Fatalf("DefaultBackoff(%d) = %s, want within [%s, %s]", n, d, full/2, full)
			}
		}
	}
}

// On moto's SQS (the poller plays the event source mapping): a throttled
// target's message comes back after its backoff (1 to 2 s), not after the
// queue's visibility timeout, and deploys then. The visibility timeout is
// the stack's 18 minutes, far past the drain's deadline, so a drain that
// ends at all proves the item came back by its backoff, however slow the
// machine (no wall-clock bound to flake). The throttle is a fake ECS
// wrapper (moto does not throttle); queue, ECS and DynamoDB are moto.
func TestThrottledTargetComesBackAfterItsBackoff(t *testing.T) {
	f := newFixture(t, 3, 18*time.Minute, 3, "svc-01")
	f.handler.SQS, f.handler.QueueURL = f.sqs, f.queue.URL
	queued(t, f.d, f.push)
	stats := f.drain(t)
	if stats.Received != 4 || len(f.failures) != 1 {
		t.Errorf("received %d, returned %v; want the throttled item received twice", stats.Received, f.failures)
	}
	receives := map[string][]string{"svc-00": {"1"}, "svc-01": {"1", "2"}, "svc-02": {"1"}}
	if diff := cmp.Diff(receives, f.receives); diff != "" {
		t.Errorf("receives by service (-want +got):\n%s", diff)
	}
	want := map[string]int{"svc-00 deployed": 1, "svc-01 failed": 1, "svc-01 deployed": 1, "svc-02 deployed": 1}
	if diff := cmp.Diff(want, f.outcomes(t)); diff != "" {
		t.Errorf("deploys (-want +got):\n%s", diff)
	}
	back := f.lines(t, "work item returned to the queue")
	if len(back) != 1 || back[0]["receive_count"] != float64(1) || back[0]["backoff_s"] != float64(1) && back[0]["backoff_s"] != float64(2) {
		t.Errorf("returned lines %v, want one at receive 1, backed off 1 to 2 s", back)
	}
}
