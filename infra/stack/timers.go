package stack

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsscheduler"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/timer"
)

// Timers (the watcher's: a recheck when an ECS-native bake ends, a gate's
// bake, an approval's or a scan's expiry) are EventBridge Scheduler
// one-time schedules in one schedule group that invoke the function that
// set them (internal/timer, whose group name and environment variables
// these are).
const (
	// TimerGroup is the schedule group the stack creates for the timers.
	TimerGroup = timer.DefaultGroup
	// envTimerGroup and envTimerRole tell a function that sets timers where
	// they go and which role Scheduler assumes to invoke it.
	envTimerGroup = timer.EnvGroup
	envTimerRole  = timer.EnvRoleARN
)

// timers makes the schedule group, the role Scheduler assumes to invoke the
// watcher (trusted by scheduler.amazonaws.com for this account's schedules
// only, allowed only lambda:InvokeFunction on the watcher), and lets the
// watcher create schedules in that group only and pass that role only, to
// Scheduler only. The watcher is told both in its environment.
func timers(s awscdk.Stack, watcher function) {
	group := awsscheduler.NewCfnScheduleGroup(s, jsii.String("TimerGroup"), &awsscheduler.CfnScheduleGroupProps{
		Name: jsii.String(TimerGroup),
	})
	role := awsiam.NewRole(s, jsii.String("TimerRole"), &awsiam.RoleProps{
		AssumedBy: awsiam.NewServicePrincipal(jsii.String("scheduler.amazonaws.com"), nil).WithConditions(&map[string]any{
			"StringEquals": map[string]any{"aws:SourceAccount": s.Account()},
		}),
		Description: jsii.String("ecr-autodeploy: EventBridge Scheduler invokes the function that set a timer when it is due"),
	})
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("InvokeTheWatcher"),
		Actions:   jsii.Strings("lambda:InvokeFunction"),
		Resources: jsii.Strings(*watcher.fn.FunctionArn()),
	}))
	watcher.role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid: jsii.String("SetTimers"),
		// Only CreateSchedule: timers delete themselves after they fire.
		Actions: jsii.Strings("scheduler:CreateSchedule"),
		// Scheduler's schedule ARN: schedule/<group>/<name>.
		Resources: jsii.Strings(*awscdk.Fn_Sub(jsii.String("arn:${AWS::Partition}:scheduler:${AWS::Region}:${AWS::AccountId}:schedule/"+TimerGroup+"/*"), nil)),
	}))
	watcher.role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("PassTheTimerRoleToScheduler"),
		Actions:    jsii.Strings("iam:PassRole"),
		Resources:  jsii.Strings(*role.RoleArn()),
		Conditions: &map[string]any{"StringEquals": map[string]any{"iam:PassedToService": "scheduler.amazonaws.com"}},
	}))
	cdknag.NagSuppressions_AddResourceSuppressions(watcher.role, &[]*cdknag.NagPackSuppression{{
		Id:        jsii.String("AwsSolutions-IAM5"),
		Reason:    jsii.String("Timers are one-time schedules named when they are set: the watcher may create those of its own schedule group only (schedule/" + TimerGroup + "/*)."),
		AppliesTo: &[]any{"Resource::arn:<AWS::Partition>:scheduler:<AWS::Region>:<AWS::AccountId>:schedule/" + TimerGroup + "/*"},
	}}, jsii.Bool(true))
	watcher.fn.AddEnvironment(jsii.String(envTimerGroup), group.Ref(), nil)
	watcher.fn.AddEnvironment(jsii.String(envTimerRole), role.RoleArn(), nil)
}

// setsTimers reports whether the watcher sets timers under cfg: when a
// target may be ECS-native (rechecks) or a rule has a gate — a bake's end
// it sets when the bake starts, an approval's expiry and a scan's wait at
// the sweep's pass before they are due. The deployer sets none (its binary
// links no Scheduler client).
func setsTimers(cfg *rules.Config) bool { return nativeTargets(cfg, everyTarget) || gated(cfg) }
