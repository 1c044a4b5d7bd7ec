// Package deploy rolls the ECS services matched by a pushed image: per
// target, under a per-service lock, it registers the running task definition
// with only the chosen images changed and points the service at it.
package deploy

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"golang.org/x/sync/errgroup"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/bluegreen"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecrevent"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/gate"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/metrics"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/notify"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rollout"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/taskdef"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/text"
)

// ECS is the part of the ECS API a deploy uses.
type ECS interface {
	DescribeServices(ctx context.Context, in *ecs.DescribeServicesInput, optFns ...func(*ecs.Options)) (*ecs.DescribeServicesOutput, error)
	DescribeTaskDefinition(ctx context.Context, in *ecs.DescribeTaskDefinitionInput, optFns ...func(*ecs.Options)) (*ecs.DescribeTaskDefinitionOutput, error)
	RegisterTaskDefinition(ctx context.Context, in *ecs.RegisterTaskDefinitionInput, optFns ...func(*ecs.Options)) (*ecs.RegisterTaskDefinitionOutput, error)
	UpdateService(ctx context.Context, in *ecs.UpdateServiceInput, optFns ...func(*ecs.Options)) (*ecs.UpdateServiceOutput, error)
}

// Services locks a service by its key and reads its state in the same call;
// the lock's Finish records the deploy and unlocks in one call more.
type Services interface {
	Take(ctx context.Context, serviceKey, holder string) (history.Held, error)
}

// Notifier tells people about a target that was not deployed.
type Notifier interface {
	Notify(ctx context.Context, n notify.Notice) error
}

// Outcome of one target.
type Outcome string

const (
	Deployed Outcome = "deployed"
	Skipped  Outcome = "skipped"
	Failed   Outcome = "failed"
	// Queued: the target was handed to a work queue; the worker deploys it
	// and logs its own outcome then.
	Queued Outcome = "queued"
)

// Result is what happened to one target of one event.
type Result struct {
	Rule         string   `json:"rule"`
	Account      string   `json:"account"`
	Region       string   `json:"region"`
	Cluster      string   `json:"cluster"`
	Service      string   `json:"service"`
	Containers   []string `json:"containers,omitempty"`
	From         string   `json:"from_task_definition,omitempty"`
	To           string   `json:"to_task_definition,omitempty"`
	DeploymentID string   `json:"deployment_id,omitempty"`
	// Rollout is the service's kind of rollout (rollout.Kind's String),
	// for a target the deploy path described.
	Rollout string `json:"rollout,omitempty"`
	// ServiceDeploymentARN is, for an ECS-native rollout, the service
	// deployment UpdateService's answer named (a hint the watcher checks).
	ServiceDeploymentARN string  `json:"service_deployment_arn,omitempty"`
	Outcome              Outcome `json:"outcome"`
	Reason               string  `json:"reason,omitempty"`
	Retryable            bool    `json:"retryable,omitempty"`
	DurationMillis       int64   `json:"duration_ms"`
	// Image is the reference deployed (or found running), as the task
	// definition holds it.
	Image string `json:"image,omitempty"`
	// Published is "written" or "failed" for a rule that publishes the
	// running image, when this deploy wrote (or tried to write) it.
	Published string `json:"published,omitempty"`

	// republish: this event deployed the running image, but a retry is
	// under way, so its publishing may have failed: publish again.
	republish bool
	// ownRevision: skipped as the running revision is the one this very
	// event registered (a redelivery): its deployment ends in the watcher.
	ownRevision bool
}

// Summary is the function's answer for one event.
type Summary struct {
	EventID string   `json:"event_id,omitempty"`
	Ignored string   `json:"ignored,omitempty"`
	Results []Result `json:"results,omitempty"`
}

// Deployer handles ECR push events.
type Deployer struct {
	Rules *rules.Config
	// Central is where the functions run: rules default registries and
	// targets to it.
	Central  rules.Place
	ECS      func(region, role string) ECS
	Services Services
	Log      *slog.Logger
	// Notifier, when set, is told of every permanent failure: those are not
	// retried, so a person has to act.
	Notifier Notifier
	// SSM, when set, publishes running images for rules that ask (publish).
	SSM func(region, role string) SSM
	// CodeDeploy deploys blue/green services (the CODE_DEPLOY controller).
	CodeDeploy func(region, role string) bluegreen.CodeDeploy
	// Concurrency bounds the targets of one event deployed at once.
	Concurrency int
	// Dispatcher, when set, takes the targets of a push or sweep (a work
	// queue); unset, the deployer rolls them itself, in-process.
	Dispatcher Dispatcher
	// Rollouts, when set, makes a push to several targets of a rule one
	// notice when it ended on all of them, instead of one per target.
	Rollouts Rollouts
	// Outcomes, when set, records the end of a deployment whose record a
	// retry repaired, when it ended before (see repair).
	Outcomes Outcomes
	// Gates says whether a rule with approval: or scan: deploys a push
	// now (gates.go); unset, such a rule deploys nothing.
	Gates Gates
	Now   func() time.Time

	// groups keeps each blue/green service's deployment group.
	groups bluegreen.Groups

	mu sync.Mutex
	// notified is the (event, rule) pairs whose dispatch failures were
	// notified (see notifyDispatched).
	notified map[string]bool
}

