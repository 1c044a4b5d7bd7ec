package awsenv

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
)

// WorkerMaxAttempts bounds the SDK's attempts of one call in the worker,
// instead of MaxAttempts. The work queue is the worker's retry engine for
// throttles: an item throttled past these attempts goes back to its queue
// with a backoff (worker.Handler), where waiting costs no invocation. With
// the SDK's full-jitter backoff from 1 s, 5 attempts wait at most
// 1 + 2 + 4 + 8 = 15 s per call, 60 s over a deploy's four ECS calls; with
// the lock's wait (worker.LockWait, 25 s) and the answer's reserve
// (worker.Reserve, 21 s) that is about 105 s of the worker's 180 s timeout.
// MaxAttempts' 8 attempts wait up to 71 s per call (1 … 16, then 20, 20),
// 284 s over four: a throttled target would run its invocation out of time
// instead of returning to the queue.
const WorkerMaxAttempts = 5

// ForWorker is cfg with every client's retryer bounded to
// WorkerMaxAttempts; all else of the retryer (its backoff, adaptive mode
// per operation, what it retries) stays cfg's. A retryer that already
// makes fewer attempts keeps its number: the bound only lowers.
func ForWorker(cfg aws.Config) aws.Config {
	c := cfg.Copy()
	base := cfg.Retryer
	c.Retryer = func() aws.Retryer {
		var r aws.Retryer
		if base != nil {
			r = base()
		} else {
			r = retry.NewStandard()
		}
		if n := r.MaxAttempts(); n > 0 && n <= WorkerMaxAttempts {
			return r
		}
		return WithMaxAttempts(r, WorkerMaxAttempts)
	}
	return c
}

// WithMaxAttempts is r with at most n attempts per call. Unlike the SDK's
// retry.AddWithMaxAttempts it keeps r's GetAttemptToken, which adaptive
// mode waits in (the SDK would otherwise call the retryer as a v1 one and
// skip its client-side rate limiter).
func WithMaxAttempts(r aws.Retryer, n int) aws.Retryer {
	if v2, ok := r.(aws.RetryerV2); ok {
		return maxAttemptsV2{RetryerV2: v2, n: n}
	}
	return retry.AddWithMaxAttempts(r, n)
}

// maxAttemptsV2 is a RetryerV2 with n attempts.
type maxAttemptsV2 struct {
	aws.RetryerV2
	n int
}

func (m maxAttemptsV2) MaxAttempts() int { return m.n }
