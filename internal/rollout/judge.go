package rollout

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
)

// Judge maps a service deployment to an outcome, in history's vocabulary:
//
//   - SUCCESSFUL → completed (ECS sets it after the traffic shift, the bake
//     and every hook);
//   - ROLLBACK_REQUESTED, ROLLBACK_IN_PROGRESS, ROLLBACK_SUCCESSFUL,
//     ROLLBACK_FAILED → rolled back: the revision no longer serves, or is
//     being taken out (ROLLBACK_FAILED says so in the reason);
//   - STOPPED → failed;
//   - PENDING, IN_PROGRESS, STOP_REQUESTED → in flight, with its Stage.
//
// The reason is ECS's own: statusReason, the rollback's reason, the alarms
// that triggered, the circuit breaker's failed-task count, and hooks that
// failed or timed out (see Why).
func Judge(d types.ServiceDeployment, now time.Time) Outcome {
	o := Outcome{ServiceDeploymentARN: aws.ToString(d.ServiceDeploymentArn), Status: d.Status}
	switch d.Status {
	case types.ServiceDeploymentStatusSuccessful:
		o.Outcome = history.Completed
		o.Reason = aws.ToString(d.StatusReason)
	case types.ServiceDeploymentStatusRollbackRequested, types.ServiceDeploymentStatusRollbackInProgress,
		types.ServiceDeploymentStatusRollbackSuccessful, types.ServiceDeploymentStatusRollbackFailed:
		o.Outcome, o.Reason = history.RolledBack, Why(d)
		if d.Status == types.ServiceDeploymentStatusRollbackFailed {
			o.Reason = join("ECS's rollback failed", o.Reason)
		}
	case types.ServiceDeploymentStatusStopped:
		o.Outcome, o.Reason = history.Failed, join("stopped", Why(d))
	default:
		o.Stage, o.RecheckAt = stage(d, now)
		o.Paused = pausedHook(d) != nil
		return o
	}
	for _, t := range []*time.Time{d.FinishedAt, d.StoppedAt, d.UpdatedAt} {
		if t != nil {
			o.At = *t
			break
		}
	}
	return o
}

// Why is what ECS says about why a service deployment is where it is:
// statusReason; the rollback's reason; the alarms that triggered (alarms
// status TRIGGERED, triggeredAlarmNames); the circuit breaker (status
// TRIGGERED, failureCount against threshold); and each hook that FAILED or
// TIMED_OUT, with its type, target and the deployment's lifecycleStage (a
// hook's detail carries no stage of its own: the stage is where the
// deployment stood).
func Why(d types.ServiceDeployment) string {
	var why []string
	add := func(s string) {
		if s != "" && !slices.Contains(why, s) {
			why = append(why, s)
		}
	}
	add(aws.ToString(d.StatusReason))
	if rb := d.Rollback; rb != nil {
		add(aws.ToString(rb.Reason))
	}
	if a := d.Alarms; a != nil && (a.Status == types.ServiceDeploymentRollbackMonitorsStatusTriggered || len(a.TriggeredAlarmNames) > 0) {
		add(fmt.Sprintf("alarm %s in ALARM", strings.Join(a.TriggeredAlarmNames, ", ")))
	}
	if cb := d.DeploymentCircuitBreaker; cb != nil && cb.Status == types.ServiceDeploymentRollbackMonitorsStatusTriggered {
		add(fmt.Sprintf("circuit breaker: %d failed task(s), threshold %d", cb.FailureCount, cb.Threshold))
	}
	for _, h := range d.LifecycleHookDetails {
		if h.Status != types.DeploymentLifecycleHookStatusFailed && h.Status != types.DeploymentLifecycleHookStatusTimedOut {
			continue
		}
		s := fmt.Sprintf("%s hook %s %s", h.TargetType, aws.ToString(h.HookId), strings.ToLower(strings.ReplaceAll(string(h.Status), "_", " ")))
		if t := aws.ToString(h.TargetArn); t != "" {
			s += " (" + t + ")"
		}
		if d.LifecycleStage != "" {
			s += " at " + string(d.LifecycleStage)
		}
		if h.Status == types.DeploymentLifecycleHookStatusTimedOut && h.TimeoutAction != "" {
			s += ", timeout action " + string(h.TimeoutAction)
		}
		add(s)
	}
	return strings.Join(why, "; ")
}

func join(a, b string) string {
	if b == "" {
		return a
	}
	return a + ": " + b
}

// Stage describes where an in-flight service deployment stands, for
// status, plan and notices: "CANARY 10% · bake 4 min left",
// "BLUE_GREEN 0% · paused at PRE_PRODUCTION_TRAFFIC_SHIFT · times out in
// 23 h 10 min (then ROLLBACK)", "LINEAR 40% · PRODUCTION_TRAFFIC_SHIFT".
//
// From: deploymentConfiguration.strategy; targetServiceRevision's
// requestedProductionTrafficWeight (ECS calls it a snapshot); status
// (PENDING, STOP_REQUESTED); lifecycleHookDetails (a PAUSE hook
// AWAITING_ACTION with its expiresAt and timeoutAction; a hook
// IN_PROGRESS with its target); lifecycleStage; and for bakes —
// BAKE_TIME with bakeTimeInMinutes, a canary step with
// canaryConfiguration's canaryBakeTimeInMinutes, a linear step with
// linearConfiguration's stepBakeTimeInMinutes — the time left counted from
// updatedAt. ECS reports no bake start; updatedAt is when the deployment
// last changed, which a stage change is, so "left" is an estimate that can
// only run long, never short.
func Stage(d types.ServiceDeployment, now time.Time) string {
	s, _ := stage(d, now)
	return s
}