// Handle is the Lambda handler: it deploys every target the push matches.
// A malformed event is an error; a transient failure of any target is an
// error too, so Lambda retries the event (targets already done are then
// skipped as idempotent). Permanent failures are logged and reported in the
// summary, not retried.
func (d *Deployer) Handle(ctx context.Context, raw json.RawMessage) (Summary, error) {
	push, err := ecrevent.Parse(raw)
	if ig, ok := ecrevent.IsIgnored(err); ok {
		d.logIgnored(ctx, push, ig.Reason)
		return Summary{EventID: push.EventID, Ignored: ig.Reason}, nil
	}
	if err != nil {
		d.Log.ErrorContext(ctx, "invalid event", "error", err.Error())
		return Summary{}, err
	}
	return d.Deploy(ctx, push)
}

// Job is one target of one matching rule: Rule.Targets[Index].
type Job struct {
	Rule   *rules.Rule
	Target rules.Target
	// Index names the target within its rule, so a work item can name it
	// again.
	Index int
	// Redelivered: an earlier delivery of this very target may have
	// deployed it (a work item received before: ApproximateReceiveCount >
	// 1), so before registering, the deploy looks for that deploy undone
	// since (see undone). A first delivery pays nothing for it.
	Redelivered bool
}

// Match returns the targets a push deploys to, in file order, or why none.
// A rule matches pushes to its repository in its registry only.
func Match(cfg *rules.Config, central rules.Place, push ecrevent.Push) ([]Job, string) {
	var jobs []Job
	var why []string
	for _, r := range cfg.RulesFor(push.Repository) {
		if ok, reason := Accepts(r, central, push); !ok {
			why = append(why, r.Name+": "+reason)
			continue
		}
		for i, t := range r.Targets {
			jobs = append(jobs, Job{Rule: r, Target: t, Index: i})
		}
	}
	if len(jobs) > 0 {
		return jobs, ""
	}
	if len(why) == 0 {
		return nil, fmt.Sprintf("no rule matches (no rule for repository %s)", push.Repository)
	}
	return nil, "no rule matches (" + strings.Join(why, "; ") + ")"
}

// Accepts says whether rule r deploys push, and if not, why: the push is
// to the rule's repository in the rule's registry, with a tag the rule
// takes (ignore-tags, then tags, tag-regex or semver). Match decides a
// push's targets by it, and the worker decides again by it for each work
// item, in the rules file it runs: the file may have changed while the
// item waited in its queue (work.DeployTarget.Resolve).
func Accepts(r *rules.Rule, central rules.Place, push ecrevent.Push) (bool, string) {
	if r.Repository != push.Repository {
		return false, fmt.Sprintf("it deploys repository %s, the push was to %s", r.Repository, push.Repository)
	}
	if reg := r.RegistryOf(central); reg != (rules.Place{Account: push.Account, Region: push.Region}) {
		return false, fmt.Sprintf("its registry is %s, the push was to %s/%s", reg, push.Account, push.Region)
	}
	return r.Matches(push.Tag)
}

// Deploy deploys one push to every target of every matching rule.
func (d *Deployer) Deploy(ctx context.Context, push ecrevent.Push) (Summary, error) {
	return d.DeployRule(ctx, push, "")
}

// DeployRule deploys push to the targets of rule alone ("": of every
// matching rule, as Deploy): a gate's hand-off, which let the digest
// through for one rule, does not run the repository's other rules again.
func (d *Deployer) DeployRule(ctx context.Context, push ecrevent.Push, rule string) (Summary, error) {
	jobs, ignored := Match(d.Rules, d.Central, push)
	if rule != "" {
		jobs = slices.DeleteFunc(jobs, func(j Job) bool { return j.Rule.Name != rule })
		if len(jobs) == 0 {
			ignored = fmt.Sprintf("rule %s does not take this push (any more): %s", rule, cmp.Or(ignored, "other rules do"))
		}
	}
	if len(jobs) == 0 {
		d.logIgnored(ctx, push, ignored)
		return Summary{EventID: push.EventID, Ignored: ignored}, nil
	}
	// Gates first: what waits for an approval or a scan registers nothing.
	jobs, held, gerr := d.admitted(ctx, push, jobs, gate.FromPush)
	if len(jobs) == 0 {
		return Summary{EventID: push.EventID, Results: held}, gerr
	}
	sum, err := d.Dispatch(ctx, push, jobs)
	sum.Results = append(sum.Results, held...)
	return sum, errors.Join(err, gerr)
}

// Dispatcher hands the targets of one push (or of a sweep) to what rolls
// them: InProcess, or a work queue whose worker runs DeployTarget for each.
// Its error means some target was not handled and the push must be retried;
// the summary says, per target, what happened (Queued for a queue).
type Dispatcher interface {
	Dispatch(ctx context.Context, push ecrevent.Push, jobs []Job) (Summary, error)
}

