// Package watch follows ECS deployment events for the deployments the
// deployer started and tells the truth about how each ended: completed,
// failed or rolled back. It records the outcome, logs and measures it,
// notifies, and promotes a digest once every target of its rule completed
// (with promote.bake, once it baked with no alarm). It also ends the gates
// (gates.go): scan results, alarms, the gates' timers and the sweep's
// schedule.
//
// An ECS-native rollout (BLUE_GREEN, LINEAR, CANARY) is judged by its
// service deployment, not by the event (native.go): while it is in flight
// (a bake, a pause) nothing final is recorded and a recheck is asked for;
// its lifecycle hooks' events tell people of a pause and report a hook's
// failure (hook.go).
package watch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/bluegreen"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/codedeployevent"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecsarn"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecsevent"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/gate"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/metrics"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/notify"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/promote"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rollout"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work"
)

// Store is the part of the history store the watcher uses.
type Store interface {
	ByDeployment(ctx context.Context, deploymentID string) (history.Record, bool, error)
	Recent(ctx context.Context, serviceKey string, limit int32) ([]history.Record, error)
	SetOutcome(ctx context.Context, r history.Record, outcome, reason string, at time.Time) (bool, error)
	MarkTargetCompleted(ctx context.Context, rule, digest, serviceKey string, targets int, at time.Time) (history.Progress, error)
	Supersede(ctx context.Context, serviceKey, eventID, rule, running string, since, at time.Time) ([]history.Record, error)
	notify.RolloutBook
	ClaimPromotion(ctx context.Context, rule, digest, owner string, now time.Time) (history.Claim, string, error)
	PromotionDone(ctx context.Context, rule, digest string) error
	ReleasePromotion(ctx context.Context, rule, digest, owner string) error
	// ECS-native rollouts: the service deployment found, and a paused
	// hook's notice, told once.
	NoteServiceDeployment(ctx context.Context, r history.Record, arn string) error
	ClaimHookNotice(ctx context.Context, hookID, owner string, now time.Time) (bool, error)
	HookNoticeSent(ctx context.Context, hookID, owner string, now time.Time) error
}

// Notifier tells people how a deployment ended; nil tells no one.
type Notifier interface {
	Notify(ctx context.Context, n notify.Notice) error
}

// Promoter tags a deployed digest and hands the new tag to the deployer;
// it also asks the deployer for a sweep.
type Promoter interface {
	Promote(ctx context.Context, rec history.Record, tag string) error
	RequestSweep(ctx context.Context, rec history.Record, why string) error
}

// Watcher handles ECS Deployment State Change and CodeDeploy Deployment
// State-change events.
type Watcher struct {
	Rules *rules.Config
	// Central is where the functions run: rules default targets to it.
	Central  rules.Place
	Store    Store
	Notifier Notifier // optional
	Promoter Promoter
	// CodeDeploy reads how a blue/green deployment ended (rolled back or
	// not) in a target's region, through its role.
	CodeDeploy func(region, role string) bluegreen.CodeDeploy
	// ECS reads an ECS-native rollout's service deployment in a target's
	// region, through the same role as CodeDeploy (roleOf). Nil: ECS-native
	// rollouts are judged by the event alone, as rolling ones, with a
	// warning.
	ECS func(region, role string) rollout.ServiceDeploymentReader
	// Rechecker is asked to judge an in-flight ECS-native rollout again
	// later (a bake ends without an event); nil: none.
	Rechecker Rechecker
	Log       *slog.Logger
	// Now is the clock promotion claims are timed by (nil: time.Now).
	Now func() time.Time
	// Cleanups, when set (a work queue), takes the cleanup a recorded
	// completion asks for (cleanup.go); nil: the next sweep cleans.
	Cleanups CleanupSender
	// Gates ends gates (gates.go): scan results, alarms, gate timers and
	// the sweep's schedule; and a rule with promote.bake bakes before it
	// promotes. Nil: gate events are ignored, and a bake is refused.
	Gates *gate.Gates
}

// Result is the function's answer for one event.
type Result struct {
	DeploymentID string `json:"deployment_id,omitempty"`
	Outcome      string `json:"outcome,omitempty"`
	Ignored      string `json:"ignored,omitempty"`
	Promoted     string `json:"promoted,omitempty"`
	// Stage is where an ECS-native rollout in flight stands (Outcome
	// in_progress).
	Stage string `json:"stage,omitempty"`
	// Baking is when the bake a completion started ends (promote.bake):
	// the promotion waits for it.
	Baking string `json:"baking,omitempty"`
	// Gates is what a gate event or timer did.
	Gates *GateResult `json:"gates,omitempty"`
}

