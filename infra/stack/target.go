package stack

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// NewTargetStack forwards the deployment events (ECS deployments and, for
// targets that may be ECS-native, hooks; CodeDeploy's) of the targets at
// its place, and the ALARM state changes of the alarms here that bakes
// watch, to the central bus and, in another account, makes
// the role the central worker deploys through there (the worker's least
// privilege at home), the role the central deployer's sweeps read through
// (the intake's at home: nothing that deploys), and the role the central
// watcher reads how rollouts ended with (nothing that deploys).
func NewTargetStack(scope constructs.Construct, id string, p SiteProps) awscdk.Stack {
	s := p.stack(scope, id, fmt.Sprintf("ecr-autodeploy targets %s: deployed from the central account %s", p.Place, p.Topology.Central))
	central := p.Topology.Central
	here := at(central, p.Place)
	forwarder := p.forwarder(s, forwardsDeployments)
	deployments := &awsevents.EventPattern{
		Source:     jsii.Strings(ecsSource),
		DetailType: jsii.Strings(ecsDeployment),
		Account:    jsii.Strings(p.Place.Account),
	}
	services := deploymentEntries(p.Rules, here, deployments)
	p.forward(s, forwarder, "ForwardEcsDeployments", "ECS deployment state changes of the services of autodeploy.yaml", deployments, &services)
	if len(blueGreenTargets(p.Rules, here)) > 0 {
		pattern, apps := codeDeployPattern(p.Rules, here, []string{p.Place.Account})
		p.forward(s, forwarder, "ForwardCodeDeployDeployments", "CodeDeploy deployments of the blue/green services of autodeploy.yaml", pattern, apps)
	}
	if nativeTargets(p.Rules, here) {
		hooks := hookPattern([]string{p.Place.Account})
		entries := hookEntries(p.Rules, here, hooks)
		p.forward(s, forwarder, "ForwardEcsHooks", "ECS lifecycle hook state changes of the services of autodeploy.yaml", hooks, &entries)
	}
	p.forwardAlarms(s, forwarder)
	if p.Place.Account == central.Account {
		return s // the central functions' own credentials
	}
	watcherRole(s, p, here)
	mine := siteRole(central, p.Place)
	if len(serviceARNs(p.Rules, mine)) == 0 {
		return s // every target here names its own role
	}
	// Two roles, each trusted by the one function that uses it: the
	// worker deploys through the target role; the deployer (the intake)
	// sweeps through the sweep role, which deploys nothing.
	role := awsiam.NewRole(s, jsii.String("TargetRole"), &awsiam.RoleProps{
		RoleName:    jsii.String(rules.TargetRoleName(p.Place.Region)),
		AssumedBy:   p.trustCentral(workerRoleName),
		Description: jsii.String("ecr-autodeploy: the central worker deploys the listed services here"),
	})
	// Operators assume the deploy role here (the CLI): status and plan read
	// an ECS-native deployment's stage, continue and rollback act on it.
	grantTargetsWith(role, p.Rules, mine, func(grants *roleGrants, cfg *rules.Config, keep reach, g grain) {
		targetStatements(grants, cfg, keep, g)
		operateServiceDeployments(grants, cfg, keep, g)
	}, nil)
	sweep := awsiam.NewRole(s, jsii.String("SweepRole"), &awsiam.RoleProps{
		RoleName:    jsii.String(rules.SweepRoleName(p.Place.Region)),
		AssumedBy:   p.trustCentral(deployerRoleName),
		Description: jsii.String("ecr-autodeploy: the central deployer's sweeps describe the listed services here and repair their published images"),
	})
	grantSweeps(sweep, p.Rules, mine)
	return s
}

// watcherRole makes the role the central watcher reads how the rollouts of
// the targets here ended with: GetDeployment on the groups of the
// CodeDeploy-controlled ones, the service deployments of the others (which
// may be ECS-native), for every target here whether or not it names a role
// (that one is the deployer's), and the state of the alarms here that the
// rules' bakes watch. Nothing when no target is here.
func watcherRole(s awscdk.Stack, p SiteProps, here reach) {
	central := p.Topology.Central
	if len(blueGreenTargets(p.Rules, here)) == 0 && !nativeTargets(p.Rules, here) {
		return
	}
	role := awsiam.NewRole(s, jsii.String("WatcherRole"), &awsiam.RoleProps{
		RoleName:    jsii.String(rules.WatcherRoleName(p.Place.Region)),
		AssumedBy:   p.trustCentral(watcherRoleName),
		Description: jsii.String("ecr-autodeploy: the central watcher reads how the rollouts of the listed services ended"),
	})
	// The alarms here that the rules' bakes watch: their state at a bake's
	// end.
	grantAt(role, p.Rules, here, watchStatements, []policyStatement{
		readAlarms(p.Rules, central, p.Place, func(at rules.Place) bool { return at == p.Place })})
}
