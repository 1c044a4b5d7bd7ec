package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/deploy"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecrevent"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecsarn"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rollout"
)

// Outcomes a wait ends with: history's (completed, failed, rolled_back,
// superseded) and its own timed_out.
const waitTimedOut = "timed_out"

// exitTimedOut is the exit code of a wait that timed out: a pipeline tells
// "it failed" (1) from "we do not know yet" (3).
const exitTimedOut = 3

// exitInterrupted is the exit code of a wait the operator interrupted
// (Ctrl-C): 128+SIGINT, as a shell reports it; the deployment goes on.
const exitInterrupted = 130

// Bounds of wait's flags, checked before any call.
const (
	waitTimeoutDefault  = 30 * time.Minute
	waitTimeoutMin      = time.Minute
	waitTimeoutMax      = 24 * time.Hour
	waitIntervalDefault = 10 * time.Second
	waitIntervalMin     = time.Second
	waitIntervalMax     = 5 * time.Minute
	// waitReach is how many of a service's latest records a wait looks
	// through for the one it follows.
	waitReach = 25
	// waitEventsShown bounds the service events printed when a wait
	// starts (ECS keeps 100): the deploy's, not the service's life story.
	waitEventsShown = 10
)

// waitResult is how a wait ended: `wait --output json` prints it as it is
// (its shape is documented in the README; keep it stable).
type waitResult struct {
	Outcome string `json:"outcome"`
	// Not known (no record followed): left out, as README's JSON rule says.
	DeploymentID   string `json:"deployment_id,omitempty"`
	Rule           string `json:"rule,omitempty"`
	Digest         string `json:"digest,omitempty"`
	TaskDefinition string `json:"task_definition,omitempty"`
	Reason         string `json:"reason"`
	WaitedMS       int64  `json:"waited_ms"`
}

// ok reports whether the deployment completed.
func (r waitResult) ok() bool { return r.Outcome == history.Completed }

// exitCodeError is an error with an exit code of its own (Run returns it).
type exitCodeError struct {
	code int
	msg  string
}

func (e exitCodeError) Error() string { return e.msg }
func (e exitCodeError) ExitCode() int { return e.code }

// exitCodeOf is the exit code err carries, 0 for none.
func exitCodeOf(err error) int {
	var e exitCodeError
	if errors.As(err, &e) {
		return e.code
	}
	return 0
}

// recentReader reads a service's latest history records.
type recentReader interface {
	Recent(ctx context.Context, serviceKey string, limit int32) ([]history.Record, error)
}

// waitECS is what a wait reads of ECS: the service (its deployments and
// events) and, for an ECS-native service, its service deployments.
type waitECS interface {
	serviceDescriber
	rollout.ServiceDeploymentReader
}

// follower follows deployments to their outcome. now and sleep are
// injected so that tests run at once, whatever the timeout.
type follower struct {
	store    recentReader
	ecs      waitECS
	now      func() time.Time
	sleep    func(context.Context, time.Duration) error
	interval time.Duration
	// progress gets the progress lines (stdout, or stderr when stdout is
	// JSON).
	progress io.Writer
	// warn, when set, gets warnings that must not be mistaken for the
	// outcome (stderr).
	warn io.Writer
}

// waitFor is what a wait follows on one service.
type waitFor struct {
	cluster, service, key string
	// digest, when set, is the image whose deploy is followed (its record
	// may not exist yet: the wait waits for it). Otherwise the latest
	// record, whichever it is.
	digest string
	// eventID, when set, names the deploy's event (a rollback's).
	eventID string
	// after: only a record deployed at or after it counts (zero: any).
	after time.Time
	// serviceDeployment, when set, is an ECS-native deployment the CLI
	// rolled back through ECS: the wait follows its rollback, which ends
	// well at ROLLBACK_SUCCESSFUL.
	serviceDeployment string
	// client, when set, reads the service in place of the follower's
	// (a sweep's targets each have their own account, region and role).
	client waitECS
}

func (w waitFor) name() string { return w.cluster + "/" + w.service }

// what says what the wait waits for, for its lines.
func (w waitFor) what() string {
	switch {
	case w.eventID != "":
		return "the deploy of event " + w.eventID
	case w.digest != "":
		return "a deploy of " + w.digest
	}
	return "a deployment"
}

