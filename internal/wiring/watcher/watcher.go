// Package watcher builds the watcher function's watcher from the wiring
// of the functions (wiring.Functions). It lives apart so that only the
// watcher's binary links what it alone calls (Lambda, to hand promotions to
// the deployer; Scheduler through internal/timer; CloudWatch, to read
// a bake's alarms).
package watcher

import (
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/alarms"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/bluegreen"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/gate"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/promote"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rollout"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/watch"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/wiring"
)

// New is the watcher function's watcher. It reads ECS-native rollouts'
// service deployments and CodeDeploy deployments in each target's region
// through the target's role. rechecker (internal/timer's, when timers are
// configured; nil: none) is asked for a recheck when a rollout in flight is
// due to end; without one, only the rollout's next event reads it again.
// The watcher's main builds it, so that the other functions' binaries do
// not link the Scheduler client; and so gateTimers (internal/timer's
// GateTimers; nil: none, the schedule's pass ends what is due).
func New(f *wiring.Functions, rechecker watch.Rechecker, gateTimers gate.Timers) *watch.Watcher {
	rt, clients := f.Runtime(), f.Clients()
	promoter := &promote.Promoter{
		ECR:              func(region, role string) promote.ECR { return clients.ECR(region, role) },
		Central:          rt.Central,
		Lambda:           awslambda.NewFromConfig(rt.AWS),
		DeployerFunction: rt.Env.DeployerFunction,
		Now:              time.Now,
	}
	w := &watch.Watcher{
		Rules:      rt.Rules,
		Central:    rt.Central,
		Store:      history.NewStore(awsenv.StateTable(rt.AWS), rt.Env.Table),
		Promoter:   promoter,
		CodeDeploy: func(region, role string) bluegreen.CodeDeploy { return clients.CodeDeploy(region, role) },
		ECS:        func(region, role string) rollout.ServiceDeploymentReader { return clients.ECS(region, role) },
		Log:        rt.Log,
	}
	w.Rechecker = rechecker
	if rechecker == nil && mayBeNative(rt.Rules) {
		// ECS sends no event when a bake ends: without timers such a
		// rollout is judged again only by another event of its service.
		rt.Log.Warn("no recheck timers (AUTODEPLOY_SCHEDULE_GROUP, AUTODEPLOY_SCHEDULER_ROLE_ARN unset): an ECS-native rollout still baking at its last event is not judged again until another event of its service")
	}
	// After a completion, a cleanup item for the worker (a rule's
	// cleanup:); without the work queue the next sweep cleans.
	if q := f.CleanupQueue(); q != nil {
		w.Cleanups = q
	}
	// The deployer's gates, and what ends them: alarms, timers, hand-offs,
	// the promotion after a bake.
	g := f.Gates(clients)
	g.Alarms, g.Timers, g.HandOff, g.Promote = newAlarmClients(rt.AWS).reader, gateTimers, promoter.HandOffPush, w.PromoteBaked
	if topic := f.Notices(); topic != nil {
		w.Notifier = topic
	}
	w.Gates = g
	return w
}

// alarmClients are the CloudWatch clients a bake's end reads its alarms
// with: one per region and role (a target account's watcher role), made on
// first use. They live here, not in awsenv's Clients, so that only the
// watcher's binary links the CloudWatch client.
type alarmClients struct {
	base    aws.Config
	mu      sync.Mutex
	clients map[[2]string]gate.AlarmReader
}

func newAlarmClients(base aws.Config) *alarmClients {
	return &alarmClients{base: base, clients: map[[2]string]gate.AlarmReader{}}
}

// reader is the client for region ("" the base region) through role (""
// the function's own credentials).
func (a *alarmClients) reader(region, role string) gate.AlarmReader {
	a.mu.Lock()
	defer a.mu.Unlock()
	key := [2]string{region, role}
	if c, ok := a.clients[key]; ok {
		return c
	}
	cfg := a.base.Copy()
	if region != "" {
		cfg.Region = region
	}
	if role != "" {
		cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(a.base), role,
			func(o *stscreds.AssumeRoleOptions) { o.RoleSessionName = "ecr-autodeploy" }))
	}
	c := alarms.Reader{CloudWatch: alarms.NewClient(cfg)}
	a.clients[key] = c
	return c
}

// mayBeNative reports whether a target may be ECS-native: every target
// without codedeploy: (the kind is the service's, read at deploy time).
func mayBeNative(cfg *rules.Config) bool {
	for _, r := range cfg.Rules {
		for _, t := range r.Targets {
			if t.CodeDeploy == nil {
				return true
			}
		}
	}
	return false
}
