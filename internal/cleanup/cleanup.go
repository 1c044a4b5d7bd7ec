// Package cleanup deregisters (and optionally deletes) old revisions of a
// task-definition family without ever breaking a rollback: everything
// beyond the newest Keep revisions goes, except, for every service known
// to run the family (several services can share one: staging and prod both
// on web), the revisions it runs or an active deployment or task set of it
// uses, its rollback candidates and the revision just before the one it
// runs; and the revisions published parameters name and the newest
// revision the product did not register (see docs/decisions.md, "Old
// revisions").
//
// Deregistering spends ECS's RegisterTaskDefinition bucket (20 burst, 1 per
// second per account and region), which deploys need: a Run spends at most
// a Budget of calls, deregisters one revision per call, and stops at the
// first throttle, leaving the rest to the next run.
package cleanup

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/bluegreen"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecsarn"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// ecsAPI is what clean-up needs of ECS.
type ecsAPI interface {
	ListTaskDefinitions(ctx context.Context, in *ecs.ListTaskDefinitionsInput, optFns ...func(*ecs.Options)) (*ecs.ListTaskDefinitionsOutput, error)
	DescribeTaskDefinition(ctx context.Context, in *ecs.DescribeTaskDefinitionInput, optFns ...func(*ecs.Options)) (*ecs.DescribeTaskDefinitionOutput, error)
	DeregisterTaskDefinition(ctx context.Context, in *ecs.DeregisterTaskDefinitionInput, optFns ...func(*ecs.Options)) (*ecs.DeregisterTaskDefinitionOutput, error)
	DeleteTaskDefinitions(ctx context.Context, in *ecs.DeleteTaskDefinitionsInput, optFns ...func(*ecs.Options)) (*ecs.DeleteTaskDefinitionsOutput, error)
}

// MaxDeletePerCall is DeleteTaskDefinitions' limit of revisions per call.
const MaxDeletePerCall = 10

// oneAttempt makes a call on the register bucket once, whatever the
// client's retries: a throttle there means the bucket is empty (a retry
// would spend what refills on clean-up, not on the deploys), and "Too many
// concurrent attempts" means a deploy is registering in the family (a retry
// would race it). Either ends the run; the next run re-lists.
func oneAttempt(o *ecs.Options) { o.RetryMaxAttempts = 1 }

// listPageSize is ListTaskDefinitions' largest page.
const listPageSize = 100

// Target is one family to clean up, with what protects its revisions:
// the union of what every service of Services protects. Every revision may
// be given as an ARN or as family:revision.
type Target struct {
	// Family is the task-definition family; empty: the revision the first
	// service runs is of it.
	Family string
	Keep   int
	// Delete also deletes deregistered (INACTIVE) revisions.
	Delete bool
	// Services are every service known to run the family (or to have run
	// it: a rollback of it may return there), in any cluster, account or
	// region of this place. A revision one of them needs is never a
	// candidate, whichever service's deploy or sweep asked for the run; a
	// service left out is protected only by the newest Keep. At least one.
	Services []Service
	// Published are the revisions published parameters name.
	Published []string
	// SweepInactive lists INACTIVE revisions to delete (with Delete) even
	// when this run deregistered none, to finish a delete a throttle cut
	// short; without it they are listed only after a deregistration.
	SweepInactive bool
}

// Service is one service of the family and its rollback candidates.
type Service struct {
	// Described is the caller's DescribeServices answer for the service:
	// its running revision, its deployments' and task sets' revisions, and
	// the newest ACTIVE one before its running one stay.
	Described types.Service
	// Rollback are the revisions a rollback of this service could return
	// to: the last Keep the product deployed there, from history (each
	// deploy's from and to).
	Rollback []string
}

// Kept reasons: why a revision beyond the newest Keep stays ACTIVE.
const (
	ReasonNewest     = "newest"
	ReasonRunning    = "running"
	ReasonDeployment = "deployment"
	ReasonTaskSet    = "task set"
	ReasonRollback   = "rollback candidate"
	ReasonPublished  = "published"
	ReasonPrevious   = "before the running one"
	// ReasonForeign is the newest revision without autodeploy tags beyond
	// the newest Keep: made by hand or by IaC, whose state names it.
	ReasonForeign = "not registered by autodeploy"
)

// Revision is one revision of the family.
type Revision struct {
	ARN    string
	Number int
}

// Kept is a revision that stays, with why.
type Kept struct {
	Revision
	Reasons []string
}