// Handle is the Lambda handler: ECS deployment and hook events, CodeDeploy
// deployment events, and the recheck command a timer sends; and what ends
// gates (gates.go): scan and alarm events, the gate-due command and the
// sweep's schedule.
func (w *Watcher) Handle(ctx context.Context, raw json.RawMessage) (Result, error) {
	var head struct {
		Source     string `json:"source"`
		DetailType string `json:"detail-type"`
	}
	_ = json.Unmarshal(raw, &head) // a malformed event fails in its parser
	if res, ok, err := w.handleGate(ctx, raw, head.Source, head.DetailType); ok {
		return res, err
	}
	var e ending
	var err error
	switch {
	case work.IsCommand(raw):
		e, err = w.recheckEnding(ctx, raw)
	case head.Source == codedeployevent.Source:
		e, err = w.codeDeployEnding(ctx, raw)
	case head.DetailType == ecsevent.HookDetailType:
		var done *Result
		e, done, err = w.hookEnding(ctx, raw)
		if done != nil {
			return *done, err
		}
	default:
		e, err = w.ecsEnding(ctx, raw)
	}
	if err != nil {
		return Result{}, err
	}
	return w.conclude(ctx, e)
}

// ending is what one event says about a deployment of ours: its record and
// how it ended; an empty outcome means the event is not news (ignored says
// why).
type ending struct {
	rec          history.Record
	outcome      string
	reason       string
	ignored      string
	at           time.Time
	eventID      string
	deploymentID string // as the event names it
	log          []any  // what the ignored line says of the event
	// inFlight is an ECS-native rollout's service deployment still in
	// flight: nothing final to record (outcome is "").
	inFlight *rollout.Outcome
}

func (w *Watcher) ecsEnding(ctx context.Context, raw json.RawMessage) (ending, error) {
	ev, err := ecsevent.Parse(raw)
	if err != nil {
		w.Log.ErrorContext(ctx, "invalid event", "error", err.Error())
		return ending{}, err
	}
	log := []any{"event", ev.EventName, "service", ev.ServiceARN}
	if !w.targets(ev.Service) {
		// At scale the stack hears a whole cluster (a prefix on its service
		// ARNs): its other services are no news, and cost no lookup.
		return ending{ignored: "service not in the rules", at: ev.When(), eventID: ev.EventID, deploymentID: ev.DeploymentID, log: log}, nil
	}
	rec, outcome, why, err := w.classify(ctx, ev)
	e := ending{rec: rec, outcome: outcome, reason: ev.Reason, ignored: why, at: ev.When(), eventID: ev.EventID,
		deploymentID: ev.DeploymentID, log: log}
	if err != nil || outcome == "" || !isNative(rec) {
		return e, err // rolling (and older records): the event tells, no call
	}
	_, rollingBack := ev.RollingBackTo()
	return w.native(ctx, e, rollout.Event{Name: ev.EventName, RollingBack: rollingBack, Reason: ev.Reason}, "")
}

// conclude records an ending, reports it once and promotes after it.
func (w *Watcher) conclude(ctx context.Context, e ending) (Result, error) {
	if e.inFlight != nil {
		return w.stillInFlight(ctx, e)
	}
	if e.outcome == "" {
		w.Log.DebugContext(ctx, "ignored", append([]any{"reason", e.ignored, "deployment_id", e.deploymentID}, e.log...)...)
		return Result{DeploymentID: e.deploymentID, Ignored: e.ignored}, nil
	}
	rec, outcome, at := e.rec, e.outcome, e.at
	recorded, err := w.Store.SetOutcome(ctx, rec, outcome, e.reason, at)
	if err != nil {
		return Result{}, err
	}
	res := Result{DeploymentID: rec.DeploymentID, Outcome: outcome}
	if recorded {
		w.report(ctx, rec, outcome, e.reason, at)
		w.republishAfterRollback(ctx, rec, outcome)
	} else {
		w.Log.DebugContext(ctx, "ignored", "reason", "outcome already recorded", "deployment_id", rec.DeploymentID, "outcome", outcome)
		res.Ignored = "outcome already recorded"
	}
	// The rollout counts the recorded outcome, on this delivery or on a
	// retry of it (an end counts once), so an end whose invocation died
	// before it was counted, or before the rule's notice went, finishes it.
	if err := w.endOfTarget(ctx, rec, outcome, e.reason, at, recorded); err != nil {
		return res, err
	}
	if outcome == history.Completed && (recorded || rec.DeploymentOutcome == history.Completed) {
		if err := w.supersede(ctx, rec, at); err != nil {
			return res, err
		}
	}
	if outcome == history.Completed && recorded {
		w.cleanUpAfter(ctx, rec)
	}
	// Promotion follows the recorded outcome, not this delivery: a retry or
	// redrive of the event that recorded the completion finishes a
	// promotion that did not finish (the claim makes it happen once).
	if outcome == history.Completed && (recorded || rec.DeploymentOutcome == history.Completed) {
		res.Promoted, res.Baking, err = w.promote(ctx, rec, e.eventID, at)
	}
	return res, err
}

