package stack

import (
	"fmt"
	"slices"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// NewRegistryStack forwards pushes to the configured repositories of a
// registry elsewhere to the central bus and, in another account, makes a
// role for each central function that reaches it: the deployer's lists
// images for sweeps, the watcher's tags promoted digests. Neither has the
// other's permissions.
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
	p.forward(s, p.forwarder(s, forwardsPushes), "ForwardPushes", "ECR pushes to the repositories of autodeploy.yaml", &awsevents.EventPattern{
		Source:     jsii.Strings(ecrSource),
		DetailType: jsii.Strings(ecrPush),
		Account:    jsii.Strings(p.Place.Account),
		Region:     jsii.Strings(p.Place.Region),
		Detail:     &map[string]any{"action-type": []string{"PUSH"}, "result": []string{"SUCCESS"}},
	}, &split{path: "detail.repository-name", values: anyStrings(repos)})
	if p.Place.Account == central.Account {
		return s // the central functions reach it with their own credentials
	}
	arns := func(names []string) []string {
		var out []string
		for _, n := range names {
			out = append(out, "arn:${AWS::Partition}:ecr:${AWS::Region}:${AWS::AccountId}:repository/"+n)
		}
		return out
	}
	if sweeps(p.Rules) { // the deployer reads a registry only to sweep
		read := awsiam.NewRole(s, jsii.String("RegistryRole"), &awsiam.RoleProps{
			RoleName:    jsii.String(rules.RegistryRoleName(p.Place.Region)),
			AssumedBy:   p.trustCentral(deployerRoleName),
			Description: jsii.String("ecr-autodeploy: the central deployer lists images here for sweeps"),
		})
		grants := &roleGrants{role: read}
		grants.add(policyStatement{sid: "ListImagesForSweeps", actions: []string{"ecr:DescribeImages"}, resources: arns(repos)})
		grants.place()
	}
	if len(promoted) > 0 {
		promote := awsiam.NewRole(s, jsii.String("PromoteRole"), &awsiam.RoleProps{
			RoleName:    jsii.String(rules.PromoteRoleName(p.Place.Region)),
			AssumedBy:   p.trustCentral(watcherRoleName),
			Description: jsii.String("ecr-autodeploy: the central watcher tags promoted digests here"),
		})
		grants := &roleGrants{role: promote}
		grants.add(policyStatement{sid: "PromoteDigests", actions: []string{"ecr:BatchGetImage", "ecr:PutImage"}, resources: arns(promoted)})
		grants.place()
	}
	return s
}

func appendNew(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}
