// Package reconcile is the sweep: it brings every target of every rule to
// the newest image its rule selects in ECR, through the deployer's own path,
// so that no missed event, late stack or hand-made change leaves a service
// behind.
package reconcile

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/bluegreen"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/deploy"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecrevent"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecsarn"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/gate"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/metrics"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/taskdef"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work/queue"
)

// Outcomes of one target in a sweep.
const (
	InSync   = "in_sync"             // runs the newest image (or a newer one)
	Behind   = "behind"              // a dry run found it behind; a sweep deploys it
	Deployed = "deployed"            // the sweep deployed the newest image
	Skipped  = "skipped"             // held, the newest image failed there, nothing selected, or never downgrade
	Failed   = "failed"              // see the reason; "(will retry)" when transient
	Queued   = string(deploy.Queued) // behind, and handed to the work queue: the worker deploys it
)

// States reads services' state items (holds, failed digests, queued
// items) at once, and notes on one the item a sweep queued for it.
type States interface {
	States(ctx context.Context, serviceKeys []string) (map[string]history.ServiceState, error)
	NoteQueued(ctx context.Context, serviceKey string, q history.Queued) error
}

// Sweeper runs sweeps. It keeps task definitions it has described (they
// never change) for the sweeps that follow in the same process.
type Sweeper struct {
	Rules *rules.Config
	// ECR lists a registry's images, in its region, through role ("" for
	// the function's own credentials).
	ECR      func(region, role string) ECR
	ECS      func(region, role string) deploy.ECS
	States   States
	Deployer *deploy.Deployer
	Log      *slog.Logger
	Now      func() time.Time
	// SSM, when set, checks the published image of in-sync targets of rules
	// that publish, and writes it when missing or stale.
	SSM func(region, role string) ParameterStore
	// Cleanup, without a work queue, cleans up after the sweep's deploys
	// the families of the targets of rules with cleanup: (sweepcleanup.go);
	// CleanupQueue, with one, takes their cleanup items instead. Marks
	// says which families are clean. Unset: no clean-up.
	Cleanup      *CleanupRunner
	CleanupQueue CleanupSender
	Marks        CleanMarks

	mu       sync.Mutex
	taskDefs map[string]*ecs.DescribeTaskDefinitionOutput
	// clean is what the sweeper learnt of families clean (see knownClean);
	// cleanLast, per place, the family it last sent or ran a cleanup of
	// (see pickPerPlace).
	clean     map[MarkKey]Mark
	cleanLast map[rules.Place]string
}

// Line is what a sweep found and did for one target.
type Line struct {
	Rule         string `json:"rule"`
	Repository   string `json:"repository"`
	Account      string `json:"account"`
	Region       string `json:"region"`
	Cluster      string `json:"cluster"`
	Service      string `json:"service"`
	Running      string `json:"running,omitempty"` // image of the first chosen container
	RunningTag   string `json:"running_tag,omitempty"`
	NewestTag    string `json:"newest_tag,omitempty"`
	NewestDigest string `json:"newest_digest,omitempty"`
	Outcome      string `json:"outcome"`
	Reason       string `json:"reason,omitempty"`
	Retryable    bool   `json:"retryable,omitempty"`
	// Published is the state of the published image for a rule that
	// publishes: ok, written, missing or stale (dry run), or failed.
	Published string `json:"published,omitempty"`
	// State is the service's state item as the sweep read it.
	State history.ServiceState `json:"-"`
	// containers are the rule's containers of the service (its published
	// parameters', for a clean-up).
	containers []string
}

// Report is a sweep's answer.
type Report struct {
	EventID string `json:"event_id"`
	Lines   []Line `json:"targets"`
	Drift   int    `json:"drift"` // targets found behind
	// Waiting counts the targets behind that an earlier sweep queued for the
	// same digest, whose item may still be in the work queue: not queued
	// again (their lines say queued, and by which sweep).
	Waiting int `json:"waiting,omitempty"`
	// Cleanups counts the cleanup items the sweep queued (or, without a
	// work queue, the clean-ups it ran) after its deploys.
	Cleanups int `json:"cleanups,omitempty"`
}

// Options of one sweep.
type Options struct {
	EventID string
	// DryRun reports what is behind and deploys nothing.
	DryRun bool
	// ReadGates reads the gates without opening or ending any, and passes
	// only what they recorded (gate.ReadRecorded): a sweep that tells no one
	// (the CLI's) leaves asking for approvals and judging scans to the
	// deployer's, which notices them.
	ReadGates bool
}

