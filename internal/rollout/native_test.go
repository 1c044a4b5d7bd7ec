package rollout

// ECS-native rollouts against testenv.FakeECSDeployments: moto has no
// service deployments, revisions or hooks (and ignores a service's
// strategy), so the fake plays ECS here. Rolling starts run on moto
// (rolling_test.go).

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecsevent"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

const (
	tdOld = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:6"
	tdNew = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:7"
)

// preProductionTrafficShift is a stage ECS documents (and pauses at) that
// the SDK's ServiceDeploymentLifecycleStage enum (v1.105.1) does not list.
const preProductionTrafficShift types.ServiceDeploymentLifecycleStage = "PRE_PRODUCTION_TRAFFIC_SHIFT"

var t0 = time.Date(2026, 11, 25, 10, 0, 0, 123456000, time.UTC)

func canary() types.DeploymentConfiguration {
	return types.DeploymentConfiguration{Strategy: types.DeploymentStrategyCanary, BakeTimeInMinutes: aws.Int32(10),
		CanaryConfiguration: &types.CanaryConfiguration{CanaryPercent: aws.Float64(10), CanaryBakeTimeInMinutes: aws.Int32(5)},
		Alarms:              &types.DeploymentAlarms{AlarmNames: []string{"web-5xx"}, Enable: true, Rollback: true}}
}

// clock is a settable clock for the fake and the rollout.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

func newNative(t *testing.T, cfg types.DeploymentConfiguration) (*testenv.FakeECSDeployments, NativeRollout, *clock) {
	t.Helper()
	c := &clock{now: t0}
	f := testenv.NewFakeECSDeployments()
	f.Now = c.Now
	f.AddService("prod", "web", cfg, tdOld)
	return f, NativeRollout{Strategy: cfg.Strategy, ECS: f, Now: c.Now}, c
}

// start rolls tdNew out on prod/web as the deployer would and returns the
// End the watcher would build from its history.
func start(t *testing.T, n NativeRollout, c *clock) (Started, End) {
	t.Helper()
	s, err := n.Start(context.Background(), Revision{Cluster: "prod", Service: "web", TaskDefinition: tdNew})
	if err != nil {
		t.Fatal(err)
	}
	return s, End{Cluster: "prod", Service: "web", TaskDefinition: tdNew, DeploymentID: s.DeploymentID,
		ServiceDeploymentARN: s.ServiceDeploymentARN, StartedAt: c.now, Event: Event{Name: ecsevent.Completed}}
}

func TestNativeStart(t *testing.T) {
	f, n, c := newNative(t, canary())
	s, _ := start(t, n, c)
	if s.TaskDefinition != tdNew || !strings.HasPrefix(s.DeploymentID, "ecs-svc/") || !strings.Contains(s.ServiceDeploymentARN, ":service-deployment/prod/web/") {
		t.Errorf("Started = %+v", s)
	}
	if got := f.Deployment(s.ServiceDeploymentARN); got.Status != types.ServiceDeploymentStatusPending {
		t.Errorf("service deployment %s, want PENDING", got.Status)
	}
	if f.Calls("UpdateService") != 1 {
		t.Errorf("UpdateService called %d times", f.Calls("UpdateService"))
	}
}

