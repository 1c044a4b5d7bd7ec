// Command cdk-service is an example CDK app: a Fargate service behind an
// Application Load Balancer whose container image is whatever ecr-autodeploy
// last published to Parameter Store. `cdk deploy` of it therefore never puts
// an older image back: the template names the parameter, not an image.
//
// Pair it with a rule that publishes:
//
//	rules:
//	  - name: web-prod
//	    repository: web
//	    semver: ">= 1.0.0"
//	    publish: {ssm-prefix: /ecr-autodeploy}
//	    targets: [{cluster: prod, service: web}]
//
// First deploy: CloudFormation resolves the parameter when the stack
// deploys, so it must exist before the service does; ecr-autodeploy cannot
// write it for a service that does not exist yet. Seed it once with the
// image to start from, then deploy; from then on every push keeps it current:
//
//	aws ssm put-parameter --name /ecr-autodeploy/prod/web/app --type String \
//	  --value 123456789012.dkr.ecr.eu-west-1.amazonaws.com/web:v1.0.0
package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsecs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsecspatterns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsssm"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// Props name the service and where its image is published.
type Props struct {
	awscdk.StackProps
	Cluster, Service, Container string
	// Prefix is the rule's publish.ssm-prefix.
	Prefix string
	// Repository is the ECR repository the images come from (for pull rights).
	Repository string
}

// Parameter is the parameter ecr-autodeploy writes for this container.
func (p Props) Parameter() string {
	return p.Prefix + "/" + p.Cluster + "/" + p.Service + "/" + p.Container
}

// NewServiceStack defines the service; the image is read from the parameter
// at every deploy of the stack.
func NewServiceStack(scope constructs.Construct, id string, p Props) awscdk.Stack {
	stack := awscdk.NewStack(scope, jsii.String(id), &p.StackProps)
	vpc := awsec2.NewVpc(stack, jsii.String("Vpc"), &awsec2.VpcProps{MaxAzs: jsii.Number(2)})
	cluster := awsecs.NewCluster(stack, jsii.String("Cluster"), &awsecs.ClusterProps{Vpc: vpc, ClusterName: jsii.String(p.Cluster)})

	// The one line that matters: the image is the parameter's value, never a
	// literal, so this template has nothing to put back.
	image := awsssm.StringParameter_ValueForStringParameter(stack, jsii.String(p.Parameter()), nil)

	svc := awsecspatterns.NewApplicationLoadBalancedFargateService(stack, jsii.String("Web"), &awsecspatterns.ApplicationLoadBalancedFargateServiceProps{
		Cluster:      cluster,
		ServiceName:  jsii.String(p.Service),
		DesiredCount: jsii.Number(2),
		TaskImageOptions: &awsecspatterns.ApplicationLoadBalancedTaskImageOptions{
			Image:         awsecs.ContainerImage_FromRegistry(image, nil),
			ContainerName: jsii.String(p.Container),
			ContainerPort: jsii.Number(8080),
		},
		// ECS reports a failed deployment only with the circuit breaker on;
		// ecr-autodeploy's watcher needs that to say how a deploy ended.
		CircuitBreaker: &awsecs.DeploymentCircuitBreaker{Rollback: jsii.Bool(true)},
	})
	// Pull rights on the repository (FromRegistry grants none).
	svc.TaskDefinition().AddToExecutionRolePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"),
		Resources: jsii.Strings(*awscdk.Fn_Sub(jsii.String("arn:${AWS::Partition}:ecr:${AWS::Region}:${AWS::AccountId}:repository/"+p.Repository), nil)),
	}))
	svc.TaskDefinition().AddToExecutionRolePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("ecr:GetAuthorizationToken"),
		Resources: jsii.Strings("*"),
	}))
	return stack
}

func main() {
	defer jsii.Close()
	app := awscdk.NewApp(nil)
	NewServiceStack(app, "WebService", Props{
		Cluster: "prod", Service: "web", Container: "app", Prefix: "/ecr-autodeploy", Repository: "web",
		StackProps: awscdk.StackProps{Description: jsii.String("web: a Fargate service whose image ecr-autodeploy publishes")},
	})
	app.Synth(nil)
}
