package queue

import "time"

// How fast the work queues drain, as the stack sets each place's event
// source mapping and redrive policy (infra/stack work.go).

// MaximumConcurrency is the default ScalingConfig.MaximumConcurrency of
// each place's event source mapping: the worker invocations of one target
// place at once. Two, the least Lambda allows, because ECS's buckets are
// per account and region and the registration bucket is the narrow one:
// RegisterTaskDefinition 20 burst then 1 per second (shared with
// DeregisterTaskDefinition), against UpdateService 50 / 5 s⁻¹ and
// DescribeServices 100 / 20 s⁻¹. Two invocations of a batch of BatchSize
// items, each item deployed at once, are 20 registrations in flight: the
// burst, then as many as the bucket refills, with the SDK's retries
// absorbing the wait. More invocations cannot raise the 1 per second a
// place sustains; they only spend the retries of every item on
// ThrottlingException and end in items returned to the queue. A queue per
// place keeps one throttled account from slowing the others. The stack
// takes another value from its context (workConcurrency), within
// MinMaximumConcurrency..MaxMaximumConcurrency.
const MaximumConcurrency = 2

// Lambda's bounds on ScalingConfig.MaximumConcurrency.
const (
	MinMaximumConcurrency = 2
	MaxMaximumConcurrency = 1000
)

// BatchSize is the work items of one worker invocation: SendMessageBatch's
// 10, so one intake call is one batch, and with the worker's in-batch
// concurrency (10) every item of a batch deploys at once.
const BatchSize = 10

// MaxReceiveCount is how many receives a work item has before its queue's
// redrive policy parks it in the dead-letter queue. A receive ends in a
// return only for an item throttled past the SDK's 8 attempts (tens of
// seconds of backoff inside the receive), a lock held past the worker's
// wait, or an unreadable message; the worker then backs it off with
// ChangeMessageVisibility, 2 s doubling per receive, capped at 5 min, with
// equal jitter (worker.Backoff). Counted: with MaximumConcurrency 2, twenty
// items in flight share the bucket's 1 registration per second, so an item
// waits about 20 s for its token, inside one receive's SDK retries, and a
// receive rarely ends throttled. Ten receives span 8–18 min of the worker's
// backoff plus the SDK's time in each receive, about the whole drain of
// 1,000 targets in one place (~1,000 s): only an item throttled on every
// receive of such a drain would be parked, while a poison message parks
// within the same quarter of an hour. The count does not follow the
// stack's workConcurrency, and need not: the worker reads it too (an item
// on its last receive is ended in its rollout as parked), so it is this one
// constant for the stack's redrive policy and the worker; and
// workConcurrency is for an account whose registration quota was raised in
// proportion, where an item's wait for a token, and so the receives it
// spends, stay what is counted here. Raised without the quota, more
// invocations only spend receives on ThrottlingException (see
// MaximumConcurrency): lower workConcurrency then, not raise the count.
const MaxReceiveCount = 10

// RetrySpan is how long a work item may still be in its queue after it was
// sent, counted as the stack drains it: before its first receive, the items
// sent ahead of it in its place's queue, at about the registration bucket's
// 1 per second (~17 min for 1,000 targets of one place); then up to
// MaxReceiveCount receives, each holding it at most the worker's timeout
// (WorkerTimeout, 3 min), each but the last followed by the worker's backoff,
// at most 5 min (worker.BackoffMax): 10 × 3 + 9 × 5 = 75 min. About 92
// minutes in all; two hours leaves a margin for a slower drain. A sweep
// queues a target behind again only once its earlier item for the same
// digest is older than this (history.ServiceState.Queued): longer only
// delays a new item for a target whose item was parked (the dead-letter
// queue's alarm says so meanwhile, and a redrive replays it); shorter costs
// a second item, which the worker finds already deployed. Raise it with
// MaxReceiveCount or the worker's backoff (a test holds it above their
// product).
const RetrySpan = 2 * time.Hour