func TestNativeOutcome(t *testing.T) {
	tests := []struct {
		name string
		// play moves the started deployment as ECS would.
		play func(f *testenv.FakeECSDeployments, arn string, c *clock)
		want Outcome // ServiceDeploymentARN is filled in
	}{
		{"completed after the bake", func(f *testenv.FakeECSDeployments, arn string, c *clock) {
			f.Advance(arn, types.ServiceDeploymentLifecycleStageBakeTime, 100)
			f.End(arn, types.ServiceDeploymentStatusSuccessful, "", "")
		}, Outcome{Outcome: history.Completed, Status: types.ServiceDeploymentStatusSuccessful}},
		// ECS sent SERVICE_DEPLOYMENT_COMPLETED, but the bake runs: in flight.
		{"baking", func(f *testenv.FakeECSDeployments, arn string, c *clock) {
			f.Advance(arn, types.ServiceDeploymentLifecycleStageBakeTime, 100)
			c.now = c.now.Add(6*time.Minute + 10*time.Second)
		}, Outcome{Stage: "CANARY 100% · bake 4 min left", RecheckAt: t0.Add(10 * time.Minute), Status: types.ServiceDeploymentStatusInProgress}},
		{"canary bake", func(f *testenv.FakeECSDeployments, arn string, c *clock) {
			f.Advance(arn, types.ServiceDeploymentLifecycleStageProductionTrafficShift, 10)
			c.now = c.now.Add(time.Minute)
		}, Outcome{Stage: "CANARY 10% · bake 4 min left", RecheckAt: t0.Add(5 * time.Minute), Status: types.ServiceDeploymentStatusInProgress}},
		{"paused", func(f *testenv.FakeECSDeployments, arn string, c *clock) {
			f.Pause(arn, preProductionTrafficShift, 24*time.Hour)
			c.now = c.now.Add(50 * time.Minute)
		}, Outcome{Stage: "CANARY 0% · paused at PRE_PRODUCTION_TRAFFIC_SHIFT · times out in 23 h 10 min (then ROLLBACK)", Paused: true, Status: types.ServiceDeploymentStatusInProgress}},
		{"lambda hook running", func(f *testenv.FakeECSDeployments, arn string, c *clock) {
			f.HookRuns(arn, types.ServiceDeploymentLifecycleStagePostTestTrafficShift, "arn:aws:lambda:us-east-1:123456789012:function:smoke")
		}, Outcome{Stage: "CANARY 0% · smoke hook running at POST_TEST_TRAFFIC_SHIFT", Status: types.ServiceDeploymentStatusInProgress}},
		{"pending", func(f *testenv.FakeECSDeployments, arn string, c *clock) {},
			Outcome{Stage: "CANARY 0% · pending", Status: types.ServiceDeploymentStatusPending}},
		{"rolled back by alarm", func(f *testenv.FakeECSDeployments, arn string, c *clock) {
			f.Advance(arn, types.ServiceDeploymentLifecycleStageProductionTrafficShift, 10)
			f.TriggerAlarms(arn, "web-5xx")
			f.End(arn, types.ServiceDeploymentStatusRollbackSuccessful, "", "CloudWatch alarm web-5xx triggered")
		}, Outcome{Outcome: history.RolledBack, Reason: "CloudWatch alarm web-5xx triggered; alarm web-5xx in ALARM", Status: types.ServiceDeploymentStatusRollbackSuccessful}},
		{"rolling back by circuit breaker", func(f *testenv.FakeECSDeployments, arn string, c *clock) {
			f.Advance(arn, types.ServiceDeploymentLifecycleStageScaleUp, 0)
			f.TripCircuitBreaker(arn, 4)
			f.End(arn, types.ServiceDeploymentStatusRollbackInProgress, "tasks failed to start", "circuit breaker")
		}, Outcome{Outcome: history.RolledBack, Reason: "tasks failed to start; circuit breaker; circuit breaker: 4 failed task(s), threshold 3", Status: types.ServiceDeploymentStatusRollbackInProgress}},
		{"hook timed out", func(f *testenv.FakeECSDeployments, arn string, c *clock) {
			id := f.Pause(arn, types.ServiceDeploymentLifecycleStagePostTestTrafficShift, time.Hour)
			f.SetHook(arn, id, types.DeploymentLifecycleHookStatusTimedOut)
			f.End(arn, types.ServiceDeploymentStatusRollbackSuccessful, "", "")
		}, Outcome{Outcome: history.RolledBack, Reason: "PAUSE hook ecs-pause-0003hook timed out at POST_TEST_TRAFFIC_SHIFT, timeout action ROLLBACK", Status: types.ServiceDeploymentStatusRollbackSuccessful}},
		{"rollback failed", func(f *testenv.FakeECSDeployments, arn string, c *clock) {
			f.End(arn, types.ServiceDeploymentStatusRollbackFailed, "could not restore the previous revision", "")
		}, Outcome{Outcome: history.RolledBack, Reason: "ECS's rollback failed: could not restore the previous revision", Status: types.ServiceDeploymentStatusRollbackFailed}},
		{"stopped", func(f *testenv.FakeECSDeployments, arn string, c *clock) {
			f.End(arn, types.ServiceDeploymentStatusStopped, "stopped by a user", "")
		}, Outcome{Outcome: history.Failed, Reason: "stopped: stopped by a user", Status: types.ServiceDeploymentStatusStopped}},
		{"stop requested", func(f *testenv.FakeECSDeployments, arn string, c *clock) {
			f.End(arn, types.ServiceDeploymentStatusStopRequested, "", "")
		}, Outcome{Stage: "CANARY 0% · stop requested", Status: types.ServiceDeploymentStatusStopRequested}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, n, c := newNative(t, canary())
			s, end := start(t, n, c)
			tt.play(f, s.ServiceDeploymentARN, c)
			tt.want.ServiceDeploymentARN = s.ServiceDeploymentARN
			if tt.want.Outcome != "" {
				// Ended: when ECS says (the fake ends it at the clock's now).
				tt.want.At = c.Now()
			}
			// Delivered twice (EventBridge may): the same answer.
			for range 2 {
				got, err := n.Outcome(context.Background(), end)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("Outcome (-want +got):\n%s", diff)
				}
				if got.InFlight() != (tt.want.Outcome == "") {
					t.Errorf("InFlight = %v", got.InFlight())
				}
			}
		})
	}
}

