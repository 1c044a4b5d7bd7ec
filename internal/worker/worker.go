// Package worker is the work queue's consumer: it deploys each work item of
// an SQS batch through the deployer's one per-target path.
package worker

import (
	"cmp"
	"context"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"golang.org/x/sync/errgroup"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/deploy"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecrevent"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/reconcile"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work/queue"
)

// SQS is the part of the SQS API the worker uses: it hands an item that
// failed transiently back to its queue after a short backoff.
type SQS interface {
	ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
}

// LockWait is how long the worker waits for a service's lock that another
// deploy holds, instead of the lock's 90 s: past it, the item goes back to
// the queue (with a backoff), where waiting costs no invocation and no
// slot of the place's MaximumConcurrency. It is just over one lease (20 s,
// lock.New), because a waiter takes over a dead holder's lease only once it
// has watched it go unrenewed for a whole lease within one wait: shorter,
// a worker killed while holding a lock would leave the lock to be waited
// on, and given up, by every receive of every item for that service.
const LockWait = 25 * time.Second

// Backoff bounds: the first retry of an item comes after about BackoffBase,
// each later one after twice the one before, never more than BackoffMax.
const (
	BackoffBase = 2 * time.Second
	BackoffMax  = 5 * time.Minute
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
	// SQS, when set, returns an item that failed transiently to its queue
	// after Backoff (ChangeMessageVisibility), instead of after the queue's
	// visibility timeout; QueueURL (AUTODEPLOY_WORK_QUEUE_URL) is any work
	// queue's URL, whose host the message's queue is reached on (its ARN
	// names it: queue.URLOfARN).
	SQS      SQS
	QueueURL string
	// Backoff is the wait before an item received n times (n ≥ 1) is
	// received again (default: DefaultBackoff).
	Backoff func(n int) time.Duration
	// CallTimeout bounds the ChangeMessageVisibility call (default 5 s):
	// when it does not answer, the item still returns, after the queue's
	// visibility timeout. It bounds the end's writes of a parked item too
	// (its notice has deploy.NoticeTimeout of its own).
	CallTimeout time.Duration
	// MaxReceiveCount is the receives of an item before its queue's redrive
	// policy parks it in the dead-letter queue (default
	// queue.MaxReceiveCount, which the stack's redrive policy uses): an
	// item that fails transiently on its last receive is ended in its
	// rollout as parked (deploy.Deployer.EndParked).
	MaxReceiveCount int
	// Cleanup runs cleanup items (cleanup.go); nil: they are refused and
	// return to the queue, to park in its dead-letter queue.
	Cleanup *reconcile.CleanupRunner
}

// DefaultBackoff is BackoffBase × 2^(n-1), at most BackoffMax, with equal
// jitter (between half of it and all of it), so items throttled together
// do not all come back in the same second.
func DefaultBackoff(n int) time.Duration {
	d := BackoffBase << min(max(n-1, 0), 20)
	d = min(d, BackoffMax)
	return d/2 + rand.N(d/2+1)
}

// Reserve is the time an invocation keeps, before its deadline, to answer
// Lambda in time: items run on a context that ends Reserve before the
// invocation's deadline, and no item starts once that has ended. It is what
// an item still does after its context ended, in turn: the lock's release
// (or the history write with it), which the deploy path gives 10 s of its
// own; then the ChangeMessageVisibility that backs the item off
// (CallTimeout, 5 s) and, beside it on its last receive, the park: its end's
// writes (CallTimeout) and the notice the deploy path sends after them
// (deploy.NoticeTimeout, 5 s, a budget of its own, so an end write that
// runs out of time does not take the notice with it); plus a second to
// answer. An answer Lambda receives after the
// deadline is lost ("Task timed out"): the event source mapping then
// returns the whole batch after the queue's visibility timeout (18 min in
// the stack) instead of the unfinished items after their backoff. An
// invocation shorter than 4 × Reserve keeps a quarter of its time instead
// (time-scaled benchmarks run a 3-minute timeout in seconds).
const Reserve = 21 * time.Second

// reserve is the time kept for the answer of an invocation with remaining
// time left: Reserve, at most a quarter of it.
func reserve(remaining time.Duration) time.Duration { return min(Reserve, remaining/4) }

