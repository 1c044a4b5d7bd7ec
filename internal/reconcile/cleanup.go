package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/bluegreen"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/cleanup"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecsarn"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/lock"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work"
)

// CleanupBudget is the calls one cleanup item may spend on ECS's register
// bucket (a sweep sends one family per place, or runs one in-process: the
// budget is per place per sweep either way; a completion's item comes
// after its push's deploys, CleanupDelay later): DeregisterTaskDefinition
// and DeleteTaskDefinitions. ECS refills that bucket at 1 per second and a
// deploy needs one token per target: 5 leaves the burst (20) to the
// deploys, and a family of 1,000 stale revisions is cleaned in a few hours
// of sweeps.
const CleanupBudget = 5

// CleanupECS is what a cleanup run asks of ECS in its place: the services'
// describes, and internal/cleanup's listing, tag reads, deregistrations and
// deletes.
type CleanupECS interface {
	DescribeServices(ctx context.Context, in *ecs.DescribeServicesInput, optFns ...func(*ecs.Options)) (*ecs.DescribeServicesOutput, error)
	ListTaskDefinitions(ctx context.Context, in *ecs.ListTaskDefinitionsInput, optFns ...func(*ecs.Options)) (*ecs.ListTaskDefinitionsOutput, error)
	DescribeTaskDefinition(ctx context.Context, in *ecs.DescribeTaskDefinitionInput, optFns ...func(*ecs.Options)) (*ecs.DescribeTaskDefinitionOutput, error)
	DeregisterTaskDefinition(ctx context.Context, in *ecs.DeregisterTaskDefinitionInput, optFns ...func(*ecs.Options)) (*ecs.DeregisterTaskDefinitionOutput, error)
	DeleteTaskDefinitions(ctx context.Context, in *ecs.DeleteTaskDefinitionsInput, optFns ...func(*ecs.Options)) (*ecs.DeleteTaskDefinitionsOutput, error)
}

// CleanupHistory reads a service's latest deploy records: its rollback
// candidates.
type CleanupHistory interface {
	Recent(ctx context.Context, serviceKey string, limit int32) ([]history.Record, error)
}

