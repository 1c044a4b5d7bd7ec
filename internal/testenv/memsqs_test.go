package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/go-cmp/cmp"
)

// A message a handler keeps failing is received again after the
// visibility timeout (or at once after ChangeMessageVisibility 0), its
// receive count growing, and moves to the dead-letter queue on the receive
// past maxReceiveCount; a message handled once is deleted.
func TestMemSQSRedeliversAndRedrives(t *testing.T) {
	tests := []struct {
		name      string
		change    bool // the handler hands failed items back at once (visibility 0)
		wantCount []string
	}{
		{"visibility timeout", false, []string{"1", "2", "3"}},
		{"change message visibility", true, []string{"1", "2", "3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewMemSQS(1000) // 1 s of SQS is 1 ms
			q := s.CreateQueue("work", 10*time.Second, 3)
			ctx := context.Background()
			if _, err := s.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(q.URL), Entries: []types.SendMessageBatchRequestEntry{
				{Id: aws.String("0"), MessageBody: aws.String("poison")}, {Id: aws.String("1"), MessageBody: aws.String("good")}}}); err != nil {
				t.Fatal(err)
			}
			var counts []string
			handled := 0
			m := &Mapping{SQS: s, QueueURL: q.URL, Concurrency: 1, BatchSize: 10, Timeout: time.Minute,
				Handler: func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
					var resp events.SQSEventResponse
					for _, r := range ev.Records {
						if r.Body != "poison" {
							handled++
							continue
						}
						counts = append(counts, r.Attributes["ApproximateReceiveCount"])
						if tt.change {
							if _, err := s.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(q.URL),
								ReceiptHandle: aws.String(r.ReceiptHandle), VisibilityTimeout: 0}); err != nil {
								t.Error(err)
							}
						}
						resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: r.MessageId})
					}
					return resp, nil
				}}
			dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			st, err := m.Drain(dctx)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.wantCount, counts); diff != "" {
				t.Errorf("receive counts of the poison item (-want +got):\n%s", diff)
			}
			if handled != 1 || s.Depth(q.DLQ) != 1 || s.Depth(q.URL) != 0 || st.Failures != 3 {
				t.Errorf("handled %d (want 1), dead-letter %d (want 1), left %d (want 0), failures %d (want 3)", handled, s.Depth(q.DLQ), s.Depth(q.URL), st.Failures)
			}
		})
	}
}

// SendMessageBatch takes at most ten entries, as SQS does.
func TestMemSQSRefusesOversizedBatch(t *testing.T) {
	s := NewMemSQS(1)
	q := s.CreateQueue("work", time.Second, 3)
	var entries []types.SendMessageBatchRequestEntry
	for range 11 {
		entries = append(entries, types.SendMessageBatchRequestEntry{Id: aws.String("x"), MessageBody: aws.String("b")})
	}
	if _, err := s.SendMessageBatch(context.Background(), &sqs.SendMessageBatchInput{QueueUrl: aws.String(q.URL), Entries: entries}); err == nil {
		t.Error("a batch of 11 was taken")
	}
}
