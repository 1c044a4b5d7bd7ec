// Package wiring builds what the deployer and worker functions run from the
// runtime fnenv.Init loaded, so that both mains stay wiring only and build
// the one deployer the same way.
package wiring

import (
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/bluegreen"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/deploy"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/fnenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/gate"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/lock"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/notify"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/reconcile"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work/queue"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/worker"
)

// Functions is what both functions share: the runtime and the clients built
// on it.
type Functions struct {
	rt      fnenv.Runtime
	clients *awsenv.Clients
	// notices is the notices topic (AUTODEPLOY_NOTIFY_TOPIC_ARN), one for
	// every part that tells people; nil without one.
	notices *notify.Topic
}

// New wires the functions of runtime rt.
func New(rt fnenv.Runtime) *Functions {
	f := &Functions{rt: rt, clients: awsenv.NewClients(rt.AWS)}
	if rt.Env.NotifyTopic != "" {
		f.notices = notify.NewTopic(sns.NewFromConfig(rt.AWS), rt.Env.NotifyTopic)
	}
	return f
}

// Notices is the notices topic, nil when none is configured.
func (f *Functions) Notices() *notify.Topic { return f.notices }

// Runtime is what the functions were wired from.
func (f *Functions) Runtime() fnenv.Runtime { return f.rt }

// Clients are the functions' clients per region and role.
func (f *Functions) Clients() *awsenv.Clients { return f.clients }

// Deployer is the deployer with the per-service lock waiting at most
// lockWait for a lease another deploy holds (0: the lock's default).
// Its dispatcher is unset: in-process.
func (f *Functions) Deployer(lockWait time.Duration) *deploy.Deployer {
	return f.deployer(lockWait, f.clients)
}

// deployer is Deployer with the given per-target clients.
func (f *Functions) deployer(lockWait time.Duration, clients *awsenv.Clients) *deploy.Deployer {
	rt := f.rt
	db := awsenv.StateTable(rt.AWS)
	locks := lock.New(db, rt.Env.Table)
	if lockWait > 0 {
		locks.MaxWait = lockWait
	}
	d := &deploy.Deployer{
		Rules:    rt.Rules,
		Central:  rt.Central,
		ECS:      func(region, role string) deploy.ECS { return clients.ECS(region, role) },
		Services: history.NewServices(locks, history.NewStore(db, rt.Env.Table)),
		// A push to several targets of a rule is one rollout, told in one
		// notice when every target ended (the watcher ends the deployed).
		Rollouts: history.NewStore(db, rt.Env.Table),
		// A retry that repairs a lost record records its deployment's end
		// too, when it came while the record was missing.
		Outcomes:    history.NewStore(db, rt.Env.Table),
		Log:         rt.Log,
		Concurrency: rt.Env.Concurrency,
		Now:         time.Now,
		SSM:         func(region, role string) deploy.SSM { return clients.SSM(region, role) },
		CodeDeploy:  func(region, role string) bluegreen.CodeDeploy { return clients.CodeDeploy(region, role) },
	}
	if f.notices != nil {
		d.Notifier = f.notices
	}
	d.Gates = f.Gates(clients)
	return d
}

// Gates are the rules' gates in the state table, reading scan results in
// each registry through clients; the watcher adds what ends them (alarms,
// timers, hand-offs, promotion).
func (f *Functions) Gates(clients *awsenv.Clients) *gate.Gates {
	rt := f.rt
	g := &gate.Gates{
		Rules:   rt.Rules,
		Central: rt.Central,
		Store:   gate.NewStore(awsenv.StateTable(rt.AWS), rt.Env.Table),
		Scans:   func(region, role string) gate.ScanReader { return clients.ECR(region, role) },
		Log:     rt.Log,
		Now:     time.Now,
	}
	if f.notices != nil {
		g.Notifier = f.notices
	}
	return g
}