// sleepContext sleeps d, or less when ctx ends.
func sleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func waitCmd(ctx context.Context, args []string, env Env) error {
	return waitWith(ctx, args, env, sleepContext)
}

// waitWith is the wait command with its sleep injected (tests pass one
// that moves their clock and the world).
func waitWith(ctx context.Context, args []string, env Env, sleep func(context.Context, time.Duration) error) error {
	fs := flags("wait", env)
	sf := addServiceFlags(fs, env)
	timeout := fs.Duration("timeout", waitTimeoutDefault, "how long to wait for the outcome, 1m–24h (then exit 3)")
	interval := fs.Duration("interval", waitIntervalDefault, "how often to look, 1s–5m")
	digest := fs.String("digest", "", "follow the deploy of this image digest (sha256: and all 64 hex digits, as docker push prints it), waiting for its record; default: the latest deployment")
	output := fs.String("output", "text", "text (progress lines) or json (one object at the end; progress on stderr)")
	if err := parse(fs, args); err != nil {
		return err
	}
	asJSON, err := outputMode(*output)
	if err != nil {
		return err
	}
	if err := checkWaitFlags(*timeout, *interval); err != nil {
		return err
	}
	// The full digest only: a record holds it whole, so a shortened one
	// would never match and the wait would run to its timeout.
	if *digest != "" && !ecrevent.IsDigest(*digest) {
		return usageError{fmt.Sprintf("--digest %q: want the full image digest, sha256: and 64 hex digits, as docker push prints it (status and history shorten it)", *digest)}
	}
	cfg, key, err := sf.resolve(ctx, env)
	if err != nil {
		return err
	}
	client := env.ecsClient(ecs.NewFromConfig(cfg))
	if _, err := describeService(ctx, client, sf, cfg.Region); err != nil {
		return err
	}
	f := &follower{store: history.NewStore(awsenv.StateTable(cfg), *sf.table), ecs: client, now: env.Now, sleep: sleep,
		interval: *interval, progress: env.Stdout, warn: env.Stderr}
	if asJSON {
		f.progress = env.Stderr
	}
	res, err := f.follow(ctx, waitFor{cluster: *sf.cluster, service: *sf.service, key: key, digest: *digest}, env.Now().Add(*timeout))
	if err != nil {
		return err
	}
	if asJSON {
		if err := writeJSON(env.Stdout, res); err != nil {
			return err
		}
	}
	return waitErr(*sf.cluster+"/"+*sf.service, res, *timeout, asJSON, env.Stdout)
}

// checkWaitFlags bounds --timeout and --interval, before any call.
func checkWaitFlags(timeout, interval time.Duration) error {
	if timeout < waitTimeoutMin || timeout > waitTimeoutMax {
		return usageError{fmt.Sprintf("--timeout %s: want 1m to 24h", timeout)}
	}
	if interval < waitIntervalMin || interval > waitIntervalMax {
		return usageError{fmt.Sprintf("--interval %s: want 1s to 5m", interval)}
	}
	return nil
}

// outputMode reads --output: true for json.
func outputMode(v string) (bool, error) {
	switch v {
	case "text":
		return false, nil
	case "json":
		return true, nil
	}
	return false, usageError{fmt.Sprintf("--output %q: want text or json", v)}
}

// waitErr is how a wait ends for its command: nil when the deployment
// completed (text mode says so on stdout), an error naming the outcome when
// it failed, rolled back or was superseded (exit 1), and one with exit
// code 3 when it timed out.
func waitErr(name string, res waitResult, timeout time.Duration, asJSON bool, stdout io.Writer) error {
	line := outcomeLine(name, res)
	switch {
	case res.ok():
		if !asJSON {
			fmt.Fprintln(stdout, line)
		}
		return nil
	case res.Outcome == waitTimedOut:
		return exitCodeError{code: exitTimedOut, msg: line}
	}
	return errors.New(line)
}

