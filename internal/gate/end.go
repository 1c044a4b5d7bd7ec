package gate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecrevent"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/metrics"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/notify"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// AlarmState is one alarm's state as CloudWatch says it.
type AlarmState struct {
	Name string
	// InAlarm: its state is ALARM, since Since.
	InAlarm bool
	Since   time.Time
}

// AlarmReader reads alarms' state at a bake's end (internal/alarms reads
// CloudWatch; the package stays free of its client, which only the
// watcher links). An alarm it does not answer for does not exist.
type AlarmReader interface {
	AlarmStates(ctx context.Context, names []string) ([]AlarmState, error)
}

// Timers sets a gate's timer: a one-time schedule that hands the watcher
// work.GateDue for the gate at due (internal/timer). Setting it twice sets
// one.
type Timers interface {
	SetGateTimer(ctx context.Context, gate, rule, digest string, due time.Time) error
}

// HandOff hands the deployer a push a gate let through for rule (a scan
// that came clean), as a push command for that rule alone; origin says
// why, for its log line.
type HandOff func(ctx context.Context, push ecrevent.Push, rule, origin string) error

// End ends one gate whose time is up (its timer fired, or a sweep found it
// due): an approval expires, a scan times out, a bake ends by its alarms'
// state now — promoted, or not. A gate ended before (a duplicate, a late
// timer) ends nothing twice; a bake promoted before is promoted again
// (Promote's claim makes that harmless), so a retry after a failed
// promotion promotes.
func (g *Gates) End(ctx context.Context, kind Kind, rule, digest string) error {
	now := g.now()
	r := g.rule(rule)
	switch kind {
	case KindApproval:
		a, expired, err := g.Store.ExpireApproval(ctx, rule, digest, now)
		if err != nil || !expired {
			return err
		}
		Log(ctx, g.log(), rule, digest, KindApproval, string(Expired), "no one approved it by "+a.Due.Format(time.RFC3339))
		g.notify(ctx, notify.GateNotice(notify.Notice{Rule: rule, Repository: a.Repository, Tag: a.Tag, Digest: digest},
			notify.ApprovalExpired, notify.Gate{Kind: string(KindApproval), Due: a.Due}))
		return nil
	case KindScan:
		sc, timedOut, err := g.Store.TimeOutScan(ctx, rule, digest, now)
		if err != nil || !timedOut {
			return err
		}
		if r == nil || r.Scan == nil {
			Log(ctx, g.log(), rule, digest, KindScan, string(TimedOut), "no result within the wait (the rule no longer has scan:)")
			return nil
		}
		g.scanEnded(ctx, r, sc)
		return nil
	case KindBake:
		return g.endBake(ctx, r, rule, digest, now)
	}
	return fmt.Errorf("end gate %s of %s for %s: no such gate", kind, digest, rule)
}

func (g *Gates) endBake(ctx context.Context, r *rules.Rule, rule, digest string, now time.Time) error {
	b, found, err := g.Store.GetBake(ctx, rule, digest)
	if err != nil || !found {
		return err
	}
	if b.State == Baking {
		if now.Before(b.Due) {
			return nil // an early timer: the bake's own fires later
		}
		var firing *Firing
		if r == nil || r.Promote == nil || r.Promote.Bake == 0 {
			firing = &Firing{Alarm: "(rule " + rule + " no longer bakes)", Since: now}
		} else if firing, err = g.firing(ctx, r, now); err != nil {
			return err
		}
		ended, applied, err := g.Store.EndBake(ctx, rule, digest, now, firing)
		if err != nil {
			return err
		}
		b = ended
		if applied && b.State == NotPromoted {
			g.bakeStopped(ctx, r, b)
			return nil
		}
	}
	if b.State != Promoted || r == nil || g.Promote == nil {
		return nil
	}
	Log(ctx, g.log(), rule, digest, KindBake, string(Promoted), fmt.Sprintf("ran %s with no alarm", b.Due.Sub(b.StartedAt).Round(time.Second)))
	if err := g.Promote(ctx, r, b); err != nil {
		return fmt.Errorf("promote %s for rule %s after its bake: %w", digest, rule, err)
	}
	return nil
}

