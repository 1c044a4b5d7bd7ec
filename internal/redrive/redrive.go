// Package redrive sends the events parked in a failure queue back to the
// deployer, deleting each message only after the deployer took its event.
package redrive

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/deploy"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/reconcile"
)

// The stack's outputs that name what a redrive needs.
const (
	OutputDeployerFunction    = "DeployerFunctionName"
	OutputPushEventsQueue     = "PushEventsQueueUrl"
	OutputDeployerFailedQueue = "DeployerFailedEventsQueueUrl"
)

type sqsAPI interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessage(ctx context.Context, in *sqs.DeleteMessageInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error)
	ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
}

type lambdaAPI interface {
	Invoke(ctx context.Context, in *lambda.InvokeInput, optFns ...func(*lambda.Options)) (*lambda.InvokeOutput, error)
}

// Redriver moves parked events to the deployer.
type Redriver struct {
	SQS      sqsAPI
	Lambda   lambdaAPI
	Function string // the deployer's name or ARN
	DryRun   bool   // only say what would be sent; every message stays
}

// hidden is how long a received message stays invisible to others while
// this run works on it: longer than one deploy (the deployer's timeout is
// three minutes). Messages left are made visible again at the end.
const hidden = 5 * 60

// Item is what happened to one message.
type Item struct {
	MessageID string
	Event     string // what the event is, for a person
	Parked    string // why it was in the queue
	Result    string // what the deployer did, or why the message stays
}

// Report lists the messages moved (the deployer took them; deleted) and
// left (still in the queue, with why).
type Report struct {
	Moved, Left []Item
}

// Run redrives every message of the queue once. A message is deleted only
// after the deployer returned without error; delivering one twice (a delete
// that failed, a second run) is safe: the deployer skips what already runs.
func (r *Redriver) Run(ctx context.Context, queueURL string) (Report, error) {
	return drain(ctx, r.SQS, queueURL, nil, func(m types.Message) (Item, bool) { return r.one(ctx, queueURL, m) })
}

// drain receives every message of the queue at queueURL once (with
// attrs, SQS's system attributes one needs) and hands each to one, which
// says what became of it and whether it left the queue. A message seen
// again (its receive outlived hidden) is not handed twice; the run ends at
// the first receive with nothing new. What stays is made visible again at
// the end, so the queue's alarm and the next run see it now.
func drain(ctx context.Context, q sqsAPI, queueURL string, attrs []types.MessageSystemAttributeName,
	one func(types.Message) (Item, bool)) (Report, error) {
	var rep Report
	seen := map[string]bool{}
	var release []string
	defer func() {
		for _, receipt := range release {
			_, _ = q.ChangeMessageVisibility(context.WithoutCancel(ctx), &sqs.ChangeMessageVisibilityInput{
				QueueUrl: aws.String(queueURL), ReceiptHandle: aws.String(receipt), VisibilityTimeout: 0})
		}
	}()
	for {
		out, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(queueURL), MaxNumberOfMessages: 10, VisibilityTimeout: hidden, WaitTimeSeconds: 1,
			MessageAttributeNames: []string{"All"}, MessageSystemAttributeNames: attrs,
		})
		if err != nil {
			return rep, fmt.Errorf("receive from %s: %w", queueURL, err)
		}
		fresh := 0
		for _, m := range out.Messages {
			id := aws.ToString(m.MessageId)
			if seen[id] {
				continue
			}
			seen[id], fresh = true, fresh+1
			item, moved := one(m)
			if moved {
				rep.Moved = append(rep.Moved, item)
			} else {
				rep.Left = append(rep.Left, item)
				release = append(release, aws.ToString(m.ReceiptHandle))
			}
		}
		if fresh == 0 {
			return rep, nil
		}
	}
}

// one redrives a message and says whether it left the queue.
func (r *Redriver) one(ctx context.Context, queueURL string, m types.Message) (Item, bool) {
	item := Item{MessageID: aws.ToString(m.MessageId)}
	parked, err := Unwrap(aws.ToString(m.Body), m.MessageAttributes)
	if err != nil {
		item.Event, item.Result = "unreadable message", "left: "+err.Error()+"; inspect it in the queue"
		return item, false
	}
	item.Event, item.Parked = parked.Describe(), parked.Why
	if r.DryRun {
		item.Result = "would send to " + cmp.Or(r.Function, "the deployer (the stack's)")
		return item, false
	}
	out, err := r.Lambda.Invoke(ctx, &lambda.InvokeInput{
		FunctionName: aws.String(r.Function), Payload: parked.Event, InvocationType: lambdatypes.InvocationTypeRequestResponse,
	})
	if err != nil {
		item.Result = fmt.Sprintf("left: invoke %s: %v", r.Function, err)
		return item, false
	}
	if failure := functionError(out); failure != "" {
		item.Result = "left: the deployer failed again: " + failure
		return item, false
	}
	item.Result = "deployer: " + summarize(out.Payload)
	if _, err := r.SQS.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(queueURL), ReceiptHandle: m.ReceiptHandle}); err != nil {
		item.Result += fmt.Sprintf("; left: delivered but not deleted (%v): a second run delivers it again, which the deployer skips", err)
		return item, false
	}
	return item, true
}

// functionError is the handler's error, from Lambda's header or, where an
// emulator does not set it, from the error payload's shape.
func functionError(out *lambda.InvokeOutput) string {
	var e struct {
		ErrorMessage string `json:"errorMessage"`
		ErrorType    string `json:"errorType"`
	}
	_ = json.Unmarshal(out.Payload, &e)
	switch {
	case e.ErrorType != "" || e.ErrorMessage != "":
		return e.ErrorMessage
	case out.FunctionError != nil:
		return aws.ToString(out.FunctionError) + ": " + string(out.Payload)
	}
	return ""
}

// summarize counts the deployer's outcomes per target: a push's summary or,
// for a parked scheduled event, the sweep's report.
func summarize(payload []byte) string {
	var sum struct {
		deploy.Summary
		Sweep []reconcile.Line `json:"targets"`
		Drift int              `json:"drift"`
	}
	if err := json.Unmarshal(payload, &sum); err != nil {
		return "answered " + string(payload)
	}
	if sum.Sweep != nil {
		return fmt.Sprintf("swept %d targets, %d behind", len(sum.Sweep), sum.Drift)
	}
	if sum.Ignored != "" {
		return "ignored: " + sum.Ignored
	}
	counts := map[deploy.Outcome]int{}
	for _, res := range sum.Results {
		counts[res.Outcome]++
	}
	if n := counts[deploy.Queued]; n > 0 {
		// A deployer with a work queue hands the targets to the worker.
		return fmt.Sprintf("%d queued for the worker, %d failed", n, counts[deploy.Failed])
	}
	return fmt.Sprintf("%d deployed, %d skipped, %d failed", counts[deploy.Deployed], counts[deploy.Skipped], counts[deploy.Failed])
}