// classify finds the deploy an event is about and how it ended; an empty
// outcome means the event is not news for a deployment of ours.
func (w *Watcher) classify(ctx context.Context, ev ecsevent.Deployment) (history.Record, string, string, error) {
	if to, rollback := ev.RollingBackTo(); rollback {
		return w.rolledBack(ctx, ev, to)
	}
	var outcome string
	switch ev.EventName {
	case ecsevent.Completed:
		outcome = history.Completed
	case ecsevent.Failed:
		outcome = history.Failed
	default:
		return history.Record{}, "", "deployment still in progress", nil
	}
	rec, found, err := w.Store.ByDeployment(ctx, ev.DeploymentID)
	if err != nil {
		return history.Record{}, "", "", err
	}
	if !found {
		return history.Record{}, "", "deployment not started by autodeploy", nil
	}
	return rec, outcome, "", nil
}

// rolledBack finds the deployment a circuit-breaker rollback undoes: the
// service's latest autodeploy deployment started before the rollback (a
// deploy recorded after it is a newer push, not the victim) — unless that
// is the very deployment ECS rolls back to, in which case another
// deployment failed and ours is the one restored.
func (w *Watcher) rolledBack(ctx context.Context, ev ecsevent.Deployment, to string) (history.Record, string, string, error) {
	key := history.ServiceKey(ev.Service.Account, ev.Service.Region, ev.Service.Cluster, ev.Service.Name)
	recent, err := w.Store.Recent(ctx, key, 10)
	if err != nil {
		return history.Record{}, "", "", err
	}
	started := ev.When()
	// Failed deploys have no deployment; they are passed over.
	i := slices.IndexFunc(recent, func(r history.Record) bool {
		return r.DeploymentID != "" && !r.DeployedAt.After(started)
	})
	if i < 0 || recent[i].DeploymentID == ev.DeploymentID {
		return history.Record{}, "", "rollback of a deployment autodeploy did not start", nil
	}
	rec := recent[i]
	if rec.DeploymentID == to {
		return history.Record{}, "", "rollback to " + to + ", a deployment autodeploy started: the deployment that failed was not ours", nil
	}
	if rec.DeploymentOutcome != "" && rec.DeploymentOutcome != history.Failed {
		return history.Record{}, "", "rollback after the latest autodeploy deployment already ended " + rec.DeploymentOutcome, nil
	}
	return rec, history.RolledBack, "", nil
}

// report writes the deployment line, its metrics and the notification.
func (w *Watcher) report(ctx context.Context, rec history.Record, outcome, reason string, at time.Time) {
	pushToEnd := at.Sub(rec.PushedAt).Milliseconds()
	level := slog.LevelInfo
	if outcome != history.Completed {
		level = slog.LevelError
	}
	attrs := []any{"rule", rec.Rule, "repository", rec.Repository, "tag", rec.Tag, "digest", rec.Digest,
		"cluster", rec.Cluster, "service", rec.Service, "deployment_id", rec.DeploymentID,
		"task_definition", rec.ToTaskDefinition, "outcome", outcome, "reason", reason,
		"push_to_completion_ms", pushToEnd, "event_id", rec.EventID}
	if rec.Rollout != "" {
		attrs = append(attrs, "rollout", rec.Rollout)
	}
	if rec.ServiceDeploymentARN != "" {
		attrs = append(attrs, "service_deployment_arn", rec.ServiceDeploymentARN)
	}
	w.Log.Log(ctx, level, "deployment", attrs...)
	dims := map[string]string{"rule": rec.Rule, "service": rec.Cluster + "/" + rec.Service}
	ms := []metrics.Metric{{Name: deploymentMetric(outcome), Unit: "Count", Value: 1}}
	if outcome == history.Completed {
		ms = append(ms, metrics.Metric{Name: metrics.PushToRunning, Unit: "Milliseconds", Value: float64(pushToEnd)})
	}
	metrics.Emit(ctx, w.Log, at, dims, [][]string{{"rule"}}, ms...) // the dashboard graphs per rule
}

