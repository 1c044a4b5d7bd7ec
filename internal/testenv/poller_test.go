package testenv

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// A response whose batch item failure names no message of the batch (an
// empty or unknown itemIdentifier) is, to Lambda, a failure of the whole
// batch: the poller deletes none of it, and every message comes again.
func TestPollerUnmatchedFailureReturnsTheBatch(t *testing.T) {
	for _, id := range []string{"", "not-a-message-of-the-batch"} {
		t.Run(strconv.Quote(id), func(t *testing.T) {
			m := StartMoto(t)
			client := sqs.NewFromConfig(m.AWSConfig())
			q := m.CreateWorkQueue(t, client, "work", time.Second, 5)
			ctx := context.Background()
			for i := range 3 {
				if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q.URL), MessageBody: aws.String(strconv.Itoa(i))}); err != nil {
					t.Fatal(err)
				}
			}
			var calls atomic.Int64
			seen := map[string]int{}
			p := &Poller{SQS: client, QueueURL: q.URL, Concurrency: 1,
				Handler: func(_ context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
					for _, r := range ev.Records {
						seen[r.Body]++
					}
					if calls.Add(1) == 1 {
						return events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{{ItemIdentifier: id}}}, nil
					}
					return events.SQSEventResponse{}, nil
				}}
			dctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			first, err := p.poll(dctx)
			if err != nil {
				t.Fatal(err)
			}
			if f := p.failures.Load(); f != int64(first) {
				t.Errorf("%d failures counted for a batch of %d", f, first)
			}
			if _, err := p.Drain(dctx); err != nil {
				t.Fatal(err)
			}
			if first == 0 {
				t.Fatal("the first receive returned no message")
			}
			again := 0
			for _, n := range seen {
				if n == 2 {
					again++
				}
			}
			if again != first {
				t.Errorf("received %v: %d came again, want the first batch's %d", seen, again, first)
			}
			if n, err := QueueDepth(ctx, client, q.DLQ); err != nil || n != 0 {
				t.Errorf("dead-letter queue holds %d (%v)", n, err)
			}
		})
	}
}

// With Timeout, the poller hands each batch a context whose deadline is the
// function's timeout, as Lambda does, and loses an answer given after it,
// as Lambda loses a timed-out invocation's: its batch comes again, whole,
// after the visibility timeout, even the messages it did not report failed.
func TestPollerTimeoutIsTheInvocationsDeadline(t *testing.T) {
	const timeout = 2 * time.Second
	for _, tc := range []struct {
		name      string
		late      bool // the first invocation answers after its deadline
		wantAgain int  // receives of the message past the first
	}{
		{name: "answered in time", late: false, wantAgain: 0},
		{name: "answered after the deadline", late: true, wantAgain: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := StartMoto(t)
			client := sqs.NewFromConfig(m.AWSConfig())
			q := m.CreateWorkQueue(t, client, "work", time.Second, 5)
			ctx := context.Background()
			if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(q.URL), MessageBody: aws.String("item")}); err != nil {
				t.Fatal(err)
			}
			var calls atomic.Int64
			var remaining []time.Duration
			p := &Poller{SQS: client, QueueURL: q.URL, Concurrency: 1, Timeout: timeout,
				Handler: func(ctx context.Context, _ events.SQSEvent) (events.SQSEventResponse, error) {
					deadline, ok := ctx.Deadline()
					if !ok {
						t.Error("the handler's context has no deadline")
					}
					remaining = append(remaining, time.Until(deadline))
					if calls.Add(1) == 1 && tc.late {
						<-ctx.Done() // overruns the invocation's timeout
					}
					return events.SQSEventResponse{}, nil // nothing failed
				}}
			dctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			stats, err := p.Drain(dctx)
			if err != nil {
				t.Fatal(err)
			}
			if got := int(calls.Load()) - 1; got != tc.wantAgain {
				t.Errorf("the message came again %d times, want %d", got, tc.wantAgain)
			}
			if stats.TimedOut != int64(tc.wantAgain) {
				t.Errorf("%d invocations counted timed out, want %d", stats.TimedOut, tc.wantAgain)
			}
			for _, r := range remaining {
				if r <= 0 || r > timeout {
					t.Errorf("the handler started with %s before its deadline, want at most the timeout %s", r, timeout)
				}
			}
		})
	}
}
