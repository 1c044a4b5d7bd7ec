package watch

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecsevent"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/notify"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rollout"
)

// hookLookback is how many of a service's latest records are read to find
// the deploy a hook event's service deployment belongs to.
const hookLookback = 10

// hookEnding reads an "ECS Hook State Change" event of a service of the
// rules' targets. HOOK_AWAITING_ACTION (a PAUSE hook) is told to people once
// per hook (done: its result); HOOK_FAILED and HOOK_TIMED_OUT are logged
// with their stage and the deployment's outcome read as for a deployment
// event, the hook's stage in a rollback's reason; HOOK_SUCCEEDED of a PAUSE
// hook (someone continued) reads it too, so the rollout is followed on at
// once. Anything else is no news.
func (w *Watcher) hookEnding(ctx context.Context, raw json.RawMessage) (ending, *Result, error) {
	h, err := ecsevent.ParseHook(raw)
	if err != nil {
		w.Log.ErrorContext(ctx, "invalid event", "error", err.Error())
		return ending{}, nil, err
	}
	log := []any{"event", h.EventName, "service", h.ServiceARN, "hook_id", h.HookID, "hook_type", h.HookType,
		"stage", h.LifecycleStage, "service_deployment_arn", h.ServiceDeploymentARN}
	e := ending{at: h.When(), eventID: h.EventID, deploymentID: h.ServiceDeploymentARN, log: log}
	if !w.targets(h.Service) {
		e.ignored = "service not in the rules"
		return e, nil, nil
	}
	switch {
	case h.AwaitsAction():
		res, err := w.pauseNotice(ctx, h)
		return e, &res, err
	case h.Ended():
		w.Log.WarnContext(ctx, "hook", append([]any{"cluster", h.Service.Cluster, "service_name", h.Service.Name}, log...)...)
	case h.EventName == ecsevent.HookSucceeded && h.HookType == "PAUSE":
		w.Log.InfoContext(ctx, "hook", append([]any{"cluster", h.Service.Cluster, "service_name", h.Service.Name}, log...)...)
	default:
		e.ignored = "hook " + strings.ToLower(strings.TrimPrefix(h.EventName, "HOOK_"))
		return e, nil, nil
	}
	rec, found, err := w.recordOfHook(ctx, h)
	if err != nil || !found {
		e.ignored = "hook of a service deployment autodeploy did not start"
		return e, nil, err
	}
	e.rec, e.deploymentID = rec, rec.DeploymentID
	e, err = w.native(ctx, e, rollout.Event{Name: h.EventName}, h.ServiceDeploymentARN)
	if err != nil {
		return ending{}, nil, err
	}
	if arn := e.rec.ServiceDeploymentARN; arn != "" && arn != h.ServiceDeploymentARN {
		// The record's own service deployment is another: its events
		// tell how it ends.
		e.outcome, e.inFlight, e.ignored = "", nil, "hook of a service deployment autodeploy did not start"
		return e, nil, nil
	}
	if h.Ended() && (e.outcome == history.RolledBack || e.outcome == history.Failed) && h.LifecycleStage != "" &&
		!strings.Contains(e.reason, h.LifecycleStage) {
		// The service deployment's hook details carry no stage of their
		// own; the event's is the hook's.
		what := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(h.EventName, "HOOK_"), "_", " "))
		e.reason = strings.TrimPrefix(e.reason+"; ", "; ") + fmt.Sprintf("%s hook %s %s at %s", h.HookType, h.HookID, what, h.LifecycleStage)
	}
	return e, nil, nil
}

// hookSkew is how much later than a hook's change a deploy's record may be
// stamped and still be the deploy the hook is about.
const hookSkew = 5 * time.Minute

// recordOfHook finds the deploy a hook event is about: the service's
// deploy record naming its service deployment, else its latest ECS-native
// deploy still in flight that names none and began before the hook changed
// (UpdateService named no service deployment; the read checks that it
// targets the record's revision). Only deploy records count (a deployment
// id): `autodeploy rollback` through ECS writes a row naming the service
// deployment it rolled back, whose "to" is the source revision; and a
// record that ended is no pause's (an infrastructure deploy's would be
// told as ours).
func (w *Watcher) recordOfHook(ctx context.Context, h ecsevent.Hook) (history.Record, bool, error) {
	recent, err := w.Store.Recent(ctx, history.ServiceKey(h.Service.Account, h.Service.Region, h.Service.Cluster, h.Service.Name), hookLookback)
	if err != nil {
		return history.Record{}, false, err
	}
	if i := slices.IndexFunc(recent, func(r history.Record) bool {
		return r.DeploymentID != "" && r.ServiceDeploymentARN == h.ServiceDeploymentARN
	}); i >= 0 {
		return recent[i], true, nil
	}
	i := slices.IndexFunc(recent, func(r history.Record) bool {
		// deployed_at is the worker's clock after UpdateService and its own
		// work; an early hook (RECONCILE_SERVICE, PRE_SCALE_UP) may change
		// before it: a few minutes' slack, as the finder allows.
		return r.DeploymentID != "" && isNative(r) && r.ServiceDeploymentARN == "" && r.DeploymentOutcome == "" &&
			!r.DeployedAt.After(h.When().Add(hookSkew))
	})
	if i < 0 {
		return history.Record{}, false, nil
	}
	return recent[i], true, nil
}