// Sweep reconciles every target once. A transient failure anywhere makes it
// return an error after all targets were tried, so Lambda (or the next
// sweep) tries again; permanent failures are logged per target.
func (s *Sweeper) Sweep(ctx context.Context, o Options) (Report, error) {
	rep := Report{EventID: o.EventID}
	type job struct {
		rule   *rules.Rule
		target rules.Target
		index  int
	}
	var jobs []job
	var keys []string
	central := s.central()
	for _, r := range s.Rules.Rules {
		for i, t := range r.Targets {
			jobs = append(jobs, job{r, t, i})
			at := t.Where(central)
			keys = append(keys, history.ServiceKey(at.Account, at.Region, t.Cluster, t.Service))
		}
	}
	// The reads are independent: one round trip instead of three.
	var images map[repository]listing
	var services map[serviceRef]described
	var states map[string]history.ServiceState
	var stateErr error
	var reads errgroup.Group
	reads.Go(func() error { images = s.images(ctx, o); return nil })
	reads.Go(func() error { services = s.describeServices(ctx, o); return nil })
	reads.Go(func() error { states, stateErr = s.States.States(ctx, keys); return nil })
	_ = reads.Wait()

	// Targets go at once, as many as the deployer runs for one push: a sweep
	// after a stack's first deploy may find every target behind.
	rep.Lines = make([]Line, len(jobs))
	behind := make([]bool, len(jobs))
	later := make([]*handOver, len(jobs))
	waiting := make([]bool, len(jobs))
	gates := &verdicts{}
	var g errgroup.Group
	g.SetLimit(max(s.Deployer.Concurrency, 1))
	for i, j := range jobs {
		g.Go(func() error {
			list := images[repository{j.rule.RegistryOf(central), j.rule.Repository}]
			rep.Lines[i], behind[i], later[i] = s.target(ctx, o, deploy.Job{Rule: j.rule, Target: j.target, Index: j.index}, list, services, states, stateErr, gates)
			waiting[i] = behind[i] && later[i] == nil && rep.Lines[i].Outcome == Queued
			if later[i] == nil {
				s.log(ctx, o, rep.Lines[i])
			}
			return nil
		})
	}
	_ = g.Wait()
	s.handOver(ctx, o, rep.Lines, later)
	deployJobs := make([]deploy.Job, len(jobs))
	for i, j := range jobs {
		deployJobs[i] = deploy.Job{Rule: j.rule, Target: j.target, Index: j.index}
	}
	rep.Cleanups = s.cleanUp(ctx, o, deployJobs, services, rep.Lines)
	drift := map[string]int{}
	for i, j := range jobs {
		if behind[i] {
			drift[j.rule.Name]++
			rep.Drift++
		}
		if waiting[i] {
			rep.Waiting++
		}
	}
	if !o.DryRun {
		for _, r := range s.Rules.Rules {
			metrics.Emit(ctx, s.Log, s.now(), map[string]string{"rule": r.Name}, nil,
				metrics.Metric{Name: metrics.Drift, Unit: "Count", Value: float64(drift[r.Name])})
		}
	}
	var retry []string
	for _, l := range rep.Lines {
		if l.Retryable {
			retry = append(retry, fmt.Sprintf("%s/%s: %s", l.Cluster, l.Service, l.Reason))
		}
	}
	if len(retry) > 0 {
		return rep, fmt.Errorf("sweep %s: %d of %d targets failed transiently: %s", o.EventID, len(retry), len(rep.Lines), strings.Join(retry, "; "))
	}
	return rep, nil
}

// listing is a repository's images, or why they could not be listed.
type listing struct {
	images []rules.Image
	err    error
}

// repository is a repository in its registry.
type repository struct {
	registry rules.Place
	name     string
}

// images lists each rule's repository once, in the rule's registry.
func (s *Sweeper) images(ctx context.Context, o Options) map[repository]listing {
	central := s.central()
	out := map[repository]listing{}
	for _, r := range s.Rules.Rules {
		repo := repository{r.RegistryOf(central), r.Repository}
		if _, done := out[repo]; done {
			continue
		}
		imgs, err := listImages(ctx, s.ECR(repo.registry.Region, r.RegistryRole(central)), repo.name)
		out[repo] = listing{imgs, err}
	}
	return out
}

// central is where the functions run, which rules default to.
func (s *Sweeper) central() rules.Place { return s.Deployer.Central }

// serviceRef names a service as DescribeServices is asked: per account,
// region, role and cluster.
type serviceRef struct{ account, region, role, cluster, service string }

type described struct {
	svc *types.Service
	err error
}