// endOfTarget counts a deployment's end in its rule's rollout, which tells
// people once every target ended (one notice per rule); a deployment no
// rollout counts (its rule's only target) is notified by itself, as it was
// recorded. A retry (recorded false) counts the outcome recorded first.
func (w *Watcher) endOfTarget(ctx context.Context, rec history.Record, outcome, reason string, at time.Time, recorded bool) error {
	if !recorded {
		if rec.DeploymentOutcome == "" {
			return nil // recorded by a concurrent delivery, which counts it
		}
		outcome, reason = rec.DeploymentOutcome, rec.DeploymentReason
	}
	end := history.RolloutEnd{ServiceKey: history.ServiceKey(rec.Account, rec.Region, rec.Cluster, rec.Service),
		Account: rec.Account, Region: rec.Region, Cluster: rec.Cluster, Service: rec.Service,
		Outcome: outcome, Reason: reason, DeploymentID: rec.DeploymentID, At: at}
	var sender notify.Sender
	if w.Notifier != nil {
		sender = w.Notifier
	}
	tracked, err := notify.EndTarget(ctx, w.Store, sender, w.Log, rec.Rule, rec.EventID, end, w.now())
	if err != nil {
		return fmt.Errorf("end of deployment %s in the rollout of rule %s: %w", rec.DeploymentID, rec.Rule, err)
	}
	// One incident, one notice: ECS reports a circuit breaker's rollback
	// after the failure it told already (the record moves from failed to
	// rolled_back); the failure's notice said what to do.
	alreadyTold := outcome == history.RolledBack && rec.DeploymentOutcome == history.Failed
	if !tracked && recorded && !alreadyTold {
		w.notify(ctx, Notice(rec, outcome, reason, at))
	}
	return nil
}

// supersede ends, as superseded, our older deployments still under way on
// the service of a deployment that completed (older: deployed before it; a
// late completion leaves a newer deploy alone): it runs another revision now,
// so they never end, and ECS reports no end of a deployment an
// UpdateService replaced. The deploy path ends them when it replaces them;
// this catches the rest (a deploy by an older version, or one whose ending
// was never retried). A retry of the event ends nothing twice.
func (w *Watcher) supersede(ctx context.Context, rec history.Record, at time.Time) error {
	key := history.ServiceKey(rec.Account, rec.Region, rec.Cluster, rec.Service)
	recs, err := w.Store.Supersede(ctx, key, rec.EventID, rec.Rule, rec.ToTaskDefinition, rec.DeployedAt, at)
	if err != nil {
		return fmt.Errorf("after deployment %s completed: %w", rec.DeploymentID, err)
	}
	for _, old := range recs {
		w.Log.InfoContext(ctx, "deployment", "rule", old.Rule, "repository", old.Repository, "tag", old.Tag, "digest", old.Digest,
			"cluster", old.Cluster, "service", old.Service, "deployment_id", old.DeploymentID, "task_definition", old.ToTaskDefinition,
			"outcome", history.Superseded, "reason", old.DeploymentReason, "event_id", old.EventID)
		end := history.RolloutEnd{ServiceKey: key, Account: old.Account, Region: old.Region, Cluster: old.Cluster, Service: old.Service,
			Outcome: history.Superseded, Reason: old.DeploymentReason, DeploymentID: old.DeploymentID, At: at}
		var sender notify.Sender
		if w.Notifier != nil {
			sender = w.Notifier
		}
		// Untracked: the completion's own notice says what runs now.
		if _, err := notify.EndTarget(ctx, w.Store, sender, w.Log, old.Rule, old.EventID, end, w.now()); err != nil {
			return fmt.Errorf("end of superseded deployment %s in the rollout of rule %s: %w", old.DeploymentID, old.Rule, err)
		}
	}
	return nil
}

// notify sends a notice when a notifier is set. A lost notice is logged and
// does not fail the invocation: its retry would report twice.
func (w *Watcher) notify(ctx context.Context, n notify.Notice) {
	if w.Notifier == nil {
		return
	}
	if err := w.Notifier.Notify(ctx, n); err != nil {
		w.Log.ErrorContext(ctx, "notification not sent", "deployment_id", n.DeploymentID, "error", err.Error())
	}
}

