package watch

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/gate"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/gateevent"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work"
)

// GateResult is what a gate event or timer did.
type GateResult struct {
	// Judged are the rules a scan result was judged for.
	Judged []string `json:"judged,omitempty"`
	// Stopped counts the bakes an alarm stopped.
	Stopped int `json:"stopped,omitempty"`
	// Ended counts the gates a sweep's schedule found due and ended.
	Ended int `json:"ended,omitempty"`
	// Gate is the gate a timer ended: "<gate>#<rule>#<digest>".
	Gate string `json:"gate,omitempty"`
}

// sweepMargin is how far past the next sweep the schedule's pass sets
// timers: a gate due just after the next sweep's start is not left to the
// sweep after it.
const sweepMargin = time.Minute

// handleGate handles what ends gates: the gate-due command (a gate's
// timer), ECR's and Inspector's scan results, CloudWatch alarms' state
// changes and the stack's schedule (which sweeps the deployer and, when
// rules have gates, ends the gates whose timers were lost). ok is false
// for anything else, which Handle takes as before.
func (w *Watcher) handleGate(ctx context.Context, raw json.RawMessage, source, detailType string) (res Result, ok bool, err error) {
	kind := gateevent.KindOf(source, detailType)
	due := false
	if work.IsCommand(raw) {
		var env work.Envelope
		due = json.Unmarshal(raw, &env) == nil && env.Kind == work.KindGateDue
	}
	if kind == gateevent.None && !due {
		return Result{}, false, nil
	}
	if w.Gates == nil {
		w.Log.WarnContext(ctx, "ignored", "reason", "gates are not wired in this watcher", "source", source, "detail_type", detailType)
		return Result{Ignored: "gates are not wired"}, true, nil
	}
	switch {
	case due:
		res, err = w.gateDue(ctx, raw)
	case kind == gateevent.Scan:
		res, err = w.scanResult(ctx, raw)
	case kind == gateevent.Alarm:
		res, err = w.alarmChanged(ctx, raw)
	default:
		res, err = w.gatesDue(ctx)
	}
	return res, true, err
}

// gateDue ends the gate a timer is for. A malformed command is logged and
// dropped, as a recheck's is (a retry reads the same bytes); a duplicate or
// a late one ends nothing twice (gate.End).
func (w *Watcher) gateDue(ctx context.Context, raw json.RawMessage) (Result, error) {
	c, err := work.DecodeCommand(raw)
	if err != nil {
		w.Log.ErrorContext(ctx, "invalid command", "error", err.Error())
		return Result{Ignored: "invalid command: " + err.Error()}, nil
	}
	due, ok := c.(work.GateDue)
	if !ok { // handleGate routes only gate-due here
		return Result{}, fmt.Errorf("a %q command is not %s", c.Kind(), work.KindGateDue)
	}
	if err := w.Gates.End(ctx, gate.Kind(due.Gate), due.Rule, due.Digest); err != nil {
		return Result{}, fmt.Errorf("end the %s gate of %s for rule %s: %w", due.Gate, due.Digest, due.Rule, err)
	}
	return Result{Gates: &GateResult{Gate: due.Gate + "#" + due.Rule + "#" + due.Digest}}, nil
}

// scanResult judges a scan's result for every rule with scan: on its
// repository.
func (w *Watcher) scanResult(ctx context.Context, raw json.RawMessage) (Result, error) {
	ev, err := gateevent.ParseScan(raw)
	if err != nil {
		w.Log.ErrorContext(ctx, "invalid event", "error", err.Error())
		return Result{}, err
	}
	if !ev.Complete && !ev.Failed {
		return Result{Ignored: "scan status carries no result"}, nil
	}
	judged, err := w.Gates.ScanResult(ctx, ev)
	if err != nil {
		return Result{}, fmt.Errorf("scan result of %s@%s in %s: %w", ev.Repository, ev.Digest, ev.Registry, err)
	}
	if len(judged) == 0 {
		return Result{Ignored: "no rule with scan: on this repository"}, nil
	}
	return Result{Gates: &GateResult{Judged: judged}}, nil
}

