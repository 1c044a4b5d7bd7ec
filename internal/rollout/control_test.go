package rollout

// Continue and RollBack against testenv.FakeECSDeployments (moto has no
// service deployments or hooks; see native_test.go).

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

func TestContinue(t *testing.T) {
	ctx := context.Background()
	f, n, c := newNative(t, canary())
	s, _ := start(t, n, c)
	arn := s.ServiceDeploymentARN
	hook := f.Pause(arn, preProductionTrafficShift, 24*time.Hour)

	got, err := Continue(ctx, f, "prod", "web", ContinueOptions{})
	want := Action{ServiceDeploymentARN: arn, HookID: hook, Stage: preProductionTrafficShift, Did: "continued"}
	if err != nil || !cmp.Equal(got, want) {
		t.Fatalf("Continue = %+v, %v; want %+v", got, err, want)
	}
	if st := hookStatus(f, arn, hook); st != types.DeploymentLifecycleHookStatusSucceeded {
		t.Errorf("hook %s", st)
	}

	// The same continue again (the operator ran it twice, naming the
	// notice's hook): reported as done, nothing sent.
	again, err := Continue(ctx, f, "prod", "web", ContinueOptions{HookID: hook})
	if err != nil || !again.Already || !strings.Contains(again.Note, "already continued") {
		t.Fatalf("again = %+v, %v", again, err)
	}
	if f.Calls("ContinueServiceDeployment") != 1 {
		t.Errorf("ContinueServiceDeployment called %d times, want 1", f.Calls("ContinueServiceDeployment"))
	}

	// The canary's next step pauses with a hook of its own: a repeat naming
	// the old hook does not continue it, and says which one waits.
	next := f.Pause(arn, preProductionTrafficShift, 24*time.Hour)
	again, err = Continue(ctx, f, "prod", "web", ContinueOptions{HookID: hook})
	if err != nil || !again.Already || !strings.Contains(again.Note, "now waits at hook "+next) {
		t.Fatalf("repeat at the next step = %+v, %v", again, err)
	}
	if st := hookStatus(f, arn, next); st != types.DeploymentLifecycleHookStatusAwaitingAction {
		t.Errorf("next hook %s, want it still awaiting", st)
	}
}

func hookStatus(f *testenv.FakeECSDeployments, arn, hook string) types.DeploymentLifecycleHookStatus {
	for _, h := range f.Deployment(arn).LifecycleHookDetails {
		if aws.ToString(h.HookId) == hook {
			return h.Status
		}
	}
	return ""
}

// A continue applied but its answer lost: the deployment read again shows
// the hook SUCCEEDED, which is success; the second continue (the
// operator's retry, naming the hook) says it was done and sends nothing.
func TestContinueLostAnswer(t *testing.T) {
	ctx := context.Background()
	f, n, c := newNative(t, canary())
	s, _ := start(t, n, c)
	hook := f.Pause(s.ServiceDeploymentARN, types.ServiceDeploymentLifecycleStagePostTestTrafficShift, time.Hour)
	f.LoseNext("ContinueServiceDeployment", 1)
	got, err := Continue(ctx, f, "prod", "web", ContinueOptions{})
	if err != nil || got.HookID != hook || got.Already || !strings.Contains(got.Note, "ECS applied it; its answer was lost") {
		t.Fatalf("Continue = %+v, %v", got, err)
	}
	again, err := Continue(ctx, f, "prod", "web", ContinueOptions{HookID: hook})
	if err != nil || !again.Already {
		t.Fatalf("second Continue = %+v, %v", again, err)
	}
	if f.Calls("ContinueServiceDeployment") != 1 {
		t.Errorf("ContinueServiceDeployment called %d times, want 1", f.Calls("ContinueServiceDeployment"))
	}
}

