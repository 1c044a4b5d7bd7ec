package cleanup

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecsarn"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/logging"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/taskdef"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

// env is moto behind the test proxy (which counts calls and can lose
// answers) and a throttle of DeregisterTaskDefinition (a token bucket the
// test refills between runs, as ECS's refills between sweeps).
type env struct {
	t        *testing.T
	ecs      *ecs.Client
	proxy    *testenv.Proxy
	throttle *throttle
	logs     *bytes.Buffer
}

func newEnv(t *testing.T, attempts int) *env {
	t.Helper()
	m := testenv.StartMoto(t)
	p := testenv.StartProxy(t, m.Endpoint)
	th := &throttle{tokens: -1, base: http.DefaultTransport}
	cfg := p.Config(m.AWSConfig())
	cfg.HTTPClient = &http.Client{Transport: th}
	cfg.RetryMaxAttempts = attempts
	return &env{t: t, ecs: ecs.NewFromConfig(cfg), proxy: p, throttle: th, logs: &bytes.Buffer{}}
}

func (e *env) cleaner() *Cleaner { return New(e.ecs, logging.New(e.logs, 0)) }

// family registers revisions 1..n of family; foreign ones carry no
// autodeploy tags (made by hand or by IaC), the others carry the product's.
func (e *env) family(family string, n int, foreign ...int) {
	e.t.Helper()
	for i := 1; i <= n; i++ {
		in := &ecs.RegisterTaskDefinitionInput{
			Family: aws.String(family),
			ContainerDefinitions: []types.ContainerDefinition{{
				Name: aws.String("app"), Image: aws.String(fmt.Sprintf("web:%d", i)), Memory: aws.Int32(128),
			}},
		}
		if !slices.Contains(foreign, i) {
			in.Tags = []types.Tag{{Key: aws.String(taskdef.TagRule), Value: aws.String("web-prod")}, {Key: aws.String(taskdef.TagEvent), Value: aws.String(strconv.Itoa(i))}}
		}
		out, err := e.ecs.RegisterTaskDefinition(context.Background(), in)
		if err != nil {
			e.t.Fatal(err)
		}
		if got := out.TaskDefinition.Revision; got != int32(i) {
			e.t.Fatalf("registered %s:%d, want revision %d", family, got, i)
		}
	}
}

// service creates a service running family:running and returns moto's
// DescribeServices answer for it, as the caller of Run has one.
func (e *env) service(family string, running int) types.Service {
	e.t.Helper()
	return e.serviceIn("prod", family, family, running)
}

// serviceIn creates service name in cluster running family:running and
// returns moto's DescribeServices answer for it.
func (e *env) serviceIn(cluster, name, family string, running int) types.Service {
	e.t.Helper()
	ctx := context.Background()
	if _, err := e.ecs.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(cluster)}); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.ecs.CreateService(ctx, &ecs.CreateServiceInput{
		Cluster: aws.String(cluster), ServiceName: aws.String(name), DesiredCount: aws.Int32(0),
		TaskDefinition: aws.String(fmt.Sprintf("%s:%d", family, running)),
	}); err != nil {
		e.t.Fatal(err)
	}
	out, err := e.ecs.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(cluster), Services: []string{name}})
	if err != nil || len(out.Services) != 1 {
		e.t.Fatalf("DescribeServices: %v %+v", err, out)
	}
	return out.Services[0]
}

// revisions are the family's revision numbers of a status, ascending.
func (e *env) revisions(family string, status types.TaskDefinitionStatus) []int {
	e.t.Helper()
	out, err := e.ecs.ListTaskDefinitions(context.Background(), &ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String(family), Status: status})
	if err != nil {
		e.t.Fatal(err)
	}
	var revs []int
	for _, a := range out.TaskDefinitionArns {
		_, n := ecsarn.FamilyRevision((a))
		revs = append(revs, n)
	}
	slices.Sort(revs)
	return revs
}

// calls are the proxy's counts since the last call, by operation (the
// proxy starts counting anew at each).
func (e *env) calls() map[string]int {
	now := e.proxy.Calls()
	delete(now, "")
	return now
}

