package queue

import "time"

// WorkerTimeout is the worker function's timeout in the stack (infra/stack
// work.go): a batch's items deploy at once, so a batch takes as long as
// its slowest item, which may wait out a lock (worker.LockWait, 25 s),
// then meet a throttled call whose SDK retries (8 attempts, jittered
// backoff capped at 20 s) take up to about 90 s, then write its history
// and back off a returned item (a 5 s budget): about two minutes at worst,
// so 3 minutes (the deployer's budget for the same path) leaves a margin
// that 2 would not.
const WorkerTimeout = 3 * time.Minute

// Visibility is the work queues' visibility timeout: six times
// WorkerTimeout, AWS's guidance for a queue an event source mapping reads
// (a batch still in hand is never delivered again). The stack sets it on
// every place's queue; the demo's queue has it too.
const Visibility = 6 * WorkerTimeout
