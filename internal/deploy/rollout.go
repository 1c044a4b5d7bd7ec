package deploy

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecrevent"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/notify"
)

// Rollouts keeps the rollouts of pushes that reach several targets of a
// rule, so that people hear of each once, when it ended on every target
// (history.Store). The intake opens one per rule of two or more targets as
// it dispatches; the deploy path ends the targets it skipped or failed for
// good, the watcher the deployments.
type Rollouts interface {
	OpenRollout(ctx context.Context, r history.Rollout, now time.Time) error
	notify.RolloutBook
}

// openRollouts opens the rollout of each rule that push reaches on two or
// more targets, before any of them is dispatched (a target may end before
// the dispatch returns). A rule with one target is no rollout: its target's
// own notice says it all, as it always did.
func (d *Deployer) openRollouts(ctx context.Context, push ecrevent.Push, jobs []Job) error {
	if d.Rollouts == nil {
		return nil
	}
	per := map[string]int{}
	var order []string
	for _, j := range jobs {
		if per[j.Rule.Name] == 0 {
			order = append(order, j.Rule.Name)
		}
		per[j.Rule.Name]++
	}
	for _, rule := range order {
		if per[rule] < 2 {
			continue
		}
		r := history.Rollout{Rule: rule, EventID: push.EventID, Repository: push.Repository, Tag: push.Tag,
			Digest: push.Digest, PushedAt: push.Time, Expected: per[rule]}
		if err := d.Rollouts.OpenRollout(ctx, r, d.now()); err != nil {
			return fmt.Errorf("event %s: %w", push.EventID, err)
		}
	}
	return nil
}

// endOfTarget counts a target the deploy path is done with in its rule's
// rollout: a permanent failure (not_deployed) or a skip. A deployment it
// started is the watcher's to end, and so is a skip of a revision this
// very event registered (a redelivery: its deployment is under way); a
// transient failure is retried. tracked is false when no rollout counts
// the target: the caller notifies it by itself.
func (d *Deployer) endOfTarget(ctx context.Context, push ecrevent.Push, res Result, ownRevision bool) (tracked bool) {
	var outcome string
	switch {
	case d.Rollouts == nil || res.Retryable:
		return false
	case res.Outcome == Failed:
		outcome = notify.NotDeployed
	case res.Outcome == Skipped && !ownRevision:
		outcome = notify.Skipped
	default:
		return false
	}
	end := history.RolloutEnd{ServiceKey: history.ServiceKey(res.Account, res.Region, res.Cluster, res.Service),
		Account: res.Account, Region: res.Region, Cluster: res.Cluster, Service: res.Service,
		Outcome: outcome, Reason: res.Reason, DeploymentID: res.DeploymentID, At: d.now()}
	var sender notify.Sender
	if d.Notifier != nil {
		sender = d.Notifier
	}
	tracked, err := notify.EndTarget(ctx, d.Rollouts, sender, d.Log, res.Rule, push.EventID, end, d.now())
	if err != nil {
		// The target's own line, metric and history say what happened; only
		// the rule's one notice waits for an end that is not counted.
		d.Log.ErrorContext(ctx, "rollout end not recorded", "rule", res.Rule, "cluster", res.Cluster, "service", res.Service,
			"event_id", push.EventID, "error", err.Error())
		return false // notified by itself: better than not at all
	}
	return tracked
}

// endOfTargets is endOfTarget for many results at once (a dispatch's
// failures), bounded by the deployer's concurrency; it returns the results
// no rollout counts.
func (d *Deployer) endOfTargets(ctx context.Context, push ecrevent.Push, rs []Result) []Result {
	tracked := make([]bool, len(rs))
	var g errgroup.Group
	g.SetLimit(max(d.Concurrency, 1))
	for i, r := range rs {
		g.Go(func() error {
			tracked[i] = d.endOfTarget(ctx, push, r, false)
			return nil
		})
	}
	_ = g.Wait()
	var untracked []Result
	for i, r := range rs {
		if !tracked[i] {
			untracked = append(untracked, r)
		}
	}
	return untracked
}