// firing reads the rule's alarms once more at its bake's end: the first
// found in ALARM (or missing: an alarm no one can read proves nothing), or
// nil.
func (g *Gates) firing(ctx context.Context, r *rules.Rule, now time.Time) (*Firing, error) {
	byPlace := map[rules.Place][]rules.Alarm{}
	var places []rules.Place
	for _, a := range r.Promote.Alarms {
		p := a.Where(g.Central)
		if _, ok := byPlace[p]; !ok {
			places = append(places, p)
		}
		byPlace[p] = append(byPlace[p], a)
	}
	for _, p := range places {
		alarms := byPlace[p]
		names := make([]string, len(alarms))
		for i, a := range alarms {
			names[i] = a.Name
		}
		states, err := g.Alarms(p.Region, rules.WatcherRole(p, g.Central)).AlarmStates(ctx, names)
		if err != nil {
			return nil, fmt.Errorf("read alarms %v in %s at the end of rule %s's bake: %w", names, p, r.Name, err)
		}
		state := map[string]*Firing{}
		seen := map[string]bool{}
		for _, st := range states {
			seen[st.Name] = true
			if st.InAlarm {
				state[st.Name] = &Firing{Since: st.Since}
			}
		}
		for _, a := range alarms {
			if f := state[a.Name]; f != nil {
				f.Alarm = a.String()
				return f, nil
			}
			if !seen[a.Name] {
				return &Firing{Alarm: a.String() + " (not found)", Since: now}, nil
			}
		}
	}
	return nil, nil
}

// bakeStopped logs and notices a bake an alarm stopped.
func (g *Gates) bakeStopped(ctx context.Context, r *rules.Rule, b Bake) {
	reason := fmt.Sprintf("alarm %s in ALARM at %s during the bake", b.Alarm, b.AlarmAt.Format(time.RFC3339))
	Log(ctx, g.log(), b.Rule, b.Digest, KindBake, string(NotPromoted), reason)
	n := notify.Notice{Rule: b.Rule, Tag: b.Tag, Digest: b.Digest, Reason: reason}
	if r != nil {
		n.Repository = r.Repository
		if r.Promote != nil {
			n.PromotedTag = rules.RenderPromoteTag(r.Promote.Tag, b.Tag)
		}
	}
	ng := notify.Gate{Kind: string(KindBake), Alarm: b.Alarm, AlarmAt: b.AlarmAt}
	if r != nil {
		for _, t := range r.Targets {
			at := t.Where(g.Central)
			ng.Rollbacks = append(ng.Rollbacks, fmt.Sprintf("autodeploy rollback --cluster %s --service %s --account %s --region %s", t.Cluster, t.Service, at.Account, at.Region))
		}
	}
	if r != nil && r.Promote != nil {
		// The alarm as the rule names it, so the notice's command reads it
		// where it is (an alarm "not found" has no name to read).
		for _, a := range r.Promote.Alarms {
			if a.String() == b.Alarm {
				at := a.Where(g.Central)
				ng.AlarmName, ng.AlarmRegion = a.Name, at.Region
				if at.Account != g.Central.Account {
					ng.AlarmAccount = at.Account
				}
			}
		}
	}
	g.notify(ctx, notify.GateNotice(n, notify.NotPromoted, ng))
}

// StartBake starts the bake of a digest that completed on every target of
// r, and sets its timer; started is false for a bake that existed (the last
// completion delivered twice) — its timer is set again all the same, as
// the first delivery may have failed before setting it.
func (g *Gates) StartBake(ctx context.Context, r *rules.Rule, digest, tag string, pushedAt, at time.Time) (Bake, bool, error) {
	alarms := make([]string, len(r.Promote.Alarms))
	for i, a := range r.Promote.Alarms {
		alarms[i] = a.String()
	}
	// The bake is the time its alarms are watched: from now, not from a
	// completion handled late (a retry, a redrive), whose alarm events
	// before the bake existed found no bake to stop.
	if now := g.now(); now.After(at) {
		at = now
	}
	b, started, err := g.Store.StartBake(ctx, BakeRequest{Rule: r.Name, Digest: digest, Tag: tag, PushedAt: pushedAt, At: at,
		Bake: r.Promote.Bake, Alarms: alarms})
	if err != nil {
		return Bake{}, false, err
	}
	if started {
		Log(ctx, g.log(), r.Name, digest, KindBake, string(Baking), fmt.Sprintf("completed on every target; bakes %s until %s watching %v",
			rules.FormatDuration(r.Promote.Bake), b.Due.Format(time.RFC3339), alarms))
	}
	if b.State == Baking && g.Timers != nil {
		if err := g.Timers.SetGateTimer(ctx, string(KindBake), r.Name, digest, b.Due); err != nil {
			return b, started, fmt.Errorf("set the timer of rule %s's bake of %s: %w", r.Name, digest, err)
		}
	}
	return b, started, nil
}

