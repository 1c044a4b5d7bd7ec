package testenv

import (
	"cmp"
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// SQSHandler is a Lambda handler for SQS batches with ReportBatchItemFailures.
type SQSHandler func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error)

// Poller plays Lambda's event source mapping over a queue (moto implements
// SQS, not the mapping's polling): it receives batches, hands each to the
// handler, deletes the messages the handler did not report failed, and
// leaves those it did (or the whole batch, when the handler errs or reports
// a failure whose itemIdentifier is empty or names no message of the batch,
// as Lambda does) to appear again after the visibility timeout. The queue's redrive policy, which
// moto applies on receive, parks what keeps failing.
type Poller struct {
	SQS      *sqs.Client
	QueueURL string
	Handler  SQSHandler
	// BatchSize is the most messages per batch (default 10, SQS's most).
	BatchSize int32
	// Concurrency bounds the batches handled at once (default 2), as the
	// mapping's MaximumConcurrency does.
	Concurrency int
	// Timeout, when set, is the function's timeout: each batch's handler
	// gets a context with that deadline, as Lambda gives an invocation, and
	// an answer after it is lost, as Lambda loses a timed-out invocation's:
	// the whole batch stays, to return after the visibility timeout.
	Timeout time.Duration

	batches, received, failures, timedOut atomic.Int64

	// queueMu makes the poller's calls to the queue one at a time. Moto's
	// SQS holds no lock over a queue: two ReceiveMessage at once can both
	// take one message (its receive count bumped twice, each with its own
	// receipt handle), and two DeleteMessageBatch at once can each rewrite
	// the queue's message list from the same copy, one bringing back what
	// the other deleted. SQS's pollers do neither as a rule, and tests count
	// receives and deploys exactly; the handlers still run Concurrency
	// batches at once.
	queueMu sync.Mutex
}

// PollStats says what a drain did.
type PollStats struct {
	Batches, Received, Failures int64
	// TimedOut counts the invocations that answered after their Timeout.
	TimedOut int64
}

// Drain polls until the queue holds no message, visible, in flight or
// delayed, or ctx ends (then it returns ctx's error).
func (p *Poller) Drain(ctx context.Context) (PollStats, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var busy atomic.Int64 // batches received and not yet settled
	var drained atomic.Bool
	var wg sync.WaitGroup
	workers := max(cmp.Or(p.Concurrency, 2), 1)
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				busy.Add(1)
				n, err := p.poll(ctx)
				busy.Add(-1)
				if err != nil {
					if ctx.Err() == nil {
						errs <- err
						cancel()
					}
					return
				}
				if n > 0 {
					continue
				}
				if busy.Load() == 0 {
					empty, err := p.empty(ctx)
					if err == nil && empty && busy.Load() == 0 {
						drained.Store(true)
						cancel()
						return
					}
				}
				select {
				case <-ctx.Done():
				case <-time.After(100 * time.Millisecond):
				}
			}
		})
	}
	wg.Wait()
	stats := PollStats{p.batches.Load(), p.received.Load(), p.failures.Load(), p.timedOut.Load()}
	select {
	case err := <-errs:
		return stats, err
	default:
	}
	if !drained.Load() {
		return stats, fmt.Errorf("queue %s not drained: %w", p.QueueURL, context.Cause(ctx))
	}
	return stats, nil
}

// poll receives one batch and settles it; n is its size.
func (p *Poller) poll(ctx context.Context) (n int, err error) {
	p.queueMu.Lock()
	out, err := p.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:                    aws.String(p.QueueURL),
		MaxNumberOfMessages:         cmp.Or(p.BatchSize, 10),
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
		MessageAttributeNames:       []string{"All"},
	})
	p.queueMu.Unlock()
	if err != nil {
		return 0, fmt.Errorf("receive from %s: %w", p.QueueURL, err)
	}
	if len(out.Messages) == 0 {
		return 0, nil
	}
	p.batches.Add(1)
	p.received.Add(int64(len(out.Messages)))
	ev := events.SQSEvent{}
	for _, m := range out.Messages {
		ev.Records = append(ev.Records, lambdaMessage(m, p.QueueURL))
	}
	resp, late, herr := p.invoke(ctx, ev)
	if late {
		// Lambda discards a timed-out invocation's answer: the whole batch
		// returns after the visibility timeout.
		p.timedOut.Add(1)
		p.failures.Add(int64(len(out.Messages)))
		return len(out.Messages), nil
	}
	if herr != nil {
		// Lambda returns the whole batch on a function error.
		p.failures.Add(int64(len(out.Messages)))
		return len(out.Messages), nil
	}
	inBatch := map[string]bool{}
	for _, m := range out.Messages {
		inBatch[aws.ToString(m.MessageId)] = true
	}
	failed := map[string]bool{}
	for _, f := range resp.BatchItemFailures {
		if !inBatch[f.ItemIdentifier] {
			// Lambda takes a failure it cannot match to a message (an
			// empty or unknown itemIdentifier) as the whole batch's.
			p.failures.Add(int64(len(out.Messages)))
			return len(out.Messages), nil
		}
		failed[f.ItemIdentifier] = true
	}
	p.failures.Add(int64(len(failed)))
	var del []types.DeleteMessageBatchRequestEntry
	for i, m := range out.Messages {
		if !failed[aws.ToString(m.MessageId)] {
			del = append(del, types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle})
		}
	}
	if len(del) > 0 {
		// Not the test's context: a batch handled must be settled.
		p.queueMu.Lock()
		dout, err := p.SQS.DeleteMessageBatch(context.WithoutCancel(ctx), &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(p.QueueURL), Entries: del})
		p.queueMu.Unlock()
		if err != nil {
			return 0, fmt.Errorf("delete from %s: %w", p.QueueURL, err)
		}
		if len(dout.Failed) > 0 {
			return 0, fmt.Errorf("delete from %s: %s", p.QueueURL, aws.ToString(dout.Failed[0].Message))
		}
	}
	return len(out.Messages), nil
}