// alarmChanged stops the bakes that watch an alarm entering ALARM.
func (w *Watcher) alarmChanged(ctx context.Context, raw json.RawMessage) (Result, error) {
	ch, err := gateevent.ParseAlarm(raw)
	if err != nil {
		w.Log.ErrorContext(ctx, "invalid event", "error", err.Error())
		return Result{}, err
	}
	stopped, err := w.Gates.AlarmChanged(ctx, ch.Where, ch.Name, ch.State, ch.At)
	if err != nil {
		return Result{}, fmt.Errorf("alarm %s in %s entered %s: %w", ch.Name, ch.Where, ch.State, err)
	}
	if stopped == 0 {
		return Result{Ignored: "no bake stopped by this change"}, nil
	}
	return Result{Gates: &GateResult{Stopped: stopped}}, nil
}

// gatesDue is the schedule's pass: it ends the gates due (their timers
// lost or late) and sets the timers of those due before the next sweep.
func (w *Watcher) gatesDue(ctx context.Context) (Result, error) {
	ended, err := w.Gates.EndDue(ctx, w.Rules.Reconcile.Every+sweepMargin)
	if err != nil {
		return Result{Gates: &GateResult{Ended: ended}}, fmt.Errorf("end the gates due: %w", err)
	}
	return Result{Gates: &GateResult{Ended: ended}}, nil
}

// startBake starts the bake of a digest that completed on every target of
// rule (promote.bake), with its timer; a second delivery of the last
// completion finds the bake and sets the same timer. It returns when the
// bake ends, or "" when it ended already.
func (w *Watcher) startBake(ctx context.Context, rule *rules.Rule, rec history.Record, tag string, at time.Time) (string, error) {
	if w.Gates == nil {
		return "", fmt.Errorf("rule %s bakes before it promotes (promote.bake), but this watcher has no gates: %s not promoted", rule.Name, rec.Digest)
	}
	b, started, err := w.Gates.StartBake(ctx, rule, rec.Digest, rec.Tag, rec.PushedAt, at)
	if err != nil {
		return "", fmt.Errorf("start the bake of %s for rule %s: %w", rec.Digest, rule.Name, err)
	}
	if b.State != gate.Baking {
		w.Log.DebugContext(ctx, "promote", "outcome", "bake_ended", "rule", rule.Name, "digest", rec.Digest, "tag", tag, "bake", string(b.State))
		return "", nil
	}
	if started {
		w.Log.InfoContext(ctx, "promote", "outcome", "baking", "rule", rule.Name, "digest", rec.Digest, "tag", tag,
			"until", b.Due.Format(time.RFC3339))
	}
	return b.Due.Format(time.RFC3339), nil
}

// PromoteBaked promotes a digest whose bake ran its time with no alarm
// (the gates' Promote): the same claimed promotion as without a bake, on a
// record built from the rule and the bake. A second call (a duplicate
// timer, a sweep after it) finds the promotion done; a retry after a
// failed one promotes.
func (w *Watcher) PromoteBaked(ctx context.Context, r *rules.Rule, b gate.Bake) error {
	if r.Promote == nil {
		return fmt.Errorf("promote %s after its bake: rule %s no longer promotes", b.Digest, r.Name)
	}
	registry := r.RegistryOf(w.Central)
	rec := history.Record{Rule: r.Name, Repository: r.Repository, RegistryAccount: registry.Account, RegistryRegion: registry.Region,
		Digest: b.Digest, Tag: b.Tag, PushedAt: b.PushedAt}
	_, err := w.promoteNow(ctx, r, rec, rules.RenderPromoteTag(r.Promote.Tag, b.Tag), "bake/"+r.Name+"/"+b.Digest)
	return err
}
