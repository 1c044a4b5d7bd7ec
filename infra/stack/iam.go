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
// of rules that promote, publishing notices, invoking the deployer, reading
// how the rollouts of the central account's targets ended (CodeDeploy's
// deployments of CodeDeploy-controlled ones, the service deployments of
// the others, which may be ECS-native: watchStatements, per service while
// that fits, per cluster beyond), and its own roles in other accounts: the
// promote roles of registries and the watcher roles of the target places
// (never the deployer's).
func grantWatch(s awscdk.Stack, role awsiam.Role, cfg *rules.Config, central rules.Place, deployer awslambda.Function, notices awssns.Topic, key awskms.Key) {
	promotes := func(r *rules.Rule) bool { return r.Promote != nil }
	extra := []policyStatement{{sid: "PromoteDigests", actions: []string{"ecr:BatchGetImage", "ecr:PutImage"},
		resources: RepositoryARNs(cfg, central, promotes)}}
	var roles []string
	for _, r := range cfg.Rules {
		if role := rules.PromoteRole(r.RegistryOf(central), central); role != "" && promotes(r) {
			roles = append(roles, role)
		}
		// Every target elsewhere: a CodeDeploy-controlled one's endings,
		// any other's service deployments (target stacks make the role
		// for either).
		for _, t := range r.Targets {
			if role := t.WatcherRoleFor(central); role != "" {
				roles = append(roles, role)
			}
		}
	}
	extra = append(extra, policyStatement{sid: "AssumeRegistryAndTargetRoles", actions: []string{"sts:AssumeRole"}, resources: sortedKeys(setOf(roles))})
	// The alarms of the bakes it reads with its own credentials (those of
	// the central account); the others through the target stacks' watcher
	// roles, which it assumes already (every place with a target).
	extra = append(extra, readAlarms(cfg, central, central, func(at rules.Place) bool { return rules.WatcherRole(at, central) == "" }))
	// The watcher reads the central account's rollouts with its own
	// credentials, whatever role the deployer uses (rules.WatcherRole).
	inCentral := func(_ *rules.Rule, t rules.Target) bool { return t.WatcherRoleFor(central) == "" }
	grantAt(role, cfg, inCentral, watchStatements, extra)
	grantPublish(role, notices, key)
	deployer.GrantInvoke(role)
	cdknag.NagSuppressions_AddResourceSuppressions(role, &[]*cdknag.NagPackSuppression{{
		Id:        jsii.String("AwsSolutions-IAM5"),
		Reason:    jsii.String("Invoking the deployer is granted on its ARN and its versions (ARN:*), as CDK's grantInvoke does."),
		AppliesTo: &[]any{map[string]string{"regex": `/^Resource::<\w+\.Arn>:\*$/`}},
	}}, jsii.Bool(true))
}

// grantDeploy gives the worker exactly what a deploy needs with its own
// credentials, and the deploy roles of targets elsewhere (never the sweep
// roles: those are the intake's). The worker deploys work items only: it
// lists no images (sweeps are the intake's).
func grantDeploy(role awsiam.Role, cfg *rules.Config, central rules.Place) {
	grantTargets(role, cfg, own(central), policyStatement{sid: "AssumeTargetRoles", actions: []string{"sts:AssumeRole"},
		resources: sortedKeys(setOf(targetRoles(cfg, central)))})
}

