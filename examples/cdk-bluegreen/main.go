// Command cdk-bluegreen is an example CDK app: a Fargate service that ECS
// itself deploys blue/green (the ECS deployment controller with the
// BLUE_GREEN strategy, no CodeDeploy), with a bake time and a PAUSE
// lifecycle hook that waits for a person before production traffic moves.
//
// ecr-autodeploy deploys it like any service (RegisterTaskDefinition, then
// UpdateService with the new revision); ECS runs the strategy. Its target
// in the rules file names nothing about the strategy:
//
//	rules:
//	  - name: shop-prod
//	    repository: shop
//	    semver: ">= 1.0.0"
//	    publish: {ssm-prefix: /ecr-autodeploy}
//	    targets: [{cluster: prod, service: shop}]
//
// What a push then does: green tasks start and register in the alternate
// target group; the test listener (port 9090) sends them test traffic; at
// POST_TEST_TRAFFIC_SHIFT the PAUSE hook waits, and ecr-autodeploy's
// watcher sends a notice naming the service, the stage and the commands
//
//	autodeploy continue --cluster prod --service shop
//	autodeploy rollback --cluster prod --service shop
//
// (the hook rolls back by itself after TimeoutMinutes). Continued,
// production traffic moves to green, the bake runs BakeMinutes, and only
// once ECS reports the service deployment SUCCESSFUL does the watcher say
// completed (a rollback, by the hook, an alarm or the circuit breaker, is
// rolled_back with ECS's reason).
//
// The image comes from the parameter ecr-autodeploy publishes, as in
// examples/cdk-service, so a `cdk deploy` of this app never puts an older
// image back. Seed it once before the first deploy:
//
//	aws ssm put-parameter --name /ecr-autodeploy/prod/shop/app --type String \
//	  --value 123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop:v1.0.0
package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsecs"
	elb "github.com/aws/aws-cdk-go/awscdk/v2/awselasticloadbalancingv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsssm"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// Props name the service, where its image is published and how ECS rolls it.
type Props struct {
	awscdk.StackProps
	Cluster, Service, Container string
	// Prefix is the rule's publish.ssm-prefix.
	Prefix string
	// Repository is the ECR repository the images come from (for pull rights).
	Repository string
	// BakeMinutes is how long ECS keeps blue after production traffic moved
	// to green (BLUE_GREEN requires one); a rollback within it is instant.
	BakeMinutes float64
	// PauseStage is where the PAUSE hook waits for `autodeploy continue`.
	PauseStage string
	// TimeoutMinutes is how long it waits before it rolls back.
	TimeoutMinutes float64
}

// Parameter is the parameter ecr-autodeploy writes for this container.
func (p Props) Parameter() string {
	return p.Prefix + "/" + p.Cluster + "/" + p.Service + "/" + p.Container
}

const (
	port     = 8080 // the container's
	testPort = 9090 // the load balancer's test listener
)