// outcomeLine is a wait's last line: "prod/web: completed: deployment
// ecs-svc/1 of rule web-prod (sha256:…, web-prod:2) after 2m10s".
func outcomeLine(name string, r waitResult) string {
	waited := (time.Duration(r.WaitedMS) * time.Millisecond).Round(time.Second)
	if r.Outcome == waitTimedOut {
		return fmt.Sprintf("%s: timed out after %s: %s", name, waited, r.Reason)
	}
	var of []string
	for _, s := range []string{r.Digest, ecsarn.Revision(r.TaskDefinition)} {
		if s != "" {
			of = append(of, s)
		}
	}
	s := fmt.Sprintf("%s: %s: deployment %s of rule %s", name, strings.ReplaceAll(r.Outcome, "_", " "), cmp.Or(r.DeploymentID, "-"), r.Rule)
	if len(of) > 0 {
		s += " (" + strings.Join(of, ", ") + ")"
	}
	s += " after " + waited.String()
	if r.Reason != "" && !r.ok() {
		s += ": " + r.Reason
	}
	return s
}

// follow polls until what w names has an outcome, or deadline passes.
// History is the authority (the watcher records each end); while it has
// none, ECS says where the deployment stands (and, for the ECS controller,
// how it ended, before the watcher's record).
func (f *follower) follow(ctx context.Context, w waitFor, deadline time.Time) (waitResult, error) {
	if w.client != nil {
		own := *f
		own.ecs = w.client
		f = &own
	}
	start := f.now()
	st := &followState{shown: map[string]bool{}}
	result := func(rec history.Record, outcome, reason string) waitResult {
		return waitResult{Outcome: outcome, DeploymentID: rec.DeploymentID, Rule: rec.Rule, Digest: rec.Digest,
			TaskDefinition: rec.ToTaskDefinition, Reason: reason, WaitedMS: f.now().Sub(start).Milliseconds()}
	}
	var readErr error // the last history read's, while it fails
	for {
		var rec history.Record
		found := w.serviceDeployment != ""
		readErr = nil
		switch {
		case found:
			// A rollback through ECS: ECS's service deployment is the whole
			// story (history records the deployment it rolled back).
			rec = history.Record{DeploymentID: w.serviceDeployment, Rule: rollbackRule}
			if outcome, reason := f.rollbackThroughECS(ctx, start, w, st); outcome != "" {
				return result(rec, outcome, reason), nil
			}
		default:
			recs, err := f.store.Recent(ctx, w.key, waitReach)
			switch {
			case ctx.Err() != nil:
				return waitResult{}, f.interrupted(ctx, start, w, st)
			case err != nil:
				// As with ECS's reads: throttling that outlasted the SDK's
				// retries is not the deployment's end; the next poll may read.
				readErr = err
				rec, found = st.rec, st.found
			default:
				rec, found = w.pick(recs)
				st.rec, st.found = rec, found
			}
		}
		switch {
		case readErr != nil:
			f.say(start, w, &st.last, fmt.Sprintf("could not read history (%s); retrying", explain(readErr, scope{cluster: w.cluster, service: w.service})))
		case w.serviceDeployment != "":
		case !found:
			f.say(start, w, &st.last, fmt.Sprintf("no record of %s yet; waiting for one (until %s)", w.what(), deadline.UTC().Format(time.RFC3339)))
		default:
			if st.following != rec.EventID+"#"+rec.Rule {
				if st.following != "" {
					f.say(start, w, &st.last, "a newer deployment was recorded; following it")
				}
				st.following = rec.EventID + "#" + rec.Rule
				st.eventsSince = rec.DeployedAt.Add(-time.Second)
				f.say(start, w, &st.last, "following "+describeRecord(rec))
			}
			if outcome, reason := recordOutcome(rec); outcome != "" {
				if !st.inFlight {
					f.endedBefore(start, w, rec)
				}
				return result(rec, outcome, reason), nil
			}
			st.inFlight = true
			outcome, reason := f.observe(ctx, start, w, rec, st)
			if outcome != "" {
				return result(rec, outcome, reason), nil
			}
		}
		now := f.now()
		if !now.Before(deadline) {
			res := result(rec, waitTimedOut, "")
			switch {
			case readErr != nil:
				res.Reason = "could not read history: " + explain(readErr, scope{cluster: w.cluster, service: w.service})
			case !found:
				res.Reason = "no record of " + w.what() + " appeared"
			case st.last != "":
				res.Reason = "still in flight: " + st.last
			default:
				res.Reason = "still in flight"
			}
			return res, nil
		}
		if err := f.sleep(ctx, min(f.interval, deadline.Sub(now))); err != nil {
			if ctx.Err() != nil {
				return waitResult{}, f.interrupted(ctx, start, w, st)
			}
			return waitResult{}, fmt.Errorf("wait for %s: %w", w.name(), err)
		}
	}
}