// The service deployment is found by the revision registered, whatever else
// the service ran: an older deployment, a newer one of another revision, a
// later one of the same revision forced by hand.
func TestFindServiceDeployment(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		known bool // pass Start's ARN
		since bool
		calls map[string]int
	}{
		{"known ARN", true, true, map[string]int{"ListServiceDeployments": 0, "DescribeServiceRevisions": 1, "DescribeServiceDeployments": 1}},
		// Three deployments from since on, in the fake's pages of two; the
		// one an hour before is outside the window.
		{"listed from since", false, true, map[string]int{"ListServiceDeployments": 2, "DescribeServiceRevisions": 1, "DescribeServiceDeployments": 1}},
		// Without since, newest first: the forced one is not older than ours,
		// so without a window the newest match wins (documented).
		{"no since", false, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, n, c := newNative(t, canary())
			c.now = t0.Add(-time.Hour)
			old := f.StartDeployment(t, "prod", "web", tdOld)
			f.End(old, types.ServiceDeploymentStatusSuccessful, "", "")
			c.now = t0
			s, end := start(t, n, c)
			c.now = t0.Add(time.Minute)
			f.StartDeployment(t, "prod", "web", "arn:aws:ecs:us-east-1:123456789012:task-definition/web:8")
			c.now = t0.Add(2 * time.Minute)
			forced := f.StartDeployment(t, "prod", "web", tdNew)
			q := Query{Cluster: "prod", Service: "web", TaskDefinition: tdNew}
			if tt.known {
				q.Known = end.ServiceDeploymentARN
			}
			if tt.since {
				q.Since = end.StartedAt
			}
			d, err := FindServiceDeployment(ctx, f, q)
			if err != nil {
				t.Fatal(err)
			}
			want := s.ServiceDeploymentARN
			if !tt.since {
				want = forced
			}
			if got := aws.ToString(d.ServiceDeploymentArn); got != want {
				t.Errorf("found %s, want %s", got, want)
			}
			for op, n := range tt.calls {
				if got := f.Calls(op); got != n {
					t.Errorf("%s called %d times, want %d", op, got, n)
				}
			}
		})
	}
}

// A hint that names another revision's deployment is not trusted.
func TestFindIgnoresAWrongHint(t *testing.T) {
	f, n, c := newNative(t, canary())
	_, end := start(t, n, c)
	other := f.StartDeployment(t, "prod", "web", tdOld)
	end.ServiceDeploymentARN, end.Event = other, Event{}
	got, err := n.Outcome(context.Background(), end)
	if err != nil || got.ServiceDeploymentARN == other {
		t.Fatalf("Outcome = %+v, %v", got, err)
	}
}

// The retry paths: every failed or cut-off read is returned wrapped (the
// watcher's invocation fails and Lambda delivers the event again), and the
// second delivery reads the same truth.
func TestNativeOutcomeRetries(t *testing.T) {
	throttled := &types.ServerException{Message: aws.String("Rate exceeded")}
	tests := []struct {
		name   string
		inject func(f *testenv.FakeECSDeployments)
		ctx    func() (context.Context, context.CancelFunc)
		want   string
		match  func(error) bool
	}{
		{"list fails", func(f *testenv.FakeECSDeployments) { f.FailNext("ListServiceDeployments", throttled) }, nil,
			"list service deployments of prod/web", awsenv.IsTransient},
		{"describe revisions fails", func(f *testenv.FakeECSDeployments) { f.FailNext("DescribeServiceRevisions", throttled) }, nil,
			"describe service revisions", awsenv.IsTransient},
		{"describe deployments fails", func(f *testenv.FakeECSDeployments) { f.FailNext("DescribeServiceDeployments", throttled) }, nil,
			"describe service deployments", awsenv.IsTransient},
		{"times out", func(f *testenv.FakeECSDeployments) {}, func() (context.Context, context.CancelFunc) {
			return context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		}, "list service deployments of prod/web", func(err error) bool { return errors.Is(err, context.DeadlineExceeded) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, n, c := newNative(t, canary())
			_, end := start(t, n, c)
			end.ServiceDeploymentARN = "" // list, so every read is on the path
			f.End(mustFind(t, f, end), types.ServiceDeploymentStatusSuccessful, "", "")
			tt.inject(f)
			ctx, cancel := context.Background(), func() {}
			if tt.ctx != nil {
				ctx, cancel = tt.ctx()
			}
			defer cancel()
			_, err := n.Outcome(ctx, end)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !tt.match(err) {
				t.Fatalf("first delivery: err = %v, want %q", err, tt.want)
			}
			got, err := n.Outcome(context.Background(), end)
			if err != nil || got.Outcome != history.Completed {
				t.Fatalf("second delivery: %+v, %v", got, err)
			}
		})
	}
}

