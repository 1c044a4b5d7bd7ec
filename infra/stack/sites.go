package stack

import (
	"fmt"
	"slices"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// NewAll builds, from one rules file, the central stack (id) and one stack
// per other registry (id-Registry-<account>-<region>) and per other target
// place (id-Target-<account>-<region>), each pinned to its account and
// region. The others depend on the central stack, so `cdk deploy --all`
// deploys it first: the bus policy admitting them is there.
func NewAll(scope constructs.Construct, id string, p Props) ([]awscdk.Stack, error) {
	central, err := New(scope, id, p)
	if err != nil {
		return nil, err
	}
	tp, err := NewTopology(p.Rules, p.central())
	if err != nil {
		return nil, err
	}
	stacks := []awscdk.Stack{central}
	for _, place := range tp.Registries {
		s := NewRegistryStack(scope, fmt.Sprintf("%s-Registry-%s-%s", id, place.Account, place.Region), SiteProps{Rules: p.Rules, Topology: tp, Central: id, Place: place})
		s.AddStackDependency(central, jsii.String("the central bus admits this account"))
		stacks = append(stacks, s)
	}
	for _, place := range tp.Targets {
		s := NewTargetStack(scope, fmt.Sprintf("%s-Target-%s-%s", id, place.Account, place.Region), SiteProps{Rules: p.Rules, Topology: tp, Central: id, Place: place})
		s.AddStackDependency(central, jsii.String("the central bus admits this account"))
		stacks = append(stacks, s)
	}
	return stacks, nil
}

// SiteProps configure a registry or a target stack.
type SiteProps struct {
	Rules    *rules.Config
	Topology Topology
	Central  string      // the central stack's id, which names its functions' roles
	Place    rules.Place // this stack's account and region
}

func (p SiteProps) stack(scope constructs.Construct, id, description string) awscdk.Stack {
	return awscdk.NewStack(scope, jsii.String(id), &awscdk.StackProps{
		Env:         &awscdk.Environment{Account: jsii.String(p.Place.Account), Region: jsii.String(p.Place.Region)},
		Description: jsii.String(description),
	})
}

// forward sends the events of pattern to the central bus, parking what it
// cannot deliver in a dead-letter queue.
func (p SiteProps) forward(s awscdk.Stack, id, description string, pattern *awsevents.EventPattern) {
	bus := awsevents.EventBus_FromEventBusArn(s, jsii.String(id+"CentralBus"), jsii.String(centralBusARN(p.Topology.Central)))
	dlq := secureQueue(s, id+"DLQ", description+" that EventBridge could not forward")
	awsevents.NewRule(s, jsii.String(id), &awsevents.RuleProps{
		Description:  jsii.String(description + ", forwarded to ecr-autodeploy's central bus"),
		EventPattern: pattern,
		Targets:      &[]awsevents.IRuleTarget{awseventstargets.NewEventBus(bus, &awseventstargets.EventBusProps{DeadLetterQueue: dlq})},
	})
}

// trustCentral is a principal for exactly the central deployer's and
// watcher's roles: the central account, on condition of the caller's role
// ARN (a role ARN as principal would have to exist when this stack is
// deployed; the condition does not).
func (p SiteProps) trustCentral() awsiam.IPrincipal {
	c := p.Topology.Central
	return awsiam.NewPrincipalWithConditions(awsiam.NewAccountPrincipal(jsii.String(c.Account)), &map[string]any{
		"ArnEquals": map[string]any{"aws:PrincipalArn": []string{
			"arn:aws:iam::" + c.Account + ":role/" + deployerRoleName(p.Central, c),
			"arn:aws:iam::" + c.Account + ":role/" + watcherRoleName(p.Central, c),
		}},
	})
}

// NewRegistryStack forwards pushes to the configured repositories of a
// registry elsewhere to the central bus and, in another account, makes the
// role the central functions assume there: listing images for sweeps,
// tagging promoted digests.
func NewRegistryStack(scope constructs.Construct, id string, p SiteProps) awscdk.Stack {
	s := p.stack(scope, id, fmt.Sprintf("ecr-autodeploy registry %s: forwards pushes to the central account %s", p.Place, p.Topology.Central))
	central := p.Topology.Central
	var repos, promoted []string
	for _, r := range p.Rules.Rules {
		if r.RegistryOf(central) != p.Place {
			continue
		}
		repos = appendNew(repos, r.Repository)
		if r.Promote != nil {
			promoted = appendNew(promoted, r.Repository)
		}
	}
	p.forward(s, "ForwardPushes", "ECR pushes to the repositories of autodeploy.yaml", &awsevents.EventPattern{
		Source:     jsii.Strings("aws.ecr"),
		DetailType: jsii.Strings("ECR Image Action"),
		Account:    jsii.Strings(p.Place.Account),
		Region:     jsii.Strings(p.Place.Region),
		Detail:     &map[string]any{"action-type": []string{"PUSH"}, "result": []string{"SUCCESS"}, "repository-name": repos},
	})
	if p.Place.Account == central.Account {
		return s // the central functions reach it with their own credentials
	}
	role := awsiam.NewRole(s, jsii.String("RegistryRole"), &awsiam.RoleProps{
		RoleName:    jsii.String(rules.RegistryRoleName(p.Place.Region)),
		AssumedBy:   p.trustCentral(),
		Description: jsii.String("ecr-autodeploy: the central functions list and promote images here"),
	})
	arns := func(names []string) []string {
		var out []string
		for _, n := range names {
			out = append(out, "arn:${AWS::Partition}:ecr:${AWS::Region}:${AWS::AccountId}:repository/"+n)
		}
		return out
	}
	if p.Rules.Reconcile.Every > 0 {
		role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid: jsii.String("ListImagesForSweeps"), Actions: jsii.Strings("ecr:DescribeImages"), Resources: subs(arns(repos)),
		}))
	}
	if len(promoted) > 0 {
		role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid: jsii.String("PromoteDigests"), Actions: jsii.Strings("ecr:BatchGetImage", "ecr:PutImage"), Resources: subs(arns(promoted)),
		}))
	}
	return s
}