// InProcess is the dispatcher of a deployer without a work queue: it
// deploys the targets itself, bounded by the deployer's concurrency.
type InProcess struct{ Deployer *Deployer }

// Dispatch deploys every job now (see DeployJobs).
func (p InProcess) Dispatch(ctx context.Context, push ecrevent.Push, jobs []Job) (Summary, error) {
	return p.Deployer.DeployJobs(ctx, push, jobs)
}

// Dispatch hands push's targets to the deployer's dispatcher, in-process
// when none is set: the path of a push, and of a sweep's targets behind.
//
// A dispatcher's permanent failures (a place without a queue, an entry SQS
// refuses as the sender's fault) never reach the per-target path, which
// logs, counts and notifies each of its own: the seam counts each one as a
// failed deploy and notifies them once per event and rule (see
// notifyDispatched), as a person has to act on them.
func (d *Deployer) Dispatch(ctx context.Context, push ecrevent.Push, jobs []Job) (Summary, error) {
	if err := d.openRollouts(ctx, push, jobs); err != nil {
		return Summary{EventID: push.EventID}, err
	}
	if d.Dispatcher == nil {
		return InProcess{d}.Dispatch(ctx, push, jobs)
	}
	sum, err := d.Dispatcher.Dispatch(ctx, push, jobs)
	if _, inProcess := d.Dispatcher.(InProcess); !inProcess {
		if nerr := d.notifyDispatched(ctx, push, sum); nerr != nil {
			err = errors.Join(err, fmt.Errorf("event %s: %w (the push will be retried)", push.EventID, nerr))
		}
	}
	return sum, err
}

// maxListed bounds the targets one notice of a dispatch lists.
const maxListed = 10

// notifyDispatched counts a dispatcher's permanent failures and notifies
// them, one notice per rule listing its targets (a place without a queue
// fails all of its targets alike: a thousand notices would bury the one
// cause). A rule's notice of an event goes once per process: Lambda retries
// a push whose other targets failed transiently, and a sweep's event id is
// the same from one sweep to the next while the stack stays wrong.
//
// Each failure is ended in its rule's rollout, so the rule's notice does not
// wait for a target that was never queued; an end not recorded is the
// error returned, and the push's invocation fails so that Lambda retries it.
func (d *Deployer) notifyDispatched(ctx context.Context, push ecrevent.Push, sum Summary) error {
	byRule := map[string][]Result{}
	var order []string
	for _, r := range sum.Results {
		if r.Outcome != Failed || r.Retryable {
			continue
		}
		d.count(ctx, r, false)
		if _, ok := byRule[r.Rule]; !ok {
			order = append(order, r.Rule)
		}
		byRule[r.Rule] = append(byRule[r.Rule], r)
	}
	var errs []error
	for _, rule := range order {
		// A rule's rollout counts them, and notifies once all its targets
		// ended; what no rollout counts is notified here.
		rs, err := d.endOfTargets(ctx, push, byRule[rule])
		if err != nil {
			errs = append(errs, err)
		}
		if len(rs) == 0 || d.Notifier == nil || !d.firstNotice(push.EventID, rule) {
			continue
		}
		n, reason := rs[0], rs[0].Reason
		if len(rs) > 1 {
			var each []string
			for _, r := range rs[:min(len(rs), maxListed)] {
				each = append(each, r.Cluster+"/"+r.Service+": "+r.Reason)
			}
			if len(rs) > maxListed {
				each = append(each, fmt.Sprintf("and %d more", len(rs)-maxListed))
			}
			n.Service += fmt.Sprintf(" and %d more targets", len(rs)-1)
			reason = fmt.Sprintf("%d targets of rule %s not handed to the work queue: %s", len(rs), rule, strings.Join(each, "; "))
		}
		d.notify(ctx, push, n, notify.NotDeployed, reason)
	}
	return errors.Join(errs...)
}

// firstNotice reports whether event's failures under rule are not yet
// notified by this process, and notes them as notified.
func (d *Deployer) firstNotice(event, rule string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	key := event + "\x00" + rule
	if d.notified[key] {
		return false
	}
	if d.notified == nil || len(d.notified) >= maxNotified {
		d.notified = map[string]bool{}
	}
	d.notified[key] = true
	return true
}

// maxNotified bounds the (event, rule) pairs a deployer remembers.
const maxNotified = 10000

// DeployTarget deploys push to one target, under its service's lock, and
// logs the result: the one per-target path, which the in-process
// dispatcher runs for each job and the worker for each work item.
func (d *Deployer) DeployTarget(ctx context.Context, push ecrevent.Push, j Job) Result {
	return d.deployTarget(ctx, push, j.Rule, j.Target, j.Redelivered)
}

// DeployJobs deploys push to the given targets now, as a push event would,
// at most Concurrency at once. A transient failure of any is an error.
func (d *Deployer) DeployJobs(ctx context.Context, push ecrevent.Push, jobs []Job) (Summary, error) {
	sum := Summary{EventID: push.EventID}
	sum.Results = make([]Result, len(jobs))
	var g errgroup.Group
	g.SetLimit(max(d.Concurrency, 1))
	for i, j := range jobs {
		g.Go(func() error {
			sum.Results[i] = d.deployTarget(ctx, push, j.Rule, j.Target, j.Redelivered)
			return nil
		})
	}
	_ = g.Wait()
	return sum, sum.TransientError(push.EventID, "failed transiently and will be retried")
}