// pauseNotice tells people, once per hook, that a deployment waits at a
// PAUSE hook: the service, the stage, the hook id, when it times out, and
// the commands that continue it or roll it back. The claim (hook#<id>)
// keeps a duplicate event from telling twice; a notice that failed is sent
// by the event's retry (the claim is its own), one sent whose mark was
// lost is logged, not sent again.
func (w *Watcher) pauseNotice(ctx context.Context, h ecsevent.Hook) (Result, error) {
	res := Result{DeploymentID: h.ServiceDeploymentARN, Outcome: notify.Paused, Stage: h.LifecycleStage}
	w.Log.InfoContext(ctx, "hook", "event", h.EventName, "cluster", h.Service.Cluster, "service", h.Service.Name,
		"stage", h.LifecycleStage, "hook_id", h.HookID, "hook_type", h.HookType, "expires_at", h.ExpiresAt,
		"service_deployment_arn", h.ServiceDeploymentARN, "event_id", h.EventID)
	rec, found, err := w.recordOfHook(ctx, h)
	if err != nil {
		return Result{}, err
	}
	if found {
		res.DeploymentID = rec.DeploymentID
		if err := w.armPauseBackstop(ctx, rec, h); err != nil {
			return Result{}, err
		}
	}
	if w.Notifier == nil {
		return res, nil
	}
	now := w.now()
	claimed, err := w.Store.ClaimHookNotice(ctx, h.HookID, h.EventID, now)
	if err != nil {
		return Result{}, err
	}
	if !claimed {
		w.Log.DebugContext(ctx, "ignored", "reason", "hook notice already sent", "hook_id", h.HookID, "event_id", h.EventID)
		res.Ignored = "hook notice already sent"
		return res, nil
	}
	base := notify.Notice{Account: h.Service.Account, Region: h.Service.Region, Cluster: h.Service.Cluster, Service: h.Service.Name,
		EventID: h.EventID, ServiceARN: h.ServiceARN}
	if found {
		base = Notice(rec, notify.Paused, "", h.When())
	}
	n := notify.PausedNotice(base, notify.Pause{Stage: h.LifecycleStage, HookID: h.HookID, ExpiresAt: h.ExpiresAt,
		ServiceDeploymentARN: h.ServiceDeploymentARN})
	if err := w.Notifier.Notify(ctx, n); err != nil {
		return Result{}, fmt.Errorf("notice of hook %s paused at %s on %s/%s: %w", h.HookID, h.LifecycleStage, h.Service.Cluster, h.Service.Name, err)
	}
	if err := w.Store.HookNoticeSent(ctx, h.HookID, h.EventID, w.now()); err != nil {
		w.Log.ErrorContext(ctx, "hook notice sent, its mark not written", "hook_id", h.HookID, "error", err.Error())
	}
	return res, nil
}

// armPauseBackstop asks for a recheck of our deployment paused at a hook a
// minute after the hook times out (ECS then takes its timeout action), or
// recheckPaused on without an expiry: the hook's next event reads the
// rollout at once, but if that event is lost the timer still does. A
// retry or duplicate asks for the same minute (the timer's name), so once.
func (w *Watcher) armPauseBackstop(ctx context.Context, rec history.Record, h ecsevent.Hook) error {
	if w.Rechecker == nil {
		return nil
	}
	at := w.now().Add(recheckPaused)
	if !h.ExpiresAt.IsZero() {
		at = h.ExpiresAt.Add(time.Minute)
	}
	if err := w.Rechecker.Recheck(ctx, rec, at); err != nil {
		return fmt.Errorf("recheck of deployment %s paused at %s: %w", rec.DeploymentID, h.LifecycleStage, err)
	}
	return nil
}