// AlarmChanged takes an alarm's state change (CloudWatch Alarm State
// Change): entering ALARM at at stops every open bake that watches it.
func (g *Gates) AlarmChanged(ctx context.Context, where rules.Place, name string, state string, at time.Time) (stopped int, err error) {
	if state != "ALARM" {
		return 0, nil
	}
	bakes, err := g.Store.Open(ctx, KindBake, "")
	if err != nil {
		return 0, err
	}
	var errs []error
	for _, o := range bakes {
		r := g.rule(o.Rule)
		if r == nil || r.Promote == nil {
			continue
		}
		i := slices.IndexFunc(r.Promote.Alarms, func(a rules.Alarm) bool { return a.Name == name && a.Where(g.Central) == where })
		if i < 0 {
			continue
		}
		b, applied, err := g.Store.AlarmFired(ctx, o.Rule, o.Digest, r.Promote.Alarms[i].String(), at)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if applied {
			stopped++
			g.bakeStopped(ctx, r, b)
		}
	}
	return stopped, errors.Join(errs...)
}

// ScanEvent is a scan's result as ECR's or Inspector's event says it.
type ScanEvent struct {
	Registry   rules.Place
	Repository string
	Digest     string
	// Complete or Failed; neither: not a result (ignored).
	Complete, Failed bool
	Counts           map[string]int
	Reason           string // a failure's
	Source           string // SourceECR or SourceInspector
}

