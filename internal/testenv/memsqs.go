package testenv

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
)

// MemSQS is SQS in memory, for benchmarks of thousands of work items that
// moto's CPU would bound: standard queues whose messages are hidden for the
// visibility timeout after each receive, whose ChangeMessageVisibility
// hides a received message for as long as asked (0 shows it at once), whose
// ApproximateReceiveCount counts receives, and whose redrive policy moves a
// message to the dead-letter queue on the receive that would exceed
// maxReceiveCount — what the worker and the stack rely on. It answers the
// SDK's SendMessageBatch and ChangeMessageVisibility as the dispatcher's and
// the worker's SQS interfaces ask, and Drain plays the event source mapping.
//
// Durations are in SQS's time divided by Scale: at Scale 50 a visibility
// timeout of 180 s hides a message for 3.6 s, so a benchmark that plays ECS
// 50 times faster (ECSRates(50)) plays the queue at the same pace.
type MemSQS struct {
	Scale float64

	mu     sync.Mutex
	queues map[string]*memQueue // by URL
	seq    int
}

type memQueue struct {
	url, arn   string
	visibility time.Duration // in SQS's time
	maxReceive int
	dlq        *memQueue
	msgs       []*memMessage // in the order sent
}

type memMessage struct {
	id, body, receipt string
	attrs             map[string]types.MessageAttributeValue
	visibleAt         time.Time
	receives          int
	sentAt, firstRecv time.Time
}

// NewMemSQS makes an empty MemSQS at scale (1: SQS's own time).
func NewMemSQS(scale float64) *MemSQS {
	return &MemSQS{Scale: max(scale, 1e-9), queues: map[string]*memQueue{}}
}

// real is d of SQS's time in the benchmark's.
func (s *MemSQS) real(d time.Duration) time.Duration { return time.Duration(float64(d) / s.Scale) }

// CreateQueue makes queue name (in the default account and region; URL
// https://sqs.<region>.amazonaws.com/<account>/<name>, as queue.URLOfARN
// derives it) and its dead-letter queue name-dlq.
func (s *MemSQS) CreateQueue(name string, visibility time.Duration, maxReceiveCount int) WorkQueue {
	s.mu.Lock()
	defer s.mu.Unlock()
	mk := func(n string) *memQueue {
		q := &memQueue{url: "https://sqs." + Region + ".amazonaws.com/" + Account + "/" + n,
			arn: "arn:aws:sqs:" + Region + ":" + Account + ":" + n, visibility: visibility}
		s.queues[q.url] = q
		return q
	}
	dlq := mk(name + "-dlq")
	q := mk(name)
	q.dlq, q.maxReceive = dlq, maxReceiveCount
	return WorkQueue{URL: q.url, DLQ: dlq.url}
}

// Depth is the messages a queue holds, visible or not.
func (s *MemSQS) Depth(url string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if q := s.queues[url]; q != nil {
		return len(q.msgs)
	}
	return 0
}

func apiError(code, msg string) error {
	return &smithy.GenericAPIError{Code: code, Message: msg, Fault: smithy.FaultClient}
}

// SendMessageBatch sends up to ten messages, as SQS does.
func (s *MemSQS) SendMessageBatch(_ context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queues[aws.ToString(in.QueueUrl)]
	switch {
	case q == nil:
		return nil, apiError("AWS.SimpleQueueService.NonExistentQueue", "The specified queue does not exist.")
	case len(in.Entries) == 0:
		return nil, apiError("AWS.SimpleQueueService.EmptyBatchRequest", "There should be at least one SendMessageBatchRequestEntry in the request.")
	case len(in.Entries) > 10:
		return nil, apiError("AWS.SimpleQueueService.TooManyEntriesInBatchRequest", "Maximum number of entries per request are 10.")
	}
	out := &sqs.SendMessageBatchOutput{}
	now := time.Now()
	for _, e := range in.Entries {
		s.seq++
		m := &memMessage{id: fmt.Sprintf("mem-%08d", s.seq), body: aws.ToString(e.MessageBody), attrs: e.MessageAttributes,
			visibleAt: now.Add(s.real(time.Duration(e.DelaySeconds) * time.Second)), sentAt: now}
		q.msgs = append(q.msgs, m)
		sum := md5.Sum([]byte(m.body))
		out.Successful = append(out.Successful, types.SendMessageBatchResultEntry{Id: e.Id, MessageId: aws.String(m.id),
			MD5OfMessageBody: aws.String(hex.EncodeToString(sum[:]))})
	}
	return out, nil
}