// Handle deploys each item of the batch and answers, as batch item
// failures, exactly the messages to receive again:
//   - an item that failed transiently (throttled, a lock another deploy
//     held past LockWait, a lost lease, a history write lost): its message
//     is made visible again after a backoff that grows with its receive
//     count (ChangeMessageVisibility; when that call fails, the message
//     still returns, after the queue's visibility timeout) and the next
//     receive retries it, so a throttled target waits in the queue rather
//     than in an invocation; a redelivery of a deployed item finds the
//     image running;
//   - an item the invocation had no time for: its deploy's context ends
//     Reserve before the invocation's deadline, and an item not started by
//     then is not started; both are backed off as above, and the handler
//     answers before the deadline (see Reserve);
//   - a message that is not a work item this build reads: returned so the
//     queue's redrive policy parks it in the dead-letter queue after its
//     receives, where an operator sees it;
//   - an item the rules file refuses while the intake resolved it with
//     another rules file (a stack update under way: work.DeployTarget's
//     OutOfStep): backed off as above, so a worker with the intake's file
//     takes it; on its last receive it is refused for good, as below.
//
// An item returned on its last receive (MaxReceiveCount) parks in the
// dead-letter queue: its target is ended in its rule's rollout as not
// deployed, so that the rule's notice still goes (EndParked).
//
// A permanent failure (the deployer logged, recorded and notified it) and
// an item the rules file no longer describes (logged, counted and notified
// here) are not returned: receiving them again cannot help, and they would
// only end in the dead-letter queue.
func (h *Handler) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	items, cancel := itemContext(ctx)
	defer cancel()
	failed := make([]bool, len(ev.Records))
	var g errgroup.Group
	limit := h.Concurrency
	if limit <= 0 {
		limit = max(h.Deployer.Concurrency, 1)
	}
	g.SetLimit(limit)
	// Back-offs run beside the items, not in their slots: once the items'
	// time is up, every item left behind is backed off at once.
	var backoffs sync.WaitGroup
	for i, msg := range ev.Records {
		g.Go(func() error {
			var last *attempt
			if items.Err() != nil {
				h.Deployer.Log.WarnContext(ctx, "work item not started: the invocation's time is all but spent; it returns to the queue",
					"message_id", msg.MessageId, "receive_count", msg.Attributes["ApproximateReceiveCount"])
				failed[i], last = true, notStarted(msg)
			} else {
				failed[i], last = h.item(items, msg)
			}
			if failed[i] {
				backoffs.Go(func() { h.backoff(ctx, msg) })
				if n := receiveCount(msg); last != nil && n >= h.maxReceiveCount() {
					backoffs.Go(func() { h.park(ctx, *last, n) })
				}
			}
			return nil
		})
	}
	_ = g.Wait()
	backoffs.Wait()
	var resp events.SQSEventResponse
	for i, f := range failed {
		if f {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: ev.Records[i].MessageId})
		}
	}
	return resp, nil
}

// itemContext is the context items run on: ctx, ending reserve(remaining)
// before ctx's deadline when it has one (Lambda's always has: the
// invocation's timeout).
func itemContext(ctx context.Context) (context.Context, context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	return context.WithDeadline(ctx, deadline.Add(-reserve(time.Until(deadline))))
}

// attempt is an item's push and its result on a receive that failed
// transiently: what its end says if that receive was its last.
type attempt struct {
	push ecrevent.Push
	res  deploy.Result
}

// item handles one message; retry says whether it must be received again,
// last (when retry, and the message is a work item) how it failed.
func (h *Handler) item(ctx context.Context, msg events.SQSMessage) (retry bool, last *attempt) {
	d := h.Deployer
	log := d.Log.With("message_id", msg.MessageId, "receive_count", msg.Attributes["ApproximateReceiveCount"])
	if c, err := work.DecodeCommand([]byte(msg.Body)); err == nil {
		if c, ok := c.(work.Cleanup); ok {
			return h.cleanup(ctx, log, c), nil
		}
	}
	it, err := work.Decode([]byte(msg.Body))
	if err != nil {
		log.ErrorContext(ctx, "work item unreadable", "error", err.Error(), "queue", msg.EventSourceARN)
		return true, nil
	}
	job, err := it.Resolve(d.Rules, d.Central)
	if err != nil {
		res := deploy.Result{Rule: it.Rule, Outcome: deploy.Failed, Reason: "work item refused: " + err.Error()}
		res.Account, res.Region, res.Cluster, res.Service = it.Target()
		if it.OutOfStep(d.Rules) && receiveCount(msg) < h.maxReceiveCount() {
			// The intake ran another rules file (a stack update under
			// way): a worker with that file takes the item. By the last
			// receive (minutes of backoff later) every worker runs the
			// stack's file, so the refusal below is the truth: the rules
			// changed while the item waited, and parking it would only
			// alarm and loop through redrives.
			log.WarnContext(ctx, "work item refused: rules file differs from the intake's; it returns to the queue",
				"rule", it.Rule, "service_key", it.ServiceKey, "event_id", it.Push.EventID, "digest", it.Push.Digest,
				"item_rules_sha256", it.RulesSHA256, "rules_sha256", d.Rules.SHA256(), "error", err.Error())
			res.Retryable = true
			res.Reason += " (the rules file differs from the intake's; will retry)"
			return true, &attempt{it.Push.Event(), res}
		}
		log.ErrorContext(ctx, "work item refused", "rule", it.Rule, "service_key", it.ServiceKey,
			"event_id", it.Push.EventID, "digest", it.Push.Digest, "error", err.Error())
		// Not received again, and no deploy path saw it: counted and
		// notified here, or nobody learns the target was not deployed.
		d.NotDeployed(ctx, it.Push.Event(), res)
		return false, nil
	}
	// A receive after the first may follow one that deployed and died
	// before recording it: the deploy path then looks for that deploy
	// undone (deploy.Job.Redelivered).
	job.Redelivered = receiveCount(msg) > 1
	push := it.Push.Event()
	res := d.DeployTarget(ctx, push, job)
	if !res.Retryable {
		return false, nil
	}
	return true, &attempt{push, res}
}

