package deploy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecrevent"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/notify"
)

// Rollouts keeps the rollouts of pushes that reach several targets of a
// rule, so that people hear of each once, when it ended on every target
// (history.Store). The intake opens one per rule of two or more targets as
// it dispatches a push; the deploy path ends the targets it skipped or
// failed for good, and the deployments its deploys replaced; the watcher
// ends the deployments.
type Rollouts interface {
	OpenRollout(ctx context.Context, r history.Rollout, targets []history.RolloutTarget, now time.Time) error
	Supersede(ctx context.Context, serviceKey, eventID, rule, running string, since, at time.Time) ([]history.Record, error)
	ClaimFirstFailure(ctx context.Context, rule, eventID, serviceKey string, now time.Time) (history.Rollout, bool, error)
	FirstFailureSent(ctx context.Context, rule, eventID, serviceKey string, now time.Time) error
	notify.RolloutBook
}

// SweepEventPrefix begins the event id of a sweep's deploy of a digest
// (reconcile.EventID), which is the same from one sweep of it to the next.
const SweepEventPrefix = "reconcile-"

// IsSweep reports whether eventID names a sweep's deploy, which opens no
// rollout: a sweep finds few targets behind, each reported by itself, and
// its event id comes back with every sweep of the digest, where a rollout,
// once ended, stays ended.
func IsSweep(eventID string) bool { return strings.HasPrefix(eventID, SweepEventPrefix) }

// openRollouts opens the rollout of each rule that push reaches on two or
// more targets, before any of them is dispatched (a target may end before
// the dispatch returns), with the targets it counts. A rule with one
// target is no rollout: its target's own notice says it all, as it always
// did; nor is a sweep (IsSweep).
func (d *Deployer) openRollouts(ctx context.Context, push ecrevent.Push, jobs []Job) error {
	if d.Rollouts == nil || IsSweep(push.EventID) {
		return nil
	}
	per := map[string][]history.RolloutTarget{}
	var order []string
	for _, j := range jobs {
		if _, ok := per[j.Rule.Name]; !ok {
			order = append(order, j.Rule.Name)
		}
		at := j.Target.Where(d.Central)
		per[j.Rule.Name] = append(per[j.Rule.Name], history.RolloutTarget{
			ServiceKey: history.ServiceKey(at.Account, at.Region, j.Target.Cluster, j.Target.Service),
			Account:    at.Account, Region: at.Region, Cluster: j.Target.Cluster, Service: j.Target.Service})
	}
	for _, rule := range order {
		if len(per[rule]) < 2 {
			continue
		}
		r := history.Rollout{Rule: rule, EventID: push.EventID, Repository: push.Repository, Tag: push.Tag,
			Digest: push.Digest, PushedAt: push.Time}
		if err := d.Rollouts.OpenRollout(ctx, r, per[rule], d.now()); err != nil {
			return fmt.Errorf("event %s: %w", push.EventID, err)
		}
	}
	return nil
}

// rolloutEnds is the deploy path's part in rollouts, for one target's
// result: it ends, as superseded, the deployments of other pushes that this
// deploy replaced (ECS reports no end of them), and counts the target in
// its rule's rollout when the deploy path is done with it. It returns
// whether a rollout counts the target (else the caller notifies it by
// itself; not when the end is to be retried, as the retry does either);
// when an end cannot be recorded it makes the result Retryable,
// so the target is tried again (a work item returns to its queue, a push
// fails its invocation) and the retry counts the end once and claims the
// rule's notice — else the notice would be lost for good.
func (d *Deployer) rolloutEnds(ctx context.Context, push ecrevent.Push, res *Result, state history.ServiceState, ownRevision bool) (tracked bool) {
	if d.Rollouts == nil {
		return false
	}
	// A deploy reads them only when the state read with the lock says one
	// may be under way: a deploy after a deployment that ended costs no call
	// for it. A retry of its own deploy (ownRevision) always does: the first
	// try may have superseded some (taking them off under_way) and died
	// before counting their ends.
	if res.Outcome == Deployed && state.OthersUnderWay(res.DeploymentID) || ownRevision && res.Outcome == Skipped {
		running := res.To
		if res.Outcome != Deployed {
			running = res.From
		}
		if err := d.supersede(ctx, push, *res, running); err != nil {
			d.endNotRecorded(ctx, push, res, err)
		}
	}
	tracked, err := d.endOfTarget(ctx, push, *res, ownRevision)
	if err != nil {
		d.endNotRecorded(ctx, push, res, err)
		return true // its retry counts it, or reports it by itself
	}
	return tracked
}