// ChangeMessageVisibility hides a received message for VisibilityTimeout
// seconds from now (0: visible at once). The receipt handle must be the
// message's latest.
func (s *MemSQS) ChangeMessageVisibility(_ context.Context, in *sqs.ChangeMessageVisibilityInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queues[aws.ToString(in.QueueUrl)]
	if q == nil {
		return nil, apiError("AWS.SimpleQueueService.NonExistentQueue", "The specified queue does not exist.")
	}
	if in.VisibilityTimeout < 0 || in.VisibilityTimeout > 43200 {
		return nil, apiError("InvalidParameterValue", "VisibilityTimeout must be 0 to 43200 seconds.")
	}
	for _, m := range q.msgs {
		if m.receipt == aws.ToString(in.ReceiptHandle) {
			if !time.Now().Before(m.visibleAt) {
				return nil, apiError("AWS.SimpleQueueService.MessageNotInflight", "The message is not in flight.")
			}
			m.visibleAt = time.Now().Add(s.real(time.Duration(in.VisibilityTimeout) * time.Second))
			return &sqs.ChangeMessageVisibilityOutput{}, nil
		}
	}
	return nil, apiError("ReceiptHandleIsInvalid", "The receipt handle is not the message's latest.")
}

// receive takes up to n visible messages, in the order sent, as Lambda
// hands them to a function; a message past its queue's maxReceiveCount
// moves to the dead-letter queue instead.
func (s *MemSQS) receive(url string, n int) []events.SQSMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queues[url]
	if q == nil {
		return nil
	}
	now := time.Now()
	var out []events.SQSMessage
	kept := q.msgs[:0]
	for _, m := range q.msgs {
		if len(out) >= n || now.Before(m.visibleAt) {
			kept = append(kept, m)
			continue
		}
		if q.dlq != nil && q.maxReceive > 0 && m.receives >= q.maxReceive {
			m.visibleAt = now
			q.dlq.msgs = append(q.dlq.msgs, m)
			continue
		}
		m.receives++
		if m.receives == 1 {
			m.firstRecv = now
		}
		s.seq++
		m.receipt = fmt.Sprintf("%s#%d", m.id, s.seq)
		m.visibleAt = now.Add(s.real(q.visibility))
		attrs := map[string]events.SQSMessageAttribute{}
		for k, v := range m.attrs {
			attrs[k] = events.SQSMessageAttribute{DataType: aws.ToString(v.DataType), StringValue: v.StringValue}
		}
		out = append(out, events.SQSMessage{MessageId: m.id, ReceiptHandle: m.receipt, Body: m.body, MessageAttributes: attrs,
			Attributes: map[string]string{"ApproximateReceiveCount": strconv.Itoa(m.receives),
				"SentTimestamp": strconv.FormatInt(m.sentAt.UnixMilli(), 10), "ApproximateFirstReceiveTimestamp": strconv.FormatInt(m.firstRecv.UnixMilli(), 10)},
			EventSource: "aws:sqs", EventSourceARN: q.arn, AWSRegion: Region})
		kept = append(kept, m)
	}
	q.msgs = kept
	return out
}

// remove deletes the messages of url with these receipt handles, when each
// is its message's latest (SQS leaves a message whose handle is stale).
func (s *MemSQS) remove(url string, receipts map[string]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queues[url]
	if q == nil {
		return
	}
	kept := q.msgs[:0]
	for _, m := range q.msgs {
		if !receipts[m.receipt] {
			kept = append(kept, m)
		}
	}
	q.msgs = kept
}

