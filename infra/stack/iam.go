package stack

import (
	"fmt"
	"slices"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecsarn"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// grantPublish lets a role publish to an encrypted topic.
func grantPublish(role awsiam.Role, topic awssns.Topic, key awskms.Key) {
	topic.GrantPublish(role)
	key.Grant(role, jsii.String("kms:GenerateDataKey*"), jsii.String("kms:Decrypt"))
	cdknag.NagSuppressions_AddResourceSuppressions(role, &[]*cdknag.NagPackSuppression{{
		Id:        jsii.String("AwsSolutions-IAM5"),
		Reason:    jsii.String("kms:GenerateDataKey* names the two GenerateDataKey actions, on the topic key only."),
		AppliesTo: &[]any{"Action::kms:GenerateDataKey*"},
	}}, jsii.Bool(true))
}

// grantWatch gives the watcher its table, ECR tagging on the repositories
// of rules that promote, publishing notices, and invoking the deployer.
func grantWatch(s awscdk.Stack, role awsiam.Role, cfg *rules.Config, deployer awslambda.Function, notices awssns.Topic, key awskms.Key) {
	repos := RepositoryARNs(cfg, func(r *rules.Rule) bool { return r.Promote != nil })
	if len(repos) > 0 {
		role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String("PromoteDigests"),
			Actions:   jsii.Strings("ecr:BatchGetImage", "ecr:PutImage"),
			Resources: subs(repos),
		}))
	}
	grantPublish(role, notices, key)
	deployer.GrantInvoke(role)
	cdknag.NagSuppressions_AddResourceSuppressions(role, &[]*cdknag.NagPackSuppression{{
		Id:        jsii.String("AwsSolutions-IAM5"),
		Reason:    jsii.String("Invoking the deployer is granted on its ARN and its versions (ARN:*), as CDK's grantInvoke does."),
		AppliesTo: &[]any{map[string]string{"regex": `/^Resource::<\w+\.Arn>:\*$/`}},
	}}, jsii.Bool(true))
}

// grantDeploy gives the deployer exactly what a deploy needs: the services
// of the rules and nothing else; roles to assume for targets elsewhere.
func grantDeploy(s awscdk.Stack, role awsiam.Role, cfg *rules.Config) {
	services, roles := ServiceARNs(cfg), AssumedRoles(cfg)
	// CodeDeploy moves a blue/green service; the deployer only reads it.
	rolling := serviceARNs(cfg, func(t rules.Target) bool { return t.CodeDeploy == nil })
	if blueGreen := serviceARNs(cfg, func(t rules.Target) bool { return t.CodeDeploy != nil }); len(blueGreen) > 0 {
		role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String("DescribeBlueGreenServices"),
			Actions:   jsii.Strings("ecs:DescribeServices"),
			Resources: subs(blueGreen),
		}))
	}
	if len(rolling) > 0 {
		role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String("RollConfiguredServices"),
			Actions:   jsii.Strings("ecs:DescribeServices", "ecs:UpdateService"),
			Resources: subs(rolling),
		}))
	}
	if len(services) > 0 {
		role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String("RegisterRevisions"),
			Actions:   jsii.Strings("ecs:DescribeTaskDefinition", "ecs:RegisterTaskDefinition"),
			Resources: jsii.Strings("*"),
		}))
		role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:        jsii.String("TagNewRevisions"),
			Actions:    jsii.Strings("ecs:TagResource"),
			Resources:  jsii.Strings("*"),
			Conditions: &map[string]any{"StringEquals": map[string]any{"ecs:CreateAction": "RegisterTaskDefinition"}},
		}))
		role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:        jsii.String("PassTaskRolesToEcsOnly"),
			Actions:    jsii.Strings("iam:PassRole"),
			Resources:  subs(PassRoles(cfg)),
			Conditions: &map[string]any{"StringEquals": map[string]any{"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
		}))
	}
	if params := PublishedParameters(cfg); len(params) > 0 {
		role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String("PublishRunningImages"),
			Actions:   jsii.Strings("ssm:PutParameter", "ssm:GetParameter"),
			Resources: subs(params),
		}))
	}
	if cfg.Reconcile.Every > 0 {
		role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String("ListImagesForSweeps"),
			Actions:   jsii.Strings("ecr:DescribeImages"),
			Resources: subs(RepositoryARNs(cfg, nil)),
		}))
	}
	if len(roles) > 0 {
		role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String("AssumeTargetRoles"),
			Actions:   jsii.Strings("sts:AssumeRole"),
			Resources: jsii.Strings(roles...),
		}))
	}
	cdknag.NagSuppressions_AddResourceSuppressions(role, &[]*cdknag.NagPackSuppression{{
		Id: jsii.String("AwsSolutions-IAM5"),
		Reason: jsii.String("ecs:DescribeTaskDefinition and ecs:RegisterTaskDefinition take no resource-level permissions; " +
			"ecs:TagResource is limited by ecs:CreateAction=RegisterTaskDefinition; iam:PassRole by iam:PassedToService=ecs-tasks.amazonaws.com " +
			"and to the rules' pass-roles (default: the account's own roles; the running revision's roles are unknown at synth); " +
			"published parameters are <prefix>/<cluster>/<service>/* of the publishing targets (the containers are chosen at deploy time); " +
			"log stream names are chosen by Lambda."),
		AppliesTo: &[]any{"Resource::*", map[string]string{"regex": `/^Resource::<\w+Logs\w+\.Arn>:\*$/`},
			map[string]string{"regex": `/^Resource::arn:<AWS::Partition>:ssm:.+:<AWS::AccountId>:parameter\/.*\/\*$/`},
			map[string]string{"regex": `/^Resource::arn:.*:iam::.*:role\/.*\*.*$/`}},
	}}, jsii.Bool(true))
}

