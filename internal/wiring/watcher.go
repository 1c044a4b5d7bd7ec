package wiring

import (
	"time"

	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/bluegreen"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/notify"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/promote"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rollout"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/timer"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/watch"
)

// Watcher is the watcher function's watcher. It reads ECS-native rollouts'
// service deployments and CodeDeploy deployments in each target's region
// through the target's role. With timers configured (timer.LoadConfig:
// AUTODEPLOY_SCHEDULE_GROUP and AUTODEPLOY_SCHEDULER_ROLE_ARN) it sets a
// recheck timer when a rollout in flight is due to end; without, it has no
// Rechecker and the next event (or sweep) reads the rollout again.
func (f *Functions) Watcher(timers timer.Config) *watch.Watcher {
	rt, clients := f.rt, f.clients
	w := &watch.Watcher{
		Rules:   rt.Rules,
		Central: rt.Central,
		Store:   history.NewStore(awsenv.StateTable(rt.AWS), rt.Env.Table),
		Promoter: &promote.Promoter{
			ECR:              func(region, role string) promote.ECR { return clients.ECR(region, role) },
			Central:          rt.Central,
			Lambda:           awslambda.NewFromConfig(rt.AWS),
			DeployerFunction: rt.Env.DeployerFunction,
			Now:              time.Now,
		},
		CodeDeploy: func(region, role string) bluegreen.CodeDeploy { return clients.CodeDeploy(region, role) },
		ECS:        func(region, role string) rollout.ServiceDeploymentReader { return clients.ECS(region, role) },
		Log:        rt.Log,
	}
	if timers.Enabled() {
		// The schedules live in the central account and region, beside
		// the watcher they invoke (the invocation's own ARN).
		w.Rechecker = &timer.Rechecker{Timers: &timer.Timers{Scheduler: scheduler.NewFromConfig(rt.AWS), Config: timers, Now: time.Now}}
	}
	// After a completion, a cleanup item for the worker (a rule's
	// cleanup:); without the work queue the next sweep cleans.
	if q := f.cleanupQueue(); q != nil {
		w.Cleanups = q
	}
	if rt.Env.NotifyTopic != "" {
		w.Notifier = notify.NewTopic(sns.NewFromConfig(rt.AWS), rt.Env.NotifyTopic)
	}
	return w
}