// describeServices describes every target's service, ten to a call per
// cluster, as DescribeServices allows.
func (s *Sweeper) describeServices(ctx context.Context, o Options) map[serviceRef]described {
	type group struct{ account, region, role, cluster string }
	groups := map[group][]string{}
	var order []group
	central := s.central()
	for _, r := range s.Rules.Rules {
		for _, t := range r.Targets {
			at := t.Where(central)
			// With a work queue the intake's sweep role, which deploys
			// nothing; in-process the deploy role (deploy.Deployer.ReadRole).
			g := group{at.Account, at.Region, s.Deployer.ReadRole(t), t.Cluster}
			if _, ok := groups[g]; !ok {
				order = append(order, g)
			}
			if name := ecsarn.Name(t.Service); !slices.Contains(groups[g], name) {
				groups[g] = append(groups[g], name)
			}
		}
	}
	out := map[serviceRef]described{}
	var mu sync.Mutex
	var batches errgroup.Group
	batches.SetLimit(max(s.Deployer.Concurrency, 1))
	for _, g := range order {
		names := groups[g]
		for start := 0; start < len(names); start += 10 {
			batch := names[start:min(start+10, len(names))]
			batches.Go(func() error {
				res, err := s.ECS(g.region, g.role).DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(g.cluster), Services: batch})
				mu.Lock()
				defer mu.Unlock()
				noteDescribed(out, serviceRef{account: g.account, region: g.region, role: g.role, cluster: g.cluster}, batch, res, err)
				return nil
			})
		}
	}
	_ = batches.Wait()
	return out
}

// noteDescribed files one DescribeServices answer (or its error) by
// service: a name it does not return is not found.
func noteDescribed(out map[serviceRef]described, at serviceRef, batch []string, res *ecs.DescribeServicesOutput, err error) {
	for _, name := range batch {
		ref := at
		ref.service = name
		if err != nil {
			out[ref] = described{err: fmt.Errorf("describe services of cluster %s: %w", at.cluster, err)}
		} else {
			out[ref] = described{err: deploy.Permanent("service %s not found in cluster %s", name, at.cluster)}
		}
	}
	if err != nil {
		return
	}
	for i := range res.Services {
		ref := at
		ref.service = aws.ToString(res.Services[i].ServiceName)
		out[ref] = described{svc: &res.Services[i], err: deploy.CheckService(&res.Services[i], at.cluster, ref.service)}
	}
	for _, f := range res.Failures {
		ref := at
		ref.service = ecsarn.Name(aws.ToString(f.Arn))
		out[ref] = described{err: deploy.Permanent("service %s not found in cluster %s (%s)", ref.service, at.cluster, aws.ToString(f.Reason))}
	}
}

// handOver is a target behind, for a work queue: its job, the push that
// deploys it and its service's key.
type handOver struct {
	push ecrevent.Push
	job  deploy.Job
	key  string
}

// handOver dispatches the targets found behind for a work queue, one
// Dispatch per push (a rule and its newest digest), so the queue sends them
// ten to a call rather than one call per target, and writes each result
// into its target's line, then logs the line. Each target queued is noted
// on its service's state item (one UpdateItem), so the next sweeps leave it
// alone while its item may still wait in the queue (queue.RetrySpan).
func (s *Sweeper) handOver(ctx context.Context, o Options, lines []Line, later []*handOver) {
	type push struct{ rule, digest string }
	groups := map[push][]int{}
	var order []push
	for i, h := range later {
		if h == nil {
			continue
		}
		k := push{h.job.Rule.Name, h.push.Digest}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], i)
	}
	var g errgroup.Group
	g.SetLimit(max(s.Deployer.Concurrency, 1))
	for _, k := range order {
		idx := groups[k]
		g.Go(func() error {
			jobs := make([]deploy.Job, len(idx))
			for n, i := range idx {
				jobs[n] = later[i].job
			}
			sum, err := s.Deployer.Dispatch(ctx, later[idx[0]].push, jobs)
			for n, i := range idx {
				l := &lines[i]
				if len(sum.Results) != len(jobs) {
					l.Outcome, l.Retryable = Failed, true
					l.Reason = fmt.Sprintf("dispatch of %d targets of rule %s answered %d results (%v) (will retry)", len(jobs), k.rule, len(sum.Results), err)
				} else {
					res := sum.Results[n]
					l.Outcome, l.Reason, l.Retryable, l.Published = string(res.Outcome), res.Reason, res.Retryable, res.Published
				}
				s.log(ctx, o, *l)
			}
			s.noteQueued(ctx, o, lines, later, idx)
			return nil
		})
	}
	_ = g.Wait()
}

