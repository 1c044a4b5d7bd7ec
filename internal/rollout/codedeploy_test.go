package rollout

// The CodeDeploy-controlled kind against testenv.FakeCodeDeploy, for what
// moto lacks (deployment states, the one active deployment per group, a
// lost CreateDeployment answer); moto_test.go starts one on moto.

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/bluegreen"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/codedeployevent"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecsevent"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

func codeDeploy(t *testing.T) (*testenv.FakeCodeDeploy, CodeDeployRollout, Revision) {
	t.Helper()
	f := testenv.NewFakeCodeDeploy()
	f.AddApplication("web", types.ComputePlatformEcs)
	f.AddGroup("web", "web-prod", "prod", "web", true)
	svc := &ecstypes.Service{ServiceName: aws.String("web"), TaskDefinition: aws.String(tdOld),
		DeploymentController: &ecstypes.DeploymentController{Type: ecstypes.DeploymentControllerTypeCodeDeploy},
		LoadBalancers:        []ecstypes.LoadBalancer{{ContainerName: aws.String("app"), ContainerPort: aws.Int32(8080)}}}
	r := CodeDeployRollout{Client: f, Groups: &bluegreen.Groups{}, Target: &rules.CodeDeploy{}}
	return f, r, Revision{Cluster: "prod", Service: "web", TaskDefinition: tdNew, Described: svc,
		Origin: Origin{Event: "event-1", Rule: "web-prod", Digest: "sha256:abc"}}
}

// A CreateDeployment applied but its answer lost: the retry finds the
// deployment by its mark and returns it, the same thing delivered twice.
func TestCodeDeployStartRetried(t *testing.T) {
	ctx := context.Background()
	f, r, rev := codeDeploy(t)
	if grp, active, err := r.Active(ctx, "prod", "web"); err != nil || grp.String() != "web/web-prod" || len(active) != 0 {
		t.Fatalf("Active = %v, %v, %v", grp, active, err)
	}
	f.LoseCreate = 1
	if _, err := r.Start(ctx, rev); err == nil {
		t.Fatal("lost answer: no error")
	}
	s, err := r.Start(ctx, rev)
	if err != nil || s.DeploymentID != "d-FAKE00001" || s.TaskDefinition != tdNew || len(f.Deployments()) != 1 {
		t.Fatalf("retry = %+v, %v (%d deployments)", s, err, len(f.Deployments()))
	}
	_, active, err := r.Active(ctx, "prod", "web")
	if err != nil || len(active) != 1 || !active[0].SameDeploy(bluegreen.Mark{Event: "event-1", Rule: "web-prod", Digest: "sha256:abc"}.String()) {
		t.Fatalf("Active = %+v, %v", active, err)
	}
	// Another event's deploy while it runs: transient, as before.
	rev.Origin.Event = "event-2"
	if _, err := r.Start(ctx, rev); !bluegreen.IsActiveDeployment(err) {
		t.Fatalf("err = %v, want an active deployment error", err)
	}
}

func TestCodeDeployRefusesWithoutTarget(t *testing.T) {
	_, r, rev := codeDeploy(t)
	r.Target = nil
	_, err := r.Start(context.Background(), rev)
	var pe *bluegreen.PermanentError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "give its target codedeploy: {}") {
		t.Fatalf("err = %v", err)
	}
}

