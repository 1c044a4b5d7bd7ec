package cli

// continue, rollback, status and plan on an ECS-native (CANARY) service.
// moto has no service deployments, service revisions or hooks, and ignores
// deploymentConfiguration: those calls are answered by
// testenv.FakeECSDeployments, and DescribeServices reports the strategy the
// fake's service has, as ECS would. Everything else — services, task
// definitions, UpdateService, ECR, the state table — is moto.

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
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

const (
	preProduction    = types.ServiceDeploymentLifecycleStage("PRE_PRODUCTION_TRAFFIC_SHIFT") // not in the SDK's enum
	productionShift  = types.ServiceDeploymentLifecycleStageProductionTrafficShift
	v140             = emulator.Registry + "/web:v1.4.0"
	v150             = emulator.Registry + "/web:v1.5.0"
	nativeRulesYAML  = "version: 1\nrules:\n  - {name: web-prod, repository: web, semver: \">= 1.0.0\", targets: [{cluster: prod, service: web}]}\n  - {name: web-staging, repository: web, tags: [\"main-*\"], targets: [{cluster: staging, service: web}]}\n"
	canaryPercent    = 10
	canaryBakeMinute = 5
)

func canaryConfig() types.DeploymentConfiguration {
	return types.DeploymentConfiguration{Strategy: types.DeploymentStrategyCanary, BakeTimeInMinutes: aws.Int32(10),
		CanaryConfiguration: &types.CanaryConfiguration{CanaryPercent: aws.Float64(canaryPercent), CanaryBakeTimeInMinutes: aws.Int32(canaryBakeMinute)}}
}

// nativeWorld is moto plus the fake: prod/web is a CANARY service running
// web-prod:1 (v1.4.0), with web-prod:2 (v1.5.0) registered for a
// deployment; staging/web is a rolling service moto alone knows.
type nativeWorld struct {
	moto          *testenv.Moto
	table         string
	fake          *testenv.FakeECSDeployments
	first, second string // web-prod:1, :2

	mu     sync.Mutex
	now    time.Time
	writes map[string]int // moto's UpdateService and RegisterTaskDefinition, by the CLI
}

func newNativeWorld(t *testing.T) *nativeWorld {
	t.Helper()
	ctx := context.Background()
	m := testenv.StartMoto(t)
	w := &nativeWorld{moto: m, table: m.CreateTable(t, "autodeploy"), fake: testenv.NewFakeECSDeployments(),
		now: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), writes: map[string]int{}}
	w.fake.Now = w.clock
	client := ecs.NewFromConfig(m.AWSConfig())
	var err error
	if w.first, err = emulator.SeedService(ctx, client, emulator.Service{Cluster: "prod", Name: "web", Family: "web-prod",
		Containers: []emulator.Container{{Name: "app", Image: v140}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := emulator.SeedService(ctx, client, emulator.Service{Cluster: "staging", Name: "web", Family: "web-staging",
		Containers: []emulator.Container{{Name: "app", Image: emulator.Registry + "/web:main-0000000"}}}); err != nil {
		t.Fatal(err)
	}
	td, err := client.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("web-prod"),
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String(v150), Memory: aws.Int32(256)}}})
	if err != nil {
		t.Fatal(err)
	}
	w.second = aws.ToString(td.TaskDefinition.TaskDefinitionArn)
	w.fake.AddService("prod", "web", canaryConfig(), w.first)
	return w
}

func (w *nativeWorld) clock() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.now
}

func (w *nativeWorld) advance(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.now = w.now.Add(d)
}

func (w *nativeWorld) written(op string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.writes[op]
}

// start begins a deployment of web-prod:2 on prod/web (as the worker's
// UpdateService would) and moves it to the canary's production shift.
func (w *nativeWorld) start(t *testing.T) string {
	t.Helper()
	arn := w.fake.StartDeployment(t, "prod", "web", w.second)
	w.fake.Advance(arn, productionShift, canaryPercent)
	return arn
}

func (w *nativeWorld) cli(t *testing.T, args ...string) run {
	t.Helper()
	var out, errOut bytes.Buffer
	env := Env{
		Stdout: &out, Stderr: &errOut,
		Getenv: func(k string) string {
			if k == "AUTODEPLOY_TABLE" {
				return w.table
			}
			return ""
		},
		AWS: func(context.Context) (aws.Config, error) { return w.moto.AWSConfig(), nil },
		Now: w.clock,
		ECS: func(c *ecs.Client) ECS { return nativeECS{Client: c, w: w} },
	}
	code := Run(context.Background(), args, env)
	return run{code, out.String(), errOut.String()}
}

