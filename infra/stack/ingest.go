package stack

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/jsii-runtime-go"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// ruleTo sends matching events to fn, retrying for a day before leaving
// them in a dead-letter queue that alarms on its first message. With sp,
// the pattern's list at sp.path holds sp's values, split across as many
// rules (one queue) as EventBridge's pattern limit needs.
func ruleTo(s awscdk.Stack, id, description string, pattern *awsevents.EventPattern, sp *split, fn awslambda.Function, dlqID, dlqPurpose string, alarms awssns.ITopic) awssqs.Queue {
	dlq := secureQueue(s, dlqID, dlqPurpose)
	props := awsevents.RuleProps{
		Description:  jsii.String(description),
		EventPattern: pattern,
		Targets: &[]awsevents.IRuleTarget{awseventstargets.NewLambdaFunction(fn, &awseventstargets.LambdaFunctionProps{
			DeadLetterQueue: dlq,
			MaxEventAge:     awscdk.Duration_Hours(jsii.Number(24)),
			RetryAttempts:   jsii.Number(185),
		})},
	}
	if sp == nil {
		awsevents.NewRule(s, jsii.String(id), &props)
	} else {
		eventRules(s, id, pattern, *sp, props)
	}
	queueAlarm(s, dlqID, dlq, alarms)
	return dlq
}

// subs turns Fn::Sub strings into tokens (and leaves literal ARNs alone).
func subs(arns []string) *[]*string {
	out := make([]*string, len(arns))
	for i, a := range arns {
		out[i] = jsii.String(a)
		if strings.Contains(a, "${") { // a literal ARN (a pass-roles entry) needs no Sub: cfn-lint W1020
			out[i] = awscdk.Fn_Sub(jsii.String(a), nil)
		}
	}
	return &out
}

// sweeps reports whether the deployer ever sweeps: on the schedule
// (reconcile.every), or when the watcher asks for one after ECS rolled back
// a deploy of a rule that publishes (watch.republishAfterRollback, which
// does not look at the schedule). A sweep lists every rule's repository, so
// its grants (ecr:DescribeImages, the registries' read roles, made by the
// registry stacks) and its dashboard row follow this, not the schedule.
func sweeps(cfg *rules.Config) bool {
	return cfg.Reconcile.Every > 0 || slices.ContainsFunc(cfg.Rules, func(r *rules.Rule) bool { return r.Publish != nil })
}

// reconcileSchedule sends EventBridge's "Scheduled Event" every interval to
// fns: the deployer's sweep and, with gates, the watcher's (it ends the gates
// whose time is up). A sweep that fails is retried by Lambda and then parked
// in the function's failure queue (alarmed); the next sweep comes anyway, so
// a stale one is dropped rather than delivered late.
func reconcileSchedule(s awscdk.Stack, every time.Duration, fns ...awslambda.Function) {
	var targets []awsevents.IRuleTarget
	for _, fn := range fns {
		targets = append(targets, awseventstargets.NewLambdaFunction(fn, &awseventstargets.LambdaFunctionProps{
			MaxEventAge:   awscdk.Duration_Minutes(jsii.Number(max(1, every.Minutes()))),
			RetryAttempts: jsii.Number(2),
		}))
	}
	awsevents.NewRule(s, jsii.String("ReconcileSchedule"), &awsevents.RuleProps{
		Description: jsii.String(fmt.Sprintf("ecr-autodeploy sweep every %s: every target to the newest image its rule selects", every)),
		Schedule:    awsevents.Schedule_Rate(awscdk.Duration_Minutes(jsii.Number(every.Minutes()))),
		Targets:     &targets,
	})
}