func rev(family string, n int) string { return fmt.Sprintf("%s:%d", family, n) }

// TestTwelveRevisionsKeepThree: a family of 12 with keep 3 ends with the
// running one, the rollback candidates, the published one, the one before
// the running one, the newest foreign one and the newest three ACTIVE; a
// second run does nothing beyond one listing.
func TestTwelveRevisionsKeepThree(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	e.family("web", 12, 1, 2) // 1 and 2 by IaC
	svc := e.service("web", 4)
	target := Target{
		Keep: 3, Services: one(svc, rev("web", 6), "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:7"),
		Published: []string{rev("web", 8)},
	}
	c := e.cleaner()
	plan, err := c.Plan(context.Background(), target)
	if err != nil {
		t.Fatal(err)
	}
	type kept struct {
		N       int
		Reasons []string
	}
	var gotKept []kept
	for _, k := range plan.Kept {
		gotKept = append(gotKept, kept{k.Number, k.Reasons})
	}
	wantKept := []kept{
		{12, []string{ReasonNewest}}, {11, []string{ReasonNewest}}, {10, []string{ReasonNewest}},
		{8, []string{ReasonPublished}}, {7, []string{ReasonRollback}}, {6, []string{ReasonRollback}},
		{4, []string{ReasonRunning, ReasonDeployment}}, {3, []string{ReasonPrevious}},
	}
	if diff := cmp.Diff(wantKept, gotKept); diff != "" {
		t.Errorf("kept (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"web:9", "web:5", "web:2", "web:1"}, names(plan.Candidates)); diff != "" {
		t.Errorf("candidates (-want +got):\n%s", diff)
	}

	e.calls() // counts from here
	res, err := c.Run(context.Background(), target, NewBudget(10))
	if err != nil {
		t.Fatal(err)
	}
	want := Result{Family: "web", Deregistered: []string{"web:9", "web:5", "web:1"}, Foreign: "web:2"}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	// Tags are read only until the newest foreign revision is found: 9, 5, 2.
	if diff := cmp.Diff(map[string]int{"ListTaskDefinitions": 1, "DescribeTaskDefinition": 3, "DeregisterTaskDefinition": 3}, e.calls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int{2, 3, 4, 6, 7, 8, 10, 11, 12}, e.revisions("web", types.TaskDefinitionStatusActive)); diff != "" {
		t.Errorf("ACTIVE after (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int{1, 5, 9}, e.revisions("web", types.TaskDefinitionStatusInactive)); diff != "" {
		t.Errorf("INACTIVE after (-want +got):\n%s", diff)
	}

	// The second run: the foreign revision beyond keep is read again (one
	// DescribeTaskDefinition), nothing is deregistered.
	e.calls()
	res, err = c.Run(context.Background(), target, NewBudget(10))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Result{Family: "web", Foreign: "web:2"}, res); diff != "" {
		t.Errorf("second run (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]int{"ListTaskDefinitions": 1, "DescribeTaskDefinition": 1}, e.calls()); diff != "" {
		t.Errorf("second run's calls (-want +got):\n%s", diff)
	}

	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(e.logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		lines = append(lines, map[string]any{"msg": m["msg"], "family": m["family"], "revisions": m["revisions"], "outcome": m["outcome"]})
	}
	line := func(outcome string, revs ...float64) map[string]any {
		r := []any{}
		for _, n := range revs {
			r = append(r, n)
		}
		return map[string]any{"msg": "cleanup", "family": "web", "revisions": r, "outcome": outcome}
	}
	wantLines := []map[string]any{
		line(OutcomeDeregistered, 9), line(OutcomeDeregistered, 5), line(OutcomeKept, 2), line(OutcomeDeregistered, 1),
		line(OutcomeKept, 2),
	}
	if diff := cmp.Diff(wantLines, lines); diff != "" {
		t.Errorf("log lines (-want +got):\n%s", diff)
	}
}

// TestSharedFamilyInMoto: services staging/web and prod/web both run the
// family web, as moto describes them; cleaning the family up keeps what
// either needs (prod's web:3 and web:2, the one before it and its rollback
// candidate; staging's newest three), in one listing of the family.
func TestSharedFamilyInMoto(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	e.family("web", 10)
	tg := Target{Keep: 3, Services: []Service{
		{Described: e.serviceIn("staging", "web", "web", 10), Rollback: []string{rev("web", 9)}},
		{Described: e.serviceIn("prod", "web", "web", 3), Rollback: []string{rev("web", 2), rev("web", 3)}},
	}}
	c := e.cleaner()
	e.calls() // counts from here
	res, err := c.Run(context.Background(), tg, NewBudget(20))
	if err != nil {
		t.Fatal(err)
	}
	want := Result{Family: "web", Deregistered: []string{"web:7", "web:6", "web:5", "web:4", "web:1"}}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]int{"ListTaskDefinitions": 1, "DescribeTaskDefinition": 5, "DeregisterTaskDefinition": 5}, e.calls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int{2, 3, 8, 9, 10}, e.revisions("web", types.TaskDefinitionStatusActive)); diff != "" {
		t.Errorf("ACTIVE after (-want +got):\n%s", diff)
	}
}

