package timer

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/scheduler/types"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work"
)

const (
	role    = "arn:aws:iam::123456789012:role/ecr-autodeploy-scheduler"
	watcher = "arn:aws:lambda:us-east-1:123456789012:function:ecr-autodeploy-watcher"
)

var now = time.Date(2026, 11, 30, 9, 15, 20, 0, time.UTC)

func TestFireTime(t *testing.T) {
	for _, tt := range []struct {
		name string
		due  time.Time
		want time.Time
	}{
		{"a whole minute ahead stays", now.Add(10 * time.Minute).Truncate(time.Minute), time.Date(2026, 11, 30, 9, 25, 0, 0, time.UTC)},
		{"seconds round up, never early", now.Add(10 * time.Minute), time.Date(2026, 11, 30, 9, 26, 0, 0, time.UTC)},
		{"a nanosecond past the minute rounds up", time.Date(2026, 11, 30, 9, 30, 0, 1, time.UTC), time.Date(2026, 11, 30, 9, 31, 0, 0, time.UTC)},
		{"within a minute: at least a minute ahead", now.Add(30 * time.Second), time.Date(2026, 11, 30, 9, 17, 0, 0, time.UTC)},
		{"now: at least a minute ahead", now, time.Date(2026, 11, 30, 9, 17, 0, 0, time.UTC)},
		{"in the past: at least a minute ahead", now.Add(-time.Hour), time.Date(2026, 11, 30, 9, 17, 0, 0, time.UTC)},
		{"another zone, in UTC", time.Date(2026, 11, 30, 10, 40, 0, 0, time.FixedZone("CET", 3600)), time.Date(2026, 11, 30, 9, 40, 0, 0, time.UTC)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := FireTime(tt.due, now)
			if !got.Equal(tt.want) || got.Location() != time.UTC {
				t.Errorf("FireTime(%v) = %v, want %v (UTC)", tt.due, got, tt.want)
			}
			if got.Before(tt.due) || got.Before(now.Add(Lead)) {
				t.Errorf("FireTime(%v) = %v fires before it is due or within a minute", tt.due, got)
			}
		})
	}
	if got, want := Expression(time.Date(2026, 11, 30, 10, 40, 0, 0, time.FixedZone("CET", 3600))), "at(2026-11-30T09:40:00)"; got != want {
		t.Errorf("Expression = %s, want %s", got, want)
	}
}

func TestName(t *testing.T) {
	due := time.Date(2026, 11, 30, 9, 20, 30, 0, time.UTC)
	minute := "29933841" // 09:21 (rounded up) in Unix minutes: 1796030460 / 60
	for _, tt := range []struct {
		name, purpose, key string
		due                time.Time
		want               string // a prefix, or the error
		wantErr            bool
	}{
		{"ECS deployment id", "recheck", "ecs-svc/1111111111111111111", due, "recheck-", false},
		{"a service deployment ARN", "recheck", "arn:aws:ecs:eu-west-1:111111111111:service-deployment/prod/web/AbCdEf", due, "recheck-", false},
		{"a CodeDeploy id", "bake", "d-ABCDEF123", due, "bake-", false},
		{"no key", "recheck", "", due, "no key", true},
		{"no time", "recheck", "d", time.Time{}, "no due time", true},
		{"a purpose that is not a word", "Re check", "d", due, "want 1-16 lower-case letters", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Name(tt.purpose, tt.key, tt.due)
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("Name = %q, %v; want error %q", got, err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(got, tt.want) || !strings.HasSuffix(got, "-"+minute) || len(got) > 64 || !nameRE.MatchString(got) {
				t.Errorf("Name = %q: want %s<hash>-%s, at most 64 of [0-9a-zA-Z-_.]", got, tt.want, minute)
			}
			// Deterministic: the same timer asked again, within the same
			// minute, has the same name; another deployment or minute not.
			if again, _ := Name(tt.purpose, tt.key, tt.due.Add(-20*time.Second)); again != got {
				t.Errorf("Name within the same minute = %q, want %q", again, got)
			}
			if other, _ := Name(tt.purpose, tt.key+"x", tt.due); other == got {
				t.Errorf("another key has the same name %q", got)
			}
			if later, _ := Name(tt.purpose, tt.key, tt.due.Add(time.Minute)); later == got {
				t.Errorf("another minute has the same name %q", got)
			}
		})
	}
}

