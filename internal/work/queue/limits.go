package queue

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
// redrive policy parks it in the dead-letter queue. Receives accumulate
// fast only for a throttled item: the worker returns it with a
// ChangeMessageVisibility backoff rather than holding the invocation. A
// drain of 1,000 targets in one place takes about 1,000 s at the bucket's
// 1 per second; a backoff that doubles with the receive count from 30 s
// (capped at 15 min) spans 30+60+…+900·5 ≈ 75 min over ten receives, well
// past the longest drain, while an unreadable message (returned with the
// queue's whole visibility timeout) parks after ten receives, about three
// hours with the worker's 3-minute timeout. A backoff that does not grow
// would spend ten receives in five minutes: the worker's backoff must grow
// with ApproximateReceiveCount.
const MaxReceiveCount = 10