// notStarted is the attempt of an item the invocation had no time for
// (nil: not a work item).
func notStarted(msg events.SQSMessage) *attempt {
	it, err := work.Decode([]byte(msg.Body))
	if err != nil {
		return nil
	}
	res := deploy.Result{Rule: it.Rule, Outcome: deploy.Failed, Retryable: true,
		Reason: "not started: the worker invocation's time was all but spent"}
	res.Account, res.Region, res.Cluster, res.Service = it.Target()
	return &attempt{it.Push.Event(), res}
}

func (h *Handler) maxReceiveCount() int {
	if h.MaxReceiveCount > 0 {
		return h.MaxReceiveCount
	}
	return queue.MaxReceiveCount
}

// park ends the target of an item returned on its last receive (the
// queue parks it next) in its rule's rollout, its writes within
// CallTimeout: on the invocation's context, in its reserve, beside the
// item's backoff. The notice EndParked sends when the end is not recorded
// (or the rule's, when it is) has deploy.NoticeTimeout of its own, also in
// the reserve: sent on the end's spent context, it would be lost.
func (h *Handler) park(ctx context.Context, last attempt, receives int) {
	cctx, cancel := context.WithTimeout(ctx, cmp.Or(h.CallTimeout, 5*time.Second))
	defer cancel()
	h.Deployer.EndParked(cctx, last.push, last.res, receives)
}

// receiveCount is the message's ApproximateReceiveCount, 1 when absent.
func receiveCount(msg events.SQSMessage) int {
	n, err := strconv.Atoi(msg.Attributes["ApproximateReceiveCount"])
	if err != nil || n < 1 {
		return 1
	}
	return n
}

// backoff makes msg visible again after the backoff its receive count
// earns. Whatever happens, the message is reported failed: when the call
// fails, it returns after the queue's visibility timeout instead.
func (h *Handler) backoff(ctx context.Context, msg events.SQSMessage) {
	if h.SQS == nil {
		return
	}
	log := h.Deployer.Log.With("message_id", msg.MessageId, "queue", msg.EventSourceARN)
	url, err := queue.URLOfARN(h.QueueURL, msg.EventSourceARN)
	if err != nil {
		log.WarnContext(ctx, "work item not backed off: its queue is unknown; it returns after the queue's visibility timeout", "error", err.Error())
		return
	}
	n := receiveCount(msg)
	wait := DefaultBackoff
	if h.Backoff != nil {
		wait = h.Backoff
	}
	secs := int32(min(max(wait(n), 0), BackoffMax).Round(time.Second) / time.Second)
	// ctx is the invocation's: the items' context ended Reserve before its
	// deadline, and the call gets its few seconds within that reserve, so
	// the answer still reaches Lambda in time.
	cctx, cancel := context.WithTimeout(ctx, cmp.Or(h.CallTimeout, 5*time.Second))
	defer cancel()
	if _, err := h.SQS.ChangeMessageVisibility(cctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl: aws.String(url), ReceiptHandle: aws.String(msg.ReceiptHandle), VisibilityTimeout: secs,
	}); err != nil {
		log.WarnContext(ctx, "work item not backed off; it returns after the queue's visibility timeout",
			"receive_count", n, "backoff_s", secs, "error", err.Error())
		return
	}
	log.InfoContext(ctx, "work item returned to the queue", "receive_count", n, "backoff_s", secs)
}