// endNotRecorded logs an end the rollout did not record and makes the
// result Retryable; a notice claimed by a concurrent delivery is no error.
func (d *Deployer) endNotRecorded(ctx context.Context, push ecrevent.Push, res *Result, err error) {
	if errors.Is(err, history.ErrNoticePending) {
		d.Log.InfoContext(ctx, "rollout", "outcome", "notice_pending", "rule", res.Rule, "cluster", res.Cluster,
			"service", res.Service, "event_id", push.EventID, "reason", err.Error())
	} else {
		d.Log.ErrorContext(ctx, "rollout end not recorded", "rule", res.Rule, "cluster", res.Cluster, "service", res.Service,
			"event_id", push.EventID, "error", err.Error())
	}
	if !res.Retryable {
		res.Retryable = true
		res.Reason = strings.TrimSpace(res.Reason + " (rollout end not recorded, will retry to record it)")
	}
}

// supersede ends the deployments of other pushes (or rules) still under
// way on res's service, now running revision running, in their rollouts.
func (d *Deployer) supersede(ctx context.Context, push ecrevent.Push, res Result, running string) error {
	key := history.ServiceKey(res.Account, res.Region, res.Cluster, res.Service)
	now := d.now()
	recs, err := d.Rollouts.Supersede(ctx, key, push.EventID, res.Rule, running, now, now)
	if err != nil {
		return err
	}
	var errs []error
	for _, rec := range recs {
		d.Log.InfoContext(ctx, "deployment", "rule", rec.Rule, "repository", rec.Repository, "tag", rec.Tag, "digest", rec.Digest,
			"cluster", rec.Cluster, "service", rec.Service, "deployment_id", rec.DeploymentID,
			"task_definition", rec.ToTaskDefinition, "outcome", history.Superseded, "reason", rec.DeploymentReason, "event_id", rec.EventID)
		end := history.RolloutEnd{ServiceKey: key, Account: rec.Account, Region: rec.Region, Cluster: rec.Cluster, Service: rec.Service,
			Outcome: history.Superseded, Reason: rec.DeploymentReason, DeploymentID: rec.DeploymentID, At: rec.FinishedAt}
		// Untracked (its rule's only target, a sweep's deploy): the newer
		// deploy's own lines and notice say what runs; nobody is told twice.
		if _, err := notify.EndTarget(ctx, d.Rollouts, d.sender(), d.Log, rec.Rule, rec.EventID, end, d.now()); err != nil {
			errs = append(errs, fmt.Errorf("end superseded deployment %s: %w", rec.DeploymentID, err))
		}
	}
	return errors.Join(errs...)
}

// sender is the deployer's notifier as a rollout's sender (nil: none),
// each notice on a context of its own (ownBudget): the rule's notice
// follows the rollout's end write, which may have spent ctx.
func (d *Deployer) sender() notify.Sender {
	if d.Notifier == nil {
		return nil
	}
	return ownBudget{d.Notifier}
}

// endOfTarget counts a target the deploy path is done with in its rule's
// rollout: a permanent failure (not_deployed) or a skip. A deployment it
// started is the watcher's to end, and so is a skip of a revision this
// very event registered (a redelivery: its deployment is under way); a
// transient failure is retried. tracked is false when no rollout counts
// the target: the caller notifies it by itself. The rollout's first
// permanent failure is notified at once (firstFailure).
func (d *Deployer) endOfTarget(ctx context.Context, push ecrevent.Push, res Result, ownRevision bool) (tracked bool, err error) {
	var outcome string
	switch {
	case d.Rollouts == nil || res.Retryable:
		return false, nil
	case res.Outcome == Failed:
		outcome = notify.NotDeployed
	case res.Outcome == Skipped && !ownRevision:
		outcome = notify.Skipped
	default:
		return false, nil
	}
	return d.end(ctx, push, res, outcome, false)
}

// end counts res's target in its rule's rollout with outcome (parked: its
// work item parked in the dead-letter queue), and notifies the rollout's
// first permanent failure.
func (d *Deployer) end(ctx context.Context, push ecrevent.Push, res Result, outcome string, parked bool) (tracked bool, err error) {
	key := history.ServiceKey(res.Account, res.Region, res.Cluster, res.Service)
	end := history.RolloutEnd{ServiceKey: key, Account: res.Account, Region: res.Region, Cluster: res.Cluster, Service: res.Service,
		Outcome: outcome, Reason: res.Reason, DeploymentID: res.DeploymentID, At: d.now(), Parked: parked}
	tracked, err = notify.EndTarget(ctx, d.Rollouts, d.sender(), d.Log, res.Rule, push.EventID, end, d.now())
	if err != nil || !tracked || outcome != notify.NotDeployed {
		return tracked, err
	}
	return true, d.firstFailure(ctx, push, res, key)
}