// deploymentMetric names per-outcome deployment counters so an alarm can
// watch one without a dimension per service.
func deploymentMetric(outcome string) string {
	switch outcome {
	case history.Completed:
		return metrics.DeploymentsCompleted
	case history.Failed:
		return metrics.DeploymentsFailed
	}
	return metrics.DeploymentsRolledBack
}

// Notice is what people are told about a finished deployment.
func Notice(rec history.Record, outcome, reason string, at time.Time) notify.Notice {
	return notify.Notice{
		Outcome: outcome, Account: rec.Account, Region: rec.Region, Cluster: rec.Cluster, Service: rec.Service,
		Rule: rec.Rule, Repository: rec.Repository, Tag: rec.Tag, Digest: rec.Digest,
		TaskDefinition: rec.ToTaskDefinition, DeploymentID: rec.DeploymentID, EventID: rec.EventID,
		Reason: reason, PushedAt: rec.PushedAt, EndedAt: at, ServiceARN: ecsarn.ServiceARN(rec.Account, rec.Region, rec.Cluster, rec.Service),
	}
}

// republishAfterRollback asks for a sweep when ECS rolled back a deploy of
// a rule that publishes: the parameter still names the image rolled back
// from, which an infrastructure deploy would bring back; the sweep writes
// what runs now instead of waiting for the schedule.
func (w *Watcher) republishAfterRollback(ctx context.Context, rec history.Record, outcome string) {
	rule := w.ruleNamed(rec.Rule)
	if outcome != history.RolledBack || rule == nil || rule.Publish == nil || w.Promoter == nil {
		return
	}
	err := w.Promoter.RequestSweep(ctx, rec, "after-rollback-"+strings.ReplaceAll(rec.DeploymentID, "/", "-"))
	switch {
	case errors.Is(err, promote.ErrNoDeployer):
		w.Log.WarnContext(ctx, "sweep not requested", "deployment_id", rec.DeploymentID, "reason", err.Error())
		return
	case err != nil:
		w.Log.ErrorContext(ctx, "sweep not requested", "deployment_id", rec.DeploymentID, "error", err.Error())
		return
	}
	w.Log.InfoContext(ctx, "sweep requested", "reason", "rolled back a deploy of a rule that publishes", "deployment_id", rec.DeploymentID)
}

// promote tags the digest once every target of the rule completed it, or
// with promote.bake starts its bake and says until when (bakingUntil).
// owner is the event asking, so a retry of it takes its own claim again.
func (w *Watcher) promote(ctx context.Context, rec history.Record, owner string, at time.Time) (promoted, bakingUntil string, err error) {
	rule := w.ruleNamed(rec.Rule)
	if rule == nil || rule.Promote == nil {
		return "", "", nil
	}
	progress, err := w.Store.MarkTargetCompleted(ctx, rule.Name, rec.Digest,
		history.ServiceKey(rec.Account, rec.Region, rec.Cluster, rec.Service), len(rule.Targets), at)
	if err != nil {
		return "", "", err
	}
	tag := rules.RenderPromoteTag(rule.Promote.Tag, rec.Tag)
	if ok, _ := rule.Matches(tag); ok {
		// The rule would deploy its own promotion, and promote that again.
		w.Log.WarnContext(ctx, "promote", "outcome", "refused", "rule", rule.Name, "digest", rec.Digest, "tag", tag,
			"reason", "the promoted tag matches the rule itself, which would promote it again without end")
		return "", "", nil
	}
	if progress.Done == nil {
		w.Log.InfoContext(ctx, "promote", "outcome", "waiting", "rule", rule.Name, "digest", rec.Digest, "tag", tag,
			"completed", progress.Completed, "targets", len(rule.Targets), "waiting_count", len(rule.Targets)-progress.Completed)
		return "", "", nil
	}
	// The count reached the rule's targets: confirm each by name (a target
	// removed from the rules may have counted).
	var waiting []string
	for _, t := range rule.Targets {
		at := t.Where(w.Central)
		key := history.ServiceKey(at.Account, at.Region, t.Cluster, t.Service)
		if !slices.Contains(progress.Done, key) {
			waiting = append(waiting, t.Cluster+"/"+t.Service)
		}
	}
	if len(waiting) > 0 {
		w.Log.InfoContext(ctx, "promote", "outcome", "waiting", "rule", rule.Name, "digest", rec.Digest, "tag", tag,
			"completed", progress.Completed, "targets", len(rule.Targets), "waiting_count", len(waiting),
			"waiting_for", waiting[:min(len(waiting), maxLogged)])
		return "", "", nil
	}
	if rule.Promote.Bake > 0 {
		// The bake's end promotes (PromoteBaked), unless an alarm stops it.
		until, err := w.startBake(ctx, rule, rec, tag, at)
		return "", until, err
	}
	promoted, err = w.promoteNow(ctx, rule, rec, tag, owner)
	return promoted, "", err
}