// grantIntake gives the deployer, the intake of pushes and sweeps with the
// work queue the stack always configures, what its paths call with its own
// credentials: matching a push calls nothing (Deployer.Deploy → Match →
// Dispatch to the queue, grantSend); a sweep lists the central registry's
// images and reads the targets (grantSweeps); the scan gate (a push's, a
// sweep's re-read of a pending scan) reads the scan findings of the
// repositories of rules with scan:. Elsewhere it assumes the targets' sweep
// roles (rules.Target.SweepRoleFor: read-only, made by the
// target stacks) and the registries' read roles to do the same there (with
// scan: but no sweeps, only the read roles of the scanned registries) —
// never a deploy role, unless the rules file names one for a target (that
// role is both functions'). Nothing that deploys: no UpdateService,
// RegisterTaskDefinition, PassRole or CodeDeploy.
func grantIntake(role awsiam.Role, cfg *rules.Config, central rules.Place) {
	var extra []policyStatement
	roles := sweepRoles(cfg, central)
	if sweeping := sweeps(cfg); sweeping || slices.ContainsFunc(cfg.Rules, scans) {
		// Sweeps list every rule's images; the scan gate reads the findings
		// of its rules' digests (a sweep re-reads a pending scan).
		scanned := RepositoryARNs(cfg, central, scans)
		extra = append(extra, repositoryReads(RepositoryARNs(cfg, central, nil), scanned, sweeping)...)
		if len(scanned) > 0 {
			grantEnhancedFindings(role)
		}
		reads := scans
		if sweeping {
			reads = nil
		}
		roles = append(roles, registryRoles(cfg, central, reads)...)
	}
	extra = append(extra, policyStatement{sid: "AssumeSweepRoles", actions: []string{"sts:AssumeRole"}, resources: sortedKeys(setOf(roles))})
	grantSweeps(role, cfg, own(central), extra...)
}

// grantSweeps gives role what the intake's sweep calls on the targets keep
// selects, through deploy.Deployer.ReadRole: describing every service
// (blue/green ones too: the running revision is read from the service, not
// from CodeDeploy) and its running revision, reading each published
// parameter and, when one is missing or stale, writing it
// (deploy.RepairPublished, under the service's lock). The central
// deployer gets it for its own targets, a target stack's sweep role for
// that place's. Extra statements are placed with them.
func grantSweeps(role awsiam.Role, cfg *rules.Config, keep reach, extra ...policyStatement) {
	grantAt(role, cfg, keep, sweepStatements, extra)
	if len(serviceARNs(cfg, keep)) > 0 {
		role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String("DescribeRevisions"),
			Actions:   jsii.Strings("ecs:DescribeTaskDefinition"),
			Resources: jsii.Strings("*"),
		}))
	}
	cdknag.NagSuppressions_AddResourceSuppressions(role, &[]*cdknag.NagPackSuppression{{
		Id:        jsii.String("AwsSolutions-IAM5"),
		Reason:    jsii.String("ecs:DescribeTaskDefinition takes no resource-level permissions; log stream names are chosen by Lambda."),
		AppliesTo: &[]any{"Resource::*", map[string]string{"regex": `/^Resource::<\w+Logs\w+\.Arn>:\*$/`}},
	}}, jsii.Bool(true))
}

// statements add to grants a role's statements on the targets keep
// selects, at grain g (sweepStatements, targetStatements).
type statements func(grants *roleGrants, cfg *rules.Config, keep reach, g grain)

// grantAt places on role what add makes for the targets keep selects, and
// extra (lists of the role's own), with the findings of their grain: per
// service while every list of the role fits inline beside the function's
// own grants, else services and parameters per cluster (the other lists
// stay exact), packed into managed policies of the role's own when they
// still do not fit.
func grantAt(role awsiam.Role, cfg *rules.Config, keep reach, add statements, extra []policyStatement) {
	at := func(g grain) *roleGrants {
		grants := &roleGrants{role: role}
		if g == perCluster {
			grants.suppress(clusterWildcards(cfg))
		} else if prefixes := nagPrefixes(cfg); prefixes != "" {
			grants.suppress(publishedPerService(prefixes))
		}
		add(grants, cfg, keep, g)
		for _, p := range extra {
			grants.add(p)
		}
		return grants
	}
	grants := at(perService)
	if !grants.fits() {
		grants = at(perCluster)
	}
	grants.place()
}

// sweepStatements are the intake's grants on the targets keep selects:
// describing their services and reading and repairing their published
// parameters.
func sweepStatements(grants *roleGrants, cfg *rules.Config, keep reach, g grain) {
	grants.add(policyStatement{sid: "DescribeConfiguredServices", actions: []string{"ecs:DescribeServices"}, resources: serviceScope(cfg, keep, g)})
	grants.add(policyStatement{sid: "PublishRunningImages", actions: []string{"ssm:PutParameter", "ssm:GetParameter"},
		resources: publishedParameters(cfg, keep, g)})
}

