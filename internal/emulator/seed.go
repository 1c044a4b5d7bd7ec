package emulator

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	cdtypes "github.com/aws/aws-sdk-go-v2/service/codedeploy/types"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// Container is one container of a seeded task definition.
type Container struct {
	Name  string
	Image string
	// Env is given to the container; tests put secrets here to prove they
	// never reach a log.
	Env map[string]string
}

// Service is an ECS service to seed with its first task definition.
type Service struct {
	Cluster    string
	Name       string
	Family     string
	Containers []Container
	Tags       map[string]string
	// BlueGreen creates the service on the CODE_DEPLOY controller behind a
	// load balancer sending port 8080 to its first container.
	BlueGreen bool
}

// Registry is moto's ECR registry host in the default account and region.
const Registry = Account + ".dkr.ecr." + Region + ".amazonaws.com"

// SeedService creates the cluster (if needed), registers the task definition
// with the fields a real one carries, and creates the service on EC2 with
// two tasks (moto validates subnets for awsvpc services on Fargate).
func SeedService(ctx context.Context, client *ecs.Client, s Service) (taskDefARN string, err error) {
	if _, err := client.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(s.Cluster)}); err != nil {
		return "", fmt.Errorf("create cluster %s: %w", s.Cluster, err)
	}
	var defs []types.ContainerDefinition
	for _, c := range s.Containers {
		def := types.ContainerDefinition{Name: aws.String(c.Name), Image: aws.String(c.Image), Essential: aws.Bool(true),
			Memory: aws.Int32(256), Cpu: 128}
		for k, v := range c.Env {
			def.Environment = append(def.Environment, types.KeyValuePair{Name: aws.String(k), Value: aws.String(v)})
		}
		defs = append(defs, def)
	}
	var tags []types.Tag
	for k, v := range s.Tags {
		tags = append(tags, types.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	td, err := client.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family:                  aws.String(s.Family),
		ContainerDefinitions:    defs,
		NetworkMode:             types.NetworkModeBridge,
		IpcMode:                 types.IpcModeTask,
		PidMode:                 types.PidModeTask,
		RequiresCompatibilities: []types.Compatibility{types.CompatibilityEc2},
		Cpu:                     aws.String("512"),
		Memory:                  aws.String("1024"),
		TaskRoleArn:             aws.String("arn:aws:iam::" + Account + ":role/" + s.Family + "-task"),
		ExecutionRoleArn:        aws.String("arn:aws:iam::" + Account + ":role/" + s.Family + "-execution"),
		Volumes:                 []types.Volume{{Name: aws.String("scratch")}},
		RuntimePlatform:         &types.RuntimePlatform{CpuArchitecture: types.CPUArchitectureArm64, OperatingSystemFamily: types.OSFamilyLinux},
		Tags:                    tags,
	})
	if err != nil {
		return "", fmt.Errorf("register task definition %s: %w", s.Family, err)
	}
	arn := aws.ToString(td.TaskDefinition.TaskDefinitionArn)
	in := &ecs.CreateServiceInput{
		Cluster:        aws.String(s.Cluster),
		ServiceName:    aws.String(s.Name),
		TaskDefinition: aws.String(arn),
		DesiredCount:   aws.Int32(2),
		LaunchType:     types.LaunchTypeEc2,
	}
	if s.BlueGreen {
		in.DeploymentController = &types.DeploymentController{Type: types.DeploymentControllerTypeCodeDeploy}
		in.LoadBalancers = []types.LoadBalancer{{
			TargetGroupArn: aws.String("arn:aws:elasticloadbalancing:" + Region + ":" + Account + ":targetgroup/" + s.Name + "-blue/0123456789abcdef"),
			ContainerName:  aws.String(s.Containers[0].Name), ContainerPort: aws.Int32(8080),
		}}
	}
	if _, err := client.CreateService(ctx, in); err != nil {
		return "", fmt.Errorf("create service %s/%s: %w", s.Cluster, s.Name, err)
	}
	return arn, nil
}

// PushImage puts a single-platform image under repository:tag into moto's
// ECR and returns its digest. moto derives digests from layers, so each
// repository:tag gets layers of its own. The repository must exist.
func PushImage(ctx context.Context, client *ecr.Client, repository, tag string) (string, error) {
	layer := sha256.Sum256([]byte("layer " + repository + ":" + tag))
	config := sha256.Sum256([]byte("config " + repository + ":" + tag))
	manifest := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":1470,"digest":"sha256:%x"},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":3623807,"digest":"sha256:%x"}]}`, config, layer)
	out, err := client.PutImage(ctx, &ecr.PutImageInput{
		RepositoryName: aws.String(repository), ImageTag: aws.String(tag), ImageManifest: aws.String(manifest),
		ImageManifestMediaType: aws.String("application/vnd.oci.image.manifest.v1+json"),
	})
	if err != nil {
		return "", fmt.Errorf("push %s:%s: %w", repository, tag, err)
	}
	return aws.ToString(out.Image.ImageId.ImageDigest), nil
}

// SeedDeploymentGroup creates an ECS CodeDeploy application (if needed) and
// a blue/green deployment group that deploys cluster/service.
func SeedDeploymentGroup(ctx context.Context, client *codedeploy.Client, app, group, cluster, service string) error {
	_, err := client.CreateApplication(ctx, &codedeploy.CreateApplicationInput{
		ApplicationName: aws.String(app), ComputePlatform: cdtypes.ComputePlatformEcs,
	})
	var exists *cdtypes.ApplicationAlreadyExistsException
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("create application %s: %w", app, err)
	}
	_, err = client.CreateDeploymentGroup(ctx, &codedeploy.CreateDeploymentGroupInput{
		ApplicationName:      aws.String(app),
		DeploymentGroupName:  aws.String(group),
		ServiceRoleArn:       aws.String("arn:aws:iam::" + Account + ":role/codedeploy-ecs"),
		DeploymentConfigName: aws.String("CodeDeployDefault.ECSAllAtOnce"),
		DeploymentStyle: &cdtypes.DeploymentStyle{
			DeploymentType: cdtypes.DeploymentTypeBlueGreen, DeploymentOption: cdtypes.DeploymentOptionWithTrafficControl,
		},
		EcsServices: []cdtypes.ECSService{{ClusterName: aws.String(cluster), ServiceName: aws.String(service)}},
		LoadBalancerInfo: &cdtypes.LoadBalancerInfo{TargetGroupPairInfoList: []cdtypes.TargetGroupPairInfo{{
			TargetGroups:     []cdtypes.TargetGroupInfo{{Name: aws.String(service + "-blue")}, {Name: aws.String(service + "-green")}},
			ProdTrafficRoute: &cdtypes.TrafficRoute{ListenerArns: []string{"arn:aws:elasticloadbalancing:" + Region + ":" + Account + ":listener/app/" + service + "/0123456789abcdef/0123456789abcdef"}},
		}}},
	})
	if err != nil {
		return fmt.Errorf("create deployment group %s/%s: %w", app, group, err)
	}
	return nil
}
