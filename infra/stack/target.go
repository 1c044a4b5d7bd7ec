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