// interrupted is the error of a wait the operator interrupted: not the
// deployment's end (exit 130, not 1), and how to follow it again.
func (f *follower) interrupted(ctx context.Context, start time.Time, w waitFor, st *followState) error {
	if !errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("wait for %s: %w", w.name(), ctx.Err())
	}
	again := "autodeploy wait --cluster " + w.cluster + " --service " + w.service
	if d := cmp.Or(w.digest, st.rec.Digest); d != "" {
		again += " --digest " + d
	}
	return exitCodeError{code: exitInterrupted, msg: fmt.Sprintf("%s: interrupted after %s; the deployment goes on (%s follows it again)",
		w.name(), f.now().Sub(start).Round(time.Second), again)}
}

// endedBefore warns when a plain wait (no digest, event or start) found
// the latest record already over, ended before it began: right after a
// push that is the deploy before the push's, not the push's own.
func (f *follower) endedBefore(start time.Time, w waitFor, rec history.Record) {
	if f.warn == nil || w.digest != "" || w.eventID != "" || !w.after.IsZero() || w.serviceDeployment != "" {
		return
	}
	ended := rec.FinishedAt
	if ended.IsZero() && rec.DeploymentOutcome == "" {
		ended = rec.DeployedAt // a deploy that failed before any rollout
	}
	if ended.IsZero() || !ended.Before(start) {
		return
	}
	fmt.Fprintf(f.warn, "warning: the latest deploy of %s ended at %s, before this wait began: pass --digest to wait for a push's own deploy\n",
		w.name(), ended.UTC().Format(time.RFC3339))
}

// followState is what a wait remembers between polls.
type followState struct {
	following   string // event#rule of the record followed
	last        string // the last progress line (printed once)
	eventsSince time.Time
	shown       map[string]bool // service events printed, by id
	serviceDep  string          // the ECS-native service deployment found
	// rec and found are the last history read's pick, kept for a poll
	// whose read fails.
	rec   history.Record
	found bool
	// inFlight: a record followed was seen in flight (its end came
	// during the wait).
	inFlight bool
}

// say prints a progress line unless it repeats the last one.
func (f *follower) say(start time.Time, w waitFor, last *string, line string) {
	if line == *last {
		return
	}
	*last = line
	fmt.Fprintf(f.progress, "+%-6s %s: %s\n", f.now().Sub(start).Round(time.Second), w.name(), line)
}

// pick is the record w follows among recs (newest first).
func (w waitFor) pick(recs []history.Record) (history.Record, bool) {
	for _, r := range recs {
		switch {
		case w.eventID != "" && r.EventID != w.eventID,
			w.digest != "" && r.Digest != w.digest,
			!w.after.IsZero() && r.DeployedAt.Before(w.after):
			continue
		}
		return r, true
	}
	return history.Record{}, false
}

// describeRecord names a record for a progress line.
func describeRecord(r history.Record) string {
	s := fmt.Sprintf("deployment %s of rule %s", cmp.Or(r.DeploymentID, "-"), r.Rule)
	if img := image(r.Tag, r.Digest); img != "" {
		s += ", " + img
	}
	if r.ToTaskDefinition != "" {
		s += ", " + ecsarn.Revision(r.FromTaskDefinition) + " → " + ecsarn.Revision(r.ToTaskDefinition)
	}
	return s + ", recorded " + r.DeployedAt.UTC().Format(time.RFC3339)
}

// recordOutcome is the outcome history holds for a record ("" in flight):
// the watcher's, or the deploy's own failure (nothing rolled out then).
func recordOutcome(r history.Record) (outcome, reason string) {
	switch {
	case r.DeploymentOutcome != "":
		return r.DeploymentOutcome, cmp.Or(r.DeploymentReason, r.Reason)
	case r.Outcome == string(deploy.Deployed):
		return "", ""
	case r.Outcome == string(deploy.Failed):
		return history.Failed, r.Reason
	}
	return history.Failed, "recorded as " + r.Outcome + ": " + r.Reason
}

