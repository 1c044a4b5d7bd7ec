package stack

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/jsii-runtime-go"
)

// ruleTo sends matching events to fn, retrying for a day before leaving
// them in a dead-letter queue that alarms on its first message.
func ruleTo(s awscdk.Stack, id, description string, pattern *awsevents.EventPattern, fn awslambda.Function, dlqID, dlqPurpose string, alarms awssns.ITopic) awssqs.Queue {
	dlq := secureQueue(s, dlqID, dlqPurpose)
	awsevents.NewRule(s, jsii.String(id), &awsevents.RuleProps{
		Description:  jsii.String(description),
		EventPattern: pattern,
		Targets: &[]awsevents.IRuleTarget{awseventstargets.NewLambdaFunction(fn, &awseventstargets.LambdaFunctionProps{
			DeadLetterQueue: dlq,
			MaxEventAge:     awscdk.Duration_Hours(jsii.Number(24)),
			RetryAttempts:   jsii.Number(185),
		})},
	})
	queueAlarm(s, dlqID, dlq, alarms)
	return dlq
}

// subs turns Fn::Sub strings into tokens.
func subs(arns []string) *[]*string {
	out := make([]*string, len(arns))
	for i, a := range arns {
		out[i] = awscdk.Fn_Sub(jsii.String(a), nil)
	}
	return &out
}
