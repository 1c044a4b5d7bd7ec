package reconcile

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work/queue"
)

// CleanupSQS is the SQS call cleanup items are sent with.
type CleanupSQS interface {
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
}

// CleanupQueue sends cleanup items to the work queue of their place (the
// deploy-target items' queue: the same event source mapping bounds the
// place's calls), ten to a call, with the attributes every work item
// carries (queue.AttrKind, AttrPlace, AttrQueue, AttrRule).
type CleanupQueue struct {
	SQS CleanupSQS
	// BaseURL is the central place's work queue (AUTODEPLOY_WORK_QUEUE_URL);
	// every other place's is derived from it (queue.URLFor).
	BaseURL string
	Central rules.Place
}

var _ CleanupSender = (*CleanupQueue)(nil)

// MaxCleanupDelay is the longest delay SQS gives a message (DelaySeconds).
const MaxCleanupDelay = 15 * time.Minute

// SendCleanups sends each item to its place's queue. An item not sent is
// an error naming it (the caller logs it: the next sweep or completion
// sends it again, and a cleanup done twice does nothing twice).
func (q *CleanupQueue) SendCleanups(ctx context.Context, cmds []work.Cleanup) error {
	return q.SendDelayed(ctx, cmds, 0)
}

// SendDelayed is SendCleanups with each item hidden in its queue for delay
// (SQS's DelaySeconds: rounded up to a second, at most MaxCleanupDelay),
// so that the worker runs it after what was queued beside it — a
// completion's cleanup after the rest of the push's deploys in the place,
// which register in the same bucket and maybe in the same family.
func (q *CleanupQueue) SendDelayed(ctx context.Context, cmds []work.Cleanup, delay time.Duration) error {
	seconds := int32((min(max(delay, 0), MaxCleanupDelay) + time.Second - 1) / time.Second)
	byURL := map[string][]types.SendMessageBatchRequestEntry{}
	var order []string
	var errs []error
	for i, c := range cmds {
		url, err := queue.URLFor(q.BaseURL, q.Central, c.Place())
		if err != nil {
			errs = append(errs, fmt.Errorf("cleanup of %s in %s: %w", c.Family, c.Place(), err))
			continue
		}
		body, err := work.EncodeCommand(c)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		str := func(v string) types.MessageAttributeValue {
			return types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
		}
		if _, ok := byURL[url]; !ok {
			order = append(order, url)
		}
		byURL[url] = append(byURL[url], types.SendMessageBatchRequestEntry{
			Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(string(body)), DelaySeconds: seconds,
			MessageAttributes: map[string]types.MessageAttributeValue{
				queue.AttrKind: str(string(work.KindCleanup)), queue.AttrPlace: str(c.Place().String()),
				queue.AttrRule: str(strings.Join(c.Rules, ",")), queue.AttrQueue: str(url[strings.LastIndex(url, "/")+1:]),
			},
		})
	}
	for _, url := range order {
		entries := byURL[url]
		for start := 0; start < len(entries); start += 10 {
			batch := entries[start:min(start+10, len(entries))]
			out, err := q.SQS.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: batch})
			if err != nil {
				errs = append(errs, fmt.Errorf("send %d cleanup items to %s: %w", len(batch), url, err))
				continue
			}
			for _, f := range out.Failed {
				i, _ := strconv.Atoi(aws.ToString(f.Id))
				errs = append(errs, fmt.Errorf("cleanup of %s in %s not queued: %s: %s", cmds[i].Family, cmds[i].Place(), aws.ToString(f.Code), aws.ToString(f.Message)))
			}
		}
	}
	return errors.Join(errs...)
}
