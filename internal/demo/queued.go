package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/deploy"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/emulator"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work/queue"
)

// workQueue makes the work queue and its dead-letter queue as the stack
// does (infra/stack work.go): the stack's visibility timeout
// (queue.Visibility, six times the worker's timeout) and its redrive
// policy (queue.MaxReceiveCount receives), and returns the work queue's URL.
func (d *demo) workQueue(ctx context.Context) (string, error) {
	if _, err := d.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("autodeploy-work-dlq")}); err != nil {
		return "", fmt.Errorf("create work dead-letter queue: %w", err)
	}
	policy := fmt.Sprintf(`{"deadLetterTargetArn":"arn:aws:sqs:%s:%s:autodeploy-work-dlq","maxReceiveCount":%d}`, emulator.Region, emulator.Account, queue.MaxReceiveCount)
	q, err := d.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("autodeploy-work"), Attributes: map[string]string{
		string(types.QueueAttributeNameVisibilityTimeout): strconv.Itoa(int(queue.Visibility / time.Second)),
		string(types.QueueAttributeNameRedrivePolicy):     policy}})
	if err != nil {
		return "", fmt.Errorf("create work queue: %w", err)
	}
	return aws.ToString(q.QueueUrl), nil
}

// work plays Lambda's event source mapping: it hands the work queue's
// batches to the worker under aws-lambda-rie until the queue is empty, and
// returns what the worker did, target by target, from its deploy lines.
func (d *demo) work(ctx context.Context) ([]deploy.Result, error) {
	before := lineCount(d.worker.Logs())
	p := &testenv.Poller{SQS: d.sqs, QueueURL: d.workURL, BatchSize: queue.BatchSize, Concurrency: 1, Timeout: queue.WorkerTimeout,
		Handler: func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
			data, err := json.Marshal(ev)
			if err != nil {
				return events.SQSEventResponse{}, err
			}
			body, err := d.worker.Invoke(ctx, data)
			if err != nil {
				return events.SQSEventResponse{}, err
			}
			var resp events.SQSEventResponse
			if err := json.Unmarshal(body, &resp); err != nil {
				return resp, fmt.Errorf("worker answered %s: %w", body, err)
			}
			return resp, nil
		}}
	dctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	stats, err := p.Drain(dctx)
	if err != nil {
		return nil, fmt.Errorf("work queue: %w", err)
	}
	if stats.Received == 0 {
		return nil, nil
	}
	d.p.line("  (playing the event source mapping) the worker took %d work item(s) in %d batch(es)", stats.Received, stats.Batches)
	lines := newJSONLines(d.worker.LogsAfter(before), before)
	var results []deploy.Result
	var deployLines []string
	for _, l := range lines {
		var r struct {
			Msg string `json:"msg"`
			deploy.Result
		}
		if err := json.Unmarshal([]byte(l), &r); err != nil || r.Msg != "deploy" {
			continue
		}
		deployLines = append(deployLines, l)
		results = append(results, r.Result)
		d.p.line("  worker: %s %s/%s (rule %s)", r.Outcome, r.Cluster, r.Service, r.Rule)
		if r.Reason != "" {
			d.p.line("          %s", r.Reason)
		}
	}
	d.p.logs("worker", deployLines)
	if len(deployLines) > 0 {
		d.showJSON(deployLines[0])
	}
	return results, nil
}

// queued reports whether the deployer handed any target to the work queue.
func queued(sum deploy.Summary) bool {
	for _, r := range sum.Results {
		if r.Outcome == deploy.Queued {
			return true
		}
	}
	return false
}
