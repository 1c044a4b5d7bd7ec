package redrive

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work/queue"
)

// OutputWorkDeadLetterQueue is the stack output naming the work queues'
// dead-letter queue (`autodeploy redrive --queue work`).
const OutputWorkDeadLetterQueue = "WorkDeadLetterQueueUrl"

type workSQS interface {
	sqsAPI
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
}

// WorkRedriver sends the work items parked in the work queues' dead-letter
// queue back to the work queue each came from, body and attributes as they
// were, for the worker to deploy again.
type WorkRedriver struct {
	SQS    workSQS
	DryRun bool // only say where each would go; every message stays
}

// Run redrives every message of the dead-letter queue dlqURL once. A
// message is deleted only after its send succeeded; one sent but not
// deleted is sent again by the next run, which is harmless (the worker
// finds its image running). A message that names no work queue, or is not
// a work item, stays, with why.
func (r *WorkRedriver) Run(ctx context.Context, dlqURL string) (Report, error) {
	return drain(ctx, r.SQS, dlqURL, []types.MessageSystemAttributeName{types.MessageSystemAttributeNameDeadLetterQueueSourceArn},
		func(m types.Message) (Item, bool) { return r.one(ctx, dlqURL, m) })
}

// one redrives a message and says whether it left the dead-letter queue.
func (r *WorkRedriver) one(ctx context.Context, dlqURL string, m types.Message) (Item, bool) {
	item := Item{MessageID: aws.ToString(m.MessageId), Parked: "not finished after its receives"}
	it, err := work.Decode([]byte(aws.ToString(m.Body)))
	if err != nil {
		item.Event, item.Result = "unreadable work item", "left: "+err.Error()+"; inspect it in the queue, delete it when understood"
		return item, false
	}
	item.Event = fmt.Sprintf("deploy %s:%s (%s) to %s, rule %s, event %s", it.Push.Repository, it.Push.Tag,
		shortDigest(it.Push.Digest), it.ServiceKey, it.Rule, it.Push.EventID)
	to, err := SourceQueue(dlqURL, m)
	if err != nil {
		item.Result = "left: " + err.Error()
		return item, false
	}
	if r.DryRun {
		item.Result = "would send to " + to
		return item, false
	}
	if _, err := r.SQS.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(to), MessageBody: m.Body,
		MessageAttributes: m.MessageAttributes}); err != nil {
		item.Result = fmt.Sprintf("left: send to %s: %v", to, err)
		return item, false
	}
	item.Result = "sent to " + to
	if _, err := r.SQS.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(dlqURL), ReceiptHandle: m.ReceiptHandle}); err != nil {
		item.Result += fmt.Sprintf("; left: sent but not deleted (%v): a second run sends it again, which the worker skips", err)
		return item, false
	}
	return item, true
}

// SourceQueue is the URL of the work queue a parked message came from: the
// one SQS names (DeadLetterQueueSourceArn), else the one the dispatcher
// wrote on it (queue.AttrQueue). The work queues live beside their
// dead-letter queue (same account, region and endpoint).
func SourceQueue(dlqURL string, m types.Message) (string, error) {
	if arn := m.Attributes[string(types.MessageSystemAttributeNameDeadLetterQueueSourceArn)]; arn != "" {
		return queue.URLOfARN(dlqURL, arn)
	}
	name := aws.ToString(m.MessageAttributes[queue.AttrQueue].StringValue)
	if name == "" {
		return "", fmt.Errorf("the message names no work queue (no %s attribute, nor SQS's source queue)", queue.AttrQueue)
	}
	to, err := queue.URLForName(dlqURL, name)
	if err != nil {
		return "", fmt.Errorf("the message names no work queue (its %s attribute: %w)", queue.AttrQueue, err)
	}
	return to, nil
}

func shortDigest(d string) string {
	if len(d) > len("sha256:")+12 {
		return d[:len("sha256:")+12]
	}
	return d
}