// How a CodeDeploy deployment ended, as the watcher has always read it.
func TestCodeDeployOutcome(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		state    string
		end      func(f *testenv.FakeCodeDeploy, id string)
		recorded string
		want     Outcome
		gets     int // GetDeployment calls by Outcome
	}{
		{"success", codedeployevent.Success, nil, "", Outcome{Outcome: history.Completed}, 0},
		{"in flight", codedeployevent.Ready, nil, "", Outcome{}, 0},
		{"failure rolled back", codedeployevent.Failure, func(f *testenv.FakeCodeDeploy, id string) {
			f.End(id, types.DeploymentStatusFailed, "tasks failed", "d-ROLLBACK")
		}, "", Outcome{Outcome: history.RolledBack, Reason: "CodeDeploy deployment failed: ECS_UPDATE_ERROR: tasks failed; rolled back by deployment d-ROLLBACK (Automatic rollback triggered by a failed deployment)"}, 1},
		{"failure", codedeployevent.Failure, func(f *testenv.FakeCodeDeploy, id string) {
			f.End(id, types.DeploymentStatusFailed, "tasks failed", "")
		}, "", Outcome{Outcome: history.Failed, Reason: "CodeDeploy deployment failed: ECS_UPDATE_ERROR: tasks failed"}, 1},
		{"stopped, rolled back", codedeployevent.Stop, func(f *testenv.FakeCodeDeploy, id string) {
			f.End(id, types.DeploymentStatusStopped, "", "d-ROLLBACK")
		}, "", Outcome{Outcome: history.Failed, Reason: "CodeDeploy deployment stopped: rolled back by deployment d-ROLLBACK (Automatic rollback triggered by a failed deployment)"}, 1},
		{"duplicate", codedeployevent.Failure, nil, history.Failed, Outcome{Outcome: history.Failed, Reason: "CodeDeploy deployment failed"}, 0},
		{"read refused", codedeployevent.Failure, func(f *testenv.FakeCodeDeploy, id string) {
			f.FailNext("GetDeployment", &types.InvalidDeploymentIdException{Message: aws.String("bad id")})
		}, "", Outcome{Outcome: history.Failed, Reason: "CodeDeploy deployment failed (whether it was rolled back is unknown: get deployment d-FAKE00001: InvalidDeploymentIdException: bad id)"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, r, rev := codeDeploy(t)
			s, err := r.Start(ctx, rev)
			if err != nil {
				t.Fatal(err)
			}
			if tt.end != nil {
				tt.end(f, s.DeploymentID)
			}
			before := f.Calls("GetDeployment")
			got, err := r.Outcome(ctx, End{Cluster: "prod", Service: "web", TaskDefinition: tdNew, DeploymentID: s.DeploymentID,
				Recorded: tt.recorded, Event: Event{Name: tt.state}})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Outcome (-want +got):\n%s", diff)
			}
			if n := f.Calls("GetDeployment") - before; n != tt.gets {
				t.Errorf("GetDeployment called %d times, want %d", n, tt.gets)
			}
		})
	}
}

// A throttled read fails the event (Lambda delivers it again); the second
// delivery reads it.
func TestCodeDeployOutcomeRetried(t *testing.T) {
	ctx := context.Background()
	f, r, rev := codeDeploy(t)
	s, err := r.Start(ctx, rev)
	if err != nil {
		t.Fatal(err)
	}
	f.End(s.DeploymentID, types.DeploymentStatusFailed, "tasks failed", "d-ROLLBACK")
	f.FailNext("GetDeployment", &types.ThrottlingException{Message: aws.String("Rate exceeded")})
	end := End{DeploymentID: s.DeploymentID, Event: Event{Name: codedeployevent.Failure}}
	if _, err := r.Outcome(ctx, end); err == nil || !strings.Contains(err.Error(), "get deployment") {
		t.Fatalf("first delivery: err = %v", err)
	}
	if got, err := r.Outcome(ctx, end); err != nil || got.Outcome != history.RolledBack {
		t.Fatalf("second delivery: %+v, %v", got, err)
	}
}

// Rolling: the ECS event is the whole truth, read without a call.
func TestRollingOutcome(t *testing.T) {
	tests := []struct {
		name string
		ev   Event
		want Outcome
	}{
		{"completed", Event{Name: ecsevent.Completed}, Outcome{Outcome: history.Completed}},
		{"failed", Event{Name: ecsevent.Failed, Reason: "tasks failed to start"}, Outcome{Outcome: history.Failed, Reason: "tasks failed to start"}},
		{"circuit breaker rollback", Event{Name: ecsevent.InProgress, RollingBack: true, Reason: "ECS deployment circuit breaker: rolling back to deploymentId ecs-svc/0"},
			Outcome{Outcome: history.RolledBack, Reason: "ECS deployment circuit breaker: rolling back to deploymentId ecs-svc/0"}},
		{"in progress", Event{Name: ecsevent.InProgress}, Outcome{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := RollingRollout{}.Outcome(context.Background(), End{Event: tt.ev})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Outcome (-want +got):\n%s", diff)
			}
		})
	}
}