// NewTargetStack forwards the deployment events (ECS and CodeDeploy) of the
// targets at its place to the central bus and, in another account, makes
// the role the central functions assume there, with the same least
// privilege as at home.
func NewTargetStack(scope constructs.Construct, id string, p SiteProps) awscdk.Stack {
	s := p.stack(scope, id, fmt.Sprintf("ecr-autodeploy targets %s: deployed from the central account %s", p.Place, p.Topology.Central))
	central := p.Topology.Central
	here := at(central, p.Place)
	p.forward(s, "ForwardEcsDeployments", "ECS deployment state changes of the services of autodeploy.yaml", &awsevents.EventPattern{
		Source:     jsii.Strings("aws.ecs"),
		DetailType: jsii.Strings("ECS Deployment State Change"),
		Account:    jsii.Strings(p.Place.Account),
		Resources:  subs(serviceARNs(p.Rules, here)),
	})
	if len(blueGreenTargets(p.Rules, here)) > 0 {
		p.forward(s, "ForwardCodeDeployDeployments", "CodeDeploy deployments of the blue/green services of autodeploy.yaml",
			codeDeployPattern(p.Rules, here, []string{p.Place.Account}))
	}
	mine := siteRole(central, p.Place)
	if p.Place.Account == central.Account || len(serviceARNs(p.Rules, mine)) == 0 {
		return s // own credentials, or every target here names its own role
	}
	role := awsiam.NewRole(s, jsii.String("TargetRole"), &awsiam.RoleProps{
		RoleName:    jsii.String(rules.TargetRoleName(p.Place.Region)),
		AssumedBy:   p.trustCentral(),
		Description: jsii.String("ecr-autodeploy: the central functions deploy the listed services here"),
	})
	grantTargets(role, p.Rules, mine)
	return s
}

func appendNew(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}