// ScanResult ends the scan gate of the digest for every rule with scan: on
// that repository: a clean result hands the deployer the push that waited
// for it; a blocked or failed one is noticed. It returns the rules it
// judged.
func (g *Gates) ScanResult(ctx context.Context, ev ScanEvent) (judged []string, err error) {
	if !ev.Complete && !ev.Failed {
		return nil, nil
	}
	var errs []error
	for _, r := range g.Rules.RulesFor(ev.Repository) {
		if r.Scan == nil || r.RegistryOf(g.Central) != ev.Registry {
			continue
		}
		judged = append(judged, r.Name)
		if ev.Source == SourceInspector && !ev.Failed && !inspectorCounts(r.Scan.Block) {
			// Inspector's event counts only CRITICAL, HIGH and MEDIUM: a
			// rule that blocks more is judged by the registry's findings,
			// which the deployer reads when the waiting push comes back.
			if err := g.handBackToRead(ctx, r, ev); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		var sc Scan
		var applied bool
		var err error
		if ev.Failed {
			sc, applied, err = g.Store.FailScan(ctx, r.Name, ev.Digest, r.Repository, ev.Reason, ev.Source, g.now())
		} else {
			sc, applied, err = g.Store.ScanCompleted(ctx, ScanResult{Rule: r.Name, Digest: ev.Digest, Repository: r.Repository,
				Block: r.Scan.Block, Counts: ev.Counts, Source: ev.Source, At: g.now()})
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		switch {
		case applied && sc.State != Clean:
			g.scanEnded(ctx, r, sc)
			continue
		case applied:
			Log(ctx, g.log(), r.Name, ev.Digest, KindScan, string(Clean), "no finding of "+fmt.Sprint(r.Scan.Block)+" ("+ev.Source+")")
		case sc.State != Clean || !sc.HandedOffAt.IsZero() || sc.Source == SourceDescribe:
			// A second delivery, another result first — or the deployer
			// read it clean itself, and let its push through then.
			continue
		}
		// Clean: the push that waited goes to the deployer; a delivery after
		// a hand-off that failed sends it again, until one is marked sent.
		if sc.StartedAt.IsZero() || g.HandOff == nil {
			continue // no push waited for it: the push, when it comes, deploys
		}
		push := ecrevent.Push{EventID: HandOffID(KindScan, r.Name, ev.Digest), Account: ev.Registry.Account, Region: ev.Registry.Region,
			Time: sc.PushedAt, Repository: r.Repository, Tag: sc.Tag, Digest: ev.Digest}
		if err := g.HandOff(ctx, push, r.Name, fmt.Sprintf("scan of %s clean for rule %s", ev.Digest, r.Name)); err != nil {
			errs = append(errs, fmt.Errorf("hand %s:%s to the deployer after its clean scan: %w", r.Repository, sc.Tag, err))
			continue
		}
		if _, err := g.Store.HandedOff(ctx, r.Name, ev.Digest, g.now()); err != nil {
			// The event is retried and hands it off again: the same push
			// (its id is the gate's), which the deployer skips once it runs.
			errs = append(errs, fmt.Errorf("mark %s:%s handed to the deployer: %w", r.Repository, sc.Tag, err))
		}
	}
	return judged, errors.Join(errs...)
}

// EndDue ends the gates whose time is up (their timers lost or late) and
// sets the timers of the gates due before ahead has passed — those of
// approvals and scans the deployer opened, which sets no timer itself. It
// counts each rule's pending approvals in a metric. A sweep's pass.
func (g *Gates) EndDue(ctx context.Context, ahead time.Duration) (ended int, err error) {
	now := g.now()
	open, err := g.Store.Open(ctx, "", "")
	if err != nil {
		return 0, err
	}
	pending := map[string]int{}
	var errs []error
	for _, o := range open {
		switch {
		case !o.Due.After(now):
			err := g.End(ctx, o.Kind, o.Rule, o.Digest)
			if err == nil {
				ended++
				continue // ended by this pass: not pending in the metric
			}
			errs = append(errs, err) // still open: the next pass ends it
		case g.Timers != nil && o.Due.Before(now.Add(ahead)) && o.Kind != KindBake:
			if err := g.Timers.SetGateTimer(ctx, string(o.Kind), o.Rule, o.Digest, o.Due); err != nil {
				errs = append(errs, err)
			}
		}
		if o.Kind == KindApproval {
			pending[o.Rule]++
		}
	}
	for _, r := range g.Rules.Rules {
		if r.Approval != nil {
			metrics.Emit(ctx, g.log(), now, map[string]string{"rule": r.Name}, nil,
				metrics.Metric{Name: metrics.PendingApprovals, Unit: "Count", Value: float64(pending[r.Name])})
		}
	}
	return ended, errors.Join(errs...)
}

func (g *Gates) rule(name string) *rules.Rule {
	for _, r := range g.Rules.Rules {
		if r.Name == name {
			return r
		}
	}
	return nil
}

// inspectorSeverities are the severities an Inspector2 Scan event counts.
var inspectorSeverities = []string{"CRITICAL", "HIGH", "MEDIUM"}

// inspectorCounts reports whether an Inspector2 Scan event's counts can
// judge a rule that blocks block.
func inspectorCounts(block []string) bool {
	for _, sev := range block {
		if !slices.Contains(inspectorSeverities, sev) {
			return false
		}
	}
	return true
}

// handBackToRead hands the deployer the push that waits for a scan whose
// event cannot judge it: the deployer's Admit reads the registry's
// findings (DescribeImageScanFindings counts every severity). Once: the
// gate is marked after the hand-off (a failed mark is retried with the
// event, and a second hand-off is harmless: it carries the same id).
func (g *Gates) handBackToRead(ctx context.Context, r *rules.Rule, ev ScanEvent) error {
	sc, found, err := g.Store.GetScan(ctx, r.Name, ev.Digest)
	if err != nil || !found || (sc.State != Pending && sc.State != TimedOut) || !sc.HandedBackAt.IsZero() || g.HandOff == nil {
		return err
	}
	Log(ctx, g.log(), r.Name, ev.Digest, KindScan, "waits", "Inspector's event counts only CRITICAL, HIGH and MEDIUM; the deployer reads the findings")
	push := ecrevent.Push{EventID: HandOffID(KindScan, r.Name, ev.Digest), Account: ev.Registry.Account, Region: ev.Registry.Region,
		Time: sc.PushedAt, Repository: r.Repository, Tag: sc.Tag, Digest: ev.Digest}
	if err := g.HandOff(ctx, push, r.Name, fmt.Sprintf("scan of %s by Inspector for rule %s, to be judged by its findings", ev.Digest, r.Name)); err != nil {
		return fmt.Errorf("hand %s:%s to the deployer to read its scan: %w", r.Repository, sc.Tag, err)
	}
	if _, err := g.Store.HandedBack(ctx, r.Name, ev.Digest, g.now()); err != nil {
		return fmt.Errorf("mark %s:%s handed back to the deployer: %w", r.Repository, sc.Tag, err)
	}
	return nil
}