// nativeECS is moto's client with the service-deployment calls answered by
// the fake, and DescribeServices reporting the fake's strategy.
type nativeECS struct {
	*ecs.Client
	w *nativeWorld
}

func (n nativeECS) DescribeServices(ctx context.Context, in *ecs.DescribeServicesInput, optFns ...func(*ecs.Options)) (*ecs.DescribeServicesOutput, error) {
	out, err := n.Client.DescribeServices(ctx, in, optFns...)
	if err != nil {
		return out, err
	}
	for i, s := range out.Services {
		if strings.HasSuffix(aws.ToString(s.ServiceArn), ":service/prod/web") {
			cfg := canaryConfig()
			out.Services[i].DeploymentConfiguration = &cfg
		}
	}
	return out, nil
}

func (n nativeECS) UpdateService(ctx context.Context, in *ecs.UpdateServiceInput, optFns ...func(*ecs.Options)) (*ecs.UpdateServiceOutput, error) {
	n.w.count("UpdateService")
	return n.Client.UpdateService(ctx, in, optFns...)
}

func (n nativeECS) RegisterTaskDefinition(ctx context.Context, in *ecs.RegisterTaskDefinitionInput, optFns ...func(*ecs.Options)) (*ecs.RegisterTaskDefinitionOutput, error) {
	n.w.count("RegisterTaskDefinition")
	return n.Client.RegisterTaskDefinition(ctx, in, optFns...)
}

func (w *nativeWorld) count(op string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes[op]++
}

func (n nativeECS) ListServiceDeployments(ctx context.Context, in *ecs.ListServiceDeploymentsInput, optFns ...func(*ecs.Options)) (*ecs.ListServiceDeploymentsOutput, error) {
	return n.w.fake.ListServiceDeployments(ctx, in, optFns...)
}

func (n nativeECS) DescribeServiceDeployments(ctx context.Context, in *ecs.DescribeServiceDeploymentsInput, optFns ...func(*ecs.Options)) (*ecs.DescribeServiceDeploymentsOutput, error) {
	return n.w.fake.DescribeServiceDeployments(ctx, in, optFns...)
}

func (n nativeECS) DescribeServiceRevisions(ctx context.Context, in *ecs.DescribeServiceRevisionsInput, optFns ...func(*ecs.Options)) (*ecs.DescribeServiceRevisionsOutput, error) {
	return n.w.fake.DescribeServiceRevisions(ctx, in, optFns...)
}

func (n nativeECS) ContinueServiceDeployment(ctx context.Context, in *ecs.ContinueServiceDeploymentInput, optFns ...func(*ecs.Options)) (*ecs.ContinueServiceDeploymentOutput, error) {
	return n.w.fake.ContinueServiceDeployment(ctx, in, optFns...)
}

func (n nativeECS) StopServiceDeployment(ctx context.Context, in *ecs.StopServiceDeploymentInput, optFns ...func(*ecs.Options)) (*ecs.StopServiceDeploymentOutput, error) {
	return n.w.fake.StopServiceDeployment(ctx, in, optFns...)
}

