package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/bluegreen"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/cleanup"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecrevent"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecsarn"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/reconcile"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/taskdef"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work"
)

// What `status` and `plan` say the next clean-up would deregister. The
// cleanup commands are built as a sweep builds them (one per family and
// place that a target of a rule with cleanup: runs, with every target of
// the place running or deploying the family, and the published
// parameters of publishing rules) and carried out by the runner the worker
// and the sweep share (reconcile.CleanupRunner: the same describes,
// rollback candidates from history and published revisions, so the same
// cleanup.Target) — on a budget of nothing, so that it plans and stops
// before its first deregistration, through an ECS client that refuses to
// deregister or delete all the same.

// cleanupPreview is what the next clean-up of one family would do.
type cleanupPreview struct {
	cmd      work.Cleanup
	res      cleanup.Result
	err      error
	noTable  bool // rollback candidates not read
	services []string
}

// runs reports whether the clean-up protects t's service in place at.
func (p cleanupPreview) runs(at rules.Place, t rules.Target) bool {
	return p.cmd.Account == at.Account && p.cmd.Region == at.Region && slices.ContainsFunc(p.cmd.Services, func(cs work.CleanupService) bool {
		return ecsarn.Name(cs.Cluster) == ecsarn.Name(t.Cluster) && ecsarn.Name(cs.Service) == ecsarn.Name(t.Service)
	})
}

// line says it in the words of status and plan: "keep 3, would deregister
// up to 9 (web:1–9)".
func (p cleanupPreview) line() string {
	head := "keep " + strconv.Itoa(p.cmd.Keep)
	if p.err != nil {
		return head + ", not planned: " + p.err.Error()
	}
	var s string
	if len(p.res.Left) == 0 {
		s = head + ", nothing to deregister"
	} else {
		s = fmt.Sprintf("%s, would deregister up to %d (%s)", head, len(p.res.Left), revisionRanges(p.res.Left))
	}
	if p.cmd.Delete {
		switch {
		case len(p.res.LeftToDelete) > 0:
			s += fmt.Sprintf(", then delete them and %d INACTIVE (%s)", len(p.res.LeftToDelete), revisionRanges(p.res.LeftToDelete))
		case len(p.res.Left) > 0:
			s += ", then delete them"
		}
	}
	if p.noTable {
		s += " (rollback candidates not read: no state table)"
	}
	return s
}

// revisionRanges writes revisions of one family as ranges, oldest first:
// web:1–9, 11, 14–15.
func revisionRanges(revs []string) string {
	fam := ""
	var ns []int
	for _, r := range revs {
		f, n := ecsarn.FamilyRevision(r)
		fam = f
		ns = append(ns, n)
	}
	slices.Sort(ns)
	ns = slices.Compact(ns)
	var parts []string
	for i := 0; i < len(ns); {
		j := i
		for j+1 < len(ns) && ns[j+1] == ns[j]+1 {
			j++
		}
		if j > i {
			parts = append(parts, fmt.Sprintf("%d–%d", ns[i], ns[j]))
		} else {
			parts = append(parts, strconv.Itoa(ns[i]))
		}
		i = j + 1
	}
	return fam + ":" + strings.Join(parts, ", ")
}

// readOnlyECS refuses what clean-up would change: status and plan only
// plan (a budget of nothing stops the runner before it would ask).
type readOnlyECS struct{ ECS }

var errReadOnly = errors.New("autodeploy status and plan change nothing")

func (readOnlyECS) DeregisterTaskDefinition(context.Context, *ecs.DeregisterTaskDefinitionInput, ...func(*ecs.Options)) (*ecs.DeregisterTaskDefinitionOutput, error) {
	return nil, errReadOnly
}

func (readOnlyECS) DeleteTaskDefinitions(context.Context, *ecs.DeleteTaskDefinitionsInput, ...func(*ecs.Options)) (*ecs.DeleteTaskDefinitionsOutput, error) {
	return nil, errReadOnly
}

// noHistory stands for the state table when the CLI has none: no rollback
// candidates are known (the preview says so).
type noHistory struct{}

func (noHistory) Recent(context.Context, string, int32) ([]history.Record, error) { return nil, nil }

// cleanupPlanner plans the clean-ups of the families some targets run.
type cleanupPlanner struct {
	rules   *rules.Config
	central rules.Place
	clients *awsenv.Clients
	env     Env
	store   *history.Store // nil: no table
	// seen are the services a sweep already described (status); any other
	// is described here (plan).
	seen *kinds
}