// Plan is what a run would do, from one listing of the family's ACTIVE
// revisions (one ListTaskDefinitions call up to 100 revisions).
type Plan struct {
	Family string
	Keep   int
	// Active counts the family's ACTIVE revisions.
	Active int
	// Kept are the revisions that stay, newest first.
	Kept []Kept
	// Candidates are the revisions a run would deregister, newest first —
	// but for the newest of them without autodeploy tags, which a run keeps
	// (ReasonForeign; it reads tags only as it goes).
	Candidates []Revision
}

// Outcomes of a cleanup log line.
const (
	OutcomeDeregistered = "deregistered"
	OutcomeDeleted      = "deleted"
	OutcomeDeleteFailed = "delete refused"
	OutcomeKept         = "kept"
	OutcomeThrottled    = "throttled"
	OutcomeFailed       = "failed"
)

// Result is what a run did and left.
type Result struct {
	Family       string
	Deregistered []string // family:revision, in the order done
	Deleted      []string
	// Foreign is the revision kept as the newest not registered by the
	// product, "" when none was met.
	Foreign string
	// Left are the candidates not deregistered (budget spent or throttled),
	// LeftToDelete the INACTIVE revisions not deleted; the next run goes on.
	Left         []string
	LeftToDelete []string
	Throttled    bool
}

// Budget is how many calls clean-up may spend on ECS's register bucket
// (DeregisterTaskDefinition) and DeleteTaskDefinitions in one sweep of one
// account and region; runs of several families share it. Once a run meets
// a throttle, the budget is spent: the bucket is the place's, not the
// family's, and deploys come first.
type Budget struct {
	left      int
	throttled bool
}

// NewBudget allows n calls.
func NewBudget(n int) *Budget { return &Budget{left: n} }

// Left is how many calls remain (0 once throttled).
func (b *Budget) Left() int {
	if b.throttled {
		return 0
	}
	return b.left
}

// Throttled reports whether a run on this budget met a throttle.
func (b *Budget) Throttled() bool { return b.throttled }

func (b *Budget) take() bool {
	if b.Left() <= 0 {
		return false
	}
	b.left--
	return true
}

// Cleaner cleans families up through one ECS client (one place).
type Cleaner struct {
	ecs ecsAPI
	log *slog.Logger
}

// New returns a Cleaner; every action is a msg="cleanup" line on log.
func New(client ecsAPI, log *slog.Logger) *Cleaner {
	return &Cleaner{ecs: client, log: log}
}

// Plan lists the family's ACTIVE revisions and decides which stay.
func (c *Cleaner) Plan(ctx context.Context, t Target) (Plan, error) {
	if len(t.Services) == 0 {
		return Plan{}, errors.New("clean-up: no service of the family is known; refusing to clean it")
	}
	for _, s := range t.Services {
		if runningOf(s) == "" {
			return Plan{}, fmt.Errorf("clean-up: %s: the service's running task definition is not known; refusing to clean its family", serviceName(s.Described))
		}
	}
	family := t.Family
	if family == "" {
		family, _ = ecsarn.FamilyRevision((runningOf(t.Services[0])))
	}
	if t.Keep < rules.MinCleanupKeep {
		return Plan{}, fmt.Errorf("clean-up of %s: keep %d is below %d (the running revision and one to roll back to)", family, t.Keep, rules.MinCleanupKeep)
	}
	active, err := c.list(ctx, family, types.TaskDefinitionStatusActive)
	if err != nil {
		return Plan{}, err
	}
	return decide(family, t, active), nil
}

// runningOf is the revision the service runs: its task definition, or a
// CodeDeploy-controlled service's PRIMARY task set's when it has none (as
// the deploy path, the sweep and the CLI read it).
func runningOf(s Service) string { return bluegreen.RunningTaskDefinition(&s.Described) }

// decide is the plan for the family's ACTIVE revisions (newest first):
// what any of the target's services needs stays.
func decide(family string, t Target, active []Revision) Plan {
	protect := map[string][]string{}
	add := func(reason string, revs ...string) {
		for _, r := range revs {
			if n := ecsarn.Revision(r); n != "" && !slices.Contains(protect[n], reason) {
				protect[n] = append(protect[n], reason)
			}
		}
	}
	// One reason at a time over every service, so a revision's reasons
	// read in the same order whoever needs it.
	for _, s := range t.Services {
		add(ReasonRunning, runningOf(s))
	}
	for _, s := range t.Services {
		for _, d := range s.Described.Deployments {
			add(ReasonDeployment, aws.ToString(d.TaskDefinition))
		}
	}
	for _, s := range t.Services {
		for _, ts := range s.Described.TaskSets {
			add(ReasonTaskSet, aws.ToString(ts.TaskDefinition))
		}
	}
	for _, s := range t.Services {
		add(ReasonRollback, s.Rollback...)
	}
	add(ReasonPublished, t.Published...)
	for _, s := range t.Services {
		fam, n := ecsarn.FamilyRevision((runningOf(s)))
		if fam != family {
			continue
		}
		for _, r := range active {
			if r.Number < n {
				add(ReasonPrevious, r.ARN)
				break
			}
		}
	}
	p := Plan{Family: family, Keep: t.Keep, Active: len(active)}
	for i, r := range active {
		reasons := protect[ecsarn.Revision(r.ARN)]
		if i < t.Keep {
			reasons = append([]string{ReasonNewest}, reasons...)
		}
		if len(reasons) > 0 {
			p.Kept = append(p.Kept, Kept{Revision: r, Reasons: reasons})
		} else {
			p.Candidates = append(p.Candidates, r)
		}
	}
	return p
}