// continue, step by step on one service: nothing in flight, in flight but
// not paused, a rolling service, then a pause continued whose answer is
// lost, and the same command again — one ContinueServiceDeployment in all.
func TestContinue(t *testing.T) {
	t.Parallel()
	w := newNativeWorld(t)
	var arn, hook string
	steps := []struct {
		name      string
		before    func(t *testing.T)
		args      []string
		code      int
		want      []string // in stdout (code 0) or stderr
		continues int      // ContinueServiceDeployment calls so far
	}{
		{name: "nothing in flight", code: 1, want: []string{"nothing to continue: no deployment of prod/web is in flight"}},
		{name: "in flight, not paused", before: func(t *testing.T) { arn = w.start(t) }, code: 1,
			want: []string{"nothing to continue: prod/web is not paused at a hook; its deployment stands at CANARY 10% · bake "}},
		{name: "a rolling service", args: []string{"--cluster", "staging"}, code: 1,
			want: []string{"nothing to continue: staging/web is a rolling service, and only ECS-native blue/green, linear and canary deployments pause at hooks"}},
		{name: "a service that does not exist", args: []string{"--service", "wbe"}, code: 1,
			want: []string{"nothing continued: service wbe not found in cluster prod"}},
		{name: "paused, ECS refuses", before: func(t *testing.T) {
			hook = w.fake.Pause(arn, preProduction, 24*time.Hour)
			w.fake.FailNext("ContinueServiceDeployment", &types.ServerException{Message: aws.String("internal error")})
		}, args: []string{"--hook", "$hook"}, code: 1, continues: 1,
			want: []string{"prod/web not continued (autodeploy status shows where it stands; the same command again is safe", "ServerException"}},
		{name: "paused, the call times out", before: func(t *testing.T) {
			w.fake.FailNext("ContinueServiceDeployment", fmt.Errorf("testenv: %w", context.DeadlineExceeded))
		}, args: []string{"--hook", "$hook"}, code: 1, continues: 2, want: []string{"prod/web not continued", "deadline exceeded"}},
		{name: "paused, the answer lost", before: func(t *testing.T) {
			w.fake.LoseNext("ContinueServiceDeployment", 1)
		}, args: []string{"--hook", "$hook"}, code: 0, continues: 3,
			want: []string{"prod/web: continued at PRE_PRODUCTION_TRAFFIC_SHIFT: hook $hook of service deployment $arn", "ECS applied it; its answer was lost"}},
		{name: "the same again", args: []string{"--hook", "$hook"}, code: 0, continues: 3,
			want: []string{"prod/web: already continued: hook $hook of service deployment $arn (nothing sent)"}},
		{name: "a hook that is not there", args: []string{"--hook", "ecs-pause-9999hook"}, code: 1, continues: 3,
			want: []string{"hook ecs-pause-9999hook is not among the hooks of its in-flight service deployments"}},
	}
	for _, s := range steps {
		if s.before != nil {
			s.before(t)
		}
		args := []string{"continue", "--cluster", "prod", "--service", "web"}
		for _, a := range s.args {
			args = append(args, strings.NewReplacer("$hook", hook).Replace(a))
		}
		r := w.cli(t, args...)
		out := r.stdout
		if s.code != 0 {
			out = r.stderr
		}
		if r.code != s.code {
			t.Errorf("%s: exit %d, want %d: %+v", s.name, r.code, s.code, r)
		}
		for _, want := range s.want {
			if want = strings.NewReplacer("$hook", hook, "$arn", arn).Replace(want); !strings.Contains(out, want) {
				t.Errorf("%s: output lacks %q:\n%s", s.name, want, out)
			}
		}
		if got := w.fake.Calls("ContinueServiceDeployment"); got != s.continues {
			t.Errorf("%s: ContinueServiceDeployment called %d times, want %d", s.name, got, s.continues)
		}
	}
	if got := w.fake.HookStatus(arn, hook); got != types.DeploymentLifecycleHookStatusSucceeded {
		t.Errorf("hook %s is %s, want SUCCEEDED", hook, got)
	}
}