// observe reads where the deployment stands on ECS, prints it and the
// service's new events, and returns an outcome when ECS already says it.
// A read that fails is a progress line, not the wait's end: history may
// still answer.
func (f *follower) observe(ctx context.Context, start time.Time, w waitFor, rec history.Record, st *followState) (outcome, reason string) {
	out, err := f.ecs.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(w.cluster), Services: []string{w.service}})
	if err != nil || len(out.Services) == 0 {
		f.say(start, w, &st.last, fmt.Sprintf("could not read the service (%v); waiting for history", cmp.Or[any](err, "not found")))
		return "", ""
	}
	svc := out.Services[0]
	f.events(start, w, svc, st)
	kind := rollout.KindOf(svc)
	switch {
	case kind.IsCodeDeployControlled():
		f.say(start, w, &st.last, fmt.Sprintf("CodeDeploy deployment %s in flight (its end comes from history, which the watcher writes)", cmp.Or(rec.DeploymentID, "-")))
		return "", ""
	case kind.IsECSNative():
		d, err := rollout.FindServiceDeployment(ctx, f.ecs, rollout.Query{Cluster: w.cluster, Service: w.service,
			TaskDefinition: rec.ToTaskDefinition, Since: rec.DeployedAt, Known: cmp.Or(st.serviceDep, rec.ServiceDeploymentARN)})
		switch {
		case errors.Is(err, rollout.ErrNoServiceDeployment):
			f.say(start, w, &st.last, "no service deployment of "+ecsarn.Revision(rec.ToTaskDefinition)+" listed yet")
			return "", ""
		case err != nil:
			f.say(start, w, &st.last, fmt.Sprintf("could not read the service deployment (%v); waiting for history", err))
			return "", ""
		}
		st.serviceDep = aws.ToString(d.ServiceDeploymentArn)
		o := rollout.Judge(d, f.now())
		if o.InFlight() {
			f.say(start, w, &st.last, stageOf(d, f.now()))
			return "", ""
		}
		return o.Outcome, o.Reason
	}
	return f.rolling(start, w, svc, rec, st)
}

// rolling reads a rolling deployment's rolloutState: COMPLETED and FAILED
// are its end (a failure the circuit breaker rolls back is rolled back).
func (f *follower) rolling(start time.Time, w waitFor, svc types.Service, rec history.Record, st *followState) (outcome, reason string) {
	i := slices.IndexFunc(svc.Deployments, func(d types.Deployment) bool { return aws.ToString(d.Id) == rec.DeploymentID })
	if i < 0 {
		f.say(start, w, &st.last, fmt.Sprintf("deployment %s is not among the service's deployments any more; waiting for history", cmp.Or(rec.DeploymentID, "-")))
		return "", ""
	}
	d := svc.Deployments[i]
	reason = aws.ToString(d.RolloutStateReason)
	switch d.RolloutState {
	case types.DeploymentRolloutStateCompleted:
		return history.Completed, reason
	case types.DeploymentRolloutStateFailed:
		if cb := svcCircuitBreaker(svc); cb != nil && cb.Rollback {
			return history.RolledBack, reason
		}
		return history.Failed, reason
	}
	line := fmt.Sprintf("deployment %s %s: %d of %d running, %d pending", aws.ToString(d.Id), cmp.Or(string(d.RolloutState), aws.ToString(d.Status)),
		d.RunningCount, d.DesiredCount, d.PendingCount)
	if d.FailedTasks > 0 {
		line += fmt.Sprintf(", %d failed task(s)", d.FailedTasks)
	}
	f.say(start, w, &st.last, line)
	return "", ""
}

func svcCircuitBreaker(svc types.Service) *types.DeploymentCircuitBreaker {
	if svc.DeploymentConfiguration == nil {
		return nil
	}
	return svc.DeploymentConfiguration.DeploymentCircuitBreaker
}