// publishedPerService is the finding of the per-service parameter grants.
func publishedPerService(prefixes string) *[]*cdknag.NagPackSuppression {
	return &[]*cdknag.NagPackSuppression{{
		Id:     jsii.String("AwsSolutions-IAM5"),
		Reason: jsii.String("Published parameters are <prefix>/<cluster>/<service>/* of the publishing targets (the containers are chosen at deploy time)."),
		AppliesTo: &[]any{map[string]string{"regex": `/^Resource::arn:<AWS::Partition>:ssm:` + nagRegion + `:<AWS::AccountId>:parameter` +
			prefixes + `\/[^\/*]+\/[^\/*]+\/\*$/`}},
	}}
}

// grantTargets gives role what deploying the targets keep selects needs:
// describing and rolling exactly their services, registering (and tagging)
// revisions, passing only task roles to ECS, writing only their published
// parameters, and their CodeDeploy groups. The central worker gets it for
// its own targets; a target stack's role for that account and region's.
// Extra statements (lists of the role's own) are placed with them.
// ListTaskDefinitions is clean-up's listing of a family, and rollback's of
// the ACTIVE revisions it may go back to (operators assume a target
// stack's deploy role).
func grantTargets(role awsiam.Role, cfg *rules.Config, keep reach, extra ...policyStatement) {
	grantTargetsWith(role, cfg, keep, targetStatements, extra)
}

// grantTargetsWith is grantTargets with the per-grain statements add (a
// target stack's deploy role adds the operator's service-deployment calls).
func grantTargetsWith(role awsiam.Role, cfg *rules.Config, keep reach, add statements, extra []policyStatement) {
	grantAt(role, cfg, keep, add, extra)
	if len(serviceARNs(cfg, keep)) > 0 {
		role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String("RegisterRevisions"),
			Actions:   jsii.Strings("ecs:DescribeTaskDefinition", "ecs:RegisterTaskDefinition", "ecs:ListTaskDefinitions"),
			Resources: jsii.Strings("*"),
		}))
		role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:        jsii.String("TagNewRevisions"),
			Actions:    jsii.Strings("ecs:TagResource"),
			Resources:  jsii.Strings("*"),
			Conditions: &map[string]any{"StringEquals": map[string]any{"ecs:CreateAction": "RegisterTaskDefinition"}},
		}))
	}
	warnAnyPassRole(role, cfg, keep)
	grantCodeDeploy(role, cfg, keep)
	grantCleanup(role, cfg, keep)
	cdknag.NagSuppressions_AddResourceSuppressions(role, &[]*cdknag.NagPackSuppression{{
		Id: jsii.String("AwsSolutions-IAM5"),
		Reason: jsii.String("ecs:DescribeTaskDefinition, ecs:RegisterTaskDefinition and ecs:ListTaskDefinitions take no resource-level permissions; " +
			"ecs:TagResource is limited by ecs:CreateAction=RegisterTaskDefinition; log stream names are chosen by Lambda."),
		AppliesTo: &[]any{"Resource::*", map[string]string{"regex": `/^Resource::<\w+Logs\w+\.Arn>:\*$/`}},
	}}, jsii.Bool(true))
}

// passRoleWildcards are the findings of the pass-roles a rule names with a
// wildcard (or the account's roles, for a rule that names none).
func passRoleWildcards() *[]*cdknag.NagPackSuppression {
	return &[]*cdknag.NagPackSuppression{{
		Id: jsii.String("AwsSolutions-IAM5"),
		Reason: jsii.String("iam:PassRole is limited by iam:PassedToService=ecs-tasks.amazonaws.com and to the rules' pass-roles, " +
			"which may name roles by pattern (default: the account's own roles; the running revision's roles are unknown at synth)."),
		AppliesTo: &[]any{map[string]string{"regex": `/^Resource::arn:(<AWS::Partition>|aws[a-z-]*):iam::` + nagAccount + `:role\/.*\*.*$/`}},
	}}
}

