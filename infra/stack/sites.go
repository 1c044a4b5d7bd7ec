package stack

import (
	"fmt"

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

// forwarder is the role the stack's rules forward events of kind (pushes,
// deployments) to the central bus with. Its name is fixed so that the
// central bus policy admits exactly it, by ARN, before it exists.
func (p SiteProps) forwarder(s awscdk.Stack, kind string) awsiam.Role {
	return awsiam.NewRole(s, jsii.String("ForwardRole"), &awsiam.RoleProps{
		RoleName:    jsii.String(forwardRoleName(kind, p.Place.Region)),
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("events.amazonaws.com"), nil),
		Description: jsii.String("ecr-autodeploy: EventBridge forwards " + kind + " to the central bus " + centralBusARN(p.Topology.Central)),
	})
}

// forward sends the events of pattern to the central bus as role, parking
// what it cannot deliver in a dead-letter queue.
// With sp, the pattern's list at sp.path holds sp's values, split across
// as many rules (one queue) as EventBridge's pattern limit needs.
func (p SiteProps) forward(s awscdk.Stack, role awsiam.IRole, id, description string, pattern *awsevents.EventPattern, sp *split) {
	bus := awsevents.EventBus_FromEventBusArn(s, jsii.String(id+"CentralBus"), jsii.String(centralBusARN(p.Topology.Central)))
	dlq := secureQueue(s, id+"DLQ", description+" that EventBridge could not forward")
	props := awsevents.RuleProps{
		Description:  jsii.String(description + ", forwarded to ecr-autodeploy's central bus"),
		EventPattern: pattern,
		Targets: &[]awsevents.IRuleTarget{awseventstargets.NewEventBus(bus, &awseventstargets.EventBusProps{
			DeadLetterQueue: dlq, Role: role})},
	}
	if sp == nil {
		awsevents.NewRule(s, jsii.String(id), &props)
		return
	}
	eventRules(s, id, pattern, *sp, props)
}

// trustCentral is a principal for exactly the central functions' roles
// named (role names from deployerRoleName, workerRoleName or
// watcherRoleName): the central account, on condition of the caller's role
// ARN (a role ARN as principal would have to exist when this stack is
// deployed; the condition does not). Each role here trusts only the
// functions that use it, so none may use what only another needs.
func (p SiteProps) trustCentral(functions ...func(stack string, central rules.Place) string) awsiam.IPrincipal {
	c := p.Topology.Central
	var arns []string
	for _, f := range functions {
		arns = append(arns, "arn:aws:iam::"+c.Account+":role/"+f(p.Central, c))
	}
	return awsiam.NewPrincipalWithConditions(awsiam.NewAccountPrincipal(jsii.String(c.Account)), &map[string]any{
		"ArnEquals": map[string]any{"aws:PrincipalArn": arns},
	})
}