// TransientError is the invocation's error when any target of s failed
// transiently, so that Lambda retries the event (targets already done are
// then skipped); nil when none did. what says what happened to them.
func (s Summary) TransientError(eventID, what string) error {
	var retry []string
	n := 0
	for _, r := range s.Results {
		if !r.Retryable {
			continue
		}
		n++
		if len(retry) < maxNamedInError {
			retry = append(retry, fmt.Sprintf("%s/%s: %s", r.Cluster, r.Service, text.Cut(r.Reason, 300)))
		}
	}
	if n == 0 {
		return nil
	}
	if n > len(retry) {
		retry = append(retry, fmt.Sprintf("and %d more (each has its own log line)", n-len(retry)))
	}
	return fmt.Errorf("event %s: %d of %d targets %s: %s", eventID, n, len(s.Results), what, strings.Join(retry, "; "))
}

// maxNamedInError bounds the targets an invocation's error names: a push to
// 1,000 services must not make a 100 KB error line.
const maxNamedInError = 5

// permanentError is a failure that retrying cannot fix.
type permanentError struct{ msg string }

func (e *permanentError) Error() string { return e.msg }

// Permanent is an error no retry can fix, for callers beside the deployer
// (the sweep) that find such problems themselves.
func Permanent(format string, args ...any) error { return permanent(format, args...) }

func permanent(format string, args ...any) error {
	return &permanentError{msg: fmt.Sprintf(format, args...)}
}