// Intake is the deployer function's deployer and sweeper. With a work queue
// (AUTODEPLOY_WORK_QUEUE_URL) the deployer hands every target to its
// place's queue; without one it rolls them itself, in-process.
func (f *Functions) Intake() (*deploy.Deployer, *reconcile.Sweeper) {
	rt, clients := f.rt, f.clients
	d := f.Deployer(0)
	if rt.WorkQueues != nil {
		d.Dispatcher = &queue.Dispatcher{SQS: sqs.NewFromConfig(rt.AWS), Queues: rt.WorkQueues, Central: rt.Central, Log: rt.Log}
	}
	sweeper := &reconcile.Sweeper{
		Rules: rt.Rules, ECR: func(region, role string) reconcile.ECR { return clients.ECR(region, role) }, ECS: d.ECS,
		States: history.NewStore(awsenv.StateTable(rt.AWS), rt.Env.Table), Deployer: d, Log: rt.Log, Now: time.Now,
		SSM:   func(region, role string) reconcile.ParameterStore { return clients.SSM(region, role) },
		Marks: f.marks(),
	}
	// Clean-up after the sweep's deploys: the worker's, through the work
	// queues; without them the sweep's own, in-process.
	if rt.WorkQueues != nil {
		sweeper.CleanupQueue = f.CleanupQueue()
	} else {
		sweeper.Cleanup = f.cleanupRunner(clients)
	}
	return d, sweeper
}

// marks are the clean-up marks in the state table.
func (f *Functions) marks() *reconcile.TableMarks {
	return &reconcile.TableMarks{DB: awsenv.StateTable(f.rt.AWS), Table: f.rt.Env.Table, Now: time.Now}
}

// cleanupRunner runs clean-ups through clients (each place's deploy role).
func (f *Functions) cleanupRunner(clients *awsenv.Clients) *reconcile.CleanupRunner {
	return &reconcile.CleanupRunner{
		ECS:     func(region, role string) reconcile.CleanupECS { return clients.ECS(region, role) },
		History: history.NewStore(awsenv.StateTable(f.rt.AWS), f.rt.Env.Table),
		SSM:     func(region, role string) reconcile.ParameterReader { return clients.SSM(region, role) },
		Marks:   f.marks(),
		Places:  lock.New(awsenv.StateTable(f.rt.AWS), f.rt.Env.Table),
		Log:     f.rt.Log,
		// The rules re-derive what an item may clean (FamilyCleanup), so a
		// stale or partial item cannot widen a clean-up.
		Rules: f.rt.Rules, Central: f.rt.Central,
	}
}

// CleanupQueue sends cleanup items to each place's work queue; nil without
// AUTODEPLOY_WORK_QUEUE_URL.
func (f *Functions) CleanupQueue() *reconcile.CleanupQueue {
	if f.rt.Env.WorkQueueURL == "" {
		return nil
	}
	return &reconcile.CleanupQueue{SQS: sqs.NewFromConfig(f.rt.AWS), BaseURL: f.rt.Env.WorkQueueURL, Central: f.rt.Central}
}

// Worker is the worker function's handler. It requires the work queue: it
// returns an item that failed transiently to the queue it came from with a
// short visibility timeout (worker.Handler).
func (f *Functions) Worker() (*worker.Handler, error) {
	if f.rt.Env.WorkQueueURL == "" {
		return nil, fmt.Errorf("AUTODEPLOY_WORK_QUEUE_URL is not set: the worker needs the work queue's URL")
	}
	// Its per-target clients give up a throttled call sooner
	// (awsenv.ForWorker): the queue retries the item, with a backoff, and
	// the invocation stays inside its timeout. The state table keeps its
	// retries: a lease renewal that gave up would lose the lock.
	clients := awsenv.NewClients(awsenv.ForWorker(f.rt.AWS))
	return &worker.Handler{
		Deployer: f.deployer(worker.LockWait, clients),
		SQS:      sqs.NewFromConfig(f.rt.AWS),
		QueueURL: f.rt.Env.WorkQueueURL,
		Cleanup:  f.cleanupRunner(clients),
	}, nil
}