func stage(d types.ServiceDeployment, now time.Time) (string, time.Time) {
	var cfg types.DeploymentConfiguration
	if d.DeploymentConfiguration != nil {
		cfg = *d.DeploymentConfiguration
	}
	head := string(cfg.Strategy)
	if head == "" {
		head = "ECS"
	}
	var weight *float64
	if t := d.TargetServiceRevision; t != nil {
		weight = t.RequestedProductionTrafficWeight
	}
	if weight != nil {
		head += fmt.Sprintf(" %s%%", percent(*weight))
	}
	parts := []string{head}
	var recheck time.Time
	switch {
	case d.Status == types.ServiceDeploymentStatusPending:
		parts = append(parts, "pending")
	case d.Status == types.ServiceDeploymentStatusStopRequested:
		parts = append(parts, "stop requested")
	case pausedHook(d) != nil:
		h := pausedHook(d)
		parts = append(parts, "paused at "+string(d.LifecycleStage))
		if h.ExpiresAt != nil {
			t := "times out in " + duration(h.ExpiresAt.Sub(now))
			if !h.ExpiresAt.After(now) {
				t = "timeout due"
			}
			if h.TimeoutAction != "" {
				t += " (then " + string(h.TimeoutAction) + ")"
			}
			parts = append(parts, t)
		}
	case runningHook(d) != nil:
		h := runningHook(d)
		s := string(h.TargetType) + " hook running at " + string(d.LifecycleStage)
		if t := aws.ToString(h.TargetArn); t != "" {
			s = t[strings.LastIndex(t, ":")+1:] + " hook running at " + string(d.LifecycleStage)
		}
		parts = append(parts, s)
	default:
		bake, label := bakeOf(d, cfg, weight)
		if bake > 0 && d.UpdatedAt != nil {
			recheck = d.UpdatedAt.Add(bake)
			if left := recheck.Sub(now); left > 0 {
				parts = append(parts, label+" "+minutes(left)+" left")
			} else {
				parts = append(parts, label+" ending")
			}
		} else if d.LifecycleStage != "" {
			parts = append(parts, string(d.LifecycleStage))
		} else {
			parts = append(parts, "in progress")
		}
	}
	return strings.Join(parts, " · "), recheck
}

// bakeOf is the bake the deployment is in, if any: the final bake
// (BAKE_TIME), a canary's bake at its canary percent, or a linear step's.
func bakeOf(d types.ServiceDeployment, cfg types.DeploymentConfiguration, weight *float64) (time.Duration, string) {
	mins := func(p *int32) time.Duration { return time.Duration(aws.ToInt32(p)) * time.Minute }
	switch {
	case d.LifecycleStage == types.ServiceDeploymentLifecycleStageBakeTime:
		return mins(cfg.BakeTimeInMinutes), "bake"
	case d.LifecycleStage != types.ServiceDeploymentLifecycleStageProductionTrafficShift || weight == nil || *weight <= 0 || *weight >= 100:
		return 0, ""
	case cfg.Strategy == types.DeploymentStrategyCanary && cfg.CanaryConfiguration != nil &&
		cfg.CanaryConfiguration.CanaryPercent != nil && *cfg.CanaryConfiguration.CanaryPercent == *weight:
		return mins(cfg.CanaryConfiguration.CanaryBakeTimeInMinutes), "bake"
	case cfg.Strategy == types.DeploymentStrategyLinear && cfg.LinearConfiguration != nil:
		return mins(cfg.LinearConfiguration.StepBakeTimeInMinutes), "step bake"
	}
	return 0, ""
}

// PausedHookID is the id of the PAUSE hook d waits at, "" for none.
func PausedHookID(d types.ServiceDeployment) string {
	if h := pausedHook(d); h != nil {
		return aws.ToString(h.HookId)
	}
	return ""
}

func pausedHook(d types.ServiceDeployment) *types.DeploymentLifecycleHookDetail {
	for i, h := range d.LifecycleHookDetails {
		if h.Status == types.DeploymentLifecycleHookStatusAwaitingAction {
			return &d.LifecycleHookDetails[i]
		}
	}
	return nil
}

func runningHook(d types.ServiceDeployment) *types.DeploymentLifecycleHookDetail {
	for i, h := range d.LifecycleHookDetails {
		if h.Status == types.DeploymentLifecycleHookStatusInProgress {
			return &d.LifecycleHookDetails[i]
		}
	}
	return nil
}

func percent(w float64) string {
	if w == math.Trunc(w) {
		return fmt.Sprintf("%.0f", w)
	}
	return fmt.Sprintf("%.1f", w)
}

// minutes rounds up: "4 min", "1 min".
func minutes(d time.Duration) string {
	return fmt.Sprintf("%d min", int(math.Ceil(d.Minutes())))
}

// duration is "23 h 10 min", "9 min".
func duration(d time.Duration) string {
	m := int(math.Ceil(d.Minutes()))
	if m < 60 {
		return fmt.Sprintf("%d min", m)
	}
	if m%60 == 0 {
		return fmt.Sprintf("%d h", m/60)
	}
	return fmt.Sprintf("%d h %d min", m/60, m%60)
}