// Mapping plays one queue's event source mapping with
// ReportBatchItemFailures: Concurrency invocations at most
// (ScalingConfig.MaximumConcurrency), each of up to BatchSize messages,
// each under a context that ends after Timeout (the function's timeout, in
// SQS's time). A batch the handler answers in time is settled as Lambda
// settles it: the messages it reports failed stay (the whole batch, when a
// failure names no message of the batch), the others are deleted. A batch
// whose handler errs or overruns its timeout stays whole, to return after
// the visibility timeout, as a function error or timeout leaves it.
type Mapping struct {
	SQS         *MemSQS
	QueueURL    string
	Handler     SQSHandler
	Concurrency int
	BatchSize   int
	Timeout     time.Duration
}

// MappingStats says what a drain did; durations are the benchmark's.
type MappingStats struct {
	Invocations, Received, Failures, TimedOut int
	Longest                                   time.Duration // the longest invocation
	Elapsed                                   time.Duration // from the drain's start to the queue's last message settled
}

// Drain runs the mapping until the queue holds no message, or ctx ends.
func (m *Mapping) Drain(ctx context.Context) (MappingStats, error) {
	start := time.Now()
	var mu sync.Mutex
	var st MappingStats
	var busy atomic.Int64
	var wg sync.WaitGroup
	for range max(m.Concurrency, 1) {
		wg.Go(func() {
			for ctx.Err() == nil {
				busy.Add(1)
				batch := m.SQS.receive(m.QueueURL, max(m.BatchSize, 1))
				if len(batch) == 0 {
					busy.Add(-1)
					if busy.Load() == 0 && m.SQS.Depth(m.QueueURL) == 0 {
						return
					}
					select { // Lambda's poller waits for messages (long polling)
					case <-ctx.Done():
					case <-time.After(time.Millisecond):
					}
					continue
				}
				took, failures, timedOut := m.invoke(ctx, batch)
				busy.Add(-1)
				mu.Lock()
				st.Invocations++
				st.Received += len(batch)
				st.Failures += failures
				if timedOut {
					st.TimedOut++
				}
				st.Longest = max(st.Longest, took)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	st.Elapsed = time.Since(start)
	if ctx.Err() != nil {
		return st, fmt.Errorf("queue %s not drained (%d messages left): %w", m.QueueURL, m.SQS.Depth(m.QueueURL), ctx.Err())
	}
	return st, nil
}

// invoke hands one batch to the handler and settles it.
func (m *Mapping) invoke(ctx context.Context, batch []events.SQSMessage) (took time.Duration, failures int, timedOut bool) {
	timeout := m.SQS.real(m.Timeout)
	ictx, cancel := context.WithCancel(ctx)
	if m.Timeout > 0 {
		ictx, cancel = context.WithTimeout(ctx, timeout)
	}
	defer cancel()
	start := time.Now()
	resp, err := m.Handler(ictx, events.SQSEvent{Records: batch})
	took = time.Since(start)
	if err != nil || (m.Timeout > 0 && took > timeout) {
		return took, len(batch), err == nil
	}
	inBatch := map[string]string{}
	for _, msg := range batch {
		inBatch[msg.MessageId] = msg.ReceiptHandle
	}
	failed := map[string]bool{}
	for _, f := range resp.BatchItemFailures {
		if _, ok := inBatch[f.ItemIdentifier]; !ok {
			return took, len(batch), false
		}
		failed[f.ItemIdentifier] = true
	}
	done := map[string]bool{}
	for id, receipt := range inBatch {
		if !failed[id] {
			done[receipt] = true
		}
	}
	m.SQS.remove(m.QueueURL, done)
	return took, len(failed), false
}

// Purge deletes every message of a queue.
func (s *MemSQS) Purge(url string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if q := s.queues[url]; q != nil {
		q.msgs = nil
	}
}
