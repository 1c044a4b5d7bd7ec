package watch

// ECS-native rollouts (BLUE_GREEN, LINEAR, CANARY) and their lifecycle
// hooks. History, ECR and the rest are moto's; the service deployments,
// their revisions and hooks are testenv.FakeECSDeployments', because moto
// has none of them (no ListServiceDeployments, DescribeServiceDeployments,
// DescribeServiceRevisions, no strategy, bake or hook).

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/notify"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rollout"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work"
)

// clock is the test's time, shared by the watcher and the fake ECS.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// rechecks records what the watcher asked a Rechecker for; failNext fails
// the next ask.
type rechecks struct {
	mu       sync.Mutex
	asked    []string // "deployment@time"
	failNext error
}

func (r *rechecks) Recheck(_ context.Context, rec history.Record, at time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.failNext; err != nil {
		r.failNext = nil
		return err
	}
	r.asked = append(r.asked, rec.DeploymentID+"@"+at.UTC().Format(time.RFC3339))
	return nil
}

type nativeFixture struct {
	*fixture
	ecs      *testenv.FakeECSDeployments
	clock    *clock
	rechecks *rechecks
}

func newNativeFixture(t *testing.T) *nativeFixture {
	t.Helper()
	f := &nativeFixture{fixture: newFixture(t), ecs: testenv.NewFakeECSDeployments(), clock: &clock{now: t0}, rechecks: &rechecks{}}
	f.ecs.Now, f.w.Now = f.clock.Now, f.clock.Now
	f.w.ECS = func(region, role string) rollout.ServiceDeploymentReader {
		if region != testenv.Region || role != "" {
			t.Errorf("ECS client asked for %s through role %q, want the central region with the watcher's own credentials", region, role)
		}
		return f.ecs
	}
	f.w.Rechecker = f.rechecks
	return f
}

// readCalls are the fake's service-deployment reads so far.
func (f *nativeFixture) readCalls() int {
	return f.ecs.Calls("ListServiceDeployments") + f.ecs.Calls("DescribeServiceDeployments") + f.ecs.Calls("DescribeServiceRevisions")
}

func canary() types.DeploymentConfiguration {
	return types.DeploymentConfiguration{Strategy: types.DeploymentStrategyCanary, BakeTimeInMinutes: aws.Int32(10),
		CanaryConfiguration: &types.CanaryConfiguration{CanaryPercent: aws.Float64(10), CanaryBakeTimeInMinutes: aws.Int32(5)},
		Alarms:              &types.DeploymentAlarms{AlarmNames: []string{"web-5xx"}, Enable: true, Rollback: true}}
}

