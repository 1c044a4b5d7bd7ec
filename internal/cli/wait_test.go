package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/emulator"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

// The follower against a fake world: moto has no deployment progress (its
// one deployment stays IN_PROGRESS with no task running, and it writes no
// service events), so each step of a deployment — rolloutState, counts,
// events, the watcher's record of the end — is the fake's. Its sleep moves
// the clock and the world one step on, so no test sleeps.

type waitWorld struct {
	mu    sync.Mutex
	now   time.Time
	step  int
	steps []waitStep // the world at each poll; the last one stays
	// cancel is the wait's context's (the operator's Ctrl-C).
	cancel context.CancelFunc
}

// waitStep is what the world looks like at one poll.
type waitStep struct {
	recs []history.Record // newest first
	dep  *types.Deployment
	// events are the service's events, newest first.
	events []types.ServiceEvent
	// rollback: the service's circuit breaker rolls a failure back.
	rollback bool
	// readErr fails the history read (throttling past the SDK's retries).
	readErr error
	// interrupt: the operator presses Ctrl-C during this poll's sleep.
	interrupt bool
}

func (w *waitWorld) current() waitStep {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.steps[min(w.step, len(w.steps)-1)]
}

func (w *waitWorld) clock() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.now
}

func (w *waitWorld) sleep(ctx context.Context, d time.Duration) error {
	if w.current().interrupt {
		w.cancel()
		return ctx.Err()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.now = w.now.Add(d)
	w.step++
	return nil
}

func (w *waitWorld) Recent(_ context.Context, _ string, limit int32) ([]history.Record, error) {
	s := w.current()
	if s.readErr != nil {
		return nil, s.readErr
	}
	return s.recs[:min(len(s.recs), int(limit))], nil
}

func (w *waitWorld) DescribeServices(_ context.Context, _ *ecs.DescribeServicesInput, _ ...func(*ecs.Options)) (*ecs.DescribeServicesOutput, error) {
	s := w.current()
	svc := types.Service{ServiceName: aws.String("web"), Status: aws.String("ACTIVE"), Events: s.events,
		DeploymentController: &types.DeploymentController{Type: types.DeploymentControllerTypeEcs},
		DeploymentConfiguration: &types.DeploymentConfiguration{
			DeploymentCircuitBreaker: &types.DeploymentCircuitBreaker{Enable: s.rollback, Rollback: s.rollback}}}
	if s.dep != nil {
		svc.Deployments = []types.Deployment{*s.dep}
	}
	return &ecs.DescribeServicesOutput{Services: []types.Service{svc}}, nil
}

var errNotECSNative = errors.New("the fake's service is rolling: no service deployments")

func (w *waitWorld) ListServiceDeployments(context.Context, *ecs.ListServiceDeploymentsInput, ...func(*ecs.Options)) (*ecs.ListServiceDeploymentsOutput, error) {
	return nil, errNotECSNative
}

func (w *waitWorld) DescribeServiceDeployments(context.Context, *ecs.DescribeServiceDeploymentsInput, ...func(*ecs.Options)) (*ecs.DescribeServiceDeploymentsOutput, error) {
	return nil, errNotECSNative
}

func (w *waitWorld) DescribeServiceRevisions(context.Context, *ecs.DescribeServiceRevisionsInput, ...func(*ecs.Options)) (*ecs.DescribeServiceRevisionsOutput, error) {
	return nil, errNotECSNative
}

func TestFollow(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	td := "arn:aws:ecs:eu-west-1:123456789012:task-definition/web-prod:"
	rec := history.Record{Rule: "web-prod", Digest: "sha256:3b", Tag: "v1.4.0", Cluster: "prod", Service: "web",
		FromTaskDefinition: td + "1", ToTaskDefinition: td + "2", DeploymentID: "ecs-svc/1", EventID: "e1",
		Outcome: "deployed", DeployedAt: t0.Add(-time.Minute)}
	ended := func(outcome, reason string) history.Record {
		r := rec
		r.DeploymentOutcome, r.DeploymentReason = outcome, reason
		return r
	}
	older := rec
	older.EventID, older.Digest, older.DeploymentID, older.DeploymentOutcome = "e0", "sha256:2a", "ecs-svc/0", history.Completed
	older.FinishedAt = t0.Add(-30 * time.Second)
	dep := func(state types.DeploymentRolloutState, running int32, reason string) *types.Deployment {
		return &types.Deployment{Id: aws.String("ecs-svc/1"), Status: aws.String("PRIMARY"), RolloutState: state,
			RolloutStateReason: aws.String(reason), RunningCount: running, DesiredCount: 2, PendingCount: 2 - running,
			TaskDefinition: aws.String(td + "2")}
	}
	event := func(id, msg string, at time.Time) types.ServiceEvent {
		return types.ServiceEvent{Id: aws.String(id), Message: aws.String(msg), CreatedAt: aws.Time(at)}
	}
	want := func(outcome, reason string, polls int) waitResult {
		return waitResult{Outcome: outcome, DeploymentID: "ecs-svc/1", Rule: "web-prod", Digest: "sha256:3b",
			TaskDefinition: td + "2", Reason: reason, WaitedMS: int64(polls) * 10_000}
	}
	throttled := errors.New("ThrottlingException: Rate exceeded")
	for _, tc := range []struct {
		name  string
		w     waitFor
		steps []waitStep
		want  waitResult
		lines []string // in the progress, in order
		// wantErr, with its exit code: the wait ends with an error.
		wantErr  string
		wantCode int
		warning  string // on the warn writer ("" none)
	}{{
		name: "completes, by ECS's rollout state before the watcher's record",
		steps: []waitStep{
			{recs: []history.Record{rec}, dep: dep(types.DeploymentRolloutStateInProgress, 0, ""),
				events: []types.ServiceEvent{event("old", "(service web) has reached a steady state.", t0.Add(-time.Hour))}},
			{recs: []history.Record{rec}, dep: dep(types.DeploymentRolloutStateInProgress, 1, ""),
				events: []types.ServiceEvent{event("1", "(service web) has started 1 tasks: (task abc).", t0.Add(5*time.Second))}},
			{recs: []history.Record{rec}, dep: dep(types.DeploymentRolloutStateCompleted, 2, "ECS deployment ecs-svc/1 completed.")},
		},
		want: want("completed", "ECS deployment ecs-svc/1 completed.", 2),
		lines: []string{
			"+0s     prod/web: following deployment ecs-svc/1 of rule web-prod, v1.4.0 sha256:3b, web-prod:1 → web-prod:2, recorded 2026-12-01T09:59:00Z",
			"+0s     prod/web: deployment ecs-svc/1 IN_PROGRESS: 0 of 2 running, 2 pending",
			"+10s    prod/web: event 2026-12-01T10:00:05Z (service web) has started 1 tasks: (task abc).",
			"+10s    prod/web: deployment ecs-svc/1 IN_PROGRESS: 1 of 2 running, 1 pending",
		},
	}, {
		name: "completes, by the watcher's record",
		steps: []waitStep{
			{recs: []history.Record{rec}, dep: dep(types.DeploymentRolloutStateInProgress, 1, "")},
			{recs: []history.Record{ended(history.Completed, "")}},
		},
		want: want("completed", "", 1),
	}, {
		name: "fails: the watcher recorded it",
		steps: []waitStep{
			{recs: []history.Record{rec}, dep: dep(types.DeploymentRolloutStateInProgress, 0, "")},
			{recs: []history.Record{ended(history.Failed, "tasks failed to start")}},
		},
		want: want("failed", "tasks failed to start", 1),
	}, {
		name: "rolls back: ECS's circuit breaker",
		steps: []waitStep{
			{recs: []history.Record{rec}, dep: dep(types.DeploymentRolloutStateInProgress, 0, ""), rollback: true},
			{recs: []history.Record{rec}, dep: dep(types.DeploymentRolloutStateFailed, 0, "circuit breaker: 3 tasks failed"), rollback: true},
		},
		want: want("rolled_back", "circuit breaker: 3 tasks failed", 1),
	}, {
		name: "times out in flight",
		steps: []waitStep{
			{recs: []history.Record{rec}, dep: dep(types.DeploymentRolloutStateInProgress, 1, "")},
		},
		want: want("timed_out", "still in flight: deployment ecs-svc/1 IN_PROGRESS: 1 of 2 running, 1 pending", 6),
	}, {
		name: "a digest's deploy, recorded after the wait began (right after a push)",
		w:    waitFor{digest: "sha256:3b"},
		steps: []waitStep{
			{recs: []history.Record{older}},
			{recs: []history.Record{older}},
			{recs: []history.Record{rec, older}, dep: dep(types.DeploymentRolloutStateInProgress, 0, "")},
			{recs: []history.Record{ended(history.Completed, "steady"), older}},
		},
		want: want("completed", "steady", 3),
		lines: []string{
			"+0s     prod/web: no record of a deploy of sha256:3b yet; waiting for one (until 2026-12-01T10:01:00Z)",
			"+20s    prod/web: following deployment ecs-svc/1",
		},
	}, {
		name: "a history read that fails is retried, not the end",
		steps: []waitStep{
			{recs: []history.Record{rec}, dep: dep(types.DeploymentRolloutStateInProgress, 0, "")},
			{readErr: throttled},
			{recs: []history.Record{ended(history.Completed, "")}},
		},
		want:  want("completed", "", 2),
		lines: []string{"+10s    prod/web: could not read history (ThrottlingException: Rate exceeded); retrying"},
	}, {
		name:  "history unreadable to the deadline: timed out, not failed",
		steps: []waitStep{{readErr: throttled}},
		want:  waitResult{Outcome: "timed_out", Reason: "could not read history: ThrottlingException: Rate exceeded", WaitedMS: 60_000},
	}, {
		name: "interrupted: the deployment goes on",
		steps: []waitStep{
			{recs: []history.Record{rec}, dep: dep(types.DeploymentRolloutStateInProgress, 0, "")},
			{recs: []history.Record{rec}, dep: dep(types.DeploymentRolloutStateInProgress, 1, ""), interrupt: true},
		},
		wantErr:  "prod/web: interrupted after 10s; the deployment goes on (autodeploy wait --cluster prod --service web --digest sha256:3b follows it again)",
		wantCode: exitInterrupted,
	}, {
		name:    "the latest deploy ended before the wait began: a warning",
		steps:   []waitStep{{recs: []history.Record{older}}},
		want:    waitResult{Outcome: "completed", DeploymentID: "ecs-svc/0", Rule: "web-prod", Digest: "sha256:2a", TaskDefinition: td + "2"},
		warning: "warning: the latest deploy of prod/web ended at 2026-12-01T09:59:30Z, before this wait began: pass --digest to wait for a push's own deploy\n",
	}, {
		name:  "a digest's deploy that ended before the wait: no warning",
		w:     waitFor{digest: "sha256:2a"},
		steps: []waitStep{{recs: []history.Record{rec, older}}},
		want:  waitResult{Outcome: "completed", DeploymentID: "ecs-svc/0", Rule: "web-prod", Digest: "sha256:2a", TaskDefinition: td + "2"},
	}, {
		name:  "no record appears",
		w:     waitFor{digest: "sha256:3b"},
		steps: []waitStep{{recs: []history.Record{older}}},
		want:  waitResult{Outcome: "timed_out", Reason: "no record of a deploy of sha256:3b appeared", WaitedMS: 60_000},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			world := &waitWorld{now: t0, steps: tc.steps, cancel: cancel}
			var progress, warn bytes.Buffer
			f := &follower{store: world, ecs: world, now: world.clock, sleep: world.sleep, interval: 10 * time.Second, progress: &progress, warn: &warn}
			w := tc.w
			w.cluster, w.service, w.key = "prod", "web", "123456789012/eu-west-1/prod/web"
			got, err := f.follow(ctx, w, t0.Add(time.Minute))
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr || exitCodeOf(err) != tc.wantCode {
					t.Errorf("follow = %+v, %v (exit %d); want %q, exit %d", got, err, exitCodeOf(err), tc.wantErr, tc.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if warn.String() != tc.warning {
				t.Errorf("warning %q, want %q", warn.String(), tc.warning)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("result (-want +got):\n%s\nprogress:\n%s", diff, progress.String())
			}
			rest := progress.String()
			for _, l := range tc.lines {
				i := strings.Index(rest, l)
				if i < 0 {
					t.Errorf("progress lacks, in order, %q:\n%s", l, progress.String())
					break
				}
				rest = rest[i+len(l):]
			}
			if strings.Contains(progress.String(), "has reached a steady state") {
				t.Errorf("an event from before the deploy was printed:\n%s", progress.String())
			}
		})
	}
}

// runWait runs the wait command as Run does (its exit codes), with the
// test's clock and sleep.
func runWait(t *testing.T, m *testenv.Moto, table string, now func() time.Time, sleep func(context.Context, time.Duration) error, args ...string) run {
	t.Helper()
	var out, errOut bytes.Buffer
	env := Env{Stdout: &out, Stderr: &errOut,
		Getenv: func(k string) string { return map[string]string{"AUTODEPLOY_TABLE": table}[k] },
		AWS: func(context.Context) (aws.Config, error) {
			if m == nil {
				t.Fatal("this command must not call AWS")
			}
			return m.AWSConfig(), nil
		},
		Now: now}
	err := waitWith(context.Background(), args, env, sleep)
	code := 0
	switch {
	case err == nil:
	case errors.As(err, new(usageError)):
		code = 2
	case exitCodeOf(err) != 0:
		code = exitCodeOf(err)
	default:
		code = 1
	}
	if err != nil {
		errOut.WriteString(err.Error())
	}
	return run{code, out.String(), errOut.String()}
}

// Flags are bounded before any call (runWait fails on one).
func TestWaitFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--timeout", "30s"}, "--timeout 30s: want 1m to 24h"},
		{[]string{"--timeout", "25h"}, "--timeout 25h0m0s: want 1m to 24h"},
		{[]string{"--interval", "0s"}, "--interval 0s: want 1s to 5m"},
		{[]string{"--interval", "10m"}, "--interval 10m0s: want 1s to 5m"},
		{[]string{"--output", "yaml"}, `--output "yaml": want text or json`},
		{[]string{"--digest", "v1.4.0"}, `--digest "v1.4.0": want the full image digest, sha256: and 64 hex digits, as docker push prints it`},
		// The short form status and history print would never match a record.
		{[]string{"--digest", "sha256:3bd05339d5f2"}, `--digest "sha256:3bd05339d5f2": want the full image digest`},
		{[]string{"--digest", "sha256:" + strings.Repeat("A", 64)}, "want the full image digest"},
		{nil, "--cluster and --service are required"},
	} {
		args := append([]string{"--table", "t"}, tc.args...)
		if tc.args != nil {
			args = append(args, "--cluster", "prod", "--service", "web")
		}
		r := runWait(t, nil, "", time.Now, sleepContext, args...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("wait %v = %+v, want exit 2 and %q", tc.args, r, tc.want)
		}
	}
}