// IsPermanent reports whether a deploy error will recur on retry.
func IsPermanent(err error) bool {
	if bluegreen.IsActiveDeployment(err) {
		return false // the group's deployment ends; a retry or sweep follows
	}
	var pe *permanentError
	var bg *bluegreen.PermanentError
	var nc *taskdef.NoContainerError
	var tm *taskdef.TooManyTagsError
	if errors.As(err, &pe) || errors.As(err, &bg) || errors.As(err, &nc) || errors.As(err, &tm) {
		return true
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	return !awsenv.IsTransient(err)
}

func (d *Deployer) deployTarget(ctx context.Context, push ecrevent.Push, rule *rules.Rule, t rules.Target, redelivered bool) (res Result) {
	start := d.Now()
	res = Result{Rule: rule.Name, Cluster: t.Cluster, Service: t.Service}
	at, role := t.Where(d.Central), t.RoleFor(d.Central)
	res.Account, res.Region = at.Account, at.Region
	defer func() {
		res.DurationMillis = d.Now().Sub(start).Milliseconds()
		d.logResult(ctx, push, res)
	}()
	key := history.ServiceKey(res.Account, res.Region, t.Cluster, t.Service)
	held, err := d.Services.Take(ctx, key, push.EventID+"/"+rule.Name)
	if err != nil {
		res.fail(err)
		return res
	}
	// An earlier try of this very target may have deployed and died: its
	// item received again, or its lease (never released) taken over now —
	// a redrive, a duplicate queued item or a Lambda retry arrives as a
	// first receive.
	redelivered = redelivered || held.TookOver() == push.EventID+"/"+rule.Name
	repaired, err := d.deployLocked(ctx, d.ECS(res.Region, role), push, rule, t, held, redelivered, &res)
	if err != nil {
		res.fail(err)
	}
	// Publish under the lock: once it is free, a newer deploy may run, and
	// a late write of this image would name one that no longer runs.
	if res.Outcome == Deployed || res.republish {
		d.publish(ctx, push, rule, t, held, &res)
	}

	// Release even when the invocation's context ended.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	state := held.State()
	permanentFailure := res.Outcome == Failed && !res.Retryable
	reported := permanentFailure && state.Reported(push.EventID, rule.Name)
	var rec *history.Record
	switch {
	case res.Outcome == Deployed, permanentFailure && !reported:
		r := d.record(push, res)
		rec = &r
	case repaired != nil && repaired.rec != nil:
		rec = repaired.rec
	}
	if rec == nil {
		if err := held.Release(rctx); err != nil {
			d.Log.WarnContext(ctx, "lock release failed", "lock", key, "error", err.Error())
		}
	} else if err := held.Finish(rctx, *rec); err != nil {
		// The deploy happened; only its record is missing. Retrying the
		// event repairs it (the revision's tags name the event), so the
		// invocation fails and Lambda retries.
		d.Log.ErrorContext(ctx, "history not written", "cluster", res.Cluster, "service", res.Service,
			"event_id", push.EventID, "error", err.Error())
		res.Retryable = true
		res.Reason = strings.TrimSpace(res.Reason + " (history not written, will retry to record it)")
		repaired = nil
	}
	if repaired != nil {
		if err := d.endRepaired(ctx, push, rule, *repaired); err != nil {
			d.Log.ErrorContext(ctx, "deployment end not recorded", "cluster", res.Cluster, "service", res.Service,
				"event_id", push.EventID, "deployment_id", repaired.deploymentID, "outcome", repaired.outcome, "error", err.Error())
			res.Retryable = true
			res.Reason = strings.TrimSpace(res.Reason + " (its deployment's end not recorded, will retry to record it)")
		}
	}
	tracked := d.rolloutEnds(ctx, push, &res, state, (repaired != nil && repaired.rec != nil) || res.ownRevision)
	if permanentFailure && !reported && !tracked {
		d.notify(ctx, push, res, notify.NotDeployed, res.Reason)
	}
	if reported {
		res.Reason += " (reported when this event first failed)"
	}
	return res
}

// NotDeployed reports a target the per-target path never reached, so never
// counted or notified: a work item the worker refuses (the rules file no
// longer describes it). res is its Failed result, with the reason; it is
// counted as a deploy of that outcome and notified (notify.NotDeployed),
// when a notifier is set.
func (d *Deployer) NotDeployed(ctx context.Context, push ecrevent.Push, res Result) {
	d.count(ctx, res, false)
	if tracked, err := d.endOfTarget(ctx, push, res, false); err != nil || !tracked {
		if err != nil {
			d.Log.ErrorContext(ctx, "rollout end not recorded", "rule", res.Rule, "cluster", res.Cluster, "service", res.Service,
				"event_id", push.EventID, "error", err.Error())
		}
		d.notify(ctx, push, res, notify.NotDeployed, res.Reason)
	}
}

// notify tells people about a target, when a notifier is set, on a context
// of its own (noticeContext): it often follows a write that ran ctx out. A
// notice that cannot be sent is logged; it never fails the deploy.
func (d *Deployer) notify(ctx context.Context, push ecrevent.Push, res Result, outcome, reason string) {
	if d.Notifier == nil {
		return
	}
	n := notify.Notice{Outcome: outcome, Account: res.Account, Region: res.Region, Cluster: res.Cluster,
		Service: res.Service, Rule: res.Rule, Repository: push.Repository, Tag: push.Tag, Digest: push.Digest,
		EventID: push.EventID, Reason: reason, TaskDefinition: res.To}
	if err := (ownBudget{d.Notifier}).Notify(ctx, n); err != nil {
		d.Log.ErrorContext(ctx, "notification not sent", "cluster", res.Cluster, "service", res.Service, "error", err.Error())
	}
}

// fail sets a failed outcome from err, retryable unless it is permanent.
func (res *Result) fail(err error) {
	res.Outcome, res.Reason, res.Retryable = Failed, err.Error(), !IsPermanent(err)
	if res.Retryable {
		res.Reason += " (will retry)"
	}
}

// Blocked says why a service's state keeps digest from being deployed
// there, "" when nothing does: an operator's hold (the reason begins
// "held"), or the digest's latest deployment there failed or was rolled
// back, so a retry, redrive or sweep of it would only fail again (a newer
// image moves the service). The deployer, the sweep and `autodeploy plan`
// decide by it alike.
func Blocked(state history.ServiceState, digest string) string {
	switch {
	case state.Hold != nil:
		return state.Hold.String()
	case state.DigestFailed(digest):
		return "the latest deployment of " + digest + " on this service failed or was rolled back; only a newer image moves it"
	}
	return ""
}

// Plan is what a deploy of one target would do, decided from read-only
// calls: the register request it would send, or why it would skip.
type Plan struct {
	From        string            // the running task definition
	Image       string            // the image reference to deploy
	Containers  []string          // containers to update (or chosen, when skipping)
	Updates     map[string]string // container → new image; empty: skip
	Skip        string            // why nothing would change
	Refused     bool              // a container was refused as a downgrade (else a skip means it runs the image)
	Kind        rollout.Kind      // how the service rolls out (rollout.KindOf)
	Service     *types.Service    // as described
	Running     *types.TaskDefinition
	RunningTags []types.Tag
	Register    *ecs.RegisterTaskDefinitionInput // nil when skipping
}

// PlanTarget decides a deploy of push to one target (steps 2–6 without
// writing): describe the service and its task definition, choose the
// containers, refuse downgrades, skip what already runs, build the next
// revision. The deployer and `autodeploy plan` share it.
func PlanTarget(ctx context.Context, client ECS, push ecrevent.Push, rule *rules.Rule, t rules.Target) (Plan, error) {
	svc, err := describeService(ctx, client, t.Cluster, t.Service)
	if err != nil {
		return Plan{}, err
	}
	running := bluegreen.RunningTaskDefinition(svc)
	tdOut, err := client.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{
		TaskDefinition: aws.String(running),
		Include:        []types.TaskDefinitionField{types.TaskDefinitionFieldTags},
	})
	if err != nil {
		return Plan{From: running, Service: svc}, fmt.Errorf("describe task definition %s: %w", running, err)
	}
	return PlanFrom(svc, tdOut, push, rule, t)
}

