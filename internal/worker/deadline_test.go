package worker

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strconv"
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
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work"
)

// slowServices is a fake of the per-service lock whose Take blocks until
// the caller's context ends, as a long lock wait, or an SDK retrying a
// throttled call, uses up an invocation's time. It notes the deadline each
// Take was given.
type slowServices struct {
	mu        sync.Mutex
	deadlines []time.Time
}

func (s *slowServices) Take(ctx context.Context, _, _ string) (history.Held, error) {
	d, _ := ctx.Deadline()
	s.mu.Lock()
	s.deadlines = append(s.deadlines, d)
	s.mu.Unlock()
	<-ctx.Done()
	return nil, ctx.Err()
}

func (s *slowServices) taken() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.deadlines...)
}

// Lambda's context deadline is the invocation's timeout, and an answer sent
// after it is lost ("Task timed out"): the event source mapping returns the
// whole batch after the queue's visibility timeout (6 × the worker's: 18
// min), not the unfinished items after their backoff. So items run on a
// context that ends reserve() before the deadline, an item not started by
// then is not started, and every unfinished item is reported failed and
// backed off — all before the deadline. Each case delivers its batch twice
// (receive 1, then 2), as SQS does: the second receive is answered in time
// too, with the longer backoff.
func TestHandleAnswersBeforeTheInvocationDeadline(t *testing.T) {
	cfg, err := rules.Parse("autodeploy.yaml", []byte("version: 1\nrules:\n  - name: web\n    repository: web\n    tags: [\"*\"]\n    targets: [{cluster: c, service: s}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	push := ecrevent.Push{EventID: "e", Account: central.Account, Region: central.Region, Repository: "web", Tag: "1", Digest: "sha256:" + strings.Repeat("0", 64)}
	body, err := work.Encode(work.NewDeployTarget(push, cfg.Rules[0], 0, central))
	if err != nil {
		t.Fatal(err)
	}
	const url = "https://sqs.eu-west-1.amazonaws.com/123456789012/autodeploy-work"
	curve := func(n int) time.Duration { return min(BackoffBase<<(n-1), BackoffMax) }
	const timeout = 2 * time.Second // the invocation's remaining time: reserve() keeps a quarter
	tests := []struct {
		name        string
		items       int
		concurrency int
		started     int // items that reach the lock (the others are not started)
	}{
		{name: "one slow item", items: 1, concurrency: 1, started: 1},
		{name: "items behind a slow one are not started", items: 3, concurrency: 1, started: 1},
		{name: "slow items side by side", items: 3, concurrency: 3, started: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			fake := &fakeSQS{mode: "ok"}
			lock := &slowServices{}
			h := &Handler{
				Deployer:    &deploy.Deployer{Rules: cfg, Central: central, Services: lock, Log: logging.New(&logs, slog.LevelInfo), Now: time.Now},
				Concurrency: tt.concurrency, SQS: fake, QueueURL: url, Backoff: curve,
			}
			var want []visibilityCall
			for n := 1; n <= 2; n++ {
				receive := strconv.Itoa(n)
				var ev events.SQSEvent
				var failures []events.SQSBatchItemFailure
				for i := range tt.items {
					id := fmt.Sprintf("m%d", i)
					ev.Records = append(ev.Records, events.SQSMessage{MessageId: id, ReceiptHandle: id + "-" + receive, Body: string(body),
						EventSourceARN: "arn:aws:sqs:eu-west-1:123456789012:autodeploy-work", Attributes: map[string]string{"ApproximateReceiveCount": receive}})
					failures = append(failures, events.SQSBatchItemFailure{ItemIdentifier: id})
					want = append(want, visibilityCall{url, id + "-" + receive, int32(curve(n) / time.Second)})
				}
				before := len(lock.taken())
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				deadline, _ := ctx.Deadline()
				resp, err := h.Handle(ctx, ev)
				answered := time.Now()
				cancel()
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(events.SQSEventResponse{BatchItemFailures: failures}, resp); diff != "" {
					t.Errorf("receive %s: response (-want +got):\n%s", receive, diff)
				}
				if !answered.Before(deadline) {
					t.Errorf("receive %s: answered %s after the invocation's deadline: Lambda would lose the answer and return the whole batch after the visibility timeout",
						receive, answered.Sub(deadline))
				}
				for _, d := range lock.taken()[before:] {
					if got, wantAt := deadline.Sub(d), reserve(timeout); got < wantAt-50*time.Millisecond || got > wantAt+50*time.Millisecond {
						t.Errorf("receive %s: an item's context ended %s before the invocation's deadline, want %s (the reserve)", receive, got, wantAt)
					}
				}
			}
			if got := len(lock.taken()); got != 2*tt.started {
				t.Errorf("%d items reached the lock over two receives, want %d", got, 2*tt.started)
			}
			sortCalls := cmp.Transformer("sorted", func(cs []visibilityCall) map[string]int32 {
				m := map[string]int32{}
				for _, c := range cs {
					m[c.URL+" "+c.Receipt] = c.Seconds
				}
				return m
			})
			if diff := cmp.Diff(want, fake.applied(), sortCalls); diff != "" {
				t.Errorf("visibility changes (-want +got):\n%s", diff)
			}
			if notStarted := strings.Count(logs.String(), "work item not started"); notStarted != 2*(tt.items-tt.started) {
				t.Errorf("%d items logged as not started, want %d:\n%s", notStarted, 2*(tt.items-tt.started), logs.String())
			}
		})
	}
}

// The reserve an invocation keeps for its answer: Reserve, or a quarter of
// a shorter invocation's time (time-scaled benchmarks), none without time.
func TestReserve(t *testing.T) {
	for _, tt := range []struct{ remaining, want time.Duration }{
		{3 * time.Minute, Reserve},
		{84 * time.Second, Reserve},
		{80 * time.Second, 20 * time.Second},
		{60 * time.Second, 15 * time.Second},
		{3600 * time.Millisecond, 900 * time.Millisecond},
		{0, 0},
	} {
		if got := reserve(tt.remaining); got != tt.want {
			t.Errorf("reserve(%s) = %s, want %s", tt.remaining, got, tt.want)
		}
	}
}
