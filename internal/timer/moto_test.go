package timer

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work"
)

// loseFirst stands between the SDK and moto: the first n CreateSchedule
// requests reach moto (which creates the schedule) and are then answered
// 500, as when Scheduler applied a call and its answer was lost. Scheduler
// is a REST API (POST /schedules/{Name}), so testenv.Proxy, which tells
// operations by X-Amz-Target, cannot pick it out.
type loseFirst struct {
	mu    sync.Mutex
	n     int
	calls int
	lost  int
}

func (l *loseFirst) start(t *testing.T, endpoint string) string {
	t.Helper()
	target, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ModifyResponse = func(resp *http.Response) error {
		if resp.Request.Method != http.MethodPost || !strings.HasPrefix(resp.Request.URL.Path, "/schedules/") {
			return nil
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		l.calls++
		if l.n == 0 {
			return nil
		}
		l.n--
		l.lost++
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		body := []byte(`{"message":"the answer was lost (test proxy)"}`)
		resp.StatusCode, resp.Status = http.StatusInternalServerError, "500 Internal Server Error"
		resp.Header.Set("X-Amzn-Errortype", "InternalServerException")
		resp.Body, resp.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		return nil
	}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestRecheckOnMoto sets a recheck timer in moto's Scheduler (which
// implements CreateSchedule, GetSchedule and ListSchedules, but none of the
// failures: the fake in timer_test.go has those) and reads back the
// schedule Scheduler would run: one, in the group, firing once at the
// rounded minute, deleting itself, invoking the watcher the invocation ran
// as with the recheck command. Delivered twice, and with the first call's
// answer lost below the SDK (which retries it and finds moto's
// ConflictException), it is still one schedule.
func TestRecheckOnMoto(t *testing.T) {
	m := testenv.StartMoto(t)
	ctx := context.Background()
	base := m.AWSConfig()
	base.Retryer = awsenv.NewRetryer
	admin := scheduler.NewFromConfig(base)
	const group = DefaultGroup
	if _, err := admin.CreateScheduleGroup(ctx, &scheduler.CreateScheduleGroupInput{Name: aws.String(group)}); err != nil {
		t.Fatal(err)
	}
	clock := time.Now().UTC()
	rec := history.Record{Cluster: "prod", Service: "web", DeploymentID: "ecs-svc/1111111111111111111"}
	for _, tt := range []struct {
		name    string
		lose    int
		key     string
		due     time.Time
		existed []bool // each delivery's Existed
	}{
		{"delivered twice", 0, "ecs-svc/1111111111111111111", clock.Add(15 * time.Minute), []bool{false, true}},
		{"first answer lost", 1, "ecs-svc/2222222222222222222", clock.Add(7 * time.Minute), []bool{true, true}},
		{"due already", 0, "ecs-svc/3333333333333333333", clock.Add(-time.Minute), []bool{false, true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			proxy := &loseFirst{n: tt.lose}
			cfg := base
			cfg.BaseEndpoint = aws.String(proxy.start(t, m.Endpoint))
			r := &Rechecker{Timers: &Timers{Scheduler: scheduler.NewFromConfig(cfg), Config: Config{Group: group, RoleARN: role},
				Now: func() time.Time { return clock }}}
			lc := lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{InvokedFunctionArn: watcher})
			rec := rec
			rec.DeploymentID = tt.key
			var names []string
			for i, want := range tt.existed {
				s, err := r.Set(lc, rec, tt.due)
				if err != nil {
					t.Fatalf("delivery %d: %v", i+1, err)
				}
				if s.Existed != want {
					t.Errorf("delivery %d: Existed = %v, want %v", i+1, s.Existed, want)
				}
				names = append(names, s.Name)
			}
			if proxy.lost != tt.lose || proxy.calls != len(tt.existed)+tt.lose {
				t.Errorf("%d CreateSchedule calls, %d answers lost; want %d and %d (the SDK retries a lost one)",
					proxy.calls, proxy.lost, len(tt.existed)+tt.lose, tt.lose)
			}
			if names[0] != names[1] {
				t.Errorf("deliveries set %v, want one name", names)
			}
			got, err := admin.GetSchedule(ctx, &scheduler.GetScheduleInput{Name: aws.String(names[0]), GroupName: aws.String(group)})
			if err != nil {
				t.Fatal(err)
			}
			fires := FireTime(tt.due, clock)
			if fires.Sub(clock) < Lead || fires.Before(tt.due) || fires.Second() != 0 {
				t.Errorf("fires %v: want a whole minute, not before %v and at least a minute after %v", fires, tt.due, clock)
			}
			type schedule struct {
				Name, Group, Expression, Timezone, Window, After, Target, Role, Input string
			}
			want := schedule{Name: names[0], Group: group, Expression: Expression(fires), Timezone: "UTC", Window: "OFF",
				After: "DELETE", Target: watcher, Role: role, Input: `{"kind":"recheck","v":1,"deployment_id":"` + tt.key + `"}`}
			read := schedule{Name: aws.ToString(got.Name), Group: aws.ToString(got.GroupName), Expression: aws.ToString(got.ScheduleExpression),
				Timezone: aws.ToString(got.ScheduleExpressionTimezone), After: string(got.ActionAfterCompletion)}
			if got.FlexibleTimeWindow != nil {
				read.Window = string(got.FlexibleTimeWindow.Mode)
			}
			if got.Target != nil {
				read.Target, read.Role, read.Input = aws.ToString(got.Target.Arn), aws.ToString(got.Target.RoleArn), aws.ToString(got.Target.Input)
			}
			if diff := cmp.Diff(want, read); diff != "" {
				t.Errorf("schedule (-want +got):\n%s", diff)
			}
			cmd, err := work.DecodeRecheck([]byte(aws.ToString(got.Target.Input)))
			if err != nil || cmd.DeploymentID != tt.key {
				t.Errorf("the schedule's input reads as %+v, %v", cmd, err)
			}
			list, err := admin.ListSchedules(ctx, &scheduler.ListSchedulesInput{GroupName: aws.String(group), NamePrefix: aws.String(names[0])})
			if err != nil || len(list.Schedules) != 1 {
				t.Errorf("schedules named %s: %d (%v), want 1", names[0], len(list.Schedules), err)
			}
		})
	}
}