// ServiceARNs are the services the deployer reaches with its own
// credentials, as CloudFormation Fn::Sub strings, sorted.
func ServiceARNs(cfg *rules.Config) []string { return serviceARNs(cfg, nil) }

// serviceARNs are ServiceARNs of the targets keep accepts (nil: all).
func serviceARNs(cfg *rules.Config, keep func(rules.Target) bool) []string {
	seen := map[string]bool{}
	for _, r := range cfg.Rules {
		for _, t := range r.Targets {
			if t.Role != "" || (keep != nil && !keep(t)) {
				continue
			}
			region := "${AWS::Region}"
			if t.Region != "" {
				region = t.Region
			}
			seen[fmt.Sprintf("arn:${AWS::Partition}:ecs:%s:${AWS::AccountId}:service/%s/%s", region, t.Cluster, t.Service)] = true
		}
	}
	return sortedKeys(seen)
}

// PassRoles are the roles the deployer may pass to ECS with its own
// credentials: the pass-roles of the rules with own-account targets, and any
// role of the account for such a rule that names none. ECS documents no
// iam:AssociatedResourceArn for task definitions, so the role list is the
// narrowing that IAM can enforce.
func PassRoles(cfg *rules.Config) []string {
	seen := map[string]bool{}
	for _, r := range cfg.Rules {
		if !slices.ContainsFunc(r.Targets, func(t rules.Target) bool { return t.Role == "" }) {
			continue
		}
		if len(r.PassRoles) == 0 {
			seen["arn:${AWS::Partition}:iam::${AWS::AccountId}:role/*"] = true
		}
		for _, role := range r.PassRoles {
			seen[role] = true
		}
	}
	return sortedKeys(seen)
}

// PublishedParameters are the parameters the deployer writes with its own
// credentials: <prefix>/<cluster>/<service>/* of each own-account target of
// a publishing rule, in its region (containers are known only at deploy
// time), as Fn::Sub strings, sorted. Targets behind a role publish with it.
func PublishedParameters(cfg *rules.Config) []string {
	seen := map[string]bool{}
	for _, r := range cfg.Rules {
		if r.Publish == nil {
			continue
		}
		for _, t := range r.Targets {
			if t.Role != "" {
				continue
			}
			region := "${AWS::Region}"
			if t.Region != "" {
				region = t.Region
			}
			// The ARN of "/a/b" is ...:parameter/a/b: the name's leading / is the ARN's.
			name := r.Publish.Parameter(ecsarn.Name(t.Cluster), ecsarn.Name(t.Service), "*")
			seen[fmt.Sprintf("arn:${AWS::Partition}:ssm:%s:${AWS::AccountId}:parameter%s", region, name)] = true
		}
	}
	return sortedKeys(seen)
}

// RepositoryARNs are the repositories of the rules keep selects (all, when
// nil), as Fn::Sub strings in the stack's account and region, sorted.
func RepositoryARNs(cfg *rules.Config, keep func(*rules.Rule) bool) []string {
	seen := map[string]bool{}
	for _, r := range cfg.Rules {
		if keep == nil || keep(r) {
			seen["arn:${AWS::Partition}:ecr:${AWS::Region}:${AWS::AccountId}:repository/"+r.Repository] = true
		}
	}
	return sortedKeys(seen)
}

// AssumedRoles are the roles the rules name, sorted.
func AssumedRoles(cfg *rules.Config) []string {
	seen := map[string]bool{}
	for _, r := range cfg.Rules {
		for _, t := range r.Targets {
			if t.Role != "" {
				seen[t.Role] = true
			}
		}
	}
	return sortedKeys(seen)
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
