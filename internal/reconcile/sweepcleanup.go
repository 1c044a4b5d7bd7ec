package reconcile

import (
	"context"
	"slices"
	"strconv"
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
	moved  bool // a target of it was deployed by this sweep
	skip   bool
}

// cleanUp follows a sweep's deploys: for each family of each place that a
// target of a rule with cleanup: runs, one cleanup — sent to the work queue
// (CleanupQueue) or, without one, run here within a budget per place
// (CleanupBudget) — unless the family is known clean as of a revision no
// older than the newest its services run or deploy (the sweep's describes
// say; no call). A family whose target this sweep deployed is cleaned. It
// returns the cleanups sent or run. A failure is logged, never the
// sweep's: the next sweep cleans.
func (s *Sweeper) cleanUp(ctx context.Context, o Options, jobs []deploy.Job, services map[serviceRef]described, lines []Line) int {
	if o.DryRun || (s.Cleanup == nil && s.CleanupQueue == nil) {
		return 0
	}
	groups := s.families(o, jobs, services, lines)
	if len(groups) == 0 {
		return 0
	}
	s.knownClean(ctx, o, groups)
	var todo []*familyGroup
	for _, g := range groups {
		if !g.skip {
			todo = append(todo, g)
		}
	}
	if len(todo) == 0 {
		return 0
	}
	if s.Deployer.Queued() {
		if s.CleanupQueue == nil {
			return 0
		}
		cmds := make([]work.Cleanup, len(todo))
		for i, g := range todo {
			cmds[i] = g.cmd
		}
		if err := s.CleanupQueue.SendCleanups(ctx, cmds); err != nil {
			s.Log.WarnContext(ctx, "reconcile: cleanup items not queued; the next sweep sends them again", "error", err.Error(), "event_id", o.EventID)
		}
		return len(cmds)
	}
	if s.Cleanup == nil {
		return 0
	}
	budgets := map[rules.Place]*cleanup.Budget{}
	ran := 0
	for _, g := range todo {
		b := budgets[g.cmd.Place()]
		if b == nil {
			b = cleanup.NewBudget(CleanupBudget)
			budgets[g.cmd.Place()] = b
		}
		if b.Left() <= 0 {
			continue // the place's budget is spent: the next sweep
		}
		ran++
		_, clean, err := s.Cleanup.run(ctx, g.cmd, b)
		if err != nil {
			s.Log.WarnContext(ctx, "reconcile: cleanup failed; the next sweep tries again", "family", g.cmd.Family,
				"account", g.cmd.Account, "region", g.cmd.Region, "error", err.Error(), "event_id", o.EventID)
			continue
		}
		if clean > 0 {
			s.mu.Lock()
			s.rememberClean(g.key, clean)
			s.mu.Unlock()
		}
	}
	return ran
}

// families groups the targets of rules with cleanup: by the family of the
// revision their service runs, per place, with every target of the place
// (of any rule) whose service runs or deploys a revision of it.
func (s *Sweeper) families(o Options, jobs []deploy.Job, services map[serviceRef]described, lines []Line) []*familyGroup {
	central := s.central()
	byKey := map[MarkKey]*familyGroup{}
	var order []*familyGroup
	svcOf := func(t rules.Target) *types.Service {
		at := t.Where(central)
		return services[serviceRef{at.Account, at.Region, s.Deployer.ReadRole(t), t.Cluster, ecsarn.Name(t.Service)}].svc
	}
	for _, j := range jobs {
		r, t := j.Rule, j.Target
		svc := svcOf(t)
		if r.Cleanup == nil || svc == nil {
			continue
		}
		at := t.Where(central)
		fam, _ := splitRevision(bluegreen.RunningTaskDefinition(svc))
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
			fam, n := splitRevision(rev)
			g := byKey[MarkKey{Account: at.Account, Region: at.Region, Family: fam}]
			if g == nil {
				continue
			}
			g.newest = max(g.newest, n)
			g.moved = g.moved || lines[i].Outcome == Deployed
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
				g.cmd.Services = append(g.cmd.Services, work.CleanupService{Cluster: t.Cluster, Service: t.Service})
				k = len(g.cmd.Services) - 1
			}
			for _, p := range published {
				if !slices.Contains(g.cmd.Services[k].Published, p) {
					g.cmd.Services[k].Published = append(g.cmd.Services[k].Published, p)
				}
			}
		}
	}
	return order
}

// knownClean marks the groups to skip: a family clean as of a revision no
// older than the newest its services run. The sweeper remembers what it
// learnt, so that once the families are clean a sweep reads no mark; a
// family it does not know is read from Marks (one BatchGetItem per 100).
func (s *Sweeper) knownClean(ctx context.Context, o Options, groups []*familyGroup) {
	var unknown []MarkKey
	s.mu.Lock()
	for _, g := range groups {
		if g.moved {
			delete(s.clean, g.key)
			continue
		}
		if m, ok := s.clean[g.key]; ok && g.newest <= m {
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
		if m, ok := marks[g.key]; ok && !g.skip && !g.moved && g.newest <= m {
			g.skip = true
			s.rememberClean(g.key, m)
		}
	}
}

// rememberClean notes k clean as of revision (s.mu held).
func (s *Sweeper) rememberClean(k MarkKey, revision int) {
	if s.clean == nil || len(s.clean) >= maxCachedTaskDefs {
		s.clean = map[MarkKey]int{}
	}
	s.clean[k] = revision
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

// splitRevision takes a task definition (ARN or family:revision) apart;
// revision 0 when it does not parse.
func splitRevision(taskDefinition string) (string, int) {
	s := ecsarn.Revision(taskDefinition)
	i := strings.LastIndex(s, ":")
	if i < 0 {
		return s, 0
	}
	n, err := strconv.Atoi(s[i+1:])
	if err != nil {
		return s, 0
	}
	return s[:i], n
}