// A continue that failed without applying is an error (retryable), and the
// retry continues.
func TestContinueFailsThenRetried(t *testing.T) {
	ctx := context.Background()
	f, n, c := newNative(t, canary())
	s, _ := start(t, n, c)
	hook := f.Pause(s.ServiceDeploymentARN, types.ServiceDeploymentLifecycleStagePostScaleUp, time.Hour)
	f.FailNext("ContinueServiceDeployment", &types.ServerException{Message: aws.String("Rate exceeded")})
	if _, err := Continue(ctx, f, "prod", "web", ContinueOptions{HookID: hook}); err == nil || !strings.Contains(err.Error(), "continue service deployment") {
		t.Fatalf("err = %v", err)
	}
	if got, err := Continue(ctx, f, "prod", "web", ContinueOptions{HookID: hook}); err != nil || got.Already || got.HookID != hook {
		t.Fatalf("retry = %+v, %v", got, err)
	}
}

func TestContinueRefuses(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		setup func(f *testenv.FakeECSDeployments, arn string)
		opt   ContinueOptions
		want  string
		is    func(error) bool
	}{
		{"nothing in flight", func(f *testenv.FakeECSDeployments, arn string) {
			f.End(arn, types.ServiceDeploymentStatusSuccessful, "", "")
		}, ContinueOptions{}, "service prod/web: no service deployment in flight", func(err error) bool { return errors.Is(err, ErrNothingInFlight) }},
		{"not paused", func(f *testenv.FakeECSDeployments, arn string) {
			f.Advance(arn, types.ServiceDeploymentLifecycleStageScaleUp, 0)
		}, ContinueOptions{}, "is not paused at a hook", func(err error) bool {
			var np *NotPausedError
			return errors.As(err, &np) && strings.Contains(np.Stage, "SCALE_UP")
		}},
		{"rolling back", func(f *testenv.FakeECSDeployments, arn string) {
			f.End(arn, types.ServiceDeploymentStatusRollbackInProgress, "", "alarm")
		}, ContinueOptions{}, "is ROLLBACK_IN_PROGRESS: nothing to continue", nil},
		{"hook timed out", func(f *testenv.FakeECSDeployments, arn string) {
			id := f.Pause(arn, types.ServiceDeploymentLifecycleStagePostScaleUp, time.Hour)
			f.SetHook(arn, id, types.DeploymentLifecycleHookStatusTimedOut)
			f.Advance(arn, types.ServiceDeploymentLifecycleStageTestTrafficShift, 0)
		}, ContinueOptions{HookID: "ecs-pause-0003hook"}, "is TIMED_OUT, not awaiting action", nil},
		{"unknown hook", func(f *testenv.FakeECSDeployments, arn string) {
			f.Pause(arn, types.ServiceDeploymentLifecycleStagePostScaleUp, time.Hour)
		}, ContinueOptions{HookID: "ecs-pause-nope"}, "hook ecs-pause-nope is not among the hooks", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, n, c := newNative(t, canary())
			s, _ := start(t, n, c)
			tt.setup(f, s.ServiceDeploymentARN)
			_, err := Continue(ctx, f, "prod", "web", tt.opt)
			if err == nil || !strings.Contains(err.Error(), tt.want) || tt.is != nil && !tt.is(err) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if f.Calls("ContinueServiceDeployment") != 0 {
				t.Error("ContinueServiceDeployment called")
			}
		})
	}
}

