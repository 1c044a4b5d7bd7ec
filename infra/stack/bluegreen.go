package stack

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// blueGreenTargets are the targets deployed through CodeDeploy with the
// functions' own credentials (a target with a role is granted in its own
// account).
func blueGreenTargets(cfg *rules.Config) []rules.Target {
	var out []rules.Target
	for _, r := range cfg.Rules {
		for _, t := range r.Targets {
			if t.CodeDeploy != nil && t.Role == "" {
				out = append(out, t)
			}
		}
	}
	return out
}

// codeDeployARNs are, as Fn::Sub strings, the deployment groups and
// applications of the blue/green targets — every one of the region for a
// target that finds its group by listing — and whether any target does.
func codeDeployARNs(cfg *rules.Config) (groups, apps []string, discovers bool) {
	g, a := map[string]bool{}, map[string]bool{}
	for _, t := range blueGreenTargets(cfg) {
		region := "${AWS::Region}"
		if t.Region != "" {
			region = t.Region
		}
		base := fmt.Sprintf("arn:${AWS::Partition}:codedeploy:%s:${AWS::AccountId}:", region)
		if t.CodeDeploy.Discovers() {
			discovers = true
			g[base+"deploymentgroup:*"], a[base+"application:*"] = true, true
			continue
		}
		g[base+"deploymentgroup:"+t.CodeDeploy.Application+"/"+t.CodeDeploy.DeploymentGroup] = true
		a[base+"application:"+t.CodeDeploy.Application] = true
	}
	return sortedKeys(g), sortedKeys(a), discovers
}

// blueGreen lets the deployer start CodeDeploy deployments of the blue/green
// targets and the watcher read how they ended, and sends the watcher those
// deployments' endings. Nothing when no target is blue/green.
func blueGreen(s awscdk.Stack, cfg *rules.Config, deployer, watcher function, alarms awssns.ITopic) awssqs.Queue {
	groups, apps, discovers := codeDeployARNs(cfg)
	if len(groups) == 0 {
		return nil
	}
	deployer.role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid: jsii.String("DeployBlueGreenGroups"),
		// ListDeployments and GetDeployment find a deployment whose answer
		// was lost.
		Actions: jsii.Strings("codedeploy:CreateDeployment", "codedeploy:GetDeployment", "codedeploy:GetDeploymentGroup",
			"codedeploy:ListDeployments"),
		Resources: subs(groups),
	}))
	deployer.role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("RegisterBlueGreenRevisions"),
		Actions:   jsii.Strings("codedeploy:RegisterApplicationRevision", "codedeploy:GetApplicationRevision"),
		Resources: subs(apps),
	}))
	deployer.role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:     jsii.String("ReadDeploymentConfigs"),
		Actions: jsii.Strings("codedeploy:GetDeploymentConfig"),
		// The group's configuration is chosen in CodeDeploy, not here.
		Resources: jsii.Strings("arn:" + *awscdk.Aws_PARTITION() + ":codedeploy:*:" + *awscdk.Aws_ACCOUNT_ID() + ":deploymentconfig:*"),
	}))
	if discovers {
		deployer.role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid: jsii.String("FindBlueGreenGroups"),
			Actions: jsii.Strings("codedeploy:ListApplications", "codedeploy:BatchGetApplications",
				"codedeploy:ListDeploymentGroups", "codedeploy:BatchGetDeploymentGroups"),
			Resources: subs(apps),
		}))
	}
	watcher.role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("ReadBlueGreenEndings"),
		Actions:   jsii.Strings("codedeploy:GetDeployment"),
		Resources: subs(groups),
	}))
	for _, fn := range []function{deployer, watcher} {
		cdknag.NagSuppressions_AddResourceSuppressions(fn.role, &[]*cdknag.NagPackSuppression{{
			Id: jsii.String("AwsSolutions-IAM5"),
			Reason: jsii.String("CodeDeploy: a target that finds its deployment group by listing needs the region's applications and groups " +
				"(application:*, deploymentgroup:*); the deployment configuration is the group's, chosen in CodeDeploy (deploymentconfig:*)."),
			AppliesTo: &[]any{map[string]string{"regex": `/^Resource::arn:.*:codedeploy:.*:(application|deploymentgroup|deploymentconfig):\*$/`}},
		}}, jsii.Bool(true))
	}

	detail := map[string]any{"state": []string{"SUCCESS", "FAILURE", "STOP"}}
	if !discovers {
		var names []string
		seen := map[string]bool{}
		for _, t := range blueGreenTargets(cfg) {
			if !seen[t.CodeDeploy.Application] {
				seen[t.CodeDeploy.Application] = true
				names = append(names, t.CodeDeploy.Application)
			}
		}
		detail["application"] = names
	}
	return ruleTo(s, "CodeDeployDeploymentRule", "CodeDeploy deployments of the blue/green services of autodeploy.yaml, once ended", &awsevents.EventPattern{
		Source:     jsii.Strings("aws.codedeploy"),
		DetailType: jsii.Strings("CodeDeploy Deployment State-change Notification"),
		Account:    &[]*string{s.Account()},
		Detail:     &detail,
	}, watcher.fn, "CodeDeployEventsDLQ", "CodeDeploy deployment events EventBridge could not deliver to the watcher", alarms)
}