func mustFind(t *testing.T, f *testenv.FakeECSDeployments, end End) string {
	t.Helper()
	d, err := FindServiceDeployment(context.Background(), f, Query{Cluster: end.Cluster, Service: end.Service, TaskDefinition: end.TaskDefinition, Since: end.StartedAt})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(d.ServiceDeploymentArn)
}

// Before ECS lists the deployment (right after the start): a typed error,
// and the retry finds it.
func TestNativeOutcomeBeforeListed(t *testing.T) {
	f, n, c := newNative(t, canary())
	end := End{Cluster: "prod", Service: "web", TaskDefinition: tdNew, StartedAt: c.now}
	if _, err := n.Outcome(context.Background(), end); !errors.Is(err, ErrNoServiceDeployment) {
		t.Fatalf("err = %v, want ErrNoServiceDeployment", err)
	}
	arn := f.StartDeployment(t, "prod", "web", tdNew)
	got, err := n.Outcome(context.Background(), end)
	if err != nil || got.ServiceDeploymentARN != arn || !got.InFlight() {
		t.Fatalf("Outcome = %+v, %v", got, err)
	}
}

// A duplicate of an event whose outcome is recorded reads nothing.
func TestNativeOutcomeRecorded(t *testing.T) {
	f, n, c := newNative(t, canary())
	_, end := start(t, n, c)
	end.Recorded = history.RolledBack
	got, err := n.Outcome(context.Background(), end)
	if err != nil || got.Outcome != history.RolledBack {
		t.Fatalf("Outcome = %+v, %v", got, err)
	}
	for _, op := range []string{"ListServiceDeployments", "DescribeServiceDeployments", "DescribeServiceRevisions"} {
		if f.Calls(op) != 0 {
			t.Errorf("%s called", op)
		}
	}
}

// A lost UpdateService answer is the deployer's to retry (its idempotency
// finds the image running); Start returns the error, wrapped.
func TestNativeStartLostAnswer(t *testing.T) {
	f, n, _ := newNative(t, canary())
	f.LoseNext("UpdateService", 1)
	_, err := n.Start(context.Background(), Revision{Cluster: "prod", Service: "web", TaskDefinition: tdNew})
	if err == nil || !strings.Contains(err.Error(), "update service prod/web to "+tdNew) || !awsenv.IsTransient(err) {
		t.Fatalf("err = %v", err)
	}
}

func TestStageLinear(t *testing.T) {
	cfg := types.DeploymentConfiguration{Strategy: types.DeploymentStrategyLinear,
		LinearConfiguration: &types.LinearConfiguration{StepPercent: aws.Float64(20), StepBakeTimeInMinutes: aws.Int32(3)}}
	f, n, c := newNative(t, cfg)
	s, _ := start(t, n, c)
	f.Advance(s.ServiceDeploymentARN, types.ServiceDeploymentLifecycleStageProductionTrafficShift, 40)
	c.now = c.now.Add(3 * time.Minute)
	if got := Stage(f.Deployment(s.ServiceDeploymentARN), c.now); got != "LINEAR 40% · step bake ending" {
		t.Errorf("Stage = %q", got)
	}
	f.Advance(s.ServiceDeploymentARN, types.ServiceDeploymentLifecycleStagePostProductionTrafficShift, 100)
	if got := Stage(f.Deployment(s.ServiceDeploymentARN), c.now); got != "LINEAR 100% · POST_PRODUCTION_TRAFFIC_SHIFT" {
		t.Errorf("Stage = %q", got)
	}
}