func TestRollBack(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name      string
		setup     func(f *testenv.FakeECSDeployments, arn string)
		lose      string // an operation whose answer is lost
		want      Action // ServiceDeploymentARN filled in
		continues int
		stops     int
	}{
		{"at a paused hook", func(f *testenv.FakeECSDeployments, arn string) {
			f.Pause(arn, types.ServiceDeploymentLifecycleStagePostTestTrafficShift, time.Hour)
		}, "", Action{HookID: "ecs-pause-0003hook", Stage: types.ServiceDeploymentLifecycleStagePostTestTrafficShift, Did: "rolled back at the paused hook"}, 1, 0},
		{"while shifting traffic", func(f *testenv.FakeECSDeployments, arn string) {
			f.Advance(arn, types.ServiceDeploymentLifecycleStageProductionTrafficShift, 10)
		}, "", Action{Stage: types.ServiceDeploymentLifecycleStageProductionTrafficShift, Did: "stopped with rollback"}, 0, 1},
		{"stop applied, answer lost", func(f *testenv.FakeECSDeployments, arn string) {
			f.Advance(arn, types.ServiceDeploymentLifecycleStageBakeTime, 100)
		}, "StopServiceDeployment", Action{Stage: types.ServiceDeploymentLifecycleStageBakeTime, Did: "stopped with rollback"}, 0, 1},
		{"hook rollback applied, answer lost", func(f *testenv.FakeECSDeployments, arn string) {
			f.Pause(arn, types.ServiceDeploymentLifecycleStagePostScaleUp, time.Hour)
		}, "ContinueServiceDeployment", Action{HookID: "ecs-pause-0003hook", Stage: types.ServiceDeploymentLifecycleStagePostScaleUp, Did: "rolled back at the paused hook"}, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, n, c := newNative(t, canary())
			s, _ := start(t, n, c)
			arn := s.ServiceDeploymentARN
			tt.setup(f, arn)
			if tt.lose != "" {
				f.LoseNext(tt.lose, 1)
			}
			got, err := RollBack(ctx, f, "prod", "web")
			if err != nil {
				t.Fatal(err)
			}
			tt.want.ServiceDeploymentARN = arn
			if diff := cmp.Diff(tt.want, got, cmpopts.IgnoreFields(Action{}, "Note")); diff != "" {
				t.Errorf("RollBack (-want +got):\n%s", diff)
			}
			if (tt.lose != "") != strings.Contains(got.Note, "its answer was lost") {
				t.Errorf("Note = %q", got.Note)
			}
			if st := f.Deployment(arn).Status; st != types.ServiceDeploymentStatusRollbackRequested {
				t.Errorf("status %s, want ROLLBACK_REQUESTED", st)
			}
			// Run again: already rolling back, nothing sent.
			again, err := RollBack(ctx, f, "prod", "web")
			if err != nil || !again.Already || !strings.Contains(again.Note, "already ROLLBACK_REQUESTED") {
				t.Fatalf("again = %+v, %v", again, err)
			}
			if f.Calls("ContinueServiceDeployment") != tt.continues || f.Calls("StopServiceDeployment") != tt.stops {
				t.Errorf("continues %d, stops %d; want %d, %d", f.Calls("ContinueServiceDeployment"), f.Calls("StopServiceDeployment"), tt.continues, tt.stops)
			}
		})
	}
}

func TestRollBackRefuses(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		setup  func(f *testenv.FakeECSDeployments, arn string)
		inject func(f *testenv.FakeECSDeployments)
		want   string
	}{
		{"nothing in flight", func(f *testenv.FakeECSDeployments, arn string) {
			f.End(arn, types.ServiceDeploymentStatusSuccessful, "", "")
		}, nil, "no service deployment in flight"},
		{"stop requested", func(f *testenv.FakeECSDeployments, arn string) {
			f.End(arn, types.ServiceDeploymentStatusStopRequested, "", "")
		}, nil, "is STOP_REQUESTED (stopped without rollback)"},
		{"stop refused", func(f *testenv.FakeECSDeployments, arn string) {}, func(f *testenv.FakeECSDeployments) {
			f.FailNext("StopServiceDeployment", &types.AccessDeniedException{Message: aws.String("not authorized")})
		}, "stop service deployment"},
		{"stop refused, read again fails", func(f *testenv.FakeECSDeployments, arn string) {}, func(f *testenv.FakeECSDeployments) {
			f.FailNext("StopServiceDeployment", &types.ServerException{Message: aws.String("boom")})
			f.FailNext("DescribeServiceDeployments", nil, &types.ServerException{Message: aws.String("boom again")})
		}, "reading it again to see whether it applied"},
		{"list fails", func(f *testenv.FakeECSDeployments, arn string) {}, func(f *testenv.FakeECSDeployments) {
			f.FailNext("ListServiceDeployments", &types.ServerException{Message: aws.String("boom")})
		}, "list in-flight service deployments of prod/web"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, n, c := newNative(t, canary())
			s, _ := start(t, n, c)
			tt.setup(f, s.ServiceDeploymentARN)
			if tt.inject != nil {
				tt.inject(f)
			}
			if _, err := RollBack(ctx, f, "prod", "web"); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}