// PlanFrom is PlanTarget's decision from a service and its task definition
// (with tags) already described: a sweep describes many at once and keeps
// task definitions, which never change, from one sweep to the next.
func PlanFrom(svc *types.Service, tdOut *ecs.DescribeTaskDefinitionOutput, push ecrevent.Push, rule *rules.Rule, t rules.Target) (Plan, error) {
	p := Plan{From: bluegreen.RunningTaskDefinition(svc), Image: push.ByDigest(), Service: svc, Kind: rollout.KindOf(*svc)}
	if rule.Pin == rules.PinTag {
		p.Image = push.ByTag()
	}
	if t.CodeDeploy != nil && !p.Kind.IsCodeDeployControlled() {
		return p, permanent("service %s in cluster %s is %s (%s controller), but its target has codedeploy:; remove codedeploy: from the target to deploy it with UpdateService (the stack grants UpdateService only to targets without it)", t.Service, t.Cluster, p.Kind, p.Kind.Controller)
	}
	if p.Kind.IsCodeDeployControlled() && t.CodeDeploy == nil {
		return p, permanent("service %s in cluster %s is blue/green (CODE_DEPLOY controller): give its target codedeploy: {} (or name application and deployment-group) to deploy it through CodeDeploy; the stack grants CodeDeploy access only to such targets", t.Service, t.Cluster)
	}
	td := tdOut.TaskDefinition
	p.Running, p.RunningTags = td, tdOut.Tags
	for _, role := range []string{aws.ToString(td.TaskRoleArn), aws.ToString(td.ExecutionRoleArn)} {
		if !rule.MayPass(role) {
			return p, permanent("task definition %s uses role %s, which is not in rule %s's pass-roles: the deployer may not pass it to ECS", p.From, role, rule.Name)
		}
	}
	containers, err := taskdef.ChooseContainers(td, t.Containers, push.Repo())
	if err != nil {
		return p, permanent("service %s: %v", t.Service, err)
	}
	p.Containers = containers

	candidate := rules.Image{Tag: push.Tag, PushedAt: push.Time}
	p.Updates = map[string]string{}
	var refused []string
	for _, c := range containers {
		current := taskdef.Image(td, c)
		recordedTag, recordedAt := taskdef.Recorded(tdOut.Tags, c)
		if alreadyRunning(rule.Pin, current, p.Image, recorded{taskdef.RecordedDigest(tdOut.Tags, c), recordedAt}, push) {
			continue
		}
		var running rules.Image
		if taskdef.ImageRepository(current) == push.Repo() {
			running = rules.Image{Tag: cmp.Or(recordedTag, taskdef.ImageTag(current)), PushedAt: recordedAt}
		}
		if ok, why := rule.Replaces(candidate, running); !ok {
			refused = append(refused, c+": "+why)
			continue
		}
		p.Updates[c] = p.Image
	}
	if len(refused) > 0 {
		p.Skip, p.Refused = "never downgrade: "+strings.Join(refused, "; "), true
	}
	if len(p.Updates) == 0 {
		if p.Skip == "" {
			p.Skip = "already running " + p.Image
		}
		return p, nil
	}
	p.Containers = containers[:0:0]
	for _, c := range containers {
		if _, ok := p.Updates[c]; ok {
			p.Containers = append(p.Containers, c)
		}
	}
	set := map[string]string{taskdef.TagRule: rule.Name, taskdef.TagEvent: push.EventID, taskdef.TagFrom: p.From}
	for c := range p.Updates {
		set[taskdef.ContainerTagKey(c)] = push.Tag
		set[taskdef.ContainerPushedAtKey(c)] = taskdef.PushedAtValue(push.Time)
		if rule.Pin == rules.PinTag {
			set[taskdef.ContainerDigestKey(c)] = push.Digest
		}
	}
	tags, err := taskdef.MergeTags(tdOut.Tags, set)
	if err != nil {
		return p, permanent("task definition %s: %v", p.From, err)
	}
	p.Register = taskdef.RegisterInput(taskdef.WithImages(td, p.Updates), tags)
	return p, nil
}