// invoke runs the handler on one batch, under a context with the
// function's deadline when Timeout is set; late says it answered after it.
func (p *Poller) invoke(ctx context.Context, ev events.SQSEvent) (resp events.SQSEventResponse, late bool, err error) {
	if p.Timeout <= 0 {
		resp, err = p.Handler(ctx, ev)
		return resp, false, err
	}
	ictx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	deadline, _ := ictx.Deadline()
	resp, err = p.Handler(ictx, ev)
	return resp, !time.Now().Before(deadline), err
}

// empty reports whether the queue holds no message at all. It holds
// queueMu, so no receive of the poller's moves a message from visible to
// in flight while QueueDepth counts (see there).
func (p *Poller) empty(ctx context.Context) (bool, error) {
	p.queueMu.Lock()
	defer p.queueMu.Unlock()
	n, err := QueueDepth(ctx, p.SQS, p.QueueURL)
	return n == 0, err
}

// QueueDepth is the messages a queue holds: in flight, delayed and visible.
// Moto counts each attribute at its own instant, not all at once: asked for
// all three in one call, a message whose backoff (or delay) ends between
// the count of the visible ones and that of the others is in neither, and
// a queue holding it reads empty. So it asks for one count at a time, in
// the order messages move without a receive — in flight or delayed, then
// visible: a message that moves meanwhile is counted at least once. Only a
// receive moves one back (visible to in flight); the Poller receives
// nothing while it counts.
func QueueDepth(ctx context.Context, client *sqs.Client, url string) (int, error) {
	total := 0
	for _, name := range []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		types.QueueAttributeNameApproximateNumberOfMessagesDelayed, types.QueueAttributeNameApproximateNumberOfMessages} {
		out, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
			AttributeNames: []types.QueueAttributeName{name}})
		if err != nil {
			return 0, fmt.Errorf("count %s of %s: %w", name, url, err)
		}
		n, err := strconv.Atoi(out.Attributes[string(name)])
		if err != nil {
			return 0, fmt.Errorf("count %s of %s: %w", name, url, err)
		}
		total += n
	}
	return total, nil
}

// lambdaMessage is m as Lambda hands it to a function.
func lambdaMessage(m types.Message, queueURL string) events.SQSMessage {
	attrs := map[string]events.SQSMessageAttribute{}
	for k, v := range m.MessageAttributes {
		attrs[k] = events.SQSMessageAttribute{DataType: aws.ToString(v.DataType), StringValue: v.StringValue, BinaryValue: v.BinaryValue}
	}
	return events.SQSMessage{
		MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle), Body: aws.ToString(m.Body),
		Md5OfBody: aws.ToString(m.MD5OfBody), Attributes: m.Attributes, MessageAttributes: attrs,
		EventSource: "aws:sqs", EventSourceARN: queueARN(queueURL), AWSRegion: Region,
	}
}

// queueARN is moto's ARN of a queue by its URL (…/<account>/<name>).
func queueARN(url string) string {
	name, account := url, Account
	for i := len(url) - 1; i >= 0; i-- {
		if url[i] == '/' {
			name = url[i+1:]
			break
		}
	}
	return "arn:aws:sqs:" + Region + ":" + account + ":" + name
}

// WorkQueue is a work queue and its dead-letter queue.
type WorkQueue struct {
	URL, DLQ string
}

// CreateWorkQueue makes a queue whose messages reappear visibility after a
// receive, and move to a dead-letter queue after maxReceiveCount receives,
// as the stack's work queues do.
func (m *Moto) CreateWorkQueue(t testing.TB, client *sqs.Client, name string, visibility time.Duration, maxReceiveCount int) WorkQueue {
	t.Helper()
	ctx := context.Background()
	dlq, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name + "-dlq")})
	if err != nil {
		t.Fatal(err)
	}
	policy := fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":%d}`, queueARN(aws.ToString(dlq.QueueUrl)), maxReceiveCount)
	q, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: map[string]string{
		string(types.QueueAttributeNameVisibilityTimeout): strconv.Itoa(max(int(visibility/time.Second), 0)),
		string(types.QueueAttributeNameRedrivePolicy):     policy,
	}})
	if err != nil {
		t.Fatal(err)
	}
	return WorkQueue{URL: aws.ToString(q.QueueUrl), DLQ: aws.ToString(dlq.QueueUrl)}
}