// rollback during an in-flight ECS-native deployment goes through ECS — a
// continue with ROLLBACK at a paused hook, else a stop with rollback —
// registers nothing and updates nothing; the first answer is lost, and the
// rollback run again says ECS is already rolling back and sends nothing.
// It holds the service and records the rollback (from the deployment's
// revision to the one it came from, with its service deployment).
func TestRollbackInFlightGoesThroughECS(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		pause    bool
		op       string // the call that rolls back
		did      string
		wouldUse string
	}{
		{name: "shifting traffic", op: "StopServiceDeployment", did: "stopped with rollback", wouldUse: "StopServiceDeployment ROLLBACK of service deployment"},
		{name: "paused at a hook", pause: true, op: "ContinueServiceDeployment", did: "rolled back at the paused hook",
			wouldUse: "ContinueServiceDeployment ROLLBACK at the paused hook"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newNativeWorld(t)
			arn := w.start(t)
			if tc.pause {
				w.fake.Pause(arn, preProduction, time.Hour)
			}
			rollback := func(args ...string) run {
				return w.cli(t, append([]string{"rollback", "--cluster", "prod", "--service", "web"}, args...)...)
			}
			sends := func() int { return w.fake.Calls("StopServiceDeployment") + w.fake.Calls("ContinueServiceDeployment") }

			r := rollback("--dry-run")
			for _, want := range []string{"would roll prod/web back through ECS: " + tc.wouldUse, arn, "web-prod:2 → web-prod:1 (dry run: nothing done)",
				"restores app: " + v140 + ", in place of " + v150, "would hold it"} {
				if r.code != 0 || !strings.Contains(r.stdout, want) {
					t.Errorf("dry run lacks %q: %+v", want, r)
				}
			}
			if r := rollback("--to", "1"); r.code != 1 || !strings.Contains(r.stderr, "refused: an ECS-native deployment of prod/web is in flight") {
				t.Errorf("--to in flight: %+v", r)
			}
			if sends() != 0 {
				t.Fatalf("the dry run and the refusal sent %d calls", sends())
			}

			store := history.NewStore(dynamodb.NewFromConfig(w.moto.AWSConfig()), w.table)
			key := history.ServiceKey(testenv.Account, testenv.Region, "prod", "web")
			// ECS refuses (nothing applied): no row, no hold, the lock let go.
			w.fake.FailNext(tc.op, &types.ServerException{Message: aws.String("internal error")})
			if r := rollback(); r.code != 1 || !strings.Contains(r.stderr, "prod/web not rolled back (the same command again is safe") {
				t.Errorf("refused rollback: %+v", r)
			}
			if recs, err := store.Recent(context.Background(), key, 10); err != nil || len(recs) != 0 {
				t.Errorf("a refused rollback left history %+v, %v", recs, err)
			}

			w.fake.LoseNext(tc.op, 1)
			r = rollback()
			for _, want := range []string{"rolling prod/web back through ECS: " + tc.did, "web-prod:2 → web-prod:1 (service deployment " + arn + ")",
				"ECS applied it; its answer was lost", "restores app: " + v140, "held by ", "until: autodeploy resume --cluster prod --service web"} {
				if r.code != 0 || !strings.Contains(r.stdout, want) {
					t.Errorf("rollback lacks %q: %+v", want, r)
				}
			}
			if got := w.fake.Deployment(arn).Status; got != types.ServiceDeploymentStatusRollbackRequested {
				t.Errorf("the service deployment is %s, want ROLLBACK_REQUESTED", got)
			}
			r = rollback()
			if r.code != 0 || !strings.Contains(r.stdout, "prod/web: already rolling back through ECS: service deployment "+arn+" is already ROLLBACK_REQUESTED (nothing sent)") {
				t.Errorf("rollback again: %+v", r)
			}
			if got := w.fake.Calls(tc.op); got != 2 || sends() != 2 {
				t.Errorf("%s called %d times (%d in all), want twice (refused, then lost)", tc.op, got, sends())
			}
			if u, reg := w.written("UpdateService"), w.written("RegisterTaskDefinition"); u != 0 || reg != 0 {
				t.Errorf("the rollback through ECS called UpdateService %d and RegisterTaskDefinition %d times", u, reg)
			}

			recs, err := store.Recent(context.Background(), key, 10)
			if err != nil {
				t.Fatal(err)
			}
			var got []history.Record
			for _, rec := range recs {
				got = append(got, history.Record{Rule: rec.Rule, FromTaskDefinition: rec.FromTaskDefinition, ToTaskDefinition: rec.ToTaskDefinition,
					ServiceDeploymentARN: rec.ServiceDeploymentARN, Rollout: rec.Rollout, Outcome: rec.Outcome, Tag: rec.Tag, Containers: rec.Containers})
			}
			want := []history.Record{{Rule: "rollback", FromTaskDefinition: w.second, ToTaskDefinition: w.first, ServiceDeploymentARN: arn,
				Rollout: "ECS-native CANARY", Outcome: "deployed", Tag: "v1.4.0", Containers: []string{"app"}}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("history (-want +got):\n%s", diff)
			}
			states, err := store.States(context.Background(), []string{key})
			if err != nil || states[key].Hold == nil || !strings.Contains(states[key].Hold.Reason, "rolled back through ECS from web-prod:2 to web-prod:1") {
				t.Errorf("hold: %+v, %v", states[key].Hold, err)
			}
		})
	}
}