// Run plans and carries the plan out within budget: candidates newest
// first, one DeregisterTaskDefinition each, reading a candidate's tags
// (DescribeTaskDefinition, another bucket) only until the newest one the
// product did not register is found and kept. With Delete, the family's
// INACTIVE revisions are then deleted, ten per call. It stops at the first
// throttle, with the budget marked spent, and returns what is left; any
// other error stops it too and is returned beside the result so far.
func (c *Cleaner) Run(ctx context.Context, t Target, b *Budget) (Result, error) {
	p, err := c.Plan(ctx, t)
	if err != nil {
		return Result{}, err
	}
	return c.Apply(ctx, t, p, b)
}

// Apply carries out a plan made for t (see Run).
func (c *Cleaner) Apply(ctx context.Context, t Target, p Plan, b *Budget) (Result, error) {
	res := Result{Family: p.Family}
	foreignFound := false
	for i, r := range p.Candidates {
		rev := ecsarn.Revision(r.ARN)
		if b.Left() <= 0 {
			res.Left = names(p.Candidates[i:])
			break
		}
		if !foreignFound {
			out, err := c.ecs.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{
				TaskDefinition: aws.String(r.ARN), Include: []types.TaskDefinitionField{types.TaskDefinitionFieldTags},
			})
			if err != nil {
				res.Left = names(p.Candidates[i:])
				return c.stopped(ctx, res, b, err, "describe "+rev)
			}
			if !byProduct(out.Tags) {
				foreignFound, res.Foreign = true, rev
				c.logLine(ctx, p.Family, []string{rev}, OutcomeKept, ReasonForeign)
				continue
			}
		}
		b.take()
		if _, err := c.ecs.DeregisterTaskDefinition(ctx, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String(r.ARN)}, oneAttempt); err != nil {
			res.Left = names(p.Candidates[i:])
			return c.stopped(ctx, res, b, err, "deregister "+rev)
		}
		res.Deregistered = append(res.Deregistered, rev)
		c.logLine(ctx, p.Family, []string{rev}, OutcomeDeregistered, "")
	}
	if !t.Delete || (len(res.Deregistered) == 0 && !t.SweepInactive) {
		return res, nil
	}
	return c.delete(ctx, t, p, b, res)
}

// delete deletes the family's INACTIVE revisions, ten per call; one any of
// the services still runs or deploys stays.
func (c *Cleaner) delete(ctx context.Context, t Target, p Plan, b *Budget, res Result) (Result, error) {
	inactive, err := c.list(ctx, p.Family, types.TaskDefinitionStatusInactive)
	if err != nil {
		return res, err
	}
	slices.Reverse(inactive) // oldest first
	var todo []string
	for _, r := range inactive {
		if rev := ecsarn.Revision(r.ARN); !slices.ContainsFunc(t.Services, func(s Service) bool { return inUse(s.Described, rev) }) {
			todo = append(todo, rev)
		}
	}
	for len(todo) > 0 {
		if !b.take() {
			res.LeftToDelete = todo
			return res, nil
		}
		batch := todo[:min(MaxDeletePerCall, len(todo))]
		out, err := c.ecs.DeleteTaskDefinitions(ctx, &ecs.DeleteTaskDefinitionsInput{TaskDefinitions: batch}, oneAttempt)
		if err != nil {
			res.LeftToDelete = todo
			return c.stopped(ctx, res, b, err, "delete "+strings.Join(batch, ", "))
		}
		refused := map[string]bool{}
		for _, f := range out.Failures {
			rev := ecsarn.Revision(aws.ToString(f.Arn))
			refused[rev] = true
			c.logLine(ctx, p.Family, []string{rev}, OutcomeDeleteFailed, aws.ToString(f.Reason))
		}
		var deleted []string
		for _, rev := range batch {
			if !refused[rev] {
				deleted = append(deleted, rev)
			}
		}
		if len(deleted) > 0 {
			res.Deleted = append(res.Deleted, deleted...)
			c.logLine(ctx, p.Family, deleted, OutcomeDeleted, "")
		}
		todo = todo[len(batch):]
	}
	return res, nil
}