// Against moto's history table: right after a push no record exists; the
// deployer's record appears, then the watcher's outcome (the sleep plays
// both); moto's deployment itself never moves, so the end is history's.
func TestWaitOnMotoHistory(t *testing.T) {
	t.Parallel()
	s := setup(t)
	ctx := context.Background()
	store := history.NewStore(dynamodb.NewFromConfig(s.moto.AWSConfig()), s.table)
	key := history.ServiceKey(testenv.Account, testenv.Region, "prod", "web")
	var mu sync.Mutex
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	polls := 0
	sleep := func(context.Context, time.Duration) error {
		mu.Lock()
		now = now.Add(10 * time.Second)
		polls++
		p := polls
		mu.Unlock()
		switch p {
		case 1: // the deployer's deploy, in moto's ECS and in history
			s.deploy(t, "ecr-push-release.json")
		case 2: // the watcher's record of its end
			recs, err := store.Recent(ctx, key, 1)
			if err != nil || len(recs) != 1 {
				t.Fatalf("history: %v %v", recs, err)
			}
			// A reason with <, > and &, printed as written (one JSON
			// encoder for every command, no HTML escaping: not \u0026).
			if _, err := store.SetOutcome(ctx, recs[0], history.Completed, "steady: 2 of 2 tasks <healthy> & running", clock()); err != nil {
				t.Fatal(err)
			}
		}
		return nil
	}
	recs, err := store.Recent(ctx, key, 1)
	if err != nil || len(recs) != 0 {
		t.Fatalf("history before the push: %v %v", recs, err)
	}
	r := runWait(t, s.moto, s.table, clock, sleep, "--cluster", "prod", "--service", "web", "--timeout", "5m", "--output", "json")
	if r.code != 0 {
		t.Fatalf("wait = %+v", r)
	}
	got := regexp.MustCompile(`"ecs-svc/[0-9]+"`).ReplaceAllString(r.stdout, `"ecs-svc/…"`)
	golden := filepath.Join("testdata", "wait.json")
	if os.Getenv("UPDATE_GOLDEN") != "" {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("wait --output json (-%s +got):\n%s", golden, diff)
	}
	for _, l := range []string{"no record of a deployment yet", "following deployment ecs-svc/", "deployment ecs-svc/"} {
		if !strings.Contains(r.stderr, l) {
			t.Errorf("progress (stderr, with json) lacks %q:\n%s", l, r.stderr)
		}
	}

	// The same, a minute later, now over: text, at once. Then a deploy
	// that never ends in moto times out with exit 3.
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	r = runWait(t, s.moto, s.table, clock, sleep, "--cluster", "prod", "--service", "web")
	if r.code != 0 || !strings.Contains(r.stdout, "prod/web: completed: deployment ecs-svc/") {
		t.Errorf("wait after the end = %+v", r)
	}
	// …which, right after a push, would be the deploy before it: said.
	if !strings.Contains(r.stderr, "warning: the latest deploy of prod/web ended at 2026-12-01T10:00:20Z, before this wait began: pass --digest") {
		t.Errorf("wait after the end does not warn that it ended before:\n%s", r.stderr)
	}
	s.deploy(t, "ecr-push-release.json", [2]string{"v1.4.0", "v1.5.0"}, [2]string{"2026-11-25T10:05:00Z", "2026-11-25T11:05:00Z"}, [2]string{"sha256:3b", "sha256:4c"})
	r = runWait(t, s.moto, s.table, clock, sleep, "--cluster", "prod", "--service", "web", "--timeout", "1m")
	if r.code != 3 || !strings.Contains(r.stderr, "prod/web: timed out after 1m0s: still in flight: deployment ecs-svc/") {
		t.Errorf("wait on a deploy moto never ends = %+v", r)
	}
	if r := runWait(t, s.moto, s.table, clock, sleep, "--cluster", "prod", "--service", "nope"); r.code != 1 || !strings.Contains(r.stderr, "service nope not found in cluster prod") {
		t.Errorf("wait on a missing service = %+v", r)
	}
}

