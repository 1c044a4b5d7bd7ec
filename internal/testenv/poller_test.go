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
