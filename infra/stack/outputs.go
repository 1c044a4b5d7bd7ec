package stack

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/jsii-runtime-go"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/redrive"
)

// outputs publish, under the names redrive reads, what the operator's CLI needs to find in the stack.
func outputs(s awscdk.Stack, deployer function, pushDLQ, workDLQ awssqs.Queue) {
	for _, o := range []struct{ id, value, description string }{
		{redrive.OutputDeployerFunction, *deployer.fn.FunctionName(), "The deployer function (autodeploy redrive invokes it)"},
		{redrive.OutputPushEventsQueue, *pushDLQ.QueueUrl(), "ECR push events EventBridge could not deliver to the deployer"},
		{redrive.OutputDeployerFailedQueue, *deployer.failures.QueueUrl(), "Events the deployer failed after Lambda's retries"},
		{redrive.OutputWorkDeadLetterQueue, *workDLQ.QueueUrl(), "Work items the worker did not finish after their receives (autodeploy redrive --queue work)"},
	} {
		awscdk.NewCfnOutput(s, jsii.String(o.id), &awscdk.CfnOutputProps{Value: jsii.String(o.value), Description: jsii.String(o.description)})
	}
}
