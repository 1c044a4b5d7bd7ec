package watch

import (
	"context"
	"slices"
	"time"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecsarn"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/reconcile"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work"
)

// CleanupSender queues cleanup items for the worker (the place's work
// queue), hidden for delay first.
type CleanupSender interface {
	SendDelayed(ctx context.Context, cmds []work.Cleanup, delay time.Duration) error
}

// CleanupDelay is how long a completion's cleanup item waits in the queue:
// the rest of its push's deploys in the place register in the same bucket
// (and maybe the same family) meanwhile, and deploys come first.
const CleanupDelay = 5 * time.Minute

// MaxCleanupServices bounds the services a completion's cleanup names: the
// watcher does not know which of a place's services run the family, so it
// names every target of the place, and the worker describes them ten to a
// call. In a place with more targets, a completion queues nothing and the
// sweep, which describes them all anyway, cleans the family.
const MaxCleanupServices = 50

// cleanUpAfter queues, after a completion this delivery recorded, one
// cleanup of the completed revision's family in its target's place, when
// the record's rule has cleanup: and a work queue is configured (without
// one the next sweep cleans). A retry of the event records nothing and
// queues nothing again; a cleanup run twice would do nothing twice anyway.
// A failure to queue is logged, not the event's: the next sweep cleans.
func (w *Watcher) cleanUpAfter(ctx context.Context, rec history.Record) {
	if w.Cleanups == nil || rec.ToTaskDefinition == "" {
		return
	}
	rule := w.ruleNamed(rec.Rule)
	if rule == nil || rule.Cleanup == nil {
		return
	}
	key := history.ServiceKey(rec.Account, rec.Region, rec.Cluster, rec.Service)
	i := slices.IndexFunc(rule.Targets, func(t rules.Target) bool {
		at := t.Where(w.Central)
		return history.ServiceKey(at.Account, at.Region, t.Cluster, t.Service) == key
	})
	if i < 0 {
		return // the rules file no longer targets it: the sweep cleans what it does
	}
	target := rule.Targets[i]
	place := target.Where(w.Central)
	family := ecsarn.Family(rec.ToTaskDefinition)
	// The watcher does not know which of the place's targets run the
	// family, so every rule with a target there counts for keep and delete
	// (the sweep's policy over as many rules or more: never wider). Whether
	// a rule without cleanup: runs the family only the worker's describes
	// tell: the runner decides that again from its rules file
	// (reconcile.CleanupRunner.Rules) and then cleans nothing.
	policy := reconcile.FamilyCleanup(w.Rules, w.Central, place, func(*rules.Rule, rules.Target) bool { return true })
	cmd := work.Cleanup{Account: place.Account, Region: place.Region, Role: target.RoleFor(w.Central), Family: family,
		Keep: policy.Keep, Delete: policy.Delete, Rules: policy.Rules,
		Origin: "completion of deployment " + rec.DeploymentID}
	for _, r := range w.Rules.Rules {
		for _, t := range r.Targets {
			if t.Where(w.Central) != place || slices.ContainsFunc(cmd.Services, func(s work.CleanupService) bool {
				return ecsarn.Name(s.Cluster) == ecsarn.Name(t.Cluster) && ecsarn.Name(s.Service) == ecsarn.Name(t.Service)
			}) {
				continue
			}
			s := work.CleanupService{Cluster: t.Cluster, Service: t.Service, Role: t.RoleFor(w.Central)}
			if r == rule && r.Publish != nil && ecsarn.Name(t.Cluster) == ecsarn.Name(rec.Cluster) && ecsarn.Name(t.Service) == ecsarn.Name(rec.Service) {
				for _, c := range rec.Containers {
					s.Published = append(s.Published, r.Publish.Parameter(ecsarn.Name(t.Cluster), ecsarn.Name(t.Service), c))
				}
			}
			cmd.Services = append(cmd.Services, s)
		}
	}
	log := []any{"rule", rule.Name, "family", family, "account", place.Account, "region", place.Region,
		"deployment_id", rec.DeploymentID, "services", len(cmd.Services)}
	if len(cmd.Services) > MaxCleanupServices {
		w.Log.InfoContext(ctx, "cleanup left to the sweep: the place has more targets than a completion's cleanup names", log...)
		return
	}
	if err := w.Cleanups.SendDelayed(ctx, []work.Cleanup{cmd}, CleanupDelay); err != nil {
		w.Log.WarnContext(ctx, "cleanup not queued; the next sweep cleans", append(log, "error", err.Error())...)
		return
	}
	w.Log.InfoContext(ctx, "cleanup queued", log...)
}