func TestLoadConfig(t *testing.T) {
	for _, tt := range []struct {
		name    string
		env     map[string]string
		want    Config
		wantErr string
	}{
		{"neither: no timers", nil, Config{}, ""},
		{"both", map[string]string{EnvGroup: "ecr-autodeploy", EnvRoleARN: role}, Config{Group: "ecr-autodeploy", RoleARN: role}, ""},
		{"group only", map[string]string{EnvGroup: "ecr-autodeploy"}, Config{}, EnvRoleARN + " is not set but " + EnvGroup + " is"},
		{"role only", map[string]string{EnvRoleARN: role}, Config{}, EnvGroup + " is not set but " + EnvRoleARN + " is"},
		{"bad group", map[string]string{EnvGroup: "ecr autodeploy", EnvRoleARN: role}, Config{}, EnvGroup + `="ecr autodeploy"`},
		{"not a role", map[string]string{EnvGroup: "g", EnvRoleARN: "ecr-autodeploy-scheduler"}, Config{}, "want an IAM role ARN"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LoadConfig(func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("LoadConfig = %+v, %v; want error %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
			if got.Enabled() != (tt.want != Config{}) {
				t.Errorf("Enabled = %v", got.Enabled())
			}
		})
	}
}

// fakeScheduler is Scheduler's CreateSchedule in memory, with the failures
// moto cannot give: a refusal before anything is applied (fail), a call
// that hangs until its context ends (hang, applied or not), and a call that
// is applied and then fails as if its answer were lost (lose). Names are
// unique per group, as in Scheduler: a second create is a
// ConflictException.
type fakeScheduler struct {
	mu        sync.Mutex
	schedules map[string]*scheduler.CreateScheduleInput // group/name
	calls     int
	fail      []error
	hang      []bool // true: apply before hanging
	lose      int
}

func newFake() *fakeScheduler {
	return &fakeScheduler{schedules: map[string]*scheduler.CreateScheduleInput{}}
}

func (f *fakeScheduler) CreateSchedule(ctx context.Context, in *scheduler.CreateScheduleInput, _ ...func(*scheduler.Options)) (*scheduler.CreateScheduleOutput, error) {
	f.mu.Lock()
	f.calls++
	if len(f.fail) > 0 {
		err := f.fail[0]
		f.fail = f.fail[1:]
		f.mu.Unlock()
		return nil, err
	}
	var hang, applyFirst bool
	if len(f.hang) > 0 {
		hang, applyFirst = true, f.hang[0]
		f.hang = f.hang[1:]
	}
	key := aws.ToString(in.GroupName) + "/" + aws.ToString(in.Name)
	apply := func() error {
		if _, ok := f.schedules[key]; ok {
			return &types.ConflictException{Message: aws.String("Schedule " + aws.ToString(in.Name) + " already exists.")}
		}
		f.schedules[key] = in
		return nil
	}
	if hang {
		if applyFirst {
			_ = apply()
		}
		f.mu.Unlock()
		<-ctx.Done()
		return nil, ctx.Err()
	}
	defer f.mu.Unlock()
	if err := apply(); err != nil {
		return nil, err
	}
	if f.lose > 0 {
		f.lose--
		return nil, errors.New("http response error StatusCode: 500, the answer was lost (fake)")
	}
	return &scheduler.CreateScheduleOutput{ScheduleArn: aws.String("arn:aws:scheduler:us-east-1:123456789012:schedule/" + key)}, nil
}

func (f *fakeScheduler) only(t *testing.T) *scheduler.CreateScheduleInput {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.schedules) != 1 {
		t.Fatalf("%d schedules, want exactly one: %v", len(f.schedules), f.schedules)
	}
	for _, in := range f.schedules {
		return in
	}
	return nil
}

// Set's schedule is the one Scheduler needs for a one-time timer: at() in
// UTC at the rounded minute, no flexible window, deleted after it fired,
// the watcher as target with the role and the command as input.
func TestSetCreatesAOneTimeSchedule(t *testing.T) {
	f := newFake()
	ts := &Timers{Scheduler: f, Config: Config{Group: "ecr-autodeploy", RoleARN: role}, Now: func() time.Time { return now }}
	due := now.Add(4*time.Minute + 10*time.Second) // 09:19:30
	got, err := ts.Set(context.Background(), Timer{Purpose: "recheck", Key: "ecs-svc/1", Due: due, Target: watcher,
		Command: work.Recheck{DeploymentID: "ecs-svc/1"}})
	if err != nil {
		t.Fatal(err)
	}
	name, _ := Name("recheck", "ecs-svc/1", due)
	if diff := cmp.Diff(Set{Name: name, FiresAt: time.Date(2026, 11, 30, 9, 20, 0, 0, time.UTC)}, got); diff != "" {
		t.Errorf("set (-want +got):\n%s", diff)
	}
	in := f.only(t)
	want := &scheduler.CreateScheduleInput{
		Name: aws.String(name), GroupName: aws.String("ecr-autodeploy"),
		ScheduleExpression: aws.String("at(2026-11-30T09:20:00)"), ScheduleExpressionTimezone: aws.String("UTC"),
		FlexibleTimeWindow:    &types.FlexibleTimeWindow{Mode: types.FlexibleTimeWindowModeOff},
		ActionAfterCompletion: types.ActionAfterCompletionDelete,
		Description:           aws.String("ecr-autodeploy recheck timer for ecs-svc/1, due 2026-11-30T09:19:30Z"),
		Target: &types.Target{Arn: aws.String(watcher), RoleArn: aws.String(role),
			Input: aws.String(`{"kind":"recheck","v":1,"deployment_id":"ecs-svc/1"}`)},
	}
	if diff := cmp.Diff(want, in, cmp.AllowUnexported(scheduler.CreateScheduleInput{}, types.Target{}, types.FlexibleTimeWindow{})); diff != "" {
		t.Errorf("CreateSchedule input (-want +got):\n%s", diff)
	}
}