// rollbackThroughECS follows an ECS-native deployment the CLI rolled back
// through ECS: its rollback is the thing that should complete.
func (f *follower) rollbackThroughECS(ctx context.Context, start time.Time, w waitFor, st *followState) (outcome, reason string) {
	out, err := f.ecs.DescribeServiceDeployments(ctx, &ecs.DescribeServiceDeploymentsInput{ServiceDeploymentArns: []string{w.serviceDeployment}})
	if err != nil || len(out.ServiceDeployments) == 0 {
		f.say(start, w, &st.last, fmt.Sprintf("could not read service deployment %s (%v); waiting", w.serviceDeployment, cmp.Or[any](err, "not described")))
		return "", ""
	}
	d := out.ServiceDeployments[0]
	switch d.Status {
	case types.ServiceDeploymentStatusRollbackSuccessful:
		return history.Completed, "rolled back through ECS: " + cmp.Or(rollout.Why(d), "ROLLBACK_SUCCESSFUL")
	case types.ServiceDeploymentStatusRollbackFailed, types.ServiceDeploymentStatusStopped:
		return history.Failed, "ECS's rollback did not complete (" + string(d.Status) + "): " + rollout.Why(d)
	case types.ServiceDeploymentStatusSuccessful:
		return history.Failed, "the deployment completed instead of rolling back"
	}
	f.say(start, w, &st.last, stageOf(d, f.now()))
	return "", ""
}

// events prints the service's events since the deploy, oldest first, once
// each (at most waitEventsShown on the first look).
func (f *follower) events(start time.Time, w waitFor, svc types.Service, st *followState) {
	var fresh []types.ServiceEvent
	for _, e := range svc.Events { // newest first
		id := aws.ToString(e.Id)
		if st.shown[id] || aws.ToTime(e.CreatedAt).Before(st.eventsSince) {
			continue
		}
		fresh = append(fresh, e)
	}
	fresh = fresh[:min(len(fresh), waitEventsShown)]
	for i := len(fresh) - 1; i >= 0; i-- {
		e := fresh[i]
		st.shown[aws.ToString(e.Id)] = true
		fmt.Fprintf(f.progress, "+%-6s %s: event %s %s\n", f.now().Sub(start).Round(time.Second), w.name(),
			aws.ToTime(e.CreatedAt).UTC().Format(time.RFC3339), aws.ToString(e.Message))
	}
	if len(fresh) > 0 {
		st.last = "" // the next state line is printed again after events
	}
}

// waitAll waits for each of ws in turn, within one deadline, and returns
// their results and the commands' error: exit 1 when any did not complete,
// else exit 3 when any timed out.
func waitAll(ctx context.Context, f *follower, ws []waitFor, deadline time.Time) ([]waitResult, error) {
	var results []waitResult
	var failed, timedOut []string
	for _, w := range ws {
		res, err := f.follow(ctx, w, deadline)
		if err != nil {
			return results, err
		}
		results = append(results, res)
		switch line := outcomeLine(w.name(), res); {
		case res.ok():
			fmt.Fprintln(f.progress, line)
		case res.Outcome == waitTimedOut:
			timedOut = append(timedOut, line)
		default:
			failed = append(failed, line)
		}
	}
	switch {
	case len(failed) > 0:
		return results, fmt.Errorf("%d of %d deployment(s) did not complete: %s", len(failed), len(ws), strings.Join(append(failed, timedOut...), "; "))
	case len(timedOut) > 0:
		return results, exitCodeError{code: exitTimedOut, msg: strings.Join(timedOut, "; ")}
	}
	return results, nil
}

// waitFlags are --wait and its bounds, for the commands that act
// (reconcile, rollback).
type waitFlags struct {
	wait              *bool
	timeout, interval *time.Duration
}

func addWaitFlags(fs interface {
	Bool(name string, value bool, usage string) *bool
	Duration(name string, value time.Duration, usage string) *time.Duration
}) waitFlags {
	return waitFlags{
		wait:     fs.Bool("wait", false, "then follow each deploy to its end, as `autodeploy wait` does (exit 1 when one did not complete, 3 when the wait timed out)"),
		timeout:  fs.Duration("timeout", waitTimeoutDefault, "with --wait: how long to wait for all of them, 1m–24h"),
		interval: fs.Duration("interval", waitIntervalDefault, "with --wait: how often to look, 1s–5m"),
	}
}

// check bounds the flags before any call.
func (wf waitFlags) check() error {
	if !*wf.wait {
		return nil
	}
	return checkWaitFlags(*wf.timeout, *wf.interval)
}

// follower is the follower the flags set, reading store and client, its
// progress lines on progress.
func (wf waitFlags) follower(store recentReader, client waitECS, env Env, progress io.Writer) *follower {
	return &follower{store: store, ecs: client, now: env.Now, sleep: sleepContext, interval: *wf.interval, progress: progress}
}