// noteQueued notes on each queued target's state item that this sweep
// queued it, at once within the deployer's concurrency. A note that fails
// is logged, not retried: the item is queued all the same, and the next
// sweep at worst queues a second one, which the worker finds deployed.
func (s *Sweeper) noteQueued(ctx context.Context, o Options, lines []Line, later []*handOver, idx []int) {
	var g errgroup.Group
	g.SetLimit(max(s.Deployer.Concurrency, 1))
	at := s.now()
	for _, i := range idx {
		if lines[i].Outcome != Queued {
			continue
		}
		h := later[i]
		g.Go(func() error {
			q := history.Queued{Digest: h.push.Digest, At: at, By: o.EventID}
			if err := s.States.NoteQueued(ctx, h.key, q); err != nil {
				s.Log.WarnContext(ctx, "reconcile: the queued item is not noted; the next sweep may queue it again",
					"rule", lines[i].Rule, "cluster", lines[i].Cluster, "service", lines[i].Service, "error", err, "event_id", o.EventID)
			}
			return nil
		})
	}
	_ = g.Wait()
}

// target decides and, if behind, deploys one target; behind says whether it
// was found behind the newest image. With a work queue, a target behind is
// not dispatched here: later is its job, for handOver to send with the
// others of its push, and the line's outcome is handOver's to write.
func (s *Sweeper) target(ctx context.Context, o Options, j deploy.Job, list listing,
	services map[serviceRef]described, states map[string]history.ServiceState, stateErr error, gates *verdicts) (line Line, behind bool, later *handOver) {
	r, t := j.Rule, j.Target
	central := s.central()
	at, role, registry := t.Where(central), s.Deployer.ReadRole(t), r.RegistryOf(central)
	acct, region := at.Account, at.Region
	line = Line{Rule: r.Name, Repository: r.Repository, Account: acct, Region: region, Cluster: t.Cluster, Service: t.Service}
	fail := func(err error) (Line, bool, *handOver) {
		line.Outcome, line.Reason, line.Retryable = Failed, err.Error(), !deploy.IsPermanent(err)
		if line.Retryable {
			line.Reason += " (will retry)"
		}
		return line, behind, nil
	}
	switch {
	case list.err != nil && repositoryMissing(list.err):
		return fail(deploy.Permanent("repository %s does not exist in %s", r.Repository, registry))
	case list.err != nil:
		return fail(list.err)
	case stateErr != nil:
		return fail(stateErr)
	}
	newest, ok := r.Newest(list.images)
	if !ok {
		line.Outcome, line.Reason = Skipped, fmt.Sprintf("rule %s selects no image in repository %s (%s)", r.Name, r.Repository, r.Selector())
		return line, false, nil
	}
	line.NewestTag, line.NewestDigest = newest.Tag, newest.Digest
	key := history.ServiceKey(acct, region, t.Cluster, t.Service)
	line.State = states[key]
	d := services[serviceRef{acct, region, role, t.Cluster, ecsarn.Name(t.Service)}]
	if d.svc == nil && d.err == nil {
		d.err = deploy.Permanent("service %s not described", t.Service)
	}
	if d.err != nil {
		return fail(d.err)
	}
	td, err := s.taskDefinition(ctx, region, role, bluegreen.RunningTaskDefinition(d.svc))
	if err != nil {
		return fail(err)
	}
	push := ecrevent.Push{EventID: EventID(newest.Digest), Account: registry.Account, Region: registry.Region, Time: newest.PushedAt,
		Repository: r.Repository, Tag: newest.Tag, Digest: newest.Digest}
	plan, err := deploy.PlanFrom(d.svc, td, push, r, t)
	line.containers = plan.Containers
	if len(plan.Containers) > 0 {
		line.Running = taskdef.Image(td.TaskDefinition, plan.Containers[0])
		line.RunningTag, _ = taskdef.Recorded(td.Tags, plan.Containers[0])
	}
	if err != nil {
		return fail(err)
	}
	// Whatever the sweep leaves as it is, the published image must say what
	// runs: after ECS's or an operator's rollback it names the image rolled
	// back from until a sweep puts it right.
	stay := func(outcome, reason string) (Line, bool, *handOver) {
		line.Outcome, line.Reason = outcome, reason
		if err := s.checkPublished(ctx, o, r, t, td, plan.Containers, &line); err != nil {
			return fail(err)
		}
		return line, false, nil
	}
	// The deployer's own decision: a hold is said whatever runs; a failed
	// digest only matters to a target it would move.
	blocked := deploy.Blocked(line.State, newest.Digest)
	switch {
	case line.State.Hold != nil:
		return stay(Skipped, blocked)
	case plan.Register == nil && plan.Refused:
		return stay(Skipped, plan.Skip) // it runs what the rule orders after the newest listed
	case plan.Register == nil:
		return stay(InSync, plan.Skip)
	case blocked != "":
		return stay(Skipped, blocked)
	}
	// A rule's gates hold what they have not let through: it is not
	// drift, and it registers nothing.
	if gate.GatedBeforeDeploy(r) {
		v, err := s.admit(ctx, o, gates, r, push)
		if err != nil {
			return fail(err)
		}
		if !v.Pass {
			return stay(Skipped, deploy.GateReason(v))
		}
	}
	behind = true
	if o.DryRun {
		line.Outcome, line.Reason = Behind, "would deploy "+plan.Image
		return line, behind, nil
	}
	if s.Deployer.Queued() { // a work queue deploys it; else the sweep, now
		// An earlier sweep's item for this digest may still be in the
		// queue (a drain of 1,000 targets outlasts reconcile.every): one
		// item is enough.
		if q := line.State.Queued; q.Waiting(newest.Digest, s.now(), queue.RetrySpan) {
			line.Outcome, line.Reason = Queued, fmt.Sprintf("already %s, not queued again while its item may wait in the work queue", q)
			return line, behind, nil
		}
		line.Outcome, line.Reason = Behind, "to be queued"
		return line, behind, &handOver{push: push, job: j, key: key}
	}
	// In-process, through the deployer's dispatcher as a push goes, now.
	sum, err := s.Deployer.Dispatch(ctx, push, []deploy.Job{j})
	if len(sum.Results) != 1 {
		return fail(fmt.Errorf("dispatch of %s/%s answered %d results (%v)", t.Cluster, t.Service, len(sum.Results), err))
	}
	res := sum.Results[0]
	line.Outcome, line.Reason, line.Retryable, line.Published = string(res.Outcome), res.Reason, res.Retryable, res.Published
	return line, behind, nil
}

