// Package queue is the work queue's side of the dispatch seam: it hands the
// targets of a push (or sweep) to SQS as work items, one message per
// target, for the worker to deploy.
package queue

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/deploy"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecrevent"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work"
)

// SQS is the part of the SQS API the dispatcher uses.
type SQS interface {
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
}

// Message attributes every work item carries, so a queue's consumers (and
// an operator reading the dead-letter queue) see what and where without
// decoding the body.
const (
	AttrKind       = "kind"
	AttrPlace      = "place" // account/region of the target
	AttrRule       = "rule"
	AttrServiceKey = "service_key"
	// AttrQueue is the name of the work queue the item was sent to: the
	// work queues share one dead-letter queue, and `autodeploy redrive`
	// sends a parked item back to the queue it came from by it.
	AttrQueue = "queue"
)

// maxBatch is SendMessageBatch's limit.
const maxBatch = 10

// Dispatcher sends each target as a deploy-target work item to the queue of
// its place.
type Dispatcher struct {
	SQS SQS
	// Queues maps a target place (account/region) to its work queue's URL.
	// A queue per place, each with its own event source mapping, bounds the
	// deploys at once per place, as ECS's rate limits are per place: one
	// throttled account does not slow the others.
	Queues  map[rules.Place]string
	Central rules.Place
	Log     *slog.Logger
	// Attempts bounds the sends of an entry SQS reports failed (default 3).
	Attempts int
	// Backoff is the wait before the second attempt, doubling after
	// (default 100 ms).
	Backoff time.Duration
}

var _ deploy.Dispatcher = (*Dispatcher)(nil)

// entry is one job on its way to a queue.
type entry struct {
	job int // index in jobs and in the summary's results
	req types.SendMessageBatchRequestEntry
}

// Dispatch queues every job and answers Queued for each one sent. An entry
// SQS refuses as the sender's fault fails permanently, not sent again (the
// deployer's seam notifies it). An entry otherwise not sent after its
// attempts fails transiently, and so does the dispatch:
// Lambda retries the push, and the items already sent then go again, which
// is harmless as the worker finds their image running. A target whose place
// has no queue, or a job that is not its rule's target, fails permanently
// (a wrong stack or a bug: retrying cannot help).
func (q *Dispatcher) Dispatch(ctx context.Context, push ecrevent.Push, jobs []deploy.Job) (deploy.Summary, error) {
	sum := deploy.Summary{EventID: push.EventID, Results: make([]deploy.Result, len(jobs))}
	byQueue := map[string][]entry{}
	var order []string
	for i, j := range jobs {
		at := j.Target.Where(q.Central)
		res := &sum.Results[i]
		*res = deploy.Result{Rule: j.Rule.Name, Account: at.Account, Region: at.Region, Cluster: j.Target.Cluster, Service: j.Target.Service}
		req, url, err := q.entry(push, j, i)
		if err != nil {
			res.Outcome, res.Reason = deploy.Failed, err.Error()
			q.log(ctx, push, *res, url)
			continue
		}
		if _, ok := byQueue[url]; !ok {
			order = append(order, url)
		}
		byQueue[url] = append(byQueue[url], entry{i, req})
	}
	for _, url := range order {
		entries := byQueue[url]
		for start := 0; start < len(entries); start += maxBatch {
			q.send(ctx, url, entries[start:min(start+maxBatch, len(entries))], sum.Results)
		}
		for _, e := range entries {
			q.log(ctx, push, sum.Results[e.job], url)
		}
	}
	return sum, sum.TransientError(push.EventID, "not queued, the push will be retried")
}