// placeService is one target's service as described, in its place.
type placeService struct {
	rule *rules.Rule
	t    rules.Target
	at   rules.Place
	svc  *types.Service
}

// plan previews the clean-up of every family that a target of a rule with
// cleanup: for which only says yes runs (all of them, with only nil).
func (p *cleanupPlanner) plan(ctx context.Context, only func(*rules.Rule, rules.Target) bool) ([]cleanupPreview, error) {
	var wanted []placeService
	places := map[rules.Place]bool{}
	for _, r := range p.rules.Rules {
		for _, t := range r.Targets {
			if r.Cleanup != nil && (only == nil || only(r, t)) {
				wanted = append(wanted, placeService{rule: r, t: t, at: t.Where(p.central)})
				places[t.Where(p.central)] = true
			}
		}
	}
	if len(wanted) == 0 {
		return nil, nil
	}
	// Every target of those places, of any rule: a service running the
	// family protects its revisions whichever rule deploys it.
	var all []placeService
	for _, r := range p.rules.Rules {
		for _, t := range r.Targets {
			if at := t.Where(p.central); places[at] {
				all = append(all, placeService{rule: r, t: t, at: at})
			}
		}
	}
	if err := p.describe(ctx, all); err != nil {
		return nil, err
	}
	type key struct{ account, region, family string }
	byKey := map[key]*cleanupPreview{}
	var order []*cleanupPreview
	for _, w := range all {
		if w.svc == nil || w.rule.Cleanup == nil || (only != nil && !only(w.rule, w.t)) {
			continue
		}
		fam := ecsarn.Family(bluegreen.RunningTaskDefinition(w.svc))
		k := key{w.at.Account, w.at.Region, fam}
		g := byKey[k]
		if g == nil {
			g = &cleanupPreview{cmd: work.Cleanup{Account: w.at.Account, Region: w.at.Region, Role: w.t.RoleFor(p.central), Family: fam,
				Keep: w.rule.Cleanup.Keep, Delete: w.rule.Cleanup.Delete, Origin: "autodeploy status/plan (a preview)"}}
			byKey[k] = g
			order = append(order, g)
		} else {
			// As the sweep decides for rules sharing a family.
			g.cmd.Keep, g.cmd.Delete = max(g.cmd.Keep, w.rule.Cleanup.Keep), g.cmd.Delete && w.rule.Cleanup.Delete
		}
		if !slices.Contains(g.cmd.Rules, w.rule.Name) {
			g.cmd.Rules = append(g.cmd.Rules, w.rule.Name)
		}
	}
	for _, w := range all {
		if w.svc == nil {
			continue
		}
		var published []string
		read := false
		for _, rev := range revisionsOf(w.svc) {
			g := byKey[key{w.at.Account, w.at.Region, ecsarn.Family(rev)}]
			if g == nil {
				continue
			}
			i := slices.IndexFunc(g.cmd.Services, func(cs work.CleanupService) bool {
				return ecsarn.Name(cs.Cluster) == ecsarn.Name(w.t.Cluster) && ecsarn.Name(cs.Service) == ecsarn.Name(w.t.Service)
			})
			if i < 0 {
				g.cmd.Services = append(g.cmd.Services, work.CleanupService{Cluster: w.t.Cluster, Service: w.t.Service, Role: w.t.RoleFor(p.central)})
				g.services = append(g.services, ecsarn.Name(w.t.Cluster)+"/"+ecsarn.Name(w.t.Service))
				i = len(g.cmd.Services) - 1
			}
			if !read {
				published, read = p.published(ctx, w), true
			}
			for _, name := range published {
				if !slices.Contains(g.cmd.Services[i].Published, name) {
					g.cmd.Services[i].Published = append(g.cmd.Services[i].Published, name)
				}
			}
		}
	}
	// As the runner decides again from the rules: every rule whose target
	// of the place runs or deploys the family counts (reconcile.FamilyCleanup).
	for _, g := range order {
		place := g.cmd.Place()
		pol := reconcile.FamilyCleanup(p.rules, p.central, place, func(r *rules.Rule, t rules.Target) bool {
			return slices.ContainsFunc(all, func(w placeService) bool {
				return w.rule == r && w.at == place && w.svc != nil && ecsarn.Name(w.t.Cluster) == ecsarn.Name(t.Cluster) &&
					ecsarn.Name(w.t.Service) == ecsarn.Name(t.Service) &&
					slices.ContainsFunc(revisionsOf(w.svc), func(rev string) bool { return ecsarn.Family(rev) == g.cmd.Family })
			})
		})
		g.cmd.Keep, g.cmd.Delete, g.cmd.Rules = pol.Keep, pol.Delete, pol.Rules
		if !pol.Clean() {
			g.err = fmt.Errorf("not cleaned: %s, whose service runs the family, sets no cleanup", strings.Join(pol.Without, ", "))
		}
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	runner := &reconcile.CleanupRunner{
		ECS: func(region, role string) reconcile.CleanupECS {
			return readOnlyECS{p.env.ecsClient(p.clients.ECS(region, role))}
		},
		SSM: func(region, role string) reconcile.ParameterReader { return p.clients.SSM(region, role) },
		Log: quiet,
	}
	runner.Rules, runner.Central = p.rules, p.central
	runner.History = noHistory{}
	if p.store != nil {
		runner.History = p.store
	}
	out := make([]cleanupPreview, 0, len(order))
	for _, g := range order {
		if g.err == nil {
			g.res, g.err = runner.Run(ctx, g.cmd, cleanup.NewBudget(0))
		}
		g.noTable = p.store == nil
		out = append(out, *g)
	}
	return out, nil
}

// published are the parameters a publishing rule writes for the target:
// one per chosen container of the revision it runs (as the sweep names
// them); none when that revision cannot be read.
func (p *cleanupPlanner) published(ctx context.Context, w placeService) []string {
	if w.rule.Publish == nil {
		return nil
	}
	client := p.env.ecsClient(p.clients.ECS(w.at.Region, w.t.RoleFor(p.central)))
	td, err := client.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(bluegreen.RunningTaskDefinition(w.svc))})
	if err != nil {
		return nil
	}
	registry := w.rule.RegistryOf(p.central)
	repo := ecrevent.Push{Account: registry.Account, Region: registry.Region, Repository: w.rule.Repository}.Repo()
	containers, err := taskdef.ChooseContainers(td.TaskDefinition, w.t.Containers, repo)
	if err != nil {
		return nil
	}
	var out []string
	for _, c := range containers {
		out = append(out, w.rule.Publish.Parameter(ecsarn.Name(w.t.Cluster), ecsarn.Name(w.t.Service), c))
	}
	return out
}

