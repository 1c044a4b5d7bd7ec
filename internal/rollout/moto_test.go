package rollout

// Against moto, for what it has: UpdateService on an ECS-controlled
// service, and CodeDeploy's applications, groups, CreateDeployment and
// GetDeployment. moto starts no deployment on UpdateService and ignores
// the strategy, so ECS-native outcomes run against the fake
// (native_test.go).

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/bluegreen"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/emulator"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

func TestStartAgainstMoto(t *testing.T) {
	ctx := context.Background()
	m := testenv.StartMoto(t)
	cfg := m.AWSConfig()
	ecsClient := ecs.NewFromConfig(cfg)
	cd := codedeploy.NewFromConfig(cfg)
	app := []emulator.Container{{Name: "app", Image: emulator.Registry + "/web:1.0.0"}}
	if _, err := emulator.SeedService(ctx, ecsClient, emulator.Service{Cluster: "staging", Name: "web", Family: "web", Containers: app}); err != nil {
		t.Fatal(err)
	}
	if _, err := emulator.SeedService(ctx, ecsClient, emulator.Service{Cluster: "prod", Name: "web", Family: "web-prod", Containers: app, BlueGreen: true}); err != nil {
		t.Fatal(err)
	}
	if err := emulator.SeedDeploymentGroup(ctx, cd, "web", "web-prod", "prod", "web"); err != nil {
		t.Fatal(err)
	}
	reg, err := ecsClient.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("web"),
		ContainerDefinitions: []ecstypes.ContainerDefinition{{Name: aws.String("app"), Image: aws.String(emulator.Registry + "/web:1.1.0"), Memory: aws.Int32(256)}}})
	if err != nil {
		t.Fatal(err)
	}
	next := aws.ToString(reg.TaskDefinition.TaskDefinitionArn)
	described := func(cluster string) Kind {
		out, err := ecsClient.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(cluster), Services: []string{"web"}})
		if err != nil {
			t.Fatal(err)
		}
		return KindOf(out.Services[0])
	}

	// Rolling: the kind from the described service, then UpdateService.
	if k := described("staging"); k.Family != Rolling {
		t.Fatalf("staging/web is %s", k)
	}
	s, err := RollingRollout{ECS: ecsClient}.Start(ctx, Revision{Cluster: "staging", Service: "web", TaskDefinition: next})
	if err != nil || s.TaskDefinition != next {
		t.Fatalf("Start = %+v, %v", s, err)
	}
	out, err := ecsClient.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("staging"), Services: []string{"web"}})
	if err != nil || aws.ToString(out.Services[0].TaskDefinition) != next {
		t.Fatalf("service runs %s, %v; want %s", aws.ToString(out.Services[0].TaskDefinition), err, next)
	}

	// CodeDeploy-controlled: CreateDeployment, the service untouched.
	if k := described("prod"); !k.IsCodeDeployControlled() {
		t.Fatalf("prod/web is %s", k)
	}
	prod, err := ecsClient.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("prod"), Services: []string{"web"}})
	if err != nil {
		t.Fatal(err)
	}
	r := CodeDeployRollout{Client: cd, Groups: &bluegreen.Groups{}, Target: &rules.CodeDeploy{Application: "web", DeploymentGroup: "web-prod"}}
	origin := Origin{Event: "event-1", Rule: "web-prod", Digest: "sha256:abc"}
	started, err := r.Start(ctx, Revision{Cluster: "prod", Service: "web", TaskDefinition: next, Described: &prod.Services[0], Origin: origin})
	if err != nil || started.DeploymentID == "" || started.TaskDefinition != next {
		t.Fatalf("Start = %+v, %v", started, err)
	}
	got, err := cd.GetDeployment(ctx, &codedeploy.GetDeploymentInput{DeploymentId: aws.String(started.DeploymentID)})
	if err != nil {
		t.Fatal(err)
	}
	if d := aws.ToString(got.DeploymentInfo.Description); d != (bluegreen.Mark{Event: "event-1", Rule: "web-prod", Digest: "sha256:abc"}).String() {
		t.Errorf("description %q", d)
	}
	if after, _ := ecsClient.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("prod"), Services: []string{"web"}}); aws.ToString(after.Services[0].TaskDefinition) == next {
		t.Error("UpdateService ran on a CodeDeploy-controlled service")
	}
}
