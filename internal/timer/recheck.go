package timer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work"
)

// PurposeRecheck names recheck timers: "recheck-<hash>-<minute>".
const PurposeRecheck = "recheck"

// NewRechecker is the watcher's Rechecker when timers are configured
// (c.Enabled), setting schedules in cfg's account and region — beside the
// watcher they invoke; nil without. The watcher's main builds it, so that
// only the watcher's binary links the Scheduler client.
func NewRechecker(cfg aws.Config, c Config) *Rechecker {
	if !c.Enabled() {
		return nil
	}
	return &Rechecker{Timers: &Timers{Scheduler: scheduler.NewFromConfig(cfg), Config: c, Now: time.Now}}
}

// Rechecker sets the watcher's recheck timers (watch's Rechecker): a
// schedule that hands the watcher work.Recheck for a deployment when its
// outcome may be known (an ECS-native rollout's bake ends), since ECS sends
// no event then.
type Rechecker struct {
	Timers *Timers
	// Watcher is the ARN of the function the schedule invokes. Empty: the
	// function this invocation runs in (lambdacontext's
	// InvokedFunctionArn), which is the watcher itself — the stack cannot
	// name a function's own ARN in its environment without a cycle.
	Watcher string
}

// Recheck sets the timer that rechecks rec's deployment at at (rounded up
// to the minute, and at least a minute ahead: FireTime). Asked twice for
// the same deployment and time, it sets one schedule.
func (r *Rechecker) Recheck(ctx context.Context, rec history.Record, at time.Time) error {
	_, err := r.Set(ctx, rec, at)
	return err
}

// Set is Recheck, saying which schedule it set (or found).
func (r *Rechecker) Set(ctx context.Context, rec history.Record, at time.Time) (Set, error) {
	if rec.DeploymentID == "" {
		return Set{}, fmt.Errorf("recheck %s/%s: the record names no deployment", rec.Cluster, rec.Service)
	}
	if r.Timers == nil {
		return Set{}, errors.New("recheck " + rec.DeploymentID + ": no timers")
	}
	target := invoked(ctx, r.Watcher)
	if target == "" {
		return Set{}, fmt.Errorf("recheck %s: no watcher ARN (not in a Lambda invocation, and none configured)", rec.DeploymentID)
	}
	s, err := r.Timers.Set(ctx, Timer{Purpose: PurposeRecheck, Key: rec.DeploymentID, Due: at, Target: target,
		Command: work.Recheck{DeploymentID: rec.DeploymentID}})
	if err != nil {
		return Set{}, fmt.Errorf("recheck %s of %s/%s: %w", rec.DeploymentID, rec.Cluster, rec.Service, err)
	}
	return s, nil
}