// deployLocked does steps 2–7 of a deploy, under the service's lock. When
// the image already runs because an earlier attempt of this very event
// deployed it but lost its history write, it returns the record to repair;
// so it does, on a redelivery, when such a deploy was undone since (undone).
func (d *Deployer) deployLocked(ctx context.Context, client ECS, push ecrevent.Push, rule *rules.Rule, t rules.Target, held history.Held, redelivered bool, res *Result) (*repair, error) {
	if why := Blocked(held.State(), push.Digest); why != "" {
		res.Outcome, res.Reason = Skipped, why
		return nil, nil
	}
	p, err := PlanTarget(ctx, client, push, rule, t)
	res.From, res.Containers = p.From, p.Containers
	if p.Service != nil {
		res.Rollout = p.Kind.String()
	}
	if err != nil {
		return nil, err
	}
	res.Image = p.Image
	if p.Register == nil {
		res.Outcome, res.Reason = Skipped, p.Skip
		res.republish = rule.Publish != nil && !p.Refused &&
			taskdef.TagValue(p.RunningTags, taskdef.TagEvent) == push.EventID
		res.ownRevision = taskdef.TagValue(p.RunningTags, taskdef.TagEvent) == push.EventID &&
			taskdef.TagValue(p.RunningTags, taskdef.TagRule) == rule.Name
		return d.unrecorded(push, p, held.State(), res), nil
	}
	if redelivered {
		if r, err := d.undone(ctx, client, push, rule, p, res); err != nil || r != nil {
			return r, err
		}
	}
	var bg blueGreen
	if p.Kind.IsCodeDeployControlled() {
		// Before registering: a missing group, or a group still deploying,
		// leaves no unused revision (see blueGreen).
		var done bool
		if bg, done, err = d.blueGreen(ctx, push, rule, t, held.State(), res); err != nil || done {
			return nil, err
		}
	}
	td := p.Running
	family := aws.ToString(td.Family)
	reg, err := client.RegisterTaskDefinition(ctx, p.Register)
	if err != nil {
		return nil, fmt.Errorf("register task definition %s: %w", family, err)
	}
	res.To = aws.ToString(reg.TaskDefinition.TaskDefinitionArn)
	// A holder whose lease was taken over must not move the service: the
	// new holder may already have moved it further.
	if err := held.Check(); err != nil {
		return nil, fmt.Errorf("before updating service %s/%s: %w", t.Cluster, t.Service, err)
	}
	if p.Kind.IsCodeDeployControlled() {
		// CodeDeploy owns the task definition of such a service; an
		// UpdateService with one is refused.
		started, err := bg.start(ctx, res.To, p.Service)
		if err != nil {
			return nil, err
		}
		// A deployment an earlier attempt of this event created (its answer
		// lost) deploys that attempt's revision, not the one just made.
		res.DeploymentID, res.To = started.ID, cmp.Or(started.TaskDefinition, res.To)
		res.Outcome, res.Reason = Deployed, p.Skip
		return nil, nil
	}

	// Rolling and ECS-native: only the task definition (UpdateService), so
	// desired count, autoscaling, load balancers and the deployment
	// configuration — the strategy, bake, hooks, alarms — stay their
	// owners'; ECS runs the strategy.
	started, err := rollout.ECSControlled(p.Kind, client).Start(ctx, rollout.Revision{Cluster: t.Cluster, Service: t.Service,
		TaskDefinition: res.To, Described: p.Service})
	if err != nil {
		return nil, err
	}
	res.DeploymentID, res.ServiceDeploymentARN = started.DeploymentID, started.ServiceDeploymentARN
	res.Outcome, res.Reason = Deployed, p.Skip
	return nil, nil
}

// unrecorded returns the repair of a deploy that already runs but was never
// recorded: the running revision was registered for this very event (its
// tags say so) and is not the service's last recorded revision. That
// happens when a deploy's history write was lost (a worker killed after
// UpdateService); the retry writes the record, and the deployment's end
// when DescribeServices shows it ended (see repair). When the revision is
// the last recorded one and its deployment ended, the repair is only of
// that end (a retry wrote the record but not its end): nil when there is
// nothing to repair.
func (d *Deployer) unrecorded(push ecrevent.Push, p Plan, state history.ServiceState, res *Result) *repair {
	if taskdef.TagValue(p.RunningTags, taskdef.TagEvent) != push.EventID ||
		taskdef.TagValue(p.RunningTags, taskdef.TagRule) != res.Rule {
		return nil
	}
	r := &repair{deploymentID: rollout.PrimaryDeployment(p.Service, p.From)}
	r.outcome, r.reason = endedDeployment(p.Service, p.From)
	if p.From == state.LastTaskDefinition {
		if r.outcome == "" || r.deploymentID == "" {
			return nil
		}
		return r
	}
	repaired := *res
	repaired.Outcome, repaired.Reason = Deployed, repairedReason
	repaired.From, repaired.To = taskdef.TagValue(p.RunningTags, taskdef.TagFrom), p.From
	repaired.DeploymentID = r.deploymentID
	if p.Kind.IsECSNative() {
		// The watcher reads the service deployment: name the one ECS
		// says is current (it checks that it targets the revision).
		repaired.ServiceDeploymentARN = aws.ToString(p.Service.CurrentServiceDeployment)
	}
	rec := d.record(push, repaired)
	// When the deployment started, not now: the item may come back long
	// after (the queue's visibility timeout, a redrive), and the watcher
	// looks for the service deployment from about then.
	if dep := rollout.Primary(p.Service, p.From); dep != nil && dep.CreatedAt != nil {
		rec.DeployedAt = *dep.CreatedAt
	}
	r.rec = &rec
	res.Reason += "; recorded its deploy, whose history write had been lost"
	if r.outcome != "" {
		res.Reason += ", and its deployment's end (" + r.outcome + ")"
	}
	return r
}

// recorded is what an earlier deploy noted about a container's image.
type recorded struct {
	digest   string    // deploys by tag since the digest was recorded
	pushedAt time.Time // whole seconds from older versions, else milliseconds
}