// describe fills each target's service: from what a sweep described, or
// ten to a call per cluster, through the target's deploy role (as the
// clean-up reads them). A service not found runs nothing.
func (p *cleanupPlanner) describe(ctx context.Context, all []placeService) error {
	type batchKey struct{ region, role, cluster string }
	var keys []batchKey
	pending := map[batchKey][]int{}
	for i := range all {
		w := &all[i]
		if p.seen != nil {
			if s, ok := p.seen.get(history.ServiceKey(w.at.Account, w.at.Region, w.t.Cluster, w.t.Service)); ok && s.svc != nil {
				w.svc = s.svc
				continue
			}
		}
		k := batchKey{w.at.Region, w.t.RoleFor(p.central), w.t.Cluster}
		if _, ok := pending[k]; !ok {
			keys = append(keys, k)
		}
		pending[k] = append(pending[k], i)
	}
	for _, k := range keys {
		idx := pending[k]
		client := p.env.ecsClient(p.clients.ECS(k.region, k.role))
		for start := 0; start < len(idx); start += 10 {
			batch := idx[start:min(start+10, len(idx))]
			var names []string
			for _, i := range batch {
				if n := ecsarn.Name(all[i].t.Service); !slices.Contains(names, n) {
					names = append(names, n)
				}
			}
			out, err := client.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(k.cluster), Services: names})
			if err != nil {
				return fmt.Errorf("clean-up preview: describe the services of cluster %s: %w", k.cluster, err)
			}
			for j := range out.Services {
				svc := &out.Services[j]
				if aws.ToString(svc.Status) != "ACTIVE" {
					continue
				}
				for _, i := range batch {
					if ecsarn.Name(all[i].t.Service) == aws.ToString(svc.ServiceName) {
						all[i].svc = svc
					}
				}
			}
		}
	}
	return nil
}

// revisionsOf are the revisions a service runs or deploys: its own, its
// deployments' and its task sets'.
func revisionsOf(svc *types.Service) []string {
	revs := []string{bluegreen.RunningTaskDefinition(svc)}
	for _, d := range svc.Deployments {
		revs = append(revs, aws.ToString(d.TaskDefinition))
	}
	for _, ts := range svc.TaskSets {
		revs = append(revs, aws.ToString(ts.TaskDefinition))
	}
	return slices.DeleteFunc(revs, func(r string) bool { return r == "" })
}