// NewServiceStack defines the load balancer with its two target groups and
// listener rules, the role ECS shifts traffic with, and the service on the
// ECS controller with the BLUE_GREEN strategy (CloudFormation's
// AWS::ECS::Service, through CDK's L1 properties).
func NewServiceStack(scope constructs.Construct, id string, p Props) awscdk.Stack {
	stack := awscdk.NewStack(scope, jsii.String(id), &p.StackProps)
	vpc := awsec2.NewVpc(stack, jsii.String("Vpc"), &awsec2.VpcProps{MaxAzs: jsii.Number(2)})
	cluster := awsecs.NewCluster(stack, jsii.String("Cluster"), &awsecs.ClusterProps{Vpc: vpc, ClusterName: jsii.String(p.Cluster)})

	// Blue (production) and green (the new revision) target groups.
	targetGroup := func(name string) elb.ApplicationTargetGroup {
		return elb.NewApplicationTargetGroup(stack, jsii.String(name), &elb.ApplicationTargetGroupProps{
			Vpc: vpc, Port: jsii.Number(port), Protocol: elb.ApplicationProtocol_HTTP, TargetType: elb.TargetType_IP,
			HealthCheck: &elb.HealthCheck{Path: jsii.String("/"), HealthyThresholdCount: jsii.Number(2)},
		})
	}
	blue, green := targetGroup("Blue"), targetGroup("Green")
	weighted := elb.ListenerAction_WeightedForward(&[]*elb.WeightedTargetGroup{
		{TargetGroup: blue, Weight: jsii.Number(100)}, {TargetGroup: green, Weight: jsii.Number(0)},
	}, nil)

	lb := elb.NewApplicationLoadBalancer(stack, jsii.String("LoadBalancer"), &elb.ApplicationLoadBalancerProps{Vpc: vpc, InternetFacing: jsii.Bool(true)})
	// ECS moves the weights of one listener rule each for production and
	// test traffic; the rules forward only (ECS refuses rules that mix
	// forwarding with other actions).
	rule := func(name string, listenerPort float64) elb.ApplicationListenerRule {
		listener := lb.AddListener(jsii.String(name+"Listener"), &elb.BaseApplicationListenerProps{
			Port: jsii.Number(listenerPort), Protocol: elb.ApplicationProtocol_HTTP, DefaultAction: weighted,
		})
		return elb.NewApplicationListenerRule(stack, jsii.String(name+"Rule"), &elb.ApplicationListenerRuleProps{
			Listener: listener, Priority: jsii.Number(1),
			Conditions: &[]elb.ListenerCondition{elb.ListenerCondition_PathPatterns(jsii.Strings("/*"))},
			Action:     weighted,
		})
	}
	production, test := rule("Production", 80), rule("Test", testPort)

	// The role ECS calls Elastic Load Balancing with to shift traffic.
	infrastructure := awsiam.NewRole(stack, jsii.String("EcsInfrastructureRole"), &awsiam.RoleProps{
		AssumedBy: awsiam.NewServicePrincipal(jsii.String("ecs.amazonaws.com"), nil),
		ManagedPolicies: &[]awsiam.IManagedPolicy{
			awsiam.ManagedPolicy_FromAwsManagedPolicyName(jsii.String("AmazonECSInfrastructureRolePolicyForLoadBalancers")),
		},
	})

	// The one line that keeps `cdk deploy` from reverting a deploy: the
	// image is the parameter's value, never a literal.
	image := awsssm.StringParameter_ValueForStringParameter(stack, jsii.String(p.Parameter()), nil)
	task := awsecs.NewFargateTaskDefinition(stack, jsii.String("Task"), &awsecs.FargateTaskDefinitionProps{
		Cpu: jsii.Number(256), MemoryLimitMiB: jsii.Number(512),
	})
	task.AddContainer(jsii.String(p.Container), &awsecs.ContainerDefinitionOptions{
		ContainerName: jsii.String(p.Container),
		Image:         awsecs.ContainerImage_FromRegistry(image, nil),
		PortMappings:  &[]*awsecs.PortMapping{{ContainerPort: jsii.Number(port)}},
		Logging:       awsecs.LogDriver_AwsLogs(&awsecs.AwsLogDriverProps{StreamPrefix: jsii.String(p.Service)}),
	})
	// Pull rights on the repository (FromRegistry grants none).
	task.AddToExecutionRolePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"),
		Resources: jsii.Strings(*awscdk.Fn_Sub(jsii.String("arn:${AWS::Partition}:ecr:${AWS::Region}:${AWS::AccountId}:repository/"+p.Repository), nil)),
	}))
	task.AddToExecutionRolePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions:   jsii.Strings("ecr:GetAuthorizationToken"),
		Resources: jsii.Strings("*"),
	}))

	tasks := awsec2.NewSecurityGroup(stack, jsii.String("TasksSecurityGroup"), &awsec2.SecurityGroupProps{Vpc: vpc})
	lb.Connections().AllowTo(tasks, awsec2.Port_Tcp(jsii.Number(port)), jsii.String("the load balancer reaches the tasks"))
	var subnets []*string
	for _, s := range *vpc.PrivateSubnets() {
		subnets = append(subnets, s.SubnetId())
	}

	awsecs.NewCfnService(stack, jsii.String("Service"), &awsecs.CfnServiceProps{
		Cluster:        cluster.ClusterName(),
		ServiceName:    jsii.String(p.Service),
		TaskDefinition: task.TaskDefinitionArn(),
		LaunchType:     jsii.String("FARGATE"),
		DesiredCount:   jsii.Number(2),
		// ECS-native blue/green runs on the ordinary ECS controller; a
		// service on CODE_DEPLOY is the other kind (codedeploy: in the
		// rules file).
		DeploymentController: &awsecs.CfnService_DeploymentControllerProperty{Type: jsii.String("ECS")},
		DeploymentConfiguration: &awsecs.CfnService_DeploymentConfigurationProperty{
			Strategy:          jsii.String("BLUE_GREEN"),
			BakeTimeInMinutes: jsii.Number(p.BakeMinutes),
			LifecycleHooks: &[]any{&awsecs.CfnService_DeploymentLifecycleHookProperty{
				TargetType:      jsii.String("PAUSE"),
				LifecycleStages: jsii.Strings(p.PauseStage),
				TimeoutConfiguration: &awsecs.CfnService_HookTimeoutConfigProperty{
					TimeoutInMinutes: jsii.Number(p.TimeoutMinutes), Action: jsii.String("ROLLBACK"),
				},
			}},
			// A green revision that cannot start rolls back by itself.
			DeploymentCircuitBreaker: &awsecs.CfnService_DeploymentCircuitBreakerProperty{Enable: jsii.Bool(true), Rollback: jsii.Bool(true)},
		},
		LoadBalancers: &[]any{&awsecs.CfnService_LoadBalancerProperty{
			ContainerName:  jsii.String(p.Container),
			ContainerPort:  jsii.Number(port),
			TargetGroupArn: blue.TargetGroupArn(),
			AdvancedConfiguration: &awsecs.CfnService_AdvancedConfigurationProperty{
				AlternateTargetGroupArn: green.TargetGroupArn(),
				ProductionListenerRule:  production.ListenerRuleArn(),
				TestListenerRule:        test.ListenerRuleArn(),
				RoleArn:                 infrastructure.RoleArn(),
			},
		}},
		NetworkConfiguration: &awsecs.CfnService_NetworkConfigurationProperty{
			AwsvpcConfiguration: &awsecs.CfnService_AwsVpcConfigurationProperty{
				Subnets: &subnets, SecurityGroups: jsii.Strings(*tasks.SecurityGroupId()), AssignPublicIp: jsii.String("DISABLED"),
			},
		},
	})
	// The listener rules it names (Ref) are created first, so the target
	// groups belong to the load balancer when the service names them.
	return stack
}

func main() {
	defer jsii.Close()
	app := awscdk.NewApp(nil)
	NewServiceStack(app, "ShopService", Props{
		Cluster: "prod", Service: "shop", Container: "app", Prefix: "/ecr-autodeploy", Repository: "shop",
		BakeMinutes: 10, PauseStage: "POST_TEST_TRAFFIC_SHIFT", TimeoutMinutes: 60,
		StackProps: awscdk.StackProps{Description: jsii.String("shop: a Fargate service ECS deploys blue/green with a pause for a person")},
	})
	app.Synth(nil)
}