// nativeDeploy plays the deploy path on an ECS-native service: the fake's
// UpdateService starts the service deployment, and the record names the
// kind, the PRIMARY deployment and the service deployment UpdateService
// named (withHint false: an answer without it).
func (f *nativeFixture) nativeDeploy(t *testing.T, rule, cluster, service, tag, digest string, withHint bool) (history.Record, string) {
	t.Helper()
	f.ecs.AddService(cluster, service, canary(), "arn:aws:ecs:eu-west-1:123456789012:task-definition/"+service+":1")
	td := fmt.Sprintf("arn:aws:ecs:eu-west-1:123456789012:task-definition/%s:%d", service, 2+len(tag))
	out, err := f.ecs.UpdateService(context.Background(), &ecs.UpdateServiceInput{Cluster: aws.String(cluster), Service: aws.String(service),
		TaskDefinition: aws.String(td)})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(out.Service.CurrentServiceDeployment)
	r := history.Record{Rule: rule, Repository: "web", RegistryAccount: testenv.Account, RegistryRegion: testenv.Region,
		Tag: tag, Digest: digest, Account: testenv.Account, Region: testenv.Region, Cluster: cluster, Service: service,
		ToTaskDefinition: td, DeploymentID: rollout.PrimaryDeployment(out.Service, td), EventID: "push-" + tag, Outcome: "deployed",
		Rollout:  rollout.Kind{Family: rollout.ECSNative, Strategy: types.DeploymentStrategyCanary}.String(),
		PushedAt: f.clock.Now().Add(-time.Second), DeployedAt: f.clock.Now()}
	if withHint {
		r.ServiceDeploymentARN = arn
	}
	if err := f.store.Put(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return r, arn
}

func recheckCommand(t *testing.T, deployment string) json.RawMessage {
	t.Helper()
	body, err := work.EncodeCommand(work.Recheck{DeploymentID: deployment})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// hookEvent is the documented sample hook event aimed at a service
// deployment of staging/<service>.
func hookEvent(t *testing.T, id, name, hookType, service, sdARN, hookID string, stage types.ServiceDeploymentLifecycleStage, expires time.Time) json.RawMessage {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "events", "ecs-hook-state-change.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ev map[string]any
	if err := json.Unmarshal(data, &ev); err != nil {
		t.Fatal(err)
	}
	ev["id"], ev["region"], ev["resources"] = id, testenv.Region, []string{sdARN}
	d := ev["detail"].(map[string]any)
	d["eventName"], d["hookType"], d["hookId"], d["lifecycleStage"] = name, hookType, hookID, string(stage)
	d["serviceArn"] = "arn:aws:ecs:eu-west-1:123456789012:service/staging/" + service
	d["clusterArn"] = "arn:aws:ecs:eu-west-1:123456789012:cluster/staging"
	d["serviceDeploymentArn"], d["expiresAt"], d["updatedAt"] = sdARN, expires.Format(time.RFC3339), t0.Add(time.Minute).Format(time.RFC3339Nano)
	out, _ := json.Marshal(ev)
	return out
}

func (f *nativeFixture) record(t *testing.T, deployment string) history.Record {
	t.Helper()
	rec, found, err := f.store.ByDeployment(context.Background(), deployment)
	if err != nil || !found {
		t.Fatalf("record of %s: %v, found %v", deployment, err, found)
	}
	return rec
}

// The bake is the truth: a COMPLETED event while the canary's service
// deployment still bakes records nothing (and a duplicate of it neither),
// asks for a recheck at the bake's end, and the recheck then records the
// completion and promotes; the recheck delivered twice records once.
func TestNativeCompletesOnlyAfterTheBake(t *testing.T) {
	t.Parallel()
	f := newNativeFixture(t)
	ctx := context.Background()
	digest := f.pushImage(t, "main-n1")
	f.deployed(t, "web-staging", "staging", "web-worker", "main-n1", digest, "ecs-svc/w1") // rolling
	if res, err := f.w.Handle(ctx, ecsEvent(t, "ecs-deployment-completed.json", "staging", "web-worker", "ecs-svc/w1")); err != nil || res.Outcome != history.Completed {
		t.Fatalf("rolling target: %+v, %v", res, err)
	}
	rec, arn := f.nativeDeploy(t, "web-staging", "staging", "web", "main-n1", digest, true)
	f.clock.advance(time.Minute)
	f.ecs.Advance(arn, types.ServiceDeploymentLifecycleStageProductionTrafficShift, 10)
	f.clock.advance(5 * time.Minute)
	f.ecs.Advance(arn, types.ServiceDeploymentLifecycleStageBakeTime, 100)
	bakeEnds := f.clock.Now().Add(10 * time.Minute)
	f.clock.advance(time.Minute)

	for i := range 2 { // the event and its duplicate
		res, err := f.w.Handle(ctx, ecsEvent(t, "ecs-deployment-completed.json", "staging", "web", rec.DeploymentID))
		want := Result{DeploymentID: rec.DeploymentID, Outcome: InProgress, Stage: "CANARY 100% · bake 9 min left"}
		if err != nil || !cmp.Equal(want, res) {
			t.Fatalf("COMPLETED while baking (delivery %d): %+v, %v; want %+v", i+1, res, err, want)
		}
	}
	if got := f.record(t, rec.DeploymentID); got.DeploymentOutcome != "" || got.ServiceDeploymentARN != arn {
		t.Errorf("record while baking: outcome %q, service deployment %q", got.DeploymentOutcome, got.ServiceDeploymentARN)
	}
	wantAsked := []string{rec.DeploymentID + "@" + bakeEnds.Format(time.RFC3339), rec.DeploymentID + "@" + bakeEnds.Format(time.RFC3339)}
	if diff := cmp.Diff(wantAsked, f.rechecks.asked); diff != "" {
		t.Errorf("rechecks asked (-want +got):\n%s", diff)
	}
	if tags := f.tagsOf(t, digest); len(tags) != 1 {
		t.Errorf("promoted while baking: %v", tags)
	}
	if !strings.Contains(f.logs.String(), `"outcome":"in_progress","stage":"CANARY 100% · bake 9 min left"`) {
		t.Errorf("no in_progress line with its stage:\n%s", f.logs)
	}

	f.clock.advance(10 * time.Minute)
	f.ecs.End(arn, types.ServiceDeploymentStatusSuccessful, "", "")
	res, err := f.w.Handle(ctx, recheckCommand(t, rec.DeploymentID))
	if err != nil || res.Outcome != history.Completed || res.Promoted != "verified-main-n1" {
		t.Fatalf("recheck after the bake: %+v, %v", res, err)
	}
	res, err = f.w.Handle(ctx, recheckCommand(t, rec.DeploymentID))
	if err != nil || res.Ignored != "outcome already recorded" || res.Promoted != "" {
		t.Errorf("the recheck delivered twice: %+v, %v", res, err)
	}
	if got := f.record(t, rec.DeploymentID); got.DeploymentOutcome != history.Completed {
		t.Errorf("record after the bake: %q", got.DeploymentOutcome)
	}
	if len(f.rec.invokes) != 1 {
		t.Errorf("hand-offs to the deployer = %d, want 1", len(f.rec.invokes))
	}
	var lines []string
	for _, l := range strings.Split(f.logs.String(), "\n") {
		if strings.Contains(l, `"msg":"deployment"`) && strings.Contains(l, `"outcome":"completed"`) && strings.Contains(l, rec.DeploymentID) {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 || !strings.Contains(lines[0], `"service_deployment_arn":"`+arn+`"`) || !strings.Contains(lines[0], `"rollout":"ECS-native CANARY"`) {
		t.Errorf("completion lines of the canary = %q; want one naming its service deployment and kind", lines)
	}
	if n := len(f.rec.messages); n != 2 {
		t.Errorf("%d notices, want one per target", n)
	}
}

// How an ECS-native rollout ended is the service deployment's word, with
// ECS's reason: the alarm, the hook and its stage, the circuit breaker; a
// stop is a failure. A duplicate is reported once and, once the outcome is
// final, reads nothing.
func TestNativeEndings(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		// play moves the service deployment to its end and returns the
		// event that reports it.
		play        func(t *testing.T, f *nativeFixture, rec history.Record, arn string) json.RawMessage
		outcome     string
		reasonHas   []string
		readsNoMore bool
	}{
		{
			name: "rolled back by alarm",
			play: func(t *testing.T, f *nativeFixture, rec history.Record, arn string) json.RawMessage {
				f.ecs.Advance(arn, types.ServiceDeploymentLifecycleStageBakeTime, 100)
				f.ecs.TriggerAlarms(arn, "web-5xx")
				f.ecs.End(arn, types.ServiceDeploymentStatusRollbackSuccessful, "", "testenv: alarm rollback")
				return ecsEvent(t, "ecs-deployment-failed.json", "staging", "web", rec.DeploymentID)
			},
			outcome: history.RolledBack, reasonHas: []string{"alarm web-5xx in ALARM"}, readsNoMore: true,
		},
		{
			name: "rolled back by a failed Lambda hook",
			play: func(t *testing.T, f *nativeFixture, rec history.Record, arn string) json.RawMessage {
				f.ecs.HookRuns(arn, types.ServiceDeploymentLifecycleStagePostTestTrafficShift, "arn:aws:lambda:eu-west-1:123456789012:function:smoke")
				hook := aws.ToString(f.ecs.Deployment(arn).LifecycleHookDetails[0].HookId)
				f.ecs.SetHook(arn, hook, types.DeploymentLifecycleHookStatusFailed)
				f.ecs.End(arn, types.ServiceDeploymentStatusRollbackInProgress, "", "testenv: hook rollback")
				return hookEvent(t, "hook-evt-1", "HOOK_FAILED", "AWS_LAMBDA", "web", arn, hook,
					types.ServiceDeploymentLifecycleStagePostTestTrafficShift, time.Time{})
			},
			outcome: history.RolledBack, reasonHas: []string{"AWS_LAMBDA hook ecs-lambda-", "failed", "at POST_TEST_TRAFFIC_SHIFT"}, readsNoMore: true,
		},
		{
			name: "rolled back by a paused hook timing out, at the event's stage",
			play: func(t *testing.T, f *nativeFixture, rec history.Record, arn string) json.RawMessage {
				hook := f.ecs.Pause(arn, "PRE_PRODUCTION_TRAFFIC_SHIFT", 10*time.Minute)
				f.ecs.SetHook(arn, hook, types.DeploymentLifecycleHookStatusTimedOut)
				f.ecs.Advance(arn, "", -1) // the service deployment names no stage: the event does
				f.ecs.End(arn, types.ServiceDeploymentStatusRollbackRequested, "", "testenv: hook timed out")
				return hookEvent(t, "hook-evt-2", "HOOK_TIMED_OUT", "PAUSE", "web", arn, hook, "PRE_PRODUCTION_TRAFFIC_SHIFT", time.Time{})
			},
			outcome: history.RolledBack, reasonHas: []string{"PAUSE hook ecs-pause-", "timed out at PRE_PRODUCTION_TRAFFIC_SHIFT"}, readsNoMore: true,
		},
		{
			name: "rolled back by the circuit breaker",
			play: func(t *testing.T, f *nativeFixture, rec history.Record, arn string) json.RawMessage {
				f.ecs.Advance(arn, types.ServiceDeploymentLifecycleStageScaleUp, 0)
				f.ecs.TripCircuitBreaker(arn, 3)
				f.ecs.End(arn, types.ServiceDeploymentStatusRollbackSuccessful, "", "testenv: circuit breaker")
				return ecsEvent(t, "ecs-deployment-failed.json", "staging", "web", rec.DeploymentID)
			},
			outcome: history.RolledBack, reasonHas: []string{"circuit breaker: 3 failed task(s), threshold 3"}, readsNoMore: true,
		},
		{
			name: "stopped is failed",
			play: func(t *testing.T, f *nativeFixture, rec history.Record, arn string) json.RawMessage {
				f.ecs.Advance(arn, types.ServiceDeploymentLifecycleStageScaleUp, 0)
				f.ecs.End(arn, types.ServiceDeploymentStatusStopped, "stopped by alice", "")
				// ECS's own event said it completed: the service deployment is the truth.
				return ecsEvent(t, "ecs-deployment-completed.json", "staging", "web", rec.DeploymentID)
			},
			outcome: history.Failed, reasonHas: []string{"stopped: stopped by alice"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newNativeFixture(t)
			ctx := context.Background()
			digest := f.pushImage(t, "main-n2")
			rec, arn := f.nativeDeploy(t, "web-staging", "staging", "web", "main-n2", digest, true)
			f.clock.advance(2 * time.Minute)
			ev := tt.play(t, f, rec, arn)
			res, err := f.w.Handle(ctx, ev)
			if err != nil || res.Outcome != tt.outcome || res.DeploymentID != rec.DeploymentID {
				t.Fatalf("Handle = %+v, %v; want %s of %s", res, err, tt.outcome, rec.DeploymentID)
			}
			got := f.record(t, rec.DeploymentID)
			if got.DeploymentOutcome != tt.outcome {
				t.Errorf("recorded %q, want %q", got.DeploymentOutcome, tt.outcome)
			}
			for _, s := range tt.reasonHas {
				if !strings.Contains(got.DeploymentReason, s) {
					t.Errorf("reason %q does not say %q", got.DeploymentReason, s)
				}
			}
			reads := f.readCalls()
			dup, err := f.w.Handle(ctx, ev)
			if err != nil || dup.Ignored != "outcome already recorded" {
				t.Errorf("duplicate: %+v, %v", dup, err)
			}
			if tt.readsNoMore && f.readCalls() != reads {
				t.Errorf("the duplicate of a final outcome read the service deployment again (%d reads, then %d)", reads, f.readCalls())
			}
			if tags := f.tagsOf(t, digest); len(tags) != 1 || len(f.rec.invokes) != 0 {
				t.Errorf("promoted: %v, %d hand-offs", tags, len(f.rec.invokes))
			}
			if len(f.rechecks.asked) != 0 {
				t.Errorf("rechecks asked for an ended rollout: %v", f.rechecks.asked)
			}
			if n := len(f.rec.messages); n != 1 {
				t.Errorf("%d notices, want 1", n)
			}
		})
	}
}

// The rolling path, and records older versions wrote (no rollout), cost no
// service-deployment call: the event tells.
func TestRollingMakesNoServiceDeploymentCalls(t *testing.T) {
	t.Parallel()
	f := newNativeFixture(t)
	ctx := context.Background()
	digest := f.pushImage(t, "main-r1")
	rolling := f.deployed(t, "web-staging", "staging", "web", "main-r1", digest, "ecs-svc/r1")
	rolling.Rollout = "rolling"
	if err := f.store.Put(ctx, rolling); err != nil {
		t.Fatal(err)
	}
	f.deployed(t, "web-staging", "staging", "web-worker", "main-r1", digest, "ecs-svc/r2") // an older version's record
	for _, ev := range []json.RawMessage{
		ecsEvent(t, "ecs-deployment-completed.json", "staging", "web", "ecs-svc/r1"),
		ecsEvent(t, "ecs-deployment-completed.json", "staging", "web-worker", "ecs-svc/r2"),
		recheckCommand(t, "ecs-svc/r1"), // a stray recheck of a rolling deployment
	} {
		if _, err := f.w.Handle(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if got := f.record(t, "ecs-svc/r1").DeploymentOutcome; got != history.Completed {
		t.Errorf("rolling outcome %q", got)
	}
	for _, op := range []string{"ListServiceDeployments", "DescribeServiceDeployments", "DescribeServiceRevisions"} {
		if n := f.ecs.Calls(op); n != 0 {
			t.Errorf("%s called %d times on the rolling path", op, n)
		}
	}
	if len(f.rechecks.asked) != 0 {
		t.Errorf("rechecks asked on the rolling path: %v", f.rechecks.asked)
	}
}

// A read that fails (throttled, cut off) fails the event and records
// nothing; Lambda's retry of the same event then records the outcome once.
// So does no service deployment listed yet right after the start; long
// after, the event's word is taken and says so.
func TestNativeReadFailuresAreRetried(t *testing.T) {
	t.Parallel()
	throttled := &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded"}
	for _, tt := range []struct {
		name     string
		withHint bool
		fail     string // the read that fails once
	}{
		{"describe the hinted service deployment", true, "DescribeServiceDeployments"},
		{"describe its revision", true, "DescribeServiceRevisions"},
		{"list without a hint", false, "ListServiceDeployments"},
		{"describe the listed one", false, "DescribeServiceDeployments"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newNativeFixture(t)
			ctx := context.Background()
			digest := f.pushImage(t, "main-f1")
			rec, arn := f.nativeDeploy(t, "web-prod", "prod", "web", "main-f1", digest, tt.withHint)
			f.ecs.End(arn, types.ServiceDeploymentStatusSuccessful, "", "")
			ev := ecsEvent(t, "ecs-deployment-completed.json", "prod", "web", rec.DeploymentID)
			f.ecs.FailNext(tt.fail, throttled)
			if _, err := f.w.Handle(ctx, ev); err == nil || !strings.Contains(err.Error(), "Rate exceeded") {
				t.Fatalf("a throttled %s: %v, want the event failed", tt.fail, err)
			}
			if got := f.record(t, rec.DeploymentID); got.DeploymentOutcome != "" {
				t.Fatalf("recorded %q after a failed read", got.DeploymentOutcome)
			}
			for i := range 2 { // Lambda's retry, then a duplicate
				res, err := f.w.Handle(ctx, ev)
				if err != nil {
					t.Fatalf("delivery %d: %v", i+2, err)
				}
				if want := []string{history.Completed, ""}[i]; res.Outcome != want && !(i == 1 && res.Ignored == "outcome already recorded") {
					t.Errorf("delivery %d: %+v", i+2, res)
				}
			}
			if got := f.record(t, rec.DeploymentID); got.DeploymentOutcome != history.Completed || got.ServiceDeploymentARN != arn {
				t.Errorf("record: %q, service deployment %q (want %s)", got.DeploymentOutcome, got.ServiceDeploymentARN, arn)
			}
			if n := strings.Count(f.logs.String(), `"msg":"deployment","rule"`); n != 1 {
				t.Errorf("%d completion lines, want 1", n)
			}
		})
	}

	t.Run("no service deployment yet, then long after", func(t *testing.T) {
		t.Parallel()
		f := newNativeFixture(t)
		ctx := context.Background()
		digest := f.pushImage(t, "main-f2")
		f.ecs.AddService("prod", "web", canary(), "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:1")
		rec := f.deployed(t, "web-prod", "prod", "web", "main-f2", digest, "ecs-svc/f2")
		rec.Rollout, rec.DeployedAt = "ECS-native CANARY", t0
		if err := f.store.Put(ctx, rec); err != nil {
			t.Fatal(err)
		}
		ev := ecsEvent(t, "ecs-deployment-completed.json", "prod", "web", rec.DeploymentID)
		if _, err := f.w.Handle(ctx, ev); err == nil || !strings.Contains(err.Error(), rollout.ErrNoServiceDeployment.Error()) {
			t.Fatalf("right after the start: %v, want the event failed for ECS to list it", err)
		}
		f.clock.advance(noServiceDeploymentGrace + time.Minute)
		res, err := f.w.Handle(ctx, ev)
		if err != nil || res.Outcome != history.Completed {
			t.Fatalf("long after: %+v, %v", res, err)
		}
		if got := f.record(t, rec.DeploymentID); !strings.Contains(got.DeploymentReason, "ECS lists no service deployment of the revision") {
			t.Errorf("reason %q does not say the event's word was taken", got.DeploymentReason)
		}
	})

	t.Run("the recheck cannot be asked for", func(t *testing.T) {
		t.Parallel()
		f := newNativeFixture(t)
		ctx := context.Background()
		digest := f.pushImage(t, "main-f3")
		rec, arn := f.nativeDeploy(t, "web-prod", "prod", "web", "main-f3", digest, true)
		f.ecs.Advance(arn, types.ServiceDeploymentLifecycleStageBakeTime, 100)
		f.rechecks.failNext = &smithy.GenericAPIError{Code: "ThrottlingException", Message: "scheduler throttled"}
		ev := ecsEvent(t, "ecs-deployment-completed.json", "prod", "web", rec.DeploymentID)
		if _, err := f.w.Handle(ctx, ev); err == nil || !strings.Contains(err.Error(), "scheduler throttled") {
			t.Fatalf("a recheck not set: %v, want the event failed (no other event will come)", err)
		}
		if res, err := f.w.Handle(ctx, ev); err != nil || res.Outcome != InProgress || len(f.rechecks.asked) != 1 {
			t.Errorf("retry: %+v, %v, rechecks %v", res, err, f.rechecks.asked)
		}
	})
}

// failingNotifier fails its next notice, then tells the recorder.
type failingNotifier struct {
	mu   sync.Mutex
	fail int
	next Notifier
}

func (n *failingNotifier) Notify(ctx context.Context, notice notify.Notice) error {
	n.mu.Lock()
	if n.fail > 0 {
		n.fail--
		n.mu.Unlock()
		return fmt.Errorf("SNS throttled")
	}
	n.mu.Unlock()
	return n.next.Notify(ctx, notice)
}

// A paused hook is told once, with the service, stage, hook id, expiry and
// the two commands: two deliveries of its event, and a second event of the
// same hook, make one notice; a notice that failed is sent by the retry.
// A pause on a service no rule targets is ignored, with the reason.
func TestPauseIsToldOnce(t *testing.T) {
	t.Parallel()
	f := newNativeFixture(t)
	ctx := context.Background()
	f.w.Notifier = &failingNotifier{fail: 1, next: f.rec}
	digest := f.pushImage(t, "main-p1")
	rec, arn := f.nativeDeploy(t, "web-staging", "staging", "web", "main-p1", digest, true)
	f.clock.advance(time.Minute)
	hook := f.ecs.Pause(arn, "PRE_PRODUCTION_TRAFFIC_SHIFT", 24*time.Hour)
	expires := f.clock.Now().Add(24 * time.Hour)
	ev := hookEvent(t, "hook-evt-p1", "HOOK_AWAITING_ACTION", "PAUSE", "web", arn, hook, "PRE_PRODUCTION_TRAFFIC_SHIFT", expires)

	if _, err := f.w.Handle(ctx, ev); err == nil {
		t.Fatal("a notice that failed did not fail the event")
	}
	for i, e := range []json.RawMessage{ev, ev,
		hookEvent(t, "hook-evt-p2", "HOOK_AWAITING_ACTION", "PAUSE", "web", arn, hook, "PRE_PRODUCTION_TRAFFIC_SHIFT", expires)} {
		res, err := f.w.Handle(ctx, e)
		if err != nil || res.Outcome != notify.Paused || res.DeploymentID != rec.DeploymentID && i == 0 {
			t.Errorf("delivery %d: %+v, %v", i+2, res, err)
		}
	}
	if len(f.rec.messages) != 1 {
		t.Fatalf("%d notices for one pause, want 1: %q", len(f.rec.messages), f.rec.messages)
	}
	mail := f.rec.messages[0]
	for _, s := range []string{
		"staging/web PAUSED at PRE_PRODUCTION_TRAFFIC_SHIFT: the deployment of web:main-p1 waits for you",
		"Hook:", hook, "Expires:", expires.UTC().Format(time.RFC3339), arn,
		"autodeploy continue --cluster staging --service web --account " + testenv.Account + " --region " + testenv.Region + " --hook " + hook,
		"autodeploy rollback --cluster staging --service web --account " + testenv.Account + " --region " + testenv.Region,
	} {
		if !strings.Contains(mail, s) {
			t.Errorf("the notice does not say %q:\n%s", s, mail)
		}
	}
	if f.readCalls() != 0 {
		t.Errorf("a pause notice read the service deployment (%d calls): the event says it all", f.readCalls())
	}

	// Another service's pause, and a hook still running, are no news.
	other := hookEvent(t, "hook-evt-x", "HOOK_AWAITING_ACTION", "PAUSE", "api", strings.Replace(arn, "/web/", "/api/", 1), "ecs-pause-x", "POST_SCALE_UP", expires)
	if res, err := f.w.Handle(ctx, other); err != nil || res.Ignored != "service not in the rules" {
		t.Errorf("another service's pause: %+v, %v", res, err)
	}
	running := hookEvent(t, "hook-evt-r", "HOOK_IN_PROGRESS", "AWS_LAMBDA", "web", arn, "ecs-lambda-1", "POST_SCALE_UP", time.Time{})
	if res, err := f.w.Handle(ctx, running); err != nil || res.Ignored != "hook in_progress" {
		t.Errorf("a running hook: %+v, %v", res, err)
	}

	// Each delivery of the pause armed the backstop, for the same minute
	// (the timer's name: one schedule): if the hook's next event is lost,
	// the rollout is still read after the hook times out.
	for _, r := range f.rechecks.asked {
		if want := "@" + expires.Add(time.Minute).UTC().Format(time.RFC3339); !strings.HasSuffix(r, want) {
			t.Errorf("the pause armed %s, want the backstop %s", r, want)
		}
	}
	if len(f.rechecks.asked) == 0 {
		t.Error("a pause of our deployment armed no backstop recheck")
	}
	armed := len(f.rechecks.asked)

	// Someone continues: the deployment is read at once, still in flight,
	// and a recheck is asked for.
	if _, err := f.ecs.ContinueServiceDeployment(ctx, &ecs.ContinueServiceDeploymentInput{ServiceDeploymentArn: aws.String(arn), HookId: aws.String(hook)}); err != nil {
		t.Fatal(err)
	}
	f.ecs.Advance(arn, types.ServiceDeploymentLifecycleStageProductionTrafficShift, 100)
	cont := hookEvent(t, "hook-evt-c", "HOOK_SUCCEEDED", "PAUSE", "web", arn, hook, "PRE_PRODUCTION_TRAFFIC_SHIFT", expires)
	if res, err := f.w.Handle(ctx, cont); err != nil || res.Outcome != InProgress || len(f.rechecks.asked) != armed+1 {
		t.Errorf("continued: %+v, %v, rechecks %v", res, err, f.rechecks.asked)
	}
}

// What the watcher drops or takes on the event's word, and says why.
func TestNativeOddCases(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		// play sets the case up and returns the event and the deployment.
		play        func(t *testing.T, f *nativeFixture) (json.RawMessage, string)
		wantOutcome string
		wantIgnored string
		wantLog     string
	}{
		{
			name: "no ECS client configured: the event's word, with a warning",
			play: func(t *testing.T, f *nativeFixture) (json.RawMessage, string) {
				f.w.ECS = nil
				rec, _ := f.nativeDeploy(t, "web-prod", "prod", "web", "main-o1", f.pushImage(t, "main-o1"), true)
				return ecsEvent(t, "ecs-deployment-completed.json", "prod", "web", rec.DeploymentID), rec.DeploymentID
			},
			wantOutcome: history.Completed, wantLog: `"msg":"service deployment not read"`,
		},
		{
			name: "a malformed recheck is dropped",
			play: func(t *testing.T, f *nativeFixture) (json.RawMessage, string) {
				return json.RawMessage(`{"kind":"recheck","v":1}`), ""
			},
			wantIgnored: "invalid command: incomplete recheck command: deployment_id is required", wantLog: `"msg":"invalid command"`,
		},
		{
			name: "a recheck of a deployment autodeploy did not start",
			play: func(t *testing.T, f *nativeFixture) (json.RawMessage, string) {
				return recheckCommand(t, "ecs-svc/unknown"), "ecs-svc/unknown"
			},
			wantIgnored: "deployment not started by autodeploy",
		},
		{
			name: "a hook of another service deployment of the service",
			play: func(t *testing.T, f *nativeFixture) (json.RawMessage, string) {
				rec, arn := f.nativeDeploy(t, "web-staging", "staging", "web", "main-o2", f.pushImage(t, "main-o2"), true)
				f.ecs.End(arn, types.ServiceDeploymentStatusSuccessful, "", "")
				// Someone else's deployment after ours, whose Lambda hook failed.
				theirs := f.ecs.StartDeployment(t, "staging", "web", "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:99")
				f.ecs.HookRuns(theirs, types.ServiceDeploymentLifecycleStagePostScaleUp, "arn:aws:lambda:eu-west-1:123456789012:function:smoke")
				return hookEvent(t, "hook-evt-o2", "HOOK_FAILED", "AWS_LAMBDA", "web", theirs, "ecs-lambda-x",
					types.ServiceDeploymentLifecycleStagePostScaleUp, time.Time{}), rec.DeploymentID
			},
			wantIgnored: "hook of a service deployment autodeploy did not start",
		},
		{
			name: "a hook of another service deployment, ours recorded without one",
			play: func(t *testing.T, f *nativeFixture) (json.RawMessage, string) {
				rec, _ := f.nativeDeploy(t, "web-staging", "staging", "web", "main-o3", f.pushImage(t, "main-o3"), false)
				f.clock.advance(time.Minute)
				theirs := f.ecs.StartDeployment(t, "staging", "web", "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:99")
				f.ecs.HookRuns(theirs, types.ServiceDeploymentLifecycleStagePostScaleUp, "arn:aws:lambda:eu-west-1:123456789012:function:smoke")
				return hookEvent(t, "hook-evt-o3", "HOOK_FAILED", "AWS_LAMBDA", "web", theirs, "ecs-lambda-y",
					types.ServiceDeploymentLifecycleStagePostScaleUp, time.Time{}), rec.DeploymentID
			},
			wantIgnored: "hook of a service deployment autodeploy did not start",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newNativeFixture(t)
			ev, deployment := tt.play(t, f)
			res, err := f.w.Handle(context.Background(), ev)
			if err != nil || res.Outcome != tt.wantOutcome || res.Ignored != tt.wantIgnored {
				t.Fatalf("Handle = %+v, %v; want outcome %q, ignored %q", res, err, tt.wantOutcome, tt.wantIgnored)
			}
			if tt.wantLog != "" && !strings.Contains(f.logs.String(), tt.wantLog) {
				t.Errorf("no %s line:\n%s", tt.wantLog, f.logs)
			}
			if deployment != "" && tt.wantOutcome == "" {
				if rec, found, _ := f.store.ByDeployment(context.Background(), deployment); found && rec.DeploymentOutcome != "" {
					t.Errorf("recorded %q for an event it ignored", rec.DeploymentOutcome)
				}
			}
		})
	}
}
