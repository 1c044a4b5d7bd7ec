package stack

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awschatbot"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/jsii-runtime-go"
)

// Slack names the channel that gets alarms and deployment notices.
type Slack struct {
	WorkspaceID string // the workspace authorized in the AWS Chatbot console once
	ChannelID   string
}

// slackChannel connects both topics to a Slack channel through AWS Chatbot.
// Chatbot's default guardrail is AdministratorAccess; people in the channel
// may only read.
func slackChannel(s awscdk.Stack, slack Slack, topics ...awssns.ITopic) awschatbot.SlackChannelConfiguration {
	return awschatbot.NewSlackChannelConfiguration(s, jsii.String("SlackChannel"), &awschatbot.SlackChannelConfigurationProps{
		SlackChannelConfigurationName: awscdk.Fn_Join(jsii.String("-"), &[]*string{awscdk.Aws_STACK_NAME(), jsii.String("slack")}),
		SlackWorkspaceId:              jsii.String(slack.WorkspaceID),
		SlackChannelId:                jsii.String(slack.ChannelID),
		NotificationTopics:            &topics,
		GuardrailPolicies:             &[]awsiam.IManagedPolicy{awsiam.ManagedPolicy_FromAwsManagedPolicyName(jsii.String("ReadOnlyAccess"))},
		LoggingLevel:                  awschatbot.LoggingLevel_ERROR,
	})
}
