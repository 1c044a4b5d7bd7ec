// Package worker is the work queue's consumer: it deploys each work item of
// an SQS batch through the deployer's one per-target path.
package worker

import (
	"context"

	"github.com/aws/aws-lambda-go/events"
	"golang.org/x/sync/errgroup"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/deploy"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work"
)

// Handler is the worker function's handler, for an event source mapping
// with ReportBatchItemFailures.
type Handler struct {
	// Deployer deploys each item; its rules file is the one items are
	// resolved in.
	Deployer *deploy.Deployer
	// Concurrency bounds the items of one batch deployed at once (default:
	// the deployer's). Two items for one service serialise on its lock.
	Concurrency int
}

// Handle deploys each item of the batch and answers, as batch item
// failures, exactly the messages to receive again:
//   - an item that failed transiently (throttled, a lock wait, a lost
//     lease, a history write lost): the message becomes visible again
//     after the queue's visibility timeout and the next receive retries
//     it, so a throttled target waits in the queue rather than in an
//     invocation; a redelivery of a deployed item finds the image running;
//   - a message that is not a work item this build reads: returned so the
//     queue's redrive policy parks it in the dead-letter queue after its
//     receives, where an operator sees it.
//
// A permanent failure (the deployer logged, recorded and notified it) and
// an item the rules file no longer describes (logged, counted and notified
// here) are not returned: receiving them again cannot help, and they would
// only end in the dead-letter queue.
func (h *Handler) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	failed := make([]bool, len(ev.Records))
	var g errgroup.Group
	limit := h.Concurrency
	if limit <= 0 {
		limit = max(h.Deployer.Concurrency, 1)
	}
	g.SetLimit(limit)
	for i, msg := range ev.Records {
		g.Go(func() error {
			failed[i] = h.item(ctx, msg)
			return nil
		})
	}
	_ = g.Wait()
	var resp events.SQSEventResponse
	for i, f := range failed {
		if f {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: ev.Records[i].MessageId})
		}
	}
	return resp, nil
}

// item handles one message; retry says whether it must be received again.
func (h *Handler) item(ctx context.Context, msg events.SQSMessage) (retry bool) {
	d := h.Deployer
	log := d.Log.With("message_id", msg.MessageId, "receive_count", msg.Attributes["ApproximateReceiveCount"])
	it, err := work.Decode([]byte(msg.Body))
	if err != nil {
		log.ErrorContext(ctx, "work item unreadable", "error", err.Error(), "queue", msg.EventSourceARN)
		return true
	}
	job, err := it.Resolve(d.Rules, d.Central)
	if err != nil {
		log.ErrorContext(ctx, "work item refused", "rule", it.Rule, "service_key", it.ServiceKey,
			"event_id", it.Push.EventID, "digest", it.Push.Digest, "error", err.Error())
		// Not received again, and no deploy path saw it: counted and
		// notified here, or nobody learns the target was not deployed.
		res := deploy.Result{Rule: it.Rule, Outcome: deploy.Failed, Reason: "work item refused: " + err.Error()}
		res.Account, res.Region, res.Cluster, res.Service = it.Target()
		d.NotDeployed(ctx, it.Push.Event(), res)
		return false
	}
	res := d.DeployTarget(ctx, it.Push.Event(), job)
	return res.Retryable
}