// TestCleanFamilyOneListing is the benchmark's counter: once a family of
// the product's revisions is clean, planning and running make exactly one
// ListTaskDefinitions call per family and nothing else.
func TestCleanFamilyOneListing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	families := []string{"web", "api", "worker"}
	var targets []Target
	for _, f := range families {
		e.family(f, 8)
		targets = append(targets, Target{Keep: 3, Delete: true, Services: one(e.service(f, 8), rev(f, 7), rev(f, 6))})
	}
	c := e.cleaner()
	for _, tg := range targets {
		if _, err := c.Run(context.Background(), tg, NewBudget(20)); err != nil {
			t.Fatal(err)
		}
	}
	e.calls() // counts from here
	for _, tg := range targets {
		res, err := c.Run(context.Background(), tg, NewBudget(20))
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Deregistered)+len(res.Deleted)+len(res.Left) > 0 {
			t.Errorf("a clean family did something: %+v", res)
		}
	}
	if diff := cmp.Diff(map[string]int{"ListTaskDefinitions": len(families)}, e.calls()); diff != "" {
		t.Errorf("calls for %d clean families (-want +got):\n%s", len(families), diff)
	}
}

// TestThrottleStopsAndNextRunFinishes: ECS's bucket gives out after three
// deregistrations; the run stops at the throttle, spends its budget (a
// second family on the same budget is not touched) and leaves the rest,
// which the next run, the bucket refilled, finishes. A third does nothing.
func TestThrottleStopsAndNextRunFinishes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	e.family("web", 12)
	e.family("api", 6)
	web := Target{Keep: 3, Services: one(e.service("web", 12))}
	api := Target{Keep: 2, Services: one(e.service("api", 6))}
	c := e.cleaner()

	e.throttle.set(3)
	b := NewBudget(20)
	res, err := c.Run(context.Background(), web, b)
	if err != nil {
		t.Fatal(err)
	}
	want := Result{Family: "web", Deregistered: []string{"web:9", "web:8", "web:7"}, Throttled: true,
		Left: []string{"web:6", "web:5", "web:4", "web:3", "web:2", "web:1"}}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("throttled run (-want +got):\n%s", diff)
	}
	if !b.Throttled() || b.Left() != 0 {
		t.Errorf("budget after a throttle: throttled %v, left %d; want spent", b.Throttled(), b.Left())
	}
	e.calls() // counts from here
	res, err = c.Run(context.Background(), api, b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Result{Family: "api", Left: []string{"api:4", "api:3", "api:2", "api:1"}}, res); diff != "" {
		t.Errorf("second family on a throttled budget (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]int{"ListTaskDefinitions": 1}, e.calls()); diff != "" {
		t.Errorf("calls on a throttled budget (-want +got):\n%s", diff)
	}

	e.throttle.set(-1)
	res, err = c.Run(context.Background(), web, NewBudget(20))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Result{Family: "web", Deregistered: []string{"web:6", "web:5", "web:4", "web:3", "web:2", "web:1"}}, res); diff != "" {
		t.Errorf("next run (-want +got):\n%s", diff)
	}
	e.calls()
	res, err = c.Run(context.Background(), web, NewBudget(20))
	if err != nil || !cmp.Equal(res, Result{Family: "web"}) {
		t.Errorf("third run: %+v, %v; want nothing done", res, err)
	}
	if diff := cmp.Diff(map[string]int{"ListTaskDefinitions": 1}, e.calls()); diff != "" {
		t.Errorf("third run's calls (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int{10, 11, 12}, e.revisions("web", types.TaskDefinitionStatusActive)); diff != "" {
		t.Errorf("ACTIVE (-want +got):\n%s", diff)
	}
	if !strings.Contains(e.logs.String(), `"outcome":"throttled"`) {
		t.Errorf("no throttled log line:\n%s", e.logs)
	}
}