// targetStatements are the deploy grants on the targets keep selects:
// describing and rolling their services, writing their published
// parameters, passing their roles, deploying their CodeDeploy groups.
func targetStatements(grants *roleGrants, cfg *rules.Config, keep reach, g grain) {
	grants.suppress(passRoleWildcards())
	// CodeDeploy moves a blue/green service; the deployer only reads it.
	grants.add(policyStatement{sid: "DescribeBlueGreenServices", actions: []string{"ecs:DescribeServices"},
		resources: serviceScope(cfg, keep.and(func(t rules.Target) bool { return t.CodeDeploy != nil }), g)})
	grants.add(policyStatement{sid: "RollConfiguredServices", actions: []string{"ecs:DescribeServices", "ecs:UpdateService"},
		resources: serviceScope(cfg, keep.and(func(t rules.Target) bool { return t.CodeDeploy == nil }), g)})
	if len(serviceARNs(cfg, keep)) > 0 {
		grants.add(policyStatement{sid: "PassTaskRolesToEcsOnly", actions: []string{"iam:PassRole"}, resources: passRoles(cfg, keep),
			conditions: map[string]any{"StringEquals": map[string]any{"iam:PassedToService": "ecs-tasks.amazonaws.com"}}})
	}
	grants.add(policyStatement{sid: "PublishRunningImages", actions: []string{"ssm:PutParameter", "ssm:GetParameter"},
		resources: publishedParameters(cfg, keep, g)})
	groups, apps, discovers := codeDeployARNs(cfg, keep)
	// ListDeployments and GetDeployment find a deployment whose answer was
	// lost.
	grants.add(policyStatement{sid: "DeployBlueGreenGroups", actions: []string{"codedeploy:CreateDeployment", "codedeploy:GetDeployment",
		"codedeploy:GetDeploymentGroup", "codedeploy:ListDeployments"}, resources: groups})
	grants.add(policyStatement{sid: "RegisterBlueGreenRevisions", actions: []string{"codedeploy:RegisterApplicationRevision",
		"codedeploy:GetApplicationRevision"}, resources: apps})
	if discovers {
		grants.suppress(codeDeployDiscovery())
		grants.add(policyStatement{sid: "FindBlueGreenGroups", actions: []string{"codedeploy:ListApplications", "codedeploy:BatchGetApplications",
			"codedeploy:ListDeploymentGroups", "codedeploy:BatchGetDeploymentGroups"}, resources: apps})
	}
}

// warnAnyPassRole warns, at synth, for every rule whose targets keep
// selects that names no pass-roles: role may then pass any role of the
// account to ECS tasks, so a compromised worker could run any role that
// trusts ECS tasks inside a target service. No scanner flags it (the grant
// is conditioned on ecs-tasks), hence a CDK warning, one per rule, that
// `make synth` prints; its id names the rule, so it can be acknowledged
// per rule.
func warnAnyPassRole(role awsiam.Role, cfg *rules.Config, keep reach) {
	for _, r := range cfg.Rules {
		if len(r.PassRoles) > 0 || !slices.ContainsFunc(r.Targets, func(t rules.Target) bool { return keep(r, t) }) {
			continue
		}
		awscdk.Annotations_Of(role).AddWarningV2(jsii.String("ecr-autodeploy:any-pass-role:"+r.Name),
			jsii.String(fmt.Sprintf("rule %s (line %d) sets no pass-roles: the worker may pass any role of the target account to ECS tasks; "+
				"list the task and execution roles its services use in pass-roles (rule or defaults) so that a compromised worker "+
				"cannot run another role inside them", r.Name, r.Line)), nil)
	}
}

// serviceARNs are the services of the targets keep selects, in whatever
// account and region, as CloudFormation Fn::Sub strings, sorted.
func serviceARNs(cfg *rules.Config, keep reach) []string {
	seen := map[string]bool{}
	for _, r := range cfg.Rules {
		for _, t := range r.Targets {
			if keep(r, t) {
				seen[serviceARN(t)] = true
			}
		}
	}
	return sortedKeys(seen)
}