// Every retry path sets one schedule: the same timer delivered twice, a
// refused call retried, a call that timed out (applied or not) retried, and
// a call applied whose answer was lost — whose retry is a ConflictException,
// which is success.
func TestSetIsIdempotentAcrossRetries(t *testing.T) {
	throttled := errors.New("operation error Scheduler: CreateSchedule, ThrottlingException: Rate exceeded")
	for _, tt := range []struct {
		name     string
		arrange  func(*fakeScheduler)
		timeout  bool
		firstErr error // what the first Set says (nil: success)
		existed  bool  // what the retry says
	}{
		{"delivered twice", func(*fakeScheduler) {}, false, nil, true},
		{"refused, then retried", func(f *fakeScheduler) { f.fail = []error{throttled} }, false, throttled, false},
		{"timed out before applying", func(f *fakeScheduler) { f.hang = []bool{false} }, true, context.DeadlineExceeded, false},
		{"timed out after applying", func(f *fakeScheduler) { f.hang = []bool{true} }, true, context.DeadlineExceeded, true},
		{"applied, answer lost", func(f *fakeScheduler) { f.lose = 1 }, false, errors.New("answer was lost"), true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			tt.arrange(f)
			clock := now
			ts := &Timers{Scheduler: f, Config: Config{Group: "ecr-autodeploy", RoleARN: role}, Now: func() time.Time { return clock }}
			timer := Timer{Purpose: "recheck", Key: "ecs-svc/1", Due: now.Add(10 * time.Minute), Target: watcher,
				Command: work.Recheck{DeploymentID: "ecs-svc/1"}}
			ctx := context.Background()
			first := ctx
			if tt.timeout {
				var cancel context.CancelFunc
				first, cancel = context.WithTimeout(ctx, 20*time.Millisecond)
				defer cancel()
			}
			s1, err := ts.Set(first, timer)
			switch {
			case tt.firstErr == nil && err != nil:
				t.Fatalf("first Set: %v", err)
			case tt.firstErr != nil && (err == nil || (!errors.Is(err, tt.firstErr) && !strings.Contains(err.Error(), tt.firstErr.Error()))):
				t.Fatalf("first Set = %+v, %v; want error %v", s1, err, tt.firstErr)
			case err != nil && !strings.Contains(err.Error(), "set timer recheck-"):
				t.Errorf("error %q does not say which timer", err)
			}
			// The retry comes later (Lambda's retry: a minute or two), when
			// the due time is nearer: the name stays the first one's.
			clock = now.Add(2 * time.Minute)
			s2, err := ts.Set(ctx, timer)
			if err != nil {
				t.Fatalf("retry: %v", err)
			}
			if s2.Existed != tt.existed {
				t.Errorf("retry Existed = %v, want %v", s2.Existed, tt.existed)
			}
			if name, _ := Name("recheck", "ecs-svc/1", timer.Due); s2.Name != name {
				t.Errorf("retry set %s, want %s", s2.Name, name)
			}
			f.only(t)
		})
	}
}

func TestSetRefusesWhatCannotFire(t *testing.T) {
	good := Timer{Purpose: "recheck", Key: "ecs-svc/1", Due: now, Target: watcher, Command: work.Recheck{DeploymentID: "ecs-svc/1"}}
	configured := &Timers{Scheduler: newFake(), Config: Config{Group: "g", RoleARN: role}}
	for _, tt := range []struct {
		name   string
		timers *Timers
		timer  func(Timer) Timer
		want   string
	}{
		{"not configured", &Timers{Scheduler: newFake()}, func(t Timer) Timer { return t }, "timers are not configured"},
		{"no target", configured, func(t Timer) Timer { t.Target = ""; return t }, "no target function ARN"},
		{"no command", configured, func(t Timer) Timer { t.Command = nil; return t }, "no command"},
		{"no due time", configured, func(t Timer) Timer { t.Due = time.Time{}; return t }, "no due time"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.timers.Set(context.Background(), tt.timer(good)); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Set = %v, want %q", err, tt.want)
			}
		})
	}
}
