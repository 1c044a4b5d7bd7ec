package reconcile

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/cleanup"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work"
)

// TestCleanupProtectsATaskSetOnlyService: web (rolling) runs shared:10; bg
// (CodeDeploy-controlled) has no service-level task definition and runs
// shared:3 through its PRIMARY task set. The runner and the library read
// a service's running revision as bluegreen.RunningTaskDefinition does (as
// the deploy path, the sweep and the CLI do), so bg is not dropped as
// "runs nothing" and shared:3, serving its production traffic, stays, with
// the one before it (shared:2). ECS is a fake (not moto: moto's services
// have no task sets of CodeDeploy's).
func TestCleanupProtectsATaskSetOnlyService(t *testing.T) {
	f := &familyECS{services: []types.Service{
		{ServiceName: aws.String("web"), Status: aws.String("ACTIVE"), TaskDefinition: aws.String(tdARN + "shared:10"),
			Deployments: []types.Deployment{{Status: aws.String("PRIMARY"), TaskDefinition: aws.String(tdARN + "shared:10")}}},
		{ServiceName: aws.String("bg"), Status: aws.String("ACTIVE"),
			DeploymentController: &types.DeploymentController{Type: types.DeploymentControllerTypeCodeDeploy},
			TaskSets:             []types.TaskSet{{Status: aws.String("PRIMARY"), TaskDefinition: aws.String(tdARN + "shared:3")}}},
	}}
	for i := 1; i <= 10; i++ {
		f.active = append(f.active, fmt.Sprintf("shared:%d", i))
	}
	r := &CleanupRunner{ECS: func(string, string) CleanupECS { return f }, History: fakeHistory(nil), Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	cmd := work.Cleanup{Account: "111111111111", Region: "eu-west-1", Family: "shared", Keep: 2,
		Services: []work.CleanupService{{Cluster: "prod", Service: "web"}, {Cluster: "prod", Service: "bg"}}, Rules: []string{"web"}, Origin: "test"}
	if _, err := r.Run(context.Background(), cmd, cleanup.NewBudget(100)); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(f.deregistered, "shared:3") {
		t.Errorf("deregistered %v: shared:3, bg's PRIMARY task set's revision, is among them", f.deregistered)
	}
	if want := []string{"shared:8", "shared:7", "shared:6", "shared:5", "shared:4", "shared:1"}; !slices.Equal(f.deregistered, want) {
		t.Errorf("deregistered %v, want %v (kept: the newest two, 10 that web runs and 9 before it, 3 that bg runs and 2 before it)", f.deregistered, want)
	}
}