// completedECS is moto's client with every deployment reported COMPLETED,
// as ECS does once the tasks run (moto's stays IN_PROGRESS).
type completedECS struct{ *ecs.Client }

func (c completedECS) DescribeServices(ctx context.Context, in *ecs.DescribeServicesInput, optFns ...func(*ecs.Options)) (*ecs.DescribeServicesOutput, error) {
	out, err := c.Client.DescribeServices(ctx, in, optFns...)
	if err == nil {
		for i := range out.Services {
			for j := range out.Services[i].Deployments {
				d := &out.Services[i].Deployments[j]
				d.RolloutState, d.RolloutStateReason = types.DeploymentRolloutStateCompleted, aws.String("ECS deployment completed.")
			}
		}
	}
	return out, err
}

// reconcile --wait and --output json, rollback --wait, and rollback's
// refusals in the operator's words, against moto (deployments reported
// completed by completedECS).
func TestReconcileAndRollbackWait(t *testing.T) {
	t.Parallel()
	m := testenv.StartMoto(t)
	ctx := context.Background()
	table := m.CreateTable(t, "autodeploy")
	newest := m.Repository(t, "web", "main-1", "main-2")["main-2"]
	client := ecs.NewFromConfig(m.AWSConfig())
	for _, c := range []string{"staging", "qa"} {
		if _, err := emulator.SeedService(ctx, client, emulator.Service{Cluster: c, Name: "web", Family: "web-" + c,
			Containers: []emulator.Container{{Name: "app", Image: emulator.Registry + "/web:seed"}}}); err != nil {
			t.Fatal(err)
		}
	}
	config := writeTempFile(t, "version: 1\nrules:\n  - {name: web-staging, repository: web, tags: [\"main-*\"], targets: [{cluster: staging, service: web}, {cluster: qa, service: web}]}\n")
	cliECS := func(args ...string) run {
		t.Helper()
		var out, errOut bytes.Buffer
		env := Env{Stdout: &out, Stderr: &errOut, Getenv: func(k string) string { return map[string]string{"AUTODEPLOY_TABLE": table}[k] },
			AWS: func(context.Context) (aws.Config, error) { return m.AWSConfig(), nil }, Now: time.Now,
			ECS: func(c *ecs.Client) ECS { return completedECS{c} }}
		return run{Run(ctx, args, env), out.String(), errOut.String()}
	}

	r := cliECS("reconcile", "--config", config, "--wait", "--output", "json")
	if r.code != 0 {
		t.Errorf("reconcile --wait: %+v", r)
	}
	got := strings.NewReplacer(newest, "sha256:<newest>").Replace(r.stdout)
	got = regexp.MustCompile(`"(event_id|deployment_id)": "[^"]*"`).ReplaceAllString(got, `"$1": "…"`)
	got = regexp.MustCompile(`"waited_ms": [0-9]+`).ReplaceAllString(got, `"waited_ms": 0`)
	golden := filepath.Join("testdata", "reconcile-wait.json")
	if os.Getenv("UPDATE_GOLDEN") != "" {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("reconcile --wait --output json (-%s +got):\n%s", golden, diff)
	}
	if !strings.Contains(r.stderr, "staging/web: completed: deployment ecs-svc/") || !strings.Contains(r.stderr, "qa/web: completed") {
		t.Errorf("reconcile --wait's progress (stderr with json):\n%s", r.stderr)
	}
	r = cliECS("reconcile", "--config", config)
	if r.code != 0 || !strings.Contains(r.stdout, "0 of 2 targets behind; nothing to do") {
		t.Errorf("reconcile again: %+v", r)
	}
	if r := cliECS("reconcile", "--config", config, "--wait", "--dry-run"); r.code != 2 {
		t.Errorf("reconcile --wait --dry-run: %+v", r)
	}
	// Nothing to wait for: "waits" is there, empty (a script reads it).
	if r := cliECS("reconcile", "--config", config, "--wait", "--output", "json"); r.code != 0 || !strings.Contains(r.stdout, `"waits": []`) {
		t.Errorf("reconcile --wait --output json with nothing behind: %+v", r)
	}

	// rollback --wait follows the rollback's own deploy.
	r = cliECS("rollback", "--cluster", "staging", "--service", "web", "--wait", "--timeout", "2m")
	if r.code != 0 || !strings.Contains(r.stdout, "rolled staging/web back: web-staging:2 → web-staging:1") ||
		!strings.Contains(r.stdout, "staging/web: completed: deployment ecs-svc/") || !strings.Contains(r.stdout, "of rule rollback") {
		t.Errorf("rollback --wait: %+v", r)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--to", "99"}, 1, "staging/web has no revision 99 in family web-staging (newest 2)"},
		{[]string{"--to", "0"}, 2, `--to "0": want a revision number, 1 or more`},
		{[]string{"--to", "-3"}, 2, `--to "-3": want a revision number, 1 or more`},
		{[]string{"--wait", "--timeout", "10s"}, 2, "--timeout 10s: want 1m to 24h"},
		{[]string{"--dry-run", "--wait"}, 2, "--wait follows the rollback's deploy; a --dry-run makes none"},
	} {
		r := cliECS(append([]string{"rollback", "--cluster", "staging", "--service", "web"}, tc.args...)...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) || strings.Contains(r.stderr, "ClientException") {
			t.Errorf("rollback %v = %+v, want exit %d and %q", tc.args, r, tc.code, tc.want)
		}
	}
}

// A wait's JSON leaves out what it does not know (no record followed), as
// the README's rule for every document says, rather than "rule": "".
func TestWaitResultJSON(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		res  waitResult
		want string
	}{
		{"no record appeared", waitResult{Outcome: waitTimedOut, Reason: "no record of a deployment appeared", WaitedMS: 60_000},
			`{"outcome":"timed_out","reason":"no record of a deployment appeared","waited_ms":60000}`},
		{"completed", waitResult{Outcome: "completed", DeploymentID: "ecs-svc/1", Rule: "web-prod", Digest: "sha256:3b", TaskDefinition: "web-prod:2"},
			`{"outcome":"completed","deployment_id":"ecs-svc/1","rule":"web-prod","digest":"sha256:3b","task_definition":"web-prod:2","reason":"","waited_ms":0}`},
	} {
		var b bytes.Buffer
		if err := writeJSON(&b, tc.res); err != nil {
			t.Fatal(err)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, b.Bytes()); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, compact.String()); diff != "" {
			t.Errorf("%s: JSON (-want +got):\n%s", tc.name, diff)
		}
	}
}