// entry builds job i's message, and finds its queue.
func (q *Dispatcher) entry(push ecrevent.Push, j deploy.Job, i int) (types.SendMessageBatchRequestEntry, string, error) {
	at := j.Target.Where(q.Central)
	url, ok := q.Queues[at]
	if !ok {
		return types.SendMessageBatchRequestEntry{}, "", deploy.Permanent("no work queue for place %s (the stack makes one per target place)", at)
	}
	if j.Index < 0 || j.Index >= len(j.Rule.Targets) || j.Rule.Targets[j.Index].Line != j.Target.Line ||
		j.Rule.Targets[j.Index].Service != j.Target.Service || j.Rule.Targets[j.Index].Cluster != j.Target.Cluster {
		return types.SendMessageBatchRequestEntry{}, url, deploy.Permanent("target %s/%s is not target %d of rule %s", j.Target.Cluster, j.Target.Service, j.Index, j.Rule.Name)
	}
	item := work.NewDeployTarget(push, j.Rule, j.Index, q.Central)
	body, err := work.Encode(item)
	if err != nil {
		return types.SendMessageBatchRequestEntry{}, url, deploy.Permanent("encode work item: %v", err)
	}
	str := func(v string) types.MessageAttributeValue {
		return types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
	}
	return types.SendMessageBatchRequestEntry{
		Id:          aws.String(strconv.Itoa(i)),
		MessageBody: aws.String(string(body)),
		MessageAttributes: map[string]types.MessageAttributeValue{
			AttrKind: str(string(work.KindDeployTarget)), AttrPlace: str(at.String()),
			AttrRule: str(j.Rule.Name), AttrServiceKey: str(item.ServiceKey), AttrQueue: str(url[strings.LastIndex(url, "/")+1:]),
		},
	}, url, nil
}

// send sends one batch, sending again the entries SQS reports failed, and
// notes each entry's outcome in results.
func (q *Dispatcher) send(ctx context.Context, url string, batch []entry, results []deploy.Result) {
	pending := map[string]entry{}
	for _, e := range batch {
		pending[aws.ToString(e.req.Id)] = e
	}
	why := map[string]string{}
	attempts, wait := max(q.Attempts, 1), q.Backoff
	if q.Attempts == 0 {
		attempts = 3
	}
	if wait == 0 {
		wait = 100 * time.Millisecond
	}
	for attempt := 1; len(pending) > 0 && attempt <= attempts; attempt++ {
		if attempt > 1 {
			select {
			case <-ctx.Done():
				attempt = attempts // note the context's end below
			case <-time.After(wait):
				wait *= 2
			}
		}
		in := &sqs.SendMessageBatchInput{QueueUrl: aws.String(url)}
		for _, e := range batch {
			if _, ok := pending[aws.ToString(e.req.Id)]; ok {
				in.Entries = append(in.Entries, e.req)
			}
		}
		if err := ctx.Err(); err != nil {
			for id := range pending {
				why[id] = err.Error()
			}
			break
		}
		out, err := q.SQS.SendMessageBatch(ctx, in)
		if err != nil {
			// The SDK retried the call already; what is left is the push's.
			for id := range pending {
				why[id] = err.Error()
			}
			break
		}
		for _, ok := range out.Successful {
			id := aws.ToString(ok.Id)
			if e, found := pending[id]; found {
				results[e.job].Outcome, results[e.job].Reason = deploy.Queued, "message "+aws.ToString(ok.MessageId)
				delete(pending, id)
			}
		}
		for _, f := range out.Failed {
			id, reason := aws.ToString(f.Id), fmt.Sprintf("%s: %s", aws.ToString(f.Code), aws.ToString(f.Message))
			e, found := pending[id]
			if f.SenderFault && found {
				// The entry itself is wrong (too large, a bad attribute):
				// sent again, or with the push retried, it fails again.
				results[e.job].Outcome, results[e.job].Retryable = deploy.Failed, false
				results[e.job].Reason = "not queued, SQS refused the entry as the sender's fault: " + reason
				delete(pending, id)
				continue
			}
			why[id] = reason
		}
	}
	for id, e := range pending {
		res := &results[e.job]
		res.Outcome, res.Retryable = deploy.Failed, true
		res.Reason = "not queued: " + cmp.Or(why[id], "no answer for the entry") + " (will retry)"
	}
}

// log writes the intake's one line per target: queued, or why not.
func (q *Dispatcher) log(ctx context.Context, push ecrevent.Push, r deploy.Result, url string) {
	if q.Log == nil {
		return
	}
	level := slog.LevelInfo
	if r.Outcome == deploy.Failed {
		level = slog.LevelError
	}
	q.Log.Log(ctx, level, "queue", "rule", r.Rule, "repository", push.Repository, "tag", push.Tag, "digest", push.Digest,
		"account", r.Account, "region", r.Region, "cluster", r.Cluster, "service", r.Service, "queue", url,
		"outcome", string(r.Outcome), "reason", r.Reason, "event_id", push.EventID)
}