// firstFailure tells people of a rollout's first permanent failure at once,
// once per rollout (history.Store.ClaimFirstFailure): the rule's notice
// waits for every target's end, which may never come (an ECS event lost),
// and a failure for good needs a person now. Later failures wait for the
// rule's notice, and none is told once every target ended (the rule's
// notice says it). A retry of the same end, before the notice was marked
// sent, sends it again; a notice that cannot be sent is logged, as every
// notice. Once sent, a lost mark is logged and no error: the target's
// failure is permanent, and a retry would only send the notice again.
func (d *Deployer) firstFailure(ctx context.Context, push ecrevent.Push, res Result, key string) error {
	if d.Notifier == nil {
		return nil
	}
	r, claimed, err := d.Rollouts.ClaimFirstFailure(ctx, res.Rule, push.EventID, key, d.now())
	if err != nil || !claimed {
		return err
	}
	reason := fmt.Sprintf("%s (first failure of %d targets of rule %s; the rule's notice follows when every target ended)",
		res.Reason, r.Expected, res.Rule)
	d.notify(ctx, push, res, notify.NotDeployed, reason)
	if err := d.Rollouts.FirstFailureSent(ctx, res.Rule, push.EventID, key, d.now()); err != nil {
		d.Log.WarnContext(ctx, "notice sent, its mark not written", "rule", res.Rule, "event_id", push.EventID,
			"cluster", res.Cluster, "service", res.Service, "error", err.Error())
	}
	return nil
}

// ParkedReason is the end a work item parked in the work dead-letter queue
// gets in its rollout: receives is how many times it was received, last
// why its last receive failed.
func ParkedReason(receives int, last string) string {
	last = strings.TrimSuffix(last, " (will retry)")
	if l, ok := strings.CutSuffix(last, "; will retry)"); ok {
		last = l + ")"
	}
	return fmt.Sprintf("parked in the work dead-letter queue after %d receives (last: %s); `autodeploy redrive --queue work` replays it",
		receives, last)
}

// EndParked ends, as not deployed, a target whose work item failed
// transiently on its last receive (its queue's redrive policy parks it in
// the dead-letter queue next): its rule's rollout would otherwise never
// end, and nobody would be told of its other targets. res is the item's
// last (Retryable) result. A redrive that then deploys the target is
// reported by itself (history.RolloutEnd.Parked). A target no rollout
// counts, or whose end cannot be recorded (logged: the item is parked
// whatever happens), is notified by itself. ctx bounds the end's writes;
// each notice has a budget of its own (NoticeTimeout), so an end write
// that runs ctx out does not lose the notice that replaces it.
func (d *Deployer) EndParked(ctx context.Context, push ecrevent.Push, res Result, receives int) {
	res.Outcome, res.Retryable = Failed, false
	res.Reason = ParkedReason(receives, res.Reason)
	tracked := false
	if d.Rollouts != nil && !IsSweep(push.EventID) {
		var err error
		if tracked, err = d.end(ctx, push, res, notify.NotDeployed, true); err != nil {
			d.Log.ErrorContext(ctx, "rollout end not recorded", "rule", res.Rule, "cluster", res.Cluster, "service", res.Service,
				"event_id", push.EventID, "error", err.Error())
			tracked = false
		}
	}
	d.Log.ErrorContext(ctx, "work item parked", "rule", res.Rule, "cluster", res.Cluster, "service", res.Service,
		"event_id", push.EventID, "digest", push.Digest, "receive_count", receives, "tracked", tracked, "reason", res.Reason)
	if !tracked {
		d.notify(ctx, push, res, notify.NotDeployed, res.Reason)
	}
}

// endOfTargets is endOfTarget for many results at once (a dispatch's
// failures), bounded by the deployer's concurrency; it returns the results
// no rollout counts, and an error when some end was not recorded: the push
// then fails its invocation, and Lambda's retry ends them (the items
// already sent go again, which is harmless). An end not recorded is not
// returned as untracked: its retry counts it, or finds it untracked.
func (d *Deployer) endOfTargets(ctx context.Context, push ecrevent.Push, rs []Result) ([]Result, error) {
	tracked := make([]bool, len(rs))
	errs := make([]error, len(rs))
	var g errgroup.Group
	g.SetLimit(max(d.Concurrency, 1))
	for i, r := range rs {
		g.Go(func() error {
			var err error
			if tracked[i], err = d.endOfTarget(ctx, push, r, false); err != nil {
				d.Log.ErrorContext(ctx, "rollout end not recorded", "rule", r.Rule, "cluster", r.Cluster, "service", r.Service,
					"event_id", push.EventID, "error", err.Error())
				errs[i] = fmt.Errorf("%s/%s: %w", r.Cluster, r.Service, err)
				tracked[i] = true
			}
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
	return untracked, errors.Join(errs...)
}