// ParameterReader reads a published parameter.
type ParameterReader interface {
	GetParameter(ctx context.Context, in *ssm.GetParameterInput, optFns ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
}

// CleanupRunner carries out cleanup commands: the worker's for each item,
// and a sweep's own without a work queue. It never takes a service's lock:
// a deploy registering beside it makes ECS refuse a deregistration as
// concurrent, which ends the run like a throttle.
type CleanupRunner struct {
	ECS     func(region, role string) CleanupECS
	History CleanupHistory
	// SSM reads the published parameters a command names (nil: none read).
	SSM func(region, role string) ParameterReader
	// Marks, when set, remembers a family left clean, so sweeps stop
	// sending it until a newer revision runs.
	Marks CleanMarks
	// Rules, when set (the worker's and the sweep's rules file, targets
	// defaulting to Central), decide the clean-up anew from the services
	// described (FamilyCleanup): nothing is cleaned unless every rule
	// whose service runs the family has cleanup:, and a command never
	// keeps fewer or deletes more than they ask (CleanupPolicy.Narrow),
	// so a stale or partial item cannot widen a clean-up. Without them
	// the command's keep and delete are carried out as they are.
	Rules   *rules.Config
	Central rules.Place
	// Places, when set, holds a lease per account and region for the
	// length of a run (lock key cleanup#<account>/<region>), taken without
	// waiting: items that arrive together (a completion's and a sweep's,
	// staging's and prod's of one family) run one at a time, the register
	// bucket sees one budget, and the second finds the family's mark. An
	// item that finds the place busy is left to the run that holds it and
	// the next sweep.
	Places *lock.Locker
	Log    *slog.Logger
}

// Run carries out c within budget b (see cleanup.Cleaner.Run). A throttle
// is no error: the run stops, b is spent, and the next sweep goes on. A
// run that leaves nothing to do marks the family clean as of its newest
// ACTIVE revision. Any other failure is returned (transient or not: the
// worker returns the item to its queue).
func (r *CleanupRunner) Run(ctx context.Context, c work.Cleanup, b *cleanup.Budget) (cleanup.Result, error) {
	res, _, err := r.run(ctx, c, b)
	return res, err
}

// run is Run, and the revision the family is clean as of (0: not clean).
func (r *CleanupRunner) run(ctx context.Context, c work.Cleanup, b *cleanup.Budget) (cleanup.Result, int, error) {
	if r.Places != nil {
		busy := *r.Places
		busy.MaxWait = 0
		lease, err := busy.Acquire(ctx, lock.Key{PK: "cleanup#" + c.Account + "/" + c.Region, SK: "lease"}, c.Origin+"/"+c.Family)
		var held *lock.TimeoutError
		if errors.As(err, &held) {
			r.Log.InfoContext(ctx, "cleanup: another clean-up runs in this place; this one is left to it and the next sweep",
				"family", c.Family, "account", c.Account, "region", c.Region, "holder", held.Holder, "origin", c.Origin)
			return cleanup.Result{Family: c.Family}, 0, nil
		}
		if err != nil {
			return cleanup.Result{Family: c.Family}, 0, fmt.Errorf("clean-up of %s: %w", c.Family, err)
		}
		defer func() { _ = lease.Release(context.WithoutCancel(ctx)) }()
	}
	client := r.ECS(c.Region, c.Role)
	described, err := r.describe(ctx, client, c)
	if err != nil {
		return cleanup.Result{Family: c.Family}, 0, err
	}
	if len(described) == 0 {
		r.Log.WarnContext(ctx, "cleanup: none of the family's services was found; nothing is cleaned",
			"family", c.Family, "account", c.Account, "region", c.Region, "rules", c.Rules, "origin", c.Origin)
		return cleanup.Result{Family: c.Family}, 0, nil
	}
	keep, del := c.Keep, c.Delete
	if r.Rules != nil {
		p := FamilyCleanup(r.Rules, r.Central, c.Place(), func(_ *rules.Rule, t rules.Target) bool {
			return slices.ContainsFunc(described, func(d describedService) bool {
				return sameService(t, d.cluster, d.service) && runsFamily(&d.svc, c.Family)
			})
		})
		if !p.Clean() {
			r.Log.InfoContext(ctx, "cleanup: not every rule whose service runs the family asks for clean-up; nothing is cleaned",
				"family", c.Family, "account", c.Account, "region", c.Region, "rules", p.Rules, "without", p.Without, "origin", c.Origin)
			return cleanup.Result{Family: c.Family}, 0, nil
		}
		keep, del = p.Narrow(keep, del)
	}
	if clean, err := r.markedClean(ctx, c, keep, del, described); err != nil || clean {
		return cleanup.Result{Family: c.Family}, 0, err
	}
	t := cleanup.Target{Family: c.Family, Keep: keep, Delete: del, SweepInactive: del}
	for _, d := range described {
		recs, err := r.History.Recent(ctx, history.ServiceKey(c.Account, c.Region, d.cluster, d.service), historyReach(keep))
		if err != nil {
			return cleanup.Result{Family: c.Family}, 0, fmt.Errorf("clean-up of %s: %w", c.Family, err)
		}
		// The rollback candidates: the last keep deploys that completed,
		// and always the revision `autodeploy rollback` returns to.
		svc := cleanup.Service{Described: d.svc, Rollback: history.RollbackCandidates(recs, keep)}
		if back := history.RollbackTarget(recs, bluegreen.RunningTaskDefinition(&d.svc)); back != "" && !slices.Contains(svc.Rollback, back) {
			svc.Rollback = append(svc.Rollback, back)
		}
		t.Services = append(t.Services, svc)
		published, err := r.published(ctx, c, d, recs)
		if err != nil {
			return cleanup.Result{Family: c.Family}, 0, err
		}
		t.Published = append(t.Published, published...)
	}
	cl := cleanup.New(client, r.Log)
	p, err := cl.Plan(ctx, t)
	if err != nil {
		return cleanup.Result{Family: c.Family}, 0, err
	}
	res, err := cl.Apply(ctx, t, p, b)
	if err != nil || res.Throttled || len(res.Left) > 0 || len(res.LeftToDelete) > 0 || len(p.Kept) == 0 {
		return res, 0, err
	}
	clean := p.Kept[0].Number
	if r.Marks == nil {
		return res, clean, nil
	}
	if err := r.Marks.MarkClean(ctx, MarkKey{Account: c.Account, Region: c.Region, Family: c.Family},
		// The settings the run kept and deleted under (the item's, narrowed
		// by this worker's rules): a sweep on other settings finds the mark
		// not clean and sends the family again, never the reverse.
		Mark{Revision: clean, Settings: MarkSettings(keep, del)}); err != nil {
		// The family is clean all the same; the next sweep sends it once
		// more and that run, finding nothing to do, marks it.
		r.Log.WarnContext(ctx, "cleanup: the family is clean but not marked so; the next sweep sends it again",
			"family", c.Family, "account", c.Account, "region", c.Region, "error", err.Error())
	}
	return res, clean, nil
}

// historyReach is how many of a service's latest records a run reads:
// enough to find keep completed deploys past failed ones, and the revision
// a rollback returns to (history.RollbackReach), at most 1,000.
func historyReach(keep int) int32 {
	return int32(min(max(history.RollbackReach, 2*keep), 1000))
}

// runsFamily reports whether svc runs or deploys a revision of family.
func runsFamily(svc *types.Service, family string) bool {
	return slices.ContainsFunc(revisionsOf(svc), func(rev string) bool {
		f, _ := ecsarn.FamilyRevision(rev)
		return f == family
	}) || ecsarn.Family(bluegreen.RunningTaskDefinition(svc)) == family
}

// describedService is one service of a cleanup as DescribeServices
// answered, and the role it was described and its parameters are read
// with.
type describedService struct {
	cluster, service, role string
	published              []string
	svc                    types.Service
}

// describe describes the command's services, ten to a call per cluster and
// role (each service's own, else the command's); a service ECS does not
// know runs nothing and is left out.
func (r *CleanupRunner) describe(ctx context.Context, client CleanupECS, c work.Cleanup) ([]describedService, error) {
	type batchKey struct{ role, cluster string }
	byCluster := map[batchKey][]work.CleanupService{}
	var clusters []batchKey
	for _, s := range c.Services {
		k := batchKey{c.RoleOf(s), s.Cluster}
		if _, ok := byCluster[k]; !ok {
			clusters = append(clusters, k)
		}
		if !slices.ContainsFunc(byCluster[k], func(o work.CleanupService) bool { return ecsarn.Name(o.Service) == ecsarn.Name(s.Service) }) {
			byCluster[k] = append(byCluster[k], s)
		}
	}
	var out []describedService
	for _, k := range clusters {
		cluster, svcs := k.cluster, byCluster[k]
		client := client
		if k.role != c.Role {
			client = r.ECS(c.Region, k.role)
		}
		for start := 0; start < len(svcs); start += 10 {
			batch := svcs[start:min(start+10, len(svcs))]
			names := make([]string, len(batch))
			for i, s := range batch {
				names[i] = ecsarn.Name(s.Service)
			}
			ans, err := client.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(cluster), Services: names})
			if err != nil {
				return nil, fmt.Errorf("clean-up of %s: describe services of cluster %s: %w", c.Family, cluster, err)
			}
			for _, f := range ans.Failures {
				r.Log.WarnContext(ctx, "cleanup: a service of the family is not found; it protects nothing",
					"family", c.Family, "cluster", cluster, "service", aws.ToString(f.Arn), "reason", aws.ToString(f.Reason))
			}
			for _, svc := range ans.Services {
				name := aws.ToString(svc.ServiceName)
				i := slices.IndexFunc(batch, func(s work.CleanupService) bool { return ecsarn.Name(s.Service) == name })
				if i < 0 || bluegreen.RunningTaskDefinition(&svc) == "" || aws.ToString(svc.Status) == "INACTIVE" {
					continue
				}
				out = append(out, describedService{cluster: cluster, service: name, role: k.role, published: batch[i].Published, svc: svc})
			}
		}
	}
	return out, nil
}

