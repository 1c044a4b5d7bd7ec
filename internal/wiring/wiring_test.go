package wiring

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/deploy"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/fnenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/lock"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/logging"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work/queue"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/worker"
)

func runtime(t *testing.T, queueURL string) fnenv.Runtime {
	t.Helper()
	cfg, err := rules.Parse("autodeploy.yaml", []byte("version: 1\nrules:\n  - {name: a, repository: web, tags: [x], targets: [{cluster: c, service: s}]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	central := rules.Place{Account: "111111111111", Region: "eu-west-1"}
	rt := fnenv.Runtime{Env: fnenv.Env{Table: "t", Concurrency: 10, WorkQueueURL: queueURL}, Log: logging.New(&strings.Builder{}, 0),
		Rules: cfg, AWS: aws.Config{Region: "eu-west-1", Retryer: awsenv.NewRetryer}, Central: central}
	if queueURL != "" {
		if rt.WorkQueues, err = queue.Queues(queueURL, central, cfg.TargetPlaces(central)); err != nil {
			t.Fatal(err)
		}
	}
	return rt
}

// The deployer function dispatches to the work queues when one is
// configured, and rolls the targets itself when not; the worker refuses to
// start without the queue.
func TestIntakeAndWorker(t *testing.T) {
	const url = "https://sqs.eu-west-1.amazonaws.com/111111111111/autodeploy-work"
	tests := []struct {
		name      string
		queueURL  string
		wantQueue map[rules.Place]string // nil: in-process
		workerErr string
	}{
		{"no queue", "", nil, "AUTODEPLOY_WORK_QUEUE_URL is not set"},
		{"queue", url, map[rules.Place]string{{Account: "111111111111", Region: "eu-west-1"}: url}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := New(runtime(t, tt.queueURL))
			d, sweeper := f.Intake()
			if sweeper.Deployer != d {
				t.Error("the sweep does not dispatch through the deployer")
			}
			if d.Rollouts == nil {
				t.Error("the intake opens no rollouts: a push to 500 services would notify 500 times")
			}
			if tt.wantQueue == nil {
				if d.Dispatcher != nil {
					t.Errorf("dispatcher %T, want in-process (none)", d.Dispatcher)
				}
			} else {
				q, ok := d.Dispatcher.(*queue.Dispatcher)
				if !ok {
					t.Fatalf("dispatcher %T, want *queue.Dispatcher", d.Dispatcher)
				}
				if diff := cmp.Diff(tt.wantQueue, q.Queues); diff != "" {
					t.Errorf("queues (-want +got):\n%s", diff)
				}
			}
			h, err := f.Worker()
			if tt.workerErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.workerErr) {
					t.Errorf("Worker() = %v, want %q", err, tt.workerErr)
				}
				return
			}
			if err != nil || h.SQS == nil || h.QueueURL != url || h.Deployer.Dispatcher != nil {
				t.Errorf("Worker() = %+v, %v", h, err)
			}
			if h.Deployer.Rollouts == nil {
				t.Error("the worker ends no rollouts: its skips and failures would never count")
			}
			if h.Deployer.Outcomes == nil || d.Outcomes == nil {
				t.Error("a repaired record would never get the end the watcher dropped")
			}
			// The worker's ECS calls give up a throttle sooner (the queue
			// retries the item); the intake's keep the SDK's full budget.
			attempts := func(d deploy.ECS) int { return d.(*ecs.Client).Options().Retryer.MaxAttempts() }
			if got := attempts(h.Deployer.ECS("eu-west-1", "")); got != awsenv.WorkerMaxAttempts {
				t.Errorf("the worker's ECS client makes %d attempts, want %d", got, awsenv.WorkerMaxAttempts)
			}
			if got := attempts(d.ECS("eu-west-1", "")); got != awsenv.MaxAttempts {
				t.Errorf("the intake's ECS client makes %d attempts, want %d", got, awsenv.MaxAttempts)
			}
		})
	}
}

// The worker's lock wait is short, but longer than one lease: a waiter
// takes a dead holder's lease over only after watching it unrenewed for a
// whole lease within one wait.
func TestWorkerLockWaitOutlastsALease(t *testing.T) {
	l := lock.New(nil, "t")
	if worker.LockWait <= l.Lease || worker.LockWait >= l.MaxWait {
		t.Errorf("worker.LockWait %s: want longer than the lease (%s) and shorter than the deployer's wait (%s)", worker.LockWait, l.Lease, l.MaxWait)
	}
}
