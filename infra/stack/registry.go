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
// images for sweeps and reads the scan findings of rules with scan:, the
// watcher's tags promoted digests. Neither has the other's permissions.
// With scan:, it forwards those repositories' scan results too.
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
	forwarder := p.forwarder(s, forwardsPushes)
	p.forward(s, forwarder, "ForwardPushes", "ECR pushes to the repositories of autodeploy.yaml", &awsevents.EventPattern{
		Source:     jsii.Strings(ecrSource),
		DetailType: jsii.Strings(ecrPush),
		Account:    jsii.Strings(p.Place.Account),
		Region:     jsii.Strings(p.Place.Region),
		Detail:     &map[string]any{"action-type": []string{"PUSH"}, "result": []string{"SUCCESS"}},
	}, &split{path: "detail.repository-name", values: anyStrings(repos)})
	p.forwardScans(s, forwarder)
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
	// The deployer reads a registry to sweep, and for the scan gate.
	scanned := scannedAt(p.Rules, central, p.Place)
	if sweeping := sweeps(p.Rules); sweeping || len(scanned) > 0 {
		description := "ecr-autodeploy: the central deployer lists images here for sweeps"
		switch {
		case !sweeping:
			description = "ecr-autodeploy: the central deployer reads the scan findings of the listed repositories here"
		case len(scanned) > 0:
			description += " and reads the scan findings of the scanned ones"
		}
		read := awsiam.NewRole(s, jsii.String("RegistryRole"), &awsiam.RoleProps{
			RoleName:    jsii.String(rules.RegistryRoleName(p.Place.Region)),
			AssumedBy:   p.trustCentral(deployerRoleName),
			Description: jsii.String(description),
		})
		grants := &roleGrants{role: read}
		for _, st := range repositoryReads(arns(repos), arns(scanned), sweeping) {
			grants.add(st)
		}
		grants.place()
		if len(scanned) > 0 {
			grantEnhancedFindings(read)
		}
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
