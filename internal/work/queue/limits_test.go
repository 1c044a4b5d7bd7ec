package queue_test

import (
	"testing"
	"time"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work/queue"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/worker"
)

// RetrySpan outlasts every receive of an item and the worker's backoff
// between them, so a sweep never queues again a target whose item may still
// come back.
func TestRetrySpanOutlastsTheReceives(t *testing.T) {
	const receiveHold = 3 * time.Minute // the worker's timeout (infra/stack workerTimeout)
	least := queue.MaxReceiveCount*receiveHold + (queue.MaxReceiveCount-1)*worker.BackoffMax
	if queue.RetrySpan < least {
		t.Errorf("RetrySpan = %s, less than %d receives of %s and their backoffs of up to %s (%s)",
			queue.RetrySpan, queue.MaxReceiveCount, receiveHold, worker.BackoffMax, least)
	}
}