// TestBudgetPaces: a budget of four deregisters four, leaves the rest.
func TestBudgetPaces(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	e.family("web", 10)
	tg := Target{Keep: 2, Services: one(e.service("web", 10))}
	c := e.cleaner()
	b := NewBudget(4)
	res, err := c.Run(context.Background(), tg, b)
	if err != nil {
		t.Fatal(err)
	}
	want := Result{Family: "web", Deregistered: []string{"web:8", "web:7", "web:6", "web:5"}, Left: []string{"web:4", "web:3", "web:2", "web:1"}}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if b.Left() != 0 || b.Throttled() {
		t.Errorf("budget: left %d, throttled %v", b.Left(), b.Throttled())
	}
}

// TestLostDeregistration: ECS applies a deregistration and its answer is
// lost. The call is made once (even on a client that retries), so the run
// stops with the error and the next run, which no longer lists that
// revision, finishes the rest.
func TestLostDeregistration(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		attempts int
		first    Result
		firstErr bool
		second   Result
		sent     int // DeregisterTaskDefinition requests in all
	}{
		// Deregistrations are sent once whatever the client's retries (they
		// spend the register bucket deploys need): a lost answer ends the
		// run, and the next one, which lists again, goes on.
		{"a lost answer: the next run", 3,
			Result{Family: "web", Left: []string{"web:4", "web:3", "web:2", "web:1"}}, true,
			Result{Family: "web", Deregistered: []string{"web:3", "web:2", "web:1"}}, 4},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, tt.attempts)
			e.family("web", 6)
			tg := Target{Keep: 2, Services: one(e.service("web", 6))}
			c := e.cleaner()
			e.proxy.Lose("DeregisterTaskDefinition", 1)
			res, err := c.Run(context.Background(), tg, NewBudget(10))
			if (err != nil) != tt.firstErr {
				t.Fatalf("first run error %v, want error %v", err, tt.firstErr)
			}
			if diff := cmp.Diff(tt.first, res); diff != "" {
				t.Errorf("first run (-want +got):\n%s", diff)
			}
			if e.proxy.Lost("DeregisterTaskDefinition") != 1 {
				t.Fatal("the proxy lost no answer")
			}
			res, err = c.Run(context.Background(), tg, NewBudget(10))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.second, res); diff != "" {
				t.Errorf("second run (-want +got):\n%s", diff)
			}
			if got := e.calls()["DeregisterTaskDefinition"]; got != tt.sent {
				t.Errorf("DeregisterTaskDefinition sent %d times, want %d", got, tt.sent)
			}
			if diff := cmp.Diff([]int{5, 6}, e.revisions("web", types.TaskDefinitionStatusActive)); diff != "" {
				t.Errorf("ACTIVE (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDeleteTenPerCall: with delete, the deregistered revisions are
// deleted ten per call (23: 10, 10, 3); a delete cut short by the budget
// is finished by the next run that sweeps INACTIVE revisions.
func TestDeleteTenPerCall(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	e.family("web", 25)
	tg := Target{Keep: 2, Delete: true, Services: one(e.service("web", 25))}
	c := e.cleaner()
	e.calls()                                                  // counts from here
	res, err := c.Run(context.Background(), tg, NewBudget(25)) // 23 deregistrations, 2 deletes
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Deregistered) != 23 || len(res.Deleted) != 20 || len(res.LeftToDelete) != 3 {
		t.Errorf("deregistered %d, deleted %d, left to delete %v; want 23, 20, 3", len(res.Deregistered), len(res.Deleted), res.LeftToDelete)
	}
	if diff := cmp.Diff(map[string]int{"ListTaskDefinitions": 2, "DescribeTaskDefinition": 23, "DeregisterTaskDefinition": 23, "DeleteTaskDefinitions": 2}, e.calls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	// Without a deregistration nor SweepInactive, INACTIVE ones are not listed.
	if res, err := c.Run(context.Background(), tg, NewBudget(25)); err != nil || len(res.Deleted) > 0 {
		t.Errorf("run without sweep: %+v, %v", res, err)
	}
	tg.SweepInactive = true
	res, err = c.Run(context.Background(), tg, NewBudget(25))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Result{Family: "web", Deleted: []string{"web:21", "web:22", "web:23"}}, res); diff != "" {
		t.Errorf("sweep (-want +got):\n%s", diff)
	}
	if got := e.revisions("web", types.TaskDefinitionStatusInactive); len(got) != 0 {
		t.Errorf("INACTIVE left: %v", got)
	}
	if diff := cmp.Diff([]int{24, 25}, e.revisions("web", types.TaskDefinitionStatusActive)); diff != "" {
		t.Errorf("ACTIVE (-want +got):\n%s", diff)
	}
}

// TestMotoDeleteRules checks what the delete path relies on moto to show
// as ECS does: at most ten revisions per call, and only INACTIVE ones.
func TestMotoDeleteRules(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	e.family("web", 12)
	ctx := context.Background()
	var eleven []string
	for i := 1; i <= 11; i++ {
		eleven = append(eleven, rev("web", i))
	}
	if _, err := e.ecs.DeleteTaskDefinitions(ctx, &ecs.DeleteTaskDefinitionsInput{TaskDefinitions: eleven}); err == nil || !strings.Contains(err.Error(), "cannot exceed 10") {
		t.Errorf("deleting 11: %v, want the ten-per-call refusal", err)
	}
	out, err := e.ecs.DeleteTaskDefinitions(ctx, &ecs.DeleteTaskDefinitionsInput{TaskDefinitions: []string{"web:1"}})
	if err != nil || len(out.Failures) != 1 || !strings.Contains(aws.ToString(out.Failures[0].Reason), "ACTIVE") {
		t.Errorf("deleting an ACTIVE revision: %+v, %v; want a failure", out, err)
	}
}

// throttle answers DeregisterTaskDefinition with ECS's ThrottlingException
// once its tokens are spent; tokens < 0 never throttles.
type throttle struct {
	mu     sync.Mutex
	tokens int
	base   http.RoundTripper
}

func (th *throttle) set(n int) {
	th.mu.Lock()
	defer th.mu.Unlock()
	th.tokens = n
}

func (th *throttle) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".DeregisterTaskDefinition") {
		th.mu.Lock()
		refuse := th.tokens == 0
		if th.tokens > 0 {
			th.tokens--
		}
		th.mu.Unlock()
		if refuse {
			body := `{"__type":"ThrottlingException","message":"Rate exceeded"}`
			return &http.Response{
				StatusCode: http.StatusBadRequest, Status: "400 Bad Request", Request: r,
				Header:        http.Header{"Content-Type": {"application/x-amz-json-1.1"}},
				Body:          io.NopCloser(strings.NewReader(body)),
				ContentLength: int64(len(body)),
			}, nil
		}
	}
	return th.base.RoundTrip(r)
}
