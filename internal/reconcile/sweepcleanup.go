package reconcile

import (
	"context"
	"errors"
	"hash/fnv"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/bluegreen"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/cleanup"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/deploy"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecsarn"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work"
)

// CleanupSender takes a sweep's cleanup items to the work queues (the
// worker runs them).
type CleanupSender interface {
	SendCleanups(ctx context.Context, cmds []work.Cleanup) error
}

// familyGroup is one family of one place that a rule with cleanup: runs.
type familyGroup struct {
	key    MarkKey
	cmd    work.Cleanup
	newest int  // the newest revision of the family its services run or deploy
	moved  bool // a target of it was deployed by this sweep (in-process)
	busy   bool // a target of it is being deployed: its deploy was queued by this sweep or an earlier one
	skip   bool
}

// settings is what the group's cleanup keeps and deletes, as its mark
// records it.
func (g *familyGroup) settings() string { return MarkSettings(g.cmd.Keep, g.cmd.Delete) }

// cleanUp follows a sweep's deploys: for each place, one cleanup of one
// family that a target of a rule with cleanup: runs there — sent to the
// work queue (CleanupQueue) or, without one, run here within CleanupBudget
// — so that a sweep spends at most one budget on a place's register bucket.
// A family is left out while it is known clean as of a revision no older
// than the newest its services run or deploy, with the same keep and
// delete (the sweep's describes say; no call); with a work queue, while a
// target of it is being deployed (the deploy's completion sends its
// cleanup); and every family of a place is left out when a target there
// could not be described (a service left out of a cleanup would protect
// nothing). Of the families left, the one after the family this sweeper
// sent last in the place, in the order of their names, goes (pickPerPlace).
// It returns the cleanups sent or run. A failure is logged, never the
// sweep's: the next sweep cleans.
func (s *Sweeper) cleanUp(ctx context.Context, o Options, jobs []deploy.Job, services map[serviceRef]described, lines []Line) int {
	if o.DryRun || (s.Cleanup == nil && s.CleanupQueue == nil) {
		return 0
	}
	queued := s.Deployer.Queued()
	if queued && s.CleanupQueue == nil || !queued && s.Cleanup == nil {
		return 0
	}
	groups := s.families(ctx, o, jobs, services, lines)
	if len(groups) == 0 {
		return 0
	}
	for _, g := range groups {
		// Queued, a family being deployed is left to the deploy's
		// completion, whose cleanup follows it.
		g.skip = queued && (g.busy || g.moved)
	}
	s.knownClean(ctx, o, groups)
	var todo []*familyGroup
	for _, g := range groups {
		if !g.skip {
			todo = append(todo, g)
		}
	}
	todo = s.pickPerPlace(o, todo)
	if len(todo) == 0 {
		return 0
	}
	if queued {
		cmds := make([]work.Cleanup, len(todo))
		for i, g := range todo {
			cmds[i] = g.cmd
		}
		if err := s.CleanupQueue.SendCleanups(ctx, cmds); err != nil {
			s.Log.WarnContext(ctx, "reconcile: cleanup items not queued; the next sweep sends them again", "error", err.Error(), "event_id", o.EventID)
		}
		return len(cmds)
	}
	for _, g := range todo {
		_, clean, err := s.Cleanup.run(ctx, g.cmd, cleanup.NewBudget(CleanupBudget))
		if err != nil {
			s.Log.WarnContext(ctx, "reconcile: cleanup failed; the next sweep tries again", "family", g.cmd.Family,
				"account", g.cmd.Account, "region", g.cmd.Region, "error", err.Error(), "event_id", o.EventID)
			continue
		}
		if clean > 0 {
			s.mu.Lock()
			s.rememberClean(g.key, Mark{Revision: clean, Settings: g.settings()})
			s.mu.Unlock()
		}
	}
	return len(todo)
}

