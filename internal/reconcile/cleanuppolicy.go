package reconcile

import (
	"slices"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecsarn"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// CleanupPolicy is the clean-up the rules ask of one family in one place,
// over every rule with a target there whose service runs (or deploys) the
// family: the family is cleaned only when every one of them has cleanup:
// (a rule that did not ask keeps its revisions), keeping the most any of
// them keeps, deleting only when every one deletes.
type CleanupPolicy struct {
	Keep   int
	Delete bool
	// Rules are the rules that asked, Without those that did not (any one
	// of them: nothing is cleaned).
	Rules, Without []string
}

// Clean reports whether the family is cleaned at all: some rule counted,
// and every rule that counted has cleanup:.
func (p CleanupPolicy) Clean() bool { return len(p.Rules) > 0 && len(p.Without) == 0 }

// Narrow is p applied to what an item asks (keep, del): the most either
// keeps, deleting only when both delete. An item is never wider than the
// rules make it, whoever built it and whenever.
func (p CleanupPolicy) Narrow(keep int, del bool) (int, bool) {
	return max(p.Keep, keep), p.Delete && del
}

// FamilyCleanup is the CleanupPolicy of a family in place: runs says
// whether target t of rule r (t in place) has a service that runs or
// deploys the family — the caller's describes (the sweep's, the CLI's,
// the runner's) or, without them, every target of the place (the
// watcher). The sweep, the watcher, the CLI preview and the runner all
// decide through it.
func FamilyCleanup(cfg *rules.Config, central, place rules.Place, runs func(r *rules.Rule, t rules.Target) bool) CleanupPolicy {
	var p CleanupPolicy
	first := true
	for _, r := range cfg.Rules {
		counts := slices.ContainsFunc(r.Targets, func(t rules.Target) bool { return t.Where(central) == place && runs(r, t) })
		if !counts {
			continue
		}
		if r.Cleanup == nil {
			if !slices.Contains(p.Without, r.Name) {
				p.Without = append(p.Without, r.Name)
			}
			continue
		}
		if slices.Contains(p.Rules, r.Name) {
			continue
		}
		p.Rules = append(p.Rules, r.Name)
		if first {
			p.Keep, p.Delete, first = r.Cleanup.Keep, r.Cleanup.Delete, false
			continue
		}
		p.Keep, p.Delete = max(p.Keep, r.Cleanup.Keep), p.Delete && r.Cleanup.Delete
	}
	return p
}

// sameService reports whether a target and a cleanup's service name the
// same service (names or ARNs).
func sameService(t rules.Target, cluster, service string) bool {
	return ecsarn.Name(t.Cluster) == ecsarn.Name(cluster) && ecsarn.Name(t.Service) == ecsarn.Name(service)
}