// With nothing in flight (the canary completed), rollback of an
// ECS-native service does what it does for any service: it deploys the
// revision the latest deploy replaced, and sends ECS no stop or continue.
func TestRollbackNativeNothingInFlight(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newNativeWorld(t)
	arn := w.start(t)
	w.fake.End(arn, types.ServiceDeploymentStatusSuccessful, "", "")
	client := ecs.NewFromConfig(w.moto.AWSConfig())
	if _, err := client.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("prod"), Service: aws.String("web"), TaskDefinition: aws.String(w.second)}); err != nil {
		t.Fatal(err)
	}
	store := history.NewStore(dynamodb.NewFromConfig(w.moto.AWSConfig()), w.table)
	if err := store.Put(ctx, history.Record{Rule: "web-prod", Account: testenv.Account, Region: testenv.Region, Cluster: "prod", Service: "web",
		FromTaskDefinition: w.first, ToTaskDefinition: w.second, EventID: "e1", Outcome: "deployed", Tag: "v1.5.0", DeployedAt: w.clock()}); err != nil {
		t.Fatal(err)
	}
	r := w.cli(t, "rollback", "--cluster", "prod", "--service", "web", "--dry-run")
	if r.code != 0 || !strings.Contains(r.stdout, "would roll prod/web back: web-prod:2 → web-prod:1, by a new ECS-native CANARY deployment (none is in flight to roll back through ECS)") {
		t.Errorf("dry run: %+v", r)
	}
	r = w.cli(t, "rollback", "--cluster", "prod", "--service", "web")
	if r.code != 0 || !strings.Contains(r.stdout, "rolled prod/web back: web-prod:2 → web-prod:1") {
		t.Fatalf("rollback: %+v", r)
	}
	if w.written("UpdateService") != 1 || w.fake.Calls("StopServiceDeployment")+w.fake.Calls("ContinueServiceDeployment") != 0 {
		t.Errorf("UpdateService %d times, stop %d, continue %d; want 1, 0, 0", w.written("UpdateService"),
			w.fake.Calls("StopServiceDeployment"), w.fake.Calls("ContinueServiceDeployment"))
	}
}

// status and plan name each target's kind, and an ECS-native service's
// stage while its deployment is in flight; a rolling service costs no
// service-deployment call.
func TestStatusAndPlanShowTheStage(t *testing.T) {
	t.Parallel()
	w := newNativeWorld(t)
	w.moto.Repository(t, "web", "v1.4.0", "v1.5.0", "main-1")
	config := writeTempFile(t, nativeRulesYAML)
	rows := func(out string) map[string]string {
		got := map[string]string{}
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) > 2 && strings.HasPrefix(f[0], "web-") {
				got[f[0]] = strings.Join(f, " ")
			}
		}
		return got
	}
	lists := func() int { return w.fake.Calls("ListServiceDeployments") }

	r := w.cli(t, "status", "--config", config)
	if got := rows(r.stdout); r.code != 0 || !strings.HasPrefix(got["web-prod"], "web-prod prod/web ECS-native CANARY v1.4.0 ") ||
		!strings.HasPrefix(got["web-staging"], "web-staging staging/web rolling ") {
		t.Errorf("status with nothing in flight: %+v\n%q", r, got)
	}
	if lists() != 1 {
		t.Errorf("status listed service deployments %d times, want once (the ECS-native service only)", lists())
	}

	arn := w.start(t)
	w.advance(time.Minute)
	r = w.cli(t, "status", "--config", config)
	if got := rows(r.stdout)["web-prod"]; !strings.HasPrefix(got, "web-prod prod/web ECS-native CANARY 10% · bake 4 min left v1.4.0 ") {
		t.Errorf("status in the canary's bake: %q\n%s", got, r.stderr)
	}
	w.fake.Pause(arn, preProduction, 24*time.Hour)
	r = w.cli(t, "status", "--config", config)
	if got := rows(r.stdout)["web-prod"]; !strings.Contains(got, "ECS-native CANARY 10% · paused at PRE_PRODUCTION_TRAFFIC_SHIFT · times out in 24 h (then ROLLBACK)") {
		t.Errorf("status while paused: %q", got)
	}

	event := filepath.Join(testenv.RepoRoot(t), "events", "ecr-push-release.json")
	r = w.cli(t, "plan", "--event", event, "--config", config)
	want := "rule web-prod → prod/web\n  rollout: ECS-native CANARY · in flight: CANARY 10% · paused at PRE_PRODUCTION_TRAFFIC_SHIFT"
	if r.code != 0 || !strings.Contains(r.stdout, want) {
		t.Errorf("plan lacks %q:\n%s%s", want, r.stdout, r.stderr)
	}
	w.fake.End(arn, types.ServiceDeploymentStatusSuccessful, "", "")
	before := lists()
	r = w.cli(t, "plan", "--event", filepath.Join(testenv.RepoRoot(t), "events", "ecr-push-main.json"), "--config", config)
	if r.code != 0 || !strings.Contains(r.stdout, "rule web-staging → staging/web\n  rollout: rolling\n") || lists() != before {
		t.Errorf("plan of the rolling service (%d listings): %s%s", lists()-before, r.stdout, r.stderr)
	}
}
