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

// NewTargetStack forwards the deployment events (ECS and CodeDeploy) of the
// targets at its place to the central bus and, in another account, makes
// the role the central worker deploys through there (the worker's least
// privilege at home), the role the central deployer's sweeps read through
// (the intake's at home: nothing that deploys), and the role the central
// watcher reads how CodeDeploy deployments ended with (nothing that
// deploys).
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
	grantTargets(role, p.Rules, mine)
	sweep := awsiam.NewRole(s, jsii.String("SweepRole"), &awsiam.RoleProps{
		RoleName:    jsii.String(rules.SweepRoleName(p.Place.Region)),
		AssumedBy:   p.trustCentral(deployerRoleName),
		Description: jsii.String("ecr-autodeploy: the central deployer's sweeps describe the listed services here and repair their published images"),
	})
	grantSweeps(sweep, p.Rules, mine)
	return s
}

// watcherRole makes the role the central watcher reads the CodeDeploy
// deployments of the blue/green targets here with: GetDeployment on their
// groups, for every such target, whether or not it names a role (that one
// is the deployer's). Nothing when no target here is blue/green.
func watcherRole(s awscdk.Stack, p SiteProps, here reach) {
	if len(blueGreenTargets(p.Rules, here)) == 0 {
		return
	}
	role := awsiam.NewRole(s, jsii.String("WatcherRole"), &awsiam.RoleProps{
		RoleName:    jsii.String(rules.WatcherRoleName(p.Place.Region)),
		AssumedBy:   p.trustCentral(watcherRoleName),
		Description: jsii.String("ecr-autodeploy: the central watcher reads how CodeDeploy deployments of the listed services ended"),
	})
	grants := &roleGrants{role: role}
	readBlueGreenEndings(grants, p.Rules, here)
	grants.place()
}
