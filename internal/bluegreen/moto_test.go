package bluegreen_test

// Against moto, for what it has: ECS applications, deployment groups with
// ecsServices and load balancer info, CreateDeployment and GetDeployment.
// Its deployments never change state, so how one ends is tested against
// the fake (start_test.go).

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/bluegreen"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/emulator"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

func TestAgainstMoto(t *testing.T) {
	ctx := context.Background()
	m := testenv.StartMoto(t)
	cfg := m.AWSConfig()
	cd := codedeploy.NewFromConfig(cfg)
	ecsClient := ecs.NewFromConfig(cfg)
	if _, err := emulator.SeedService(ctx, ecsClient, emulator.Service{Cluster: "prod", Name: "web", Family: "web",
		Containers: []emulator.Container{{Name: "app", Image: emulator.Registry + "/web:1.0.0"}}, BlueGreen: true}); err != nil {
		t.Fatal(err)
	}
	if err := emulator.SeedDeploymentGroup(ctx, cd, "web", "web-prod", "prod", "web"); err != nil {
		t.Fatal(err)
	}
	// A group without a target group pair.
	if _, err := cd.CreateDeploymentGroup(ctx, &codedeploy.CreateDeploymentGroupInput{ApplicationName: aws.String("web"),
		DeploymentGroupName: aws.String("bare"), ServiceRoleArn: aws.String("arn:aws:iam::123456789012:role/cd"),
		EcsServices: []types.ECSService{{ClusterName: aws.String("prod"), ServiceName: aws.String("web")}}}); err != nil {
		t.Fatal(err)
	}

	var groups bluegreen.Groups
	grp, err := groups.Find(ctx, cd, "", "prod", "web", &rules.CodeDeploy{Application: "web", DeploymentGroup: "web-prod"})
	if err != nil || grp != webProd {
		t.Fatalf("Find = %v, %v", grp, err)
	}
	_, err = groups.Find(ctx, cd, "", "prod", "web", &rules.CodeDeploy{Application: "web", DeploymentGroup: "bare"})
	var pe *bluegreen.PermanentError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "has no load balancer info") {
		t.Fatalf("group without load balancer info: %v", err)
	}

	svc, err := ecsClient.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("prod"), Services: []string{"web"}})
	if err != nil {
		t.Fatal(err)
	}
	spec, err := bluegreen.BuildAppSpec("arn:aws:ecs:us-east-1:123456789012:task-definition/web:2", &svc.Services[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	started, err := bluegreen.Start(ctx, cd, grp, spec, bluegreen.Marker("event-1", "web-prod"))
	id := started.ID
	if err != nil || id == "" { // moto ids are UUIDs; CodeDeploy's are d-…
		t.Fatalf("Start = %q, %v", id, err)
	}
	got, err := cd.GetDeployment(ctx, &codedeploy.GetDeploymentInput{DeploymentId: aws.String(id)})
	if err != nil {
		t.Fatal(err)
	}
	info := got.DeploymentInfo
	if aws.ToString(info.DeploymentGroupName) != "web-prod" || aws.ToString(info.Description) != bluegreen.Marker("event-1", "web-prod") ||
		aws.ToString(info.Revision.AppSpecContent.Content) != spec.Content || !strings.Contains(spec.Content, `"ContainerPort": 8080`) {
		t.Errorf("deployment %+v, revision %+v", info, info.Revision)
	}
}
