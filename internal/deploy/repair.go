package deploy

import (
	"context"
	"fmt"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rollout"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecrevent"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecsarn"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/metrics"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/notify"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// Outcomes records how a deployment ended, as the watcher does
// (history.Store): a repair that finds its deployment already ended records
// the end the watcher could not (see repair).
type Outcomes interface {
	ByDeployment(ctx context.Context, deploymentID string) (history.Record, bool, error)
	SetOutcome(ctx context.Context, r history.Record, outcome, reason string, at time.Time) (bool, error)
	MarkTargetCompleted(ctx context.Context, rule, digest, serviceKey string, targets int, at time.Time) (history.Progress, error)
}

// repairedReason begins the reason of a record a retry wrote for a deploy
// whose own history write was lost.
const repairedReason = "recorded by a retry: the deploy's own history write was lost"

// repair is what a retry does for a deploy of this very event that runs
// but whose end may be unrecorded.
//
// A worker killed after UpdateService leaves its item invisible for the
// queue's visibility timeout (18 min in the stack). A rolling deployment
// often ends sooner, and the watcher, finding no record for it, drops its
// end ("not started by autodeploy"); ECS never says it again. So the retry
// that writes the record also records the end when DescribeServices
// already shows it (ended), as the watcher would have: the outcome on the
// record, a failed digest remembered on the service, the target's end in
// its rule's rollout (or its own notice), its completion counted for
// promotion.
type repair struct {
	// rec is the record to write; nil when a retry wrote it already and
	// only its end may still be missing (heal).
	rec *history.Record
	// deploymentID is the repaired deployment.
	deploymentID string
	// outcome and reason: how the deployment ended, "" while it runs (the
	// watcher then hears its end, the record being there).
	outcome, reason string
}

// endedDeployment is how the deployment of revision on svc ended, as
// DescribeServices tells it, "" while it runs or when that is not the whole
// truth: the deployment running revision COMPLETED or FAILED (its
// rolloutState), or — none runs it any more — completed when the service
// runs revision. Only for rolling services on the ECS controller: an
// ECS-native blue/green, linear or canary deployment ends after its bake,
// which the watcher reads from the service deployment, and a CodeDeploy one
// is CodeDeploy's to tell.
func endedDeployment(svc *types.Service, revision string) (outcome, reason string) {
	if svc == nil || rollout.KindOf(*svc).IsCodeDeployControlled() {
		return "", ""
	}
	if dc := svc.DeploymentConfiguration; dc != nil && dc.Strategy != "" && dc.Strategy != types.DeploymentStrategyRolling {
		return "", ""
	}
	for _, dep := range svc.Deployments {
		if aws.ToString(dep.TaskDefinition) != revision {
			continue
		}
		switch dep.RolloutState {
		case types.DeploymentRolloutStateCompleted:
			return history.Completed, aws.ToString(dep.RolloutStateReason)
		case types.DeploymentRolloutStateFailed:
			return history.Failed, aws.ToString(dep.RolloutStateReason)
		}
		return "", ""
	}
	if aws.ToString(svc.TaskDefinition) == revision {
		return history.Completed, "the service runs " + revision + "; its deployment ended before the deploy was recorded"
	}
	return "", ""
}

// endRepaired records the end of a repaired deployment (see repair), after
// its record was written. An error leaves the item to be received again:
// the retry heals what is missing (a record without an outcome is found by
// its deployment, the end counts once in its rollout).
func (d *Deployer) endRepaired(ctx context.Context, push ecrevent.Push, rule *rules.Rule, r repair) error {
	if r.outcome == "" || d.Outcomes == nil {
		return nil
	}
	var rec history.Record
	if r.rec != nil {
		rec = *r.rec
	} else {
		found, ok, err := d.Outcomes.ByDeployment(ctx, r.deploymentID)
		if err != nil {
			return fmt.Errorf("read the record of deployment %s: %w", r.deploymentID, err)
		}
		if !ok || found.EventID != push.EventID || !strings.HasPrefix(found.Reason, repairedReason) {
			return nil // not a record a retry of this event repaired: the watcher's to end
		}
		rec = found
	}
	at := d.now()
	recorded, err := d.Outcomes.SetOutcome(ctx, rec, r.outcome, r.reason, at)
	if err != nil {
		return err
	}
	outcome, reason := r.outcome, r.reason
	if !recorded {
		if rec.DeploymentOutcome == "" {
			return nil // recorded by a concurrent delivery (the watcher), which counts it
		}
		outcome, reason = rec.DeploymentOutcome, rec.DeploymentReason
	} else {
		d.reportRepaired(ctx, rec, outcome, reason, at)
	}
	end := history.RolloutEnd{ServiceKey: history.ServiceKey(rec.Account, rec.Region, rec.Cluster, rec.Service),
		Account: rec.Account, Region: rec.Region, Cluster: rec.Cluster, Service: rec.Service,
		Outcome: outcome, Reason: reason, DeploymentID: rec.DeploymentID, At: at}
	tracked := false
	if d.Rollouts != nil {
		if tracked, err = notify.EndTarget(ctx, d.Rollouts, d.sender(), d.Log, rec.Rule, rec.EventID, end, at); err != nil {
			return fmt.Errorf("end of deployment %s in the rollout of rule %s: %w", rec.DeploymentID, rec.Rule, err)
		}
	}
	if !tracked && recorded && d.Notifier != nil {
		n := notify.Notice{Outcome: outcome, Account: rec.Account, Region: rec.Region, Cluster: rec.Cluster, Service: rec.Service,
			Rule: rec.Rule, Repository: rec.Repository, Tag: rec.Tag, Digest: rec.Digest, TaskDefinition: rec.ToTaskDefinition,
			DeploymentID: rec.DeploymentID, EventID: rec.EventID, Reason: reason, PushedAt: rec.PushedAt, EndedAt: at,
			ServiceARN: ecsarn.ServiceARN(rec.Account, rec.Region, rec.Cluster, rec.Service)}
		if err := (ownBudget{d.Notifier}).Notify(ctx, n); err != nil {
			d.Log.ErrorContext(ctx, "notification not sent", "deployment_id", rec.DeploymentID, "error", err.Error())
		}
	}
	if outcome != history.Completed || rule.Promote == nil {
		return nil
	}
	// The watcher promotes once every target completed; this target's
	// completion counts as if it had heard it. When it is the rule's last,
	// the promotion waits for the next completion the watcher hears (see
	// docs/decisions.md): the worker may not tag images.
	progress, err := d.Outcomes.MarkTargetCompleted(ctx, rule.Name, rec.Digest, end.ServiceKey, len(rule.Targets), at)
	if err != nil {
		return err
	}
	if progress.Done != nil {
		d.Log.WarnContext(ctx, "promote", "outcome", "pending", "rule", rule.Name, "digest", rec.Digest,
			"completed", progress.Completed, "targets", len(rule.Targets),
			"reason", "the last target completed while its record was being repaired: the watcher promotes on its next completion of this digest, or promote by hand")
	}
	return nil
}

// reportRepaired writes the deployment line and metrics the watcher writes
// for an end it records.
func (d *Deployer) reportRepaired(ctx context.Context, rec history.Record, outcome, reason string, at time.Time) {
	level, metric := slog.LevelError, metrics.DeploymentsFailed
	if outcome == history.Completed {
		level, metric = slog.LevelInfo, metrics.DeploymentsCompleted
	}
	pushToEnd := at.Sub(rec.PushedAt).Milliseconds()
	d.Log.Log(ctx, level, "deployment",
		"rule", rec.Rule, "repository", rec.Repository, "tag", rec.Tag, "digest", rec.Digest,
		"cluster", rec.Cluster, "service", rec.Service, "deployment_id", rec.DeploymentID,
		"task_definition", rec.ToTaskDefinition, "outcome", outcome, "reason", reason,
		"push_to_completion_ms", pushToEnd, "event_id", rec.EventID, "recorded_by", "repair")
	ms := []metrics.Metric{{Name: metric, Unit: "Count", Value: 1}}
	if outcome == history.Completed {
		ms = append(ms, metrics.Metric{Name: metrics.PushToRunning, Unit: "Milliseconds", Value: float64(pushToEnd)})
	}
	metrics.Emit(ctx, d.Log, at, map[string]string{"rule": rec.Rule, "service": rec.Cluster + "/" + rec.Service}, [][]string{{"rule"}}, ms...)
}