// PassRoles are the roles the worker may pass to ECS with its own
// credentials (central the functions' account and region, "" when not
// pinned): the pass-roles of the rules with such targets, and any role of
// the account for such a rule that names none. ECS documents no
// iam:AssociatedResourceArn for task definitions, so the role list is the
// narrowing that IAM can enforce.
func PassRoles(cfg *rules.Config, central rules.Place) []string { return passRoles(cfg, own(central)) }

func passRoles(cfg *rules.Config, keep reach) []string {
	seen := map[string]bool{}
	for _, r := range cfg.Rules {
		if !slices.ContainsFunc(r.Targets, func(t rules.Target) bool { return keep(r, t) }) {
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

// publishedParameters are the parameters written for the targets keep
// selects: <prefix>/<cluster>/<service>/* of each target of a publishing
// rule (<prefix>/<cluster>/* per cluster), in its region (containers are known only at deploy time), as
// Fn::Sub strings, sorted.
func publishedParameters(cfg *rules.Config, keep reach, g grain) []string {
	seen := map[string]bool{}
	for _, r := range cfg.Rules {
		if r.Publish == nil {
			continue
		}
		for _, t := range r.Targets {
			if !keep(r, t) {
				continue
			}
			// The ARN of "/a/b" is ...:parameter/a/b: the name's leading / is the ARN's.
			name := r.Publish.Parameter(ecsarn.Name(t.Cluster), ecsarn.Name(t.Service), "*")
			if g == perCluster {
				name = r.Publish.SSMPrefix + "/" + ecsarn.Name(t.Cluster) + "/*"
			}
			seen[fmt.Sprintf("arn:${AWS::Partition}:ssm:%s:${AWS::AccountId}:parameter%s", regionOf(t), name)] = true
		}
	}
	return sortedKeys(seen)
}

// RepositoryARNs are the repositories, in the central account, of the rules
// keep selects (all, when nil), in their registry's region, as Fn::Sub
// strings, sorted. Repositories in other accounts are reached through their
// registry stack's role.
func RepositoryARNs(cfg *rules.Config, central rules.Place, keep func(*rules.Rule) bool) []string {
	seen := map[string]bool{}
	for _, r := range cfg.Rules {
		if (keep == nil || keep(r)) && r.RegistryRole(central) == "" {
			region := orPseudo(r.Registry.Region, "${AWS::Region}")
			seen["arn:${AWS::Partition}:ecr:"+region+":${AWS::AccountId}:repository/"+r.Repository] = true
		}
	}
	return sortedKeys(seen)
}

// targetRoles are the roles the worker assumes to deploy targets: named in
// the file or the target stacks' deploy roles.
func targetRoles(cfg *rules.Config, central rules.Place) []string {
	return rolesOf(cfg, func(t rules.Target) string { return t.RoleFor(central) })
}

// sweepRoles are the roles the deployer (the intake) assumes to read
// targets in sweeps: named in the file or the target stacks' sweep roles.
func sweepRoles(cfg *rules.Config, central rules.Place) []string {
	return rolesOf(cfg, func(t rules.Target) string { return t.SweepRoleFor(central) })
}

func rolesOf(cfg *rules.Config, role func(rules.Target) string) []string {
	var out []string
	for _, r := range cfg.Rules {
		for _, t := range r.Targets {
			if role := role(t); role != "" {
				out = append(out, role)
			}
		}
	}
	return out
}

// registryRoles are the read roles of the registry stacks of the rules
// keep selects (all, when nil) whose registry is in another account: the
// deployer lists images and reads scan findings there.
func registryRoles(cfg *rules.Config, central rules.Place, keep func(*rules.Rule) bool) []string {
	var out []string
	for _, r := range cfg.Rules {
		if role := r.RegistryRole(central); role != "" && (keep == nil || keep(r)) {
			out = append(out, role)
		}
	}
	return out
}

func setOf(items []string) map[string]bool {
	m := map[string]bool{}
	for _, i := range items {
		m[i] = true
	}
	return m
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
