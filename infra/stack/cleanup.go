package stack

import (
	"slices"

	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// cleansUp: targets of rules that clean their families up (cleanup:).
func cleansUp(r *rules.Rule, _ rules.Target) bool { return r.Cleanup != nil }

// deletes: targets of rules that also delete what they deregistered.
func deletes(r *rules.Rule, _ rules.Target) bool { return r.Cleanup != nil && r.Cleanup.Delete }

// anyTarget reports whether keep selects a target of cfg.
func anyTarget(cfg *rules.Config, keep reach) bool {
	return slices.ContainsFunc(cfg.Rules, func(r *rules.Rule) bool {
		return slices.ContainsFunc(r.Targets, func(t rules.Target) bool { return keep(r, t) })
	})
}

// grantCleanup lets a role that deploys the targets keep selects (the
// central worker, a target stack's deploy role) clean their families up,
// only where a rule of them cleans up: ecs:DeregisterTaskDefinition, and
// ecs:DeleteTaskDefinitions only for a rule with delete: true. Clean-up
// reads with what deploys already have (ListTaskDefinitions,
// DescribeTaskDefinition, DescribeServices).
//
// Both are granted on "*": ECS's actions table (IAM User Guide) lists no
// resource type for DeregisterTaskDefinition, and the families are not
// the stack's to know — a deploy registers in the family of the revision
// the service runs, which IaC or a person chose (docs/decisions.md, "Old
// revisions") — so a task-definition/<family>:* resource could only be
// task-definition/* of the account, "*" in all but name. What the role
// removes is bounded by internal/cleanup instead: only families its
// services run, never what they run, deploy or may roll back to.
func grantCleanup(role awsiam.Role, cfg *rules.Config, keep reach) {
	if !anyTarget(cfg, keep.andRule(cleansUp)) {
		return
	}
	acts := []string{"ecs:DeregisterTaskDefinition"}
	if anyTarget(cfg, keep.andRule(deletes)) {
		acts = append(acts, "ecs:DeleteTaskDefinitions")
	}
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("CleanUpOldRevisions"),
		Actions:   jsii.Strings(acts...),
		Resources: jsii.Strings("*"),
	}))
	cdknag.NagSuppressions_AddResourceSuppressions(role, &[]*cdknag.NagPackSuppression{{
		Id: jsii.String("AwsSolutions-IAM5"),
		Reason: jsii.String("ecs:DeregisterTaskDefinition (and ecs:DeleteTaskDefinitions) take no resource-level permission the stack could narrow: " +
			"the families are the running revisions', unknown at synth; internal/cleanup removes only old revisions of the services' own families."),
		AppliesTo: &[]any{"Resource::*"},
	}}, jsii.Bool(true))
}

// andRule narrows k by a test of the rule.
func (k reach) andRule(pred func(*rules.Rule, rules.Target) bool) reach {
	return func(r *rules.Rule, t rules.Target) bool { return k(r, t) && pred(r, t) }
}

// cleanupQueue is, for the watcher's environment, the central work queue's
// URL (the other places' are named from it) when a rule cleans up: after
// it records a completion of a target whose rule cleans up, the watcher
// queues a clean-up item for that place. nil when no rule cleans up.
func cleanupQueue(cfg *rules.Config, work workQueues) *string {
	if len(cfg.CleanupRules()) == 0 {
		return nil
	}
	return work.central.QueueUrl()
}

// grantCleanupItems lets the watcher send those items: sqs:SendMessage on
// the work queues, by the intake's name pattern, only when a rule cleans up.
func grantCleanupItems(cfg *rules.Config, work workQueues, role awsiam.Role) {
	if len(cfg.CleanupRules()) > 0 {
		work.grantSend(role)
	}
}