// promoteNow promotes rec's digest to tag under the rule's promotion claim,
// owned by owner (a retry of it takes its own claim again): at once when
// every target completed, or at the end of its bake. A promotion done, or
// under way by another owner, is not done twice.
func (w *Watcher) promoteNow(ctx context.Context, rule *rules.Rule, rec history.Record, tag, owner string) (string, error) {
	claim, other, err := w.Store.ClaimPromotion(ctx, rule.Name, rec.Digest, owner, w.now())
	if err != nil {
		return "", err
	}
	switch claim {
	case history.AlreadyPromoted:
		w.Log.DebugContext(ctx, "promote", "outcome", "already_promoted", "rule", rule.Name, "digest", rec.Digest, "tag", tag)
		return "", nil
	case history.ClaimedByOther:
		// That event's invocation promotes, or its retry does.
		w.Log.InfoContext(ctx, "promote", "outcome", "in_progress", "rule", rule.Name, "digest", rec.Digest, "tag", tag, "claimed_by", other)
		return "", nil
	}
	if len(tag) > rules.MaxTagLength {
		// No retry can shorten it: a permanent failure, said once (the
		// claim is marked done, so no later delivery says it again).
		reason := fmt.Sprintf("the promoted tag is %d characters, over the %d an image tag may have", len(tag), rules.MaxTagLength)
		w.Log.ErrorContext(ctx, "promote", "outcome", "failed", "rule", rule.Name, "digest", rec.Digest, "tag", tag, "reason", reason)
		w.notify(ctx, notify.Notice{Outcome: notify.NotPromoted, Rule: rule.Name, Repository: rec.Repository, Tag: rec.Tag,
			Digest: rec.Digest, DeploymentID: rec.DeploymentID, PromotedTag: tag,
			Reason: reason + "; it completed on every target of the rule"})
		return "", w.Store.PromotionDone(ctx, rule.Name, rec.Digest)
	}
	if err := w.Promoter.Promote(ctx, rec, tag); err != nil {
		if rerr := w.Store.ReleasePromotion(ctx, rule.Name, rec.Digest, owner); rerr != nil {
			w.Log.ErrorContext(ctx, "promotion claim not released", "rule", rule.Name, "digest", rec.Digest, "error", rerr.Error())
		}
		w.Log.ErrorContext(ctx, "promote", "outcome", "failed", "rule", rule.Name, "digest", rec.Digest, "tag", tag, "reason", err.Error()+" (will retry)")
		return "", fmt.Errorf("promote %s@%s to %s: %w", rec.Repository, rec.Digest, tag, err)
	}
	// Until this is written a retry promotes again, which is harmless:
	// tagging is idempotent and the deployer skips what already runs.
	if err := w.Store.PromotionDone(ctx, rule.Name, rec.Digest); err != nil {
		return "", err
	}
	w.Log.InfoContext(ctx, "promote", "outcome", "promoted", "rule", rule.Name, "repository", rec.Repository, "digest", rec.Digest, "tag", tag)
	return tag, nil
}

// maxLogged bounds the names one log line lists: the count says the rest.
const maxLogged = 5

func (w *Watcher) now() time.Time {
	if w.Now == nil {
		return time.Now()
	}
	return w.Now()
}

// targets reports whether a rule targets svc, its targets placed around
// the central account and region (a part still unknown matches any).
func (w *Watcher) targets(svc ecsarn.ARN) bool {
	for _, r := range w.Rules.Rules {
		for _, t := range r.Targets {
			at := t.Where(w.Central)
			if ecsarn.Name(t.Service) == svc.Name && ecsarn.Name(t.Cluster) == svc.Cluster &&
				(at.Account == "" || at.Account == svc.Account) && (at.Region == "" || at.Region == svc.Region) {
				return true
			}
		}
	}
	return false
}

func (w *Watcher) ruleNamed(name string) *rules.Rule {
	for _, r := range w.Rules.Rules {
		if r.Name == name {
			return r
		}
	}
	return nil
}
