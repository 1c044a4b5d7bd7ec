package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/gate"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/timer"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work"
)

// fakeECSService answers, over HTTP as ECS does (JSON 1.1), the three reads
// an ECS-native rollout's outcome takes — ListServiceDeployments,
// DescribeServiceDeployments, DescribeServiceRevisions — for one service
// deployment whose status the test sets. moto implements none of them.
type fakeECSService struct {
	mu             sync.Mutex
	status         string
	arn, rev, td   string
	updated        time.Time
	bakeMinutes    int
	calls          map[string]int
	unknownTargets []string
}

func (f *fakeECSService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	target := r.Header.Get("X-Amz-Target")
	op := target[strings.LastIndex(target, ".")+1:]
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[op]++
	var body any
	switch op {
	case "ListServiceDeployments":
		body = map[string]any{"serviceDeployments": []any{map[string]any{"serviceDeploymentArn": f.arn,
			"targetServiceRevisionArn": f.rev, "status": f.status, "createdAt": f.updated.Unix()}}}
	case "DescribeServiceDeployments":
		body = map[string]any{"serviceDeployments": []any{map[string]any{
			"serviceDeploymentArn": f.arn, "status": f.status, "lifecycleStage": "BAKE_TIME", "updatedAt": f.updated.Unix(),
			"deploymentConfiguration": map[string]any{"strategy": "BLUE_GREEN", "bakeTimeInMinutes": f.bakeMinutes},
			"targetServiceRevision":   map[string]any{"arn": f.rev, "requestedProductionTrafficWeight": 100.0},
		}}}
	case "DescribeServiceRevisions":
		body = map[string]any{"serviceRevisions": []any{map[string]any{"serviceRevisionArn": f.rev, "taskDefinition": f.td}}}
	default:
		f.unknownTargets = append(f.unknownTargets, target)
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"__type":"UnknownOperationException","message":"not in the fake"}`))
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(body)
}

func (f *fakeECSService) set(status string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status = status
}

// TestRecheckTimerUnderRIE: the built watcher, configured with timers
// (AUTODEPLOY_SCHEDULE_GROUP, AUTODEPLOY_SCHEDULER_ROLE_ARN), finds an
// ECS-native blue/green rollout still baking, sets one self-deleting
// schedule in moto's Scheduler that invokes the watcher itself with the
// recheck command — the same schedule when the recheck is delivered twice —
// and, handed that schedule's input once ECS says SUCCESSFUL, records the
// deployment completed. ECS's service deployments are a fake over HTTP
// (AWS_ENDPOINT_URL_ECS): moto has none.
func TestRecheckTimerUnderRIE(t *testing.T) {
	m := testenv.StartMoto(t)
	ctx := context.Background()
	table := m.CreateTable(t, "autodeploy-state")
	store := history.NewStore(dynamodb.NewFromConfig(m.AWSConfig()), table)
	sched := scheduler.NewFromConfig(m.AWSConfig())
	if _, err := sched.CreateScheduleGroup(ctx, &scheduler.CreateScheduleGroupInput{Name: aws.String(timer.DefaultGroup)}); err != nil {
		t.Fatal(err)
	}
	deployed := time.Now().UTC().Add(-2 * time.Minute).Truncate(time.Second) // ECS answers whole seconds
	const (
		sdARN = "arn:aws:ecs:" + testenv.Region + ":" + testenv.Account + ":service-deployment/staging/web/AbCdEf0123456789"
		td    = "arn:aws:ecs:" + testenv.Region + ":" + testenv.Account + ":task-definition/web:8"
		depID = "ecs-svc/5555555555555555555"
		role  = "arn:aws:iam::" + testenv.Account + ":role/ecr-autodeploy-timers"
	)
	ecsFake := &fakeECSService{status: "IN_PROGRESS", arn: sdARN, td: td, updated: deployed, bakeMinutes: 10, calls: map[string]int{},
		rev: "arn:aws:ecs:" + testenv.Region + ":" + testenv.Account + ":service-revision/staging/web/1234567890"}
	srv := httptest.NewServer(ecsFake)
	t.Cleanup(srv.Close)
	if err := store.Put(ctx, history.Record{
		Rule: "web-staging", Repository: "web", RegistryAccount: testenv.Account, RegistryRegion: testenv.Region,
		Tag: "main-bg1", Digest: "sha256:" + strings.Repeat("b", 64), Account: testenv.Account, Region: testenv.Region,
		Cluster: "staging", Service: "web", DeploymentID: depID, EventID: "push-main-bg1", ToTaskDefinition: td,
		Rollout: "ECS-native BLUE_GREEN", ServiceDeploymentARN: sdARN,
		Outcome: "deployed", PushedAt: deployed, DeployedAt: deployed,
	}); err != nil {
		t.Fatal(err)
	}
	rie := testenv.StartFunction(t, "watcher", "testdata/autodeploy.yaml", append(m.Env(), "AUTODEPLOY_TABLE="+table,
		"AWS_ENDPOINT_URL_ECS="+srv.URL, timer.EnvGroup+"="+timer.DefaultGroup, timer.EnvRoleARN+"="+role))

	recheck, err := work.EncodeCommand(work.Recheck{DeploymentID: depID})
	if err != nil {
		t.Fatal(err)
	}
	// In flight, twice (a duplicate delivery): one schedule.
	for i := range 2 {
		body, err := rie.Invoke(ctx, recheck)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(body), `"outcome":"in_progress"`) {
			t.Fatalf("delivery %d answered %s, want in_progress (logs:\n%s)", i+1, body, rie.Logs())
		}
	}
	list, err := sched.ListSchedules(ctx, &scheduler.ListSchedulesInput{GroupName: aws.String(timer.DefaultGroup)})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Schedules) != 1 {
		t.Fatalf("%d schedules in %s, want exactly one (logs:\n%s)", len(list.Schedules), timer.DefaultGroup, rie.Logs())
	}
	got, err := sched.GetSchedule(ctx, &scheduler.GetScheduleInput{Name: list.Schedules[0].Name, GroupName: aws.String(timer.DefaultGroup)})
	if err != nil {
		t.Fatal(err)
	}
	bakeEnd := deployed.Add(10 * time.Minute)
	if want := timer.Expression(timer.FireTime(bakeEnd, time.Now())); aws.ToString(got.ScheduleExpression) != want {
		t.Errorf("schedule fires %s, want %s (the bake's end, rounded up to the minute)", aws.ToString(got.ScheduleExpression), want)
	}
	if got.ActionAfterCompletion != "DELETE" || aws.ToString(got.Target.RoleArn) != role ||
		!strings.Contains(aws.ToString(got.Target.Arn), ":function:") {
		t.Errorf("schedule: after completion %s, role %s, target %s", got.ActionAfterCompletion, aws.ToString(got.Target.RoleArn), aws.ToString(got.Target.Arn))
	}
	// The bake ended: Scheduler hands the watcher the schedule's input.
	ecsFake.set("SUCCESSFUL")
	body, err := rie.Invoke(ctx, []byte(aws.ToString(got.Target.Input)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(body), `"outcome":"completed"`) {
		t.Errorf("the timer's recheck answered %s, want completed", body)
	}
	rec, found, err := store.ByDeployment(ctx, depID)
	if err != nil || !found || rec.DeploymentOutcome != history.Completed {
		t.Errorf("history outcome = %q (found %v, %v), want completed", rec.DeploymentOutcome, found, err)
	}
	if len(ecsFake.unknownTargets) > 0 {
		t.Errorf("the watcher called ECS operations the fake lacks: %v", ecsFake.unknownTargets)
	}

	// A gate's timer: the approval web-approved asked for an hour ago
	// expired; its gate-due, delivered twice, ends it once.
	gates := gate.NewStore(dynamodb.NewFromConfig(m.AWSConfig()), table)
	digest := "sha256:" + strings.Repeat("a", 64)
	asked := time.Now().UTC().Add(-2 * time.Hour)
	if _, err := gates.RequestApproval(ctx, gate.ApprovalRequest{Rule: "web-approved", Digest: digest, Repository: "web", Tag: "rc-1",
		PushedAt: asked, At: asked, Expires: time.Hour}); err != nil {
		t.Fatal(err)
	}
	due, err := work.EncodeCommand(work.GateDue{Gate: "approval", Rule: "web-approved", Digest: digest})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		body, err := rie.Invoke(ctx, due)
		if err != nil {
			t.Fatal(err)
		}
		if want := `"gates":{"gate":"approval#web-approved#` + digest + `"}`; !strings.Contains(string(body), want) {
			t.Errorf("gate-due delivery %d answered %s, want %s", i+1, body, want)
		}
	}
	a, found, err := gates.GetApproval(ctx, "web-approved", digest)
	if err != nil || !found || a.State != gate.Expired {
		t.Errorf("approval %s (found %v, %v), want expired", a.State, found, err)
	}
	if n := strings.Count(rie.WaitLogs(`"outcome":"expired"`, 1, 5*time.Second), `"outcome":"expired"`); n != 1 {
		t.Errorf("%d expired gate lines, want 1:\n%s", n, rie.Logs())
	}
}

// TestHalfConfiguredTimersFailInit: a watcher given the schedule group but
// not the role (or the other way round) does not start, and says which
// variable is missing, instead of failing at the first rollout in flight.
func TestHalfConfiguredTimersFailInit(t *testing.T) {
	m := testenv.StartMoto(t)
	table := m.CreateTable(t, "autodeploy-state")
	for _, tt := range []struct{ name, env, missing string }{
		{"group only", timer.EnvGroup + "=" + timer.DefaultGroup, timer.EnvRoleARN},
		{"role only", timer.EnvRoleARN + "=arn:aws:iam::" + testenv.Account + ":role/timers", timer.EnvGroup},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rie := testenv.StartFunction(t, "watcher", "testdata/autodeploy.yaml", append(m.Env(), "AUTODEPLOY_TABLE="+table, tt.env))
			body, err := rie.Invoke(context.Background(), testenv.Event(t, "ecs-deployment-completed.json"))
			if err == nil {
				t.Errorf("a half-configured watcher answered %s, want no answer (its init exits)", body)
			}
			if logs := rie.WaitLogs("init failed", 1, 5*time.Second); !strings.Contains(logs, tt.missing+" is not set") {
				t.Errorf("init did not say %s is not set:\n%s", tt.missing, logs)
			}
		})
	}
}