// alreadyRunning decides idempotency. By digest the reference says it all;
// by tag the same reference may name a newer image, so the recorded digest
// must be the push's. A revision from before digests were recorded has
// only the push time, in whole seconds: compared at that precision, since
// ECR's imagePushedAt has milliseconds and would always read as newer
// (every sweep would redeploy a pin: tag service).
func alreadyRunning(pin rules.Pin, current, image string, rec recorded, push ecrevent.Push) bool {
	if current != image {
		return false
	}
	switch {
	case pin == rules.PinDigest:
		return true
	case rec.digest != "":
		return rec.digest == push.Digest
	}
	return !rec.pushedAt.IsZero() && !rec.pushedAt.Before(push.Time.Truncate(time.Second))
}

func describeService(ctx context.Context, client ECS, cluster, service string) (*types.Service, error) {
	out, err := client.DescribeServices(ctx, &ecs.DescribeServicesInput{
		Cluster:  aws.String(cluster),
		Services: []string{service},
	})
	if err != nil {
		return nil, fmt.Errorf("describe service %s/%s: %w", cluster, service, err)
	}
	for _, f := range out.Failures {
		return nil, permanent("service %s not found in cluster %s (%s)", service, cluster, aws.ToString(f.Reason))
	}
	if len(out.Services) == 0 {
		return nil, permanent("service %s not found in cluster %s", service, cluster)
	}
	svc := &out.Services[0]
	return svc, CheckService(svc, cluster, service)
}

// CheckService refuses, permanently, a service that cannot take a new task
// definition from us: not ACTIVE, or on the EXTERNAL deployment controller.
func CheckService(svc *types.Service, cluster, service string) error {
	if status := aws.ToString(svc.Status); status != "ACTIVE" {
		return permanent("service %s in cluster %s is %s, not ACTIVE", service, cluster, status)
	}
	if k := rollout.KindOf(*svc); k.Family == rollout.Unsupported {
		return permanent("service %s in cluster %s uses the %s deployment controller; only ECS-controlled (rolling, ECS-native) and CodeDeploy-controlled services can be deployed", service, cluster, k.Controller)
	}
	if bluegreen.RunningTaskDefinition(svc) == "" {
		return permanent("service %s in cluster %s has no task definition (task sets are managed outside the ECS controller)", service, cluster)
	}
	return nil
}

// record is the history record of a target's result.
func (d *Deployer) record(push ecrevent.Push, res Result) history.Record {
	return history.Record{
		Rule: res.Rule, Repository: push.Repository, Tag: push.Tag, Digest: push.Digest,
		RegistryAccount: push.Account, RegistryRegion: push.Region,
		Account: res.Account, Region: res.Region, Cluster: res.Cluster, Service: res.Service,
		Containers: res.Containers, FromTaskDefinition: res.From, ToTaskDefinition: res.To,
		DeploymentID: res.DeploymentID, Rollout: res.Rollout, ServiceDeploymentARN: res.ServiceDeploymentARN,
		EventID: push.EventID, Outcome: string(res.Outcome),
		Reason: res.Reason, PushedAt: push.Time, DeployedAt: d.Now(),
	}
}

// logIgnored writes the line for an event that deploys nothing.
func (d *Deployer) logIgnored(ctx context.Context, push ecrevent.Push, reason string) {
	d.Log.InfoContext(ctx, "ignored", "reason", reason, "repository", push.Repository,
		"tag", push.Tag, "digest", push.Digest, "event_id", push.EventID)
}

// logResult writes the one line per target and event that ops read.
func (d *Deployer) logResult(ctx context.Context, push ecrevent.Push, r Result) {
	level := slog.LevelInfo
	if r.Outcome == Failed {
		level = slog.LevelError
	}
	d.Log.Log(ctx, level, "deploy",
		"rule", r.Rule, "repository", push.Repository, "tag", push.Tag, "digest", push.Digest,
		"cluster", r.Cluster, "service", r.Service, "containers", r.Containers,
		"from_task_definition", r.From, "to_task_definition", r.To, "deployment_id", r.DeploymentID,
		"rollout", r.Rollout, "service_deployment_arn", r.ServiceDeploymentARN, "outcome", string(r.Outcome), "reason", r.Reason, "duration_ms", r.DurationMillis,
		"event_id", push.EventID)
	d.count(ctx, r, true)
}

// count is a target's deploy metrics: the dashboard's deploys by outcome,
// and the time the per-target path took (a target it never reached, whose
// failure the seam or the worker counts, has no duration to add).
func (d *Deployer) count(ctx context.Context, r Result, ran bool) {
	ms := []metrics.Metric{{Name: metrics.Deploys, Unit: "Count", Value: 1}}
	if ran {
		ms = append(ms, metrics.Metric{Name: metrics.DeployDuration, Unit: "Milliseconds", Value: float64(r.DurationMillis)})
	}
	metrics.Emit(ctx, d.Log, d.now(),
		map[string]string{"rule": r.Rule, "service": r.Cluster + "/" + r.Service, "outcome": string(r.Outcome)},
		[][]string{{"outcome"}}, // the dashboard's deploys by outcome
		ms...)
}

// now is the deployer's clock, the system's when none is set.
func (d *Deployer) now() time.Time {
	if d.Now == nil {
		return time.Now()
	}
	return d.Now()
}
