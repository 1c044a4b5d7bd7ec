package stack

import (
	"fmt"
	"slices"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// blueGreenTargets are the blue/green targets keep selects.
func blueGreenTargets(cfg *rules.Config, keep reach) []rules.Target {
	var out []rules.Target
	for _, r := range cfg.Rules {
		for _, t := range r.Targets {
			if t.CodeDeploy != nil && keep(r, t) {
				out = append(out, t)
			}
		}
	}
	return out
}

// codeDeployARNs are, as Fn::Sub strings, the deployment groups and
// applications of the blue/green targets keep selects — every one of the
// region for a target that finds its group by listing — and whether any
// target discovers. Each named group is listed at any size: CodeDeploy has
// no condition key for a group's cluster, so application/* would reach
// groups of services the rules do not name.
func codeDeployARNs(cfg *rules.Config, keep reach) (groups, apps []string, discovers bool) {
	gs, a := map[string]bool{}, map[string]bool{}
	for _, t := range blueGreenTargets(cfg, keep) {
		base := fmt.Sprintf("arn:${AWS::Partition}:codedeploy:%s:${AWS::AccountId}:", regionOf(t))
		if t.CodeDeploy.Discovers() {
			discovers = true
			gs[base+"deploymentgroup:*"], a[base+"application:*"] = true, true
			continue
		}
		gs[base+"deploymentgroup:"+t.CodeDeploy.Application+"/"+t.CodeDeploy.DeploymentGroup] = true
		a[base+"application:"+t.CodeDeploy.Application] = true
	}
	return sortedKeys(gs), sortedKeys(a), discovers
}

// grantCodeDeploy lets role (the deployer's) read the deployment
// configurations of the blue/green targets keep selects (their groups and
// applications are targetStatements').
func grantCodeDeploy(role awsiam.Role, cfg *rules.Config, keep reach) {
	if groups, _, _ := codeDeployARNs(cfg, keep); len(groups) == 0 {
		return
	}
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:     jsii.String("ReadDeploymentConfigs"),
		Actions: jsii.Strings("codedeploy:GetDeploymentConfig"),
		// The group's configuration is chosen in CodeDeploy, not here.
		Resources: subs([]string{"arn:${AWS::Partition}:codedeploy:*:${AWS::AccountId}:deploymentconfig:*"}),
	}))
	cdknag.NagSuppressions_AddResourceSuppressions(role, &[]*cdknag.NagPackSuppression{{
		Id:        jsii.String("AwsSolutions-IAM5"),
		Reason:    jsii.String("CodeDeploy: the deployment configuration is the group's, chosen in CodeDeploy (deploymentconfig:*, any region of the account)."),
		AppliesTo: &[]any{"Resource::arn:<AWS::Partition>:codedeploy:*:<AWS::AccountId>:deploymentconfig:*"},
	}}, jsii.Bool(true))
}

// readBlueGreenEndings adds to grants (the watcher's) reading how
// deployments of the blue/green targets keep selects ended: GetDeployment
// on their groups, nothing else.
func readBlueGreenEndings(grants *roleGrants, cfg *rules.Config, keep reach) {
	groups, _, discovers := codeDeployARNs(cfg, keep)
	grants.add(policyStatement{sid: "ReadBlueGreenEndings", actions: []string{"codedeploy:GetDeployment"}, resources: groups})
	if discovers {
		grants.suppress(codeDeployDiscovery())
	}
}

// codeDeployDiscovery is the finding of a target that finds its deployment
// group by listing.
func codeDeployDiscovery() *[]*cdknag.NagPackSuppression {
	return &[]*cdknag.NagPackSuppression{{
		Id: jsii.String("AwsSolutions-IAM5"),
		Reason: jsii.String("CodeDeploy: a target that finds its deployment group by listing needs the region's applications and groups " +
			"(application:*, deploymentgroup:*)."),
		AppliesTo: &[]any{map[string]string{"regex": `/^Resource::arn:<AWS::Partition>:codedeploy:` + nagRegion + `:` + nagAccount +
			`:(application|deploymentgroup):\*$/`}},
	}}
}

// codeDeployPattern matches the ended deployments of the blue/green targets
// keep selects: only their applications (split across rules on
// detail.application as EventBridge's pattern limit needs; one
// application per service, the console's AppECS-<cluster>-<service>,
// passed it at ~100), unless one finds its group (then no split).
func codeDeployPattern(cfg *rules.Config, keep reach, accounts []string) (*awsevents.EventPattern, *split) {
	detail := map[string]any{"state": []string{"SUCCESS", "FAILURE", "STOP"}}
	var names []any
	discovers := false
	for _, t := range blueGreenTargets(cfg, keep) {
		discovers = discovers || t.CodeDeploy.Discovers()
		if !t.CodeDeploy.Discovers() && !slices.Contains(names, any(t.CodeDeploy.Application)) {
			names = append(names, t.CodeDeploy.Application)
		}
	}
	pattern := &awsevents.EventPattern{
		Source:     jsii.Strings(codeDeploySource),
		DetailType: jsii.Strings(codeDeployEnding),
		Account:    jsii.Strings(accounts...),
		Detail:     &detail,
	}
	if discovers {
		return pattern, nil
	}
	return pattern, &split{path: "detail.application", values: names}
}

// blueGreen sends the watcher every blue/green target's endings (grantWatch
// lets it read them) (those of other
// accounts and regions forwarded by their target stacks). Nothing when no
// target is blue/green.
func blueGreen(s awscdk.Stack, cfg *rules.Config, central rules.Place, watcher function, alarms awssns.ITopic) awssqs.Queue {
	all := blueGreenTargets(cfg, everyTarget)
	if len(all) == 0 {
		return nil
	}
	accounts := []string{*s.Account()}
	for _, t := range all {
		if a := t.Where(central).Account; a != "" && a != central.Account && !slices.Contains(accounts, a) {
			accounts = append(accounts, a)
		}
	}
	pattern, apps := codeDeployPattern(cfg, everyTarget, accounts)
	return ruleTo(s, "CodeDeployDeploymentRule", "CodeDeploy deployments of the blue/green services of autodeploy.yaml, once ended",
		pattern, apps, watcher.fn, "CodeDeployEventsDLQ", "CodeDeploy deployment events EventBridge could not deliver to the watcher", alarms)
}