// inUse reports whether the service runs rev or a deployment or task set
// uses it (a service can run an INACTIVE revision).
func inUse(svc types.Service, rev string) bool {
	if ecsarn.Revision(aws.ToString(svc.TaskDefinition)) == rev {
		return true
	}
	for _, d := range svc.Deployments {
		if ecsarn.Revision(aws.ToString(d.TaskDefinition)) == rev {
			return true
		}
	}
	for _, ts := range svc.TaskSets {
		if ecsarn.Revision(aws.ToString(ts.TaskDefinition)) == rev {
			return true
		}
	}
	return false
}

// serviceName names a service for an error: its ARN, else its name.
func serviceName(svc types.Service) string {
	return cmp.Or(aws.ToString(svc.ServiceArn), aws.ToString(svc.ServiceName), "(unnamed)")
}

// stopped ends a run at a failed call: a throttle spends the budget and is
// no error (the next run goes on); anything else is returned.
func (c *Cleaner) stopped(ctx context.Context, res Result, b *Budget, err error, what string) (Result, error) {
	if Throttle(err) {
		b.throttled, res.Throttled = true, true
		c.logLine(ctx, res.Family, leftOf(res), OutcomeThrottled, what)
		return res, nil
	}
	c.logLine(ctx, res.Family, leftOf(res), OutcomeFailed, what+": "+err.Error())
	return res, fmt.Errorf("clean-up of %s: %s: %w", res.Family, what, err)
}

func leftOf(res Result) []string {
	if len(res.LeftToDelete) > 0 {
		return res.LeftToDelete
	}
	return res.Left
}

func (c *Cleaner) logLine(ctx context.Context, family string, revisions []string, outcome, detail string) {
	attrs := []any{"family", family, "revisions", revisionNumbers(revisions), "outcome", outcome}
	if detail != "" {
		attrs = append(attrs, "detail", detail)
	}
	c.log.InfoContext(ctx, "cleanup", attrs...)
}

// revisionNumbers are the revisions' numbers, as the log line holds them.
func revisionNumbers(revs []string) []int {
	out := make([]int, 0, len(revs))
	for _, r := range revs {
		_, n := ecsarn.FamilyRevision(r)
		out = append(out, n)
	}
	return out
}

// Throttle reports whether err is ECS refusing for rate: a throttle (the
// SDK's own list of throttling codes, which internal/awsenv's retryer
// limits by), or concurrent revisions of one family (a deploy
// registering beside us, awsenv.IsConcurrentRevision).
func Throttle(err error) bool {
	return retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err) == aws.TrueTernary || awsenv.IsConcurrentRevision(err)
}

// list returns the family's revisions of one status, newest first.
// familyPrefix matches every family it begins (web matches web-worker), so
// only the exact family is kept.
func (c *Cleaner) list(ctx context.Context, family string, status types.TaskDefinitionStatus) ([]Revision, error) {
	var out []Revision
	in := &ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String(family), Status: status, MaxResults: aws.Int32(listPageSize)}
	for {
		page, err := c.ecs.ListTaskDefinitions(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("clean-up of %s: list its %s revisions: %w", family, strings.ToLower(string(status)), err)
		}
		for _, a := range page.TaskDefinitionArns {
			if f, n := ecsarn.FamilyRevision((a)); f == family && n > 0 {
				out = append(out, Revision{ARN: a, Number: n})
			}
		}
		if aws.ToString(page.NextToken) == "" {
			break
		}
		in.NextToken = page.NextToken
	}
	slices.SortFunc(out, func(a, b Revision) int { return cmp.Compare(b.Number, a.Number) })
	return slices.CompactFunc(out, func(a, b Revision) bool { return a.Number == b.Number }), nil
}

// byProduct reports whether a revision's tags say autodeploy registered it.
func byProduct(tags []types.Tag) bool {
	return slices.ContainsFunc(tags, func(t types.Tag) bool { return strings.HasPrefix(aws.ToString(t.Key), "autodeploy:") })
}

func names(revs []Revision) []string {
	out := make([]string, len(revs))
	for i, r := range revs {
		out[i] = ecsarn.Revision(r.ARN)
	}
	return out
}