// EventID names a sweep's deploy of one digest: stable across sweeps, so a
// permanent failure of it is reported once, and a retry finds the revision
// an earlier sweep registered for it.
func EventID(digest string) string {
	hex := strings.TrimPrefix(digest, "sha256:")
	return deploy.SweepEventPrefix + hex[:min(12, len(hex))]
}

// taskDefinition describes a task definition (with tags) once per process.
func (s *Sweeper) taskDefinition(ctx context.Context, region, role, arn string) (*ecs.DescribeTaskDefinitionOutput, error) {
	s.mu.Lock()
	td, ok := s.taskDefs[arn]
	s.mu.Unlock()
	if ok {
		return td, nil
	}
	td, err := s.ECS(region, role).DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(arn),
		Include: []types.TaskDefinitionField{types.TaskDefinitionFieldTags}})
	if err != nil {
		return nil, fmt.Errorf("describe task definition %s: %w", arn, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.taskDefs == nil || len(s.taskDefs) >= maxCachedTaskDefs {
		s.taskDefs = map[string]*ecs.DescribeTaskDefinitionOutput{}
	}
	s.taskDefs[arn] = td
	return td, nil
}

// maxCachedTaskDefs bounds the cache: well above the targets of any rules
// file, and small (a few KB each).
const maxCachedTaskDefs = 2000

func (s *Sweeper) log(ctx context.Context, o Options, l Line) {
	level := slog.LevelInfo
	if l.Outcome == Failed {
		level = slog.LevelError
	}
	s.Log.Log(ctx, level, "reconcile", "rule", l.Rule, "repository", l.Repository, "cluster", l.Cluster, "service", l.Service,
		"newest_tag", l.NewestTag, "newest_digest", l.NewestDigest, "outcome", l.Outcome, "reason", l.Reason,
		"dry_run", o.DryRun, "event_id", o.EventID)
}

func (s *Sweeper) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

// Scheduled reads EventBridge's "Scheduled Event", the stack's call for a
// sweep: ok is false for any other event.
func Scheduled(raw []byte) (o Options, ok bool) {
	var ev struct {
		ID         string `json:"id"`
		Source     string `json:"source"`
		DetailType string `json:"detail-type"`
	}
	if json.Unmarshal(raw, &ev) != nil || ev.Source != "aws.events" || ev.DetailType != "Scheduled Event" {
		return Options{}, false
	}
	return Options{EventID: ev.ID}, true
}