// published are the revisions the service's published parameters name:
// each parameter holds an image, and the revision that put it there is the
// one of the service's records that deployed that image (the running
// revision is protected anyway, whatever the parameter says).
func (r *CleanupRunner) published(ctx context.Context, c work.Cleanup, d describedService, recs []history.Record) ([]string, error) {
	if r.SSM == nil || len(d.published) == 0 {
		return nil, nil
	}
	client := r.SSM(c.Region, d.role)
	var out []string
	for _, name := range d.published {
		got, err := client.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
		var missing *ssmtypes.ParameterNotFound
		switch {
		case errors.As(err, &missing):
			continue
		case err != nil:
			return nil, fmt.Errorf("clean-up of %s: read %s: %w", c.Family, name, err)
		}
		image := aws.ToString(got.Parameter.Value)
		for _, rec := range recs {
			if rec.ToTaskDefinition != "" && imageOf(image, rec) {
				out = append(out, rec.ToTaskDefinition)
				break
			}
		}
	}
	return out, nil
}

// imageOf reports whether image is the one rec deployed, pinned by digest
// or by tag.
func imageOf(image string, rec history.Record) bool {
	if rec.Digest != "" && strings.HasSuffix(image, "@"+rec.Digest) {
		return true
	}
	return rec.Tag != "" && strings.HasSuffix(image, "/"+rec.Repository+":"+rec.Tag)
}

// markedClean reports whether the family is already marked clean under keep
// and del as of a revision no older than any its services run: an item
// queued beside another for the same family (two completions of one push,
// a completion's and a sweep's) finds the first one's work done and spends
// nothing.
func (r *CleanupRunner) markedClean(ctx context.Context, c work.Cleanup, keep int, del bool, described []describedService) (bool, error) {
	if r.Marks == nil {
		return false, nil
	}
	k := MarkKey{Account: c.Account, Region: c.Region, Family: c.Family}
	marks, err := r.Marks.Clean(ctx, []MarkKey{k})
	if err != nil {
		return false, fmt.Errorf("clean-up of %s: read its mark: %w", c.Family, err)
	}
	m, ok := marks[k]
	if !ok || m.Settings != MarkSettings(keep, del) {
		return false, nil
	}
	for _, d := range described {
		for _, rev := range revisionsOf(&d.svc) {
			if f, n := ecsarn.FamilyRevision(rev); f == c.Family && n > m.Revision {
				return false, nil
			}
		}
	}
	return true, nil
}