// pickPerPlace keeps one group per place: in the order of the families'
// names, the first after the family this sweeper last sent or ran there
// (wrapping round), so that every family not clean takes its turn and none
// waits more sweeps than the place has such families. A sweeper that sent
// nothing there yet (a cold start) starts at a place in that order given
// by the sweep's event ID, so that a family that never gets clean (one
// denied, say) does not hold the others back across cold starts.
func (s *Sweeper) pickPerPlace(o Options, todo []*familyGroup) []*familyGroup {
	byPlace := map[rules.Place][]*familyGroup{}
	var places []rules.Place
	for _, g := range todo {
		p := g.cmd.Place()
		if _, ok := byPlace[p]; !ok {
			places = append(places, p)
		}
		byPlace[p] = append(byPlace[p], g)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*familyGroup
	for _, p := range places {
		gs := byPlace[p]
		slices.SortFunc(gs, func(a, b *familyGroup) int { return strings.Compare(a.cmd.Family, b.cmd.Family) })
		i := 0
		if last, ok := s.cleanLast[p]; ok {
			i, _ = slices.BinarySearchFunc(gs, last, func(g *familyGroup, f string) int {
				if c := strings.Compare(g.cmd.Family, f); c != 0 {
					return c
				}
				return -1 // the one after last
			})
		} else {
			h := fnv.New32a()
			_, _ = h.Write([]byte(o.EventID))
			i = int(h.Sum32() % uint32(len(gs)))
		}
		g := gs[i%len(gs)]
		if s.cleanLast == nil || len(s.cleanLast) >= maxCachedTaskDefs {
			s.cleanLast = map[rules.Place]string{}
		}
		s.cleanLast[p] = g.cmd.Family
		out = append(out, g)
	}
	return out
}

// families groups the targets of rules with cleanup: by the family of the
// revision their service runs, per place, with every target of the place
// (of any rule) whose service runs or deploys a revision of it. A place
// where a target's describe failed (throttled, denied) has no group: the
// service not described could run a family of the place, and a cleanup
// that left it out would not protect its revisions.
func (s *Sweeper) families(ctx context.Context, o Options, jobs []deploy.Job, services map[serviceRef]described, lines []Line) []*familyGroup {
	central := s.central()
	byKey := map[MarkKey]*familyGroup{}
	var order []*familyGroup
	ref := func(t rules.Target) serviceRef {
		at := t.Where(central)
		return serviceRef{at.Account, at.Region, s.Deployer.ReadRole(t), t.Cluster, ecsarn.Name(t.Service)}
	}
	svcOf := func(t rules.Target) *types.Service { return services[ref(t)].svc }
	undescribed := map[rules.Place]error{}
	for _, j := range jobs {
		d, ok := services[ref(j.Target)]
		if d.svc != nil || ok && deploy.IsPermanent(d.err) {
			continue // described, or not found: a service that does not exist runs nothing
		}
		at := j.Target.Where(central)
		if _, seen := undescribed[at]; !seen {
			err := d.err
			if err == nil {
				err = errors.New("not described")
			}
			undescribed[at] = err
			s.Log.WarnContext(ctx, "reconcile: no clean-up in this place this sweep: a target's service could not be described",
				"account", at.Account, "region", at.Region, "cluster", j.Target.Cluster, "service", j.Target.Service,
				"error", err.Error(), "event_id", o.EventID)
		}
	}
	for _, j := range jobs {
		r, t := j.Rule, j.Target
		svc := svcOf(t)
		at := t.Where(central)
		if r.Cleanup == nil || svc == nil || undescribed[at] != nil {
			continue
		}
		fam, _ := ecsarn.FamilyRevision(bluegreen.RunningTaskDefinition(svc))
		k := MarkKey{Account: at.Account, Region: at.Region, Family: fam}
		g := byKey[k]
		if g == nil {
			g = &familyGroup{key: k, cmd: work.Cleanup{Account: at.Account, Region: at.Region, Role: t.RoleFor(central), Family: fam,
				Keep: r.Cleanup.Keep, Delete: r.Cleanup.Delete, Origin: "sweep " + o.EventID}}
			byKey[k] = g
			order = append(order, g)
		} else {
			// Rules that share a family: the most that any keeps, deleted
			// only when every one deletes.
			g.cmd.Keep, g.cmd.Delete = max(g.cmd.Keep, r.Cleanup.Keep), g.cmd.Delete && r.Cleanup.Delete
		}
		if !slices.Contains(g.cmd.Rules, r.Name) {
			g.cmd.Rules = append(g.cmd.Rules, r.Name)
		}
	}
	for i, j := range jobs {
		r, t := j.Rule, j.Target
		svc := svcOf(t)
		if svc == nil {
			continue
		}
		at := t.Where(central)
		for _, rev := range revisionsOf(svc) {
			fam, n := ecsarn.FamilyRevision(rev)
			g := byKey[MarkKey{Account: at.Account, Region: at.Region, Family: fam}]
			if g == nil {
				continue
			}
			g.newest = max(g.newest, n)
			g.moved = g.moved || lines[i].Outcome == Deployed
			g.busy = g.busy || lines[i].Outcome == Queued
			var published []string
			if r.Publish != nil {
				for _, c := range lines[i].containers {
					published = append(published, r.Publish.Parameter(ecsarn.Name(t.Cluster), ecsarn.Name(t.Service), c))
				}
			}
			k := slices.IndexFunc(g.cmd.Services, func(cs work.CleanupService) bool {
				return ecsarn.Name(cs.Cluster) == ecsarn.Name(t.Cluster) && ecsarn.Name(cs.Service) == ecsarn.Name(t.Service)
			})
			if k < 0 {
				g.cmd.Services = append(g.cmd.Services, work.CleanupService{Cluster: t.Cluster, Service: t.Service, Role: t.RoleFor(central)})
				k = len(g.cmd.Services) - 1
			}
			for _, p := range published {
				if !slices.Contains(g.cmd.Services[k].Published, p) {
					g.cmd.Services[k].Published = append(g.cmd.Services[k].Published, p)
				}
			}
		}
	}
	// What the rules ask of each family, over every rule whose described
	// service there runs or deploys it (FamilyCleanup): a rule without
	// cleanup: keeps the family uncleaned.
	kept := order[:0]
	for _, g := range order {
		place := rules.Place{Account: g.key.Account, Region: g.key.Region}
		p := FamilyCleanup(s.Rules, central, place, func(_ *rules.Rule, t rules.Target) bool {
			svc := svcOf(t)
			return svc != nil && slices.ContainsFunc(revisionsOf(svc), func(rev string) bool {
				fam, _ := ecsarn.FamilyRevision(rev)
				return fam == g.key.Family
			})
		})
		if !p.Clean() {
			s.Log.InfoContext(ctx, "reconcile: family not cleaned up: a rule running it has no cleanup:", "family", g.key.Family,
				"account", g.key.Account, "region", g.key.Region, "rules", p.Rules, "without", p.Without, "event_id", o.EventID)
			continue
		}
		g.cmd.Keep, g.cmd.Delete, g.cmd.Rules = p.Keep, p.Delete, p.Rules
		kept = append(kept, g)
	}
	return kept
}

// knownClean marks the groups to skip: a family clean as of a revision no
// older than the newest its services run, under the keep and delete its
// cleanup would run with (a mark left under other settings — keep lowered,
// delete added — is not clean). The sweeper remembers what it learnt, so
// that once the families are clean a warm sweep reads no mark; a family it
// does not know (every family, after a cold start) is read from Marks (one
// BatchGetItem per 100).
func (s *Sweeper) knownClean(ctx context.Context, o Options, groups []*familyGroup) {
	var unknown []MarkKey
	s.mu.Lock()
	for _, g := range groups {
		if g.skip {
			continue
		}
		if g.moved {
			delete(s.clean, g.key)
			continue
		}
		if m, ok := s.clean[g.key]; ok && g.cleanAsOf(m) {
			g.skip = true
			continue
		}
		delete(s.clean, g.key)
		unknown = append(unknown, g.key)
	}
	s.mu.Unlock()
	if len(unknown) == 0 || s.Marks == nil {
		return
	}
	marks, err := s.Marks.Clean(ctx, unknown)
	if err != nil {
		s.Log.WarnContext(ctx, "reconcile: clean-up marks not read; every family is cleaned", "error", err.Error(), "event_id", o.EventID)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range groups {
		if m, ok := marks[g.key]; ok && !g.skip && !g.moved && g.cleanAsOf(m) {
			g.skip = true
			s.rememberClean(g.key, m)
		}
	}
}

// cleanAsOf reports whether mark m says the group has nothing to clean:
// marked under the same settings, as of a revision no older than the
// newest its services run or deploy.
func (g *familyGroup) cleanAsOf(m Mark) bool {
	return m.Settings == g.settings() && g.newest <= m.Revision
}

// rememberClean notes k clean as of m (s.mu held).
func (s *Sweeper) rememberClean(k MarkKey, m Mark) {
	if s.clean == nil || len(s.clean) >= maxCachedTaskDefs {
		s.clean = map[MarkKey]Mark{}
	}
	s.clean[k] = m
}

// revisionsOf are the revisions a service runs or deploys (its task
// definition, its deployments' and task sets').
func revisionsOf(svc *types.Service) []string {
	revs := []string{aws.ToString(svc.TaskDefinition)}
	for _, d := range svc.Deployments {
		revs = append(revs, aws.ToString(d.TaskDefinition))
	}
	for _, ts := range svc.TaskSets {
		revs = append(revs, aws.ToString(ts.TaskDefinition))
	}
	return revs
}
