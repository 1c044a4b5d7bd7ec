package stack

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssnssubscriptions"
	"github.com/aws/jsii-runtime-go"
)

// topicKey encrypts the topics. It is our own key: CloudWatch cannot
// publish to a topic under the AWS-managed SNS key.
func topicKey(s awscdk.Stack) awskms.Key {
	key := awskms.NewKey(s, jsii.String("TopicKey"), &awskms.KeyProps{
		Description:       jsii.String("ecr-autodeploy topics"),
		EnableKeyRotation: jsii.Bool(true),
	})
	key.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("cloudwatch.amazonaws.com"), nil)},
		Actions:    jsii.Strings("kms:Decrypt", "kms:GenerateDataKey*"),
		Resources:  jsii.Strings("*"),
		// Only this account's alarms may use the key (confused deputy).
		Conditions: &map[string]any{
			"StringEquals": map[string]any{"aws:SourceAccount": s.Account()},
			"ArnLike":      map[string]any{"aws:SourceArn": awscdk.Fn_Sub(jsii.String("arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:*"), nil)},
		},
	}), nil)
	return key
}

// topic is an encrypted, SSL-only topic with an optional e-mail subscriber.
func topic(s awscdk.Stack, id, name string, key awskms.Key, email string) awssns.Topic {
	t := awssns.NewTopic(s, jsii.String(id), &awssns.TopicProps{
		DisplayName: jsii.String(name),
		MasterKey:   key,
		EnforceSSL:  jsii.Bool(true),
	})
	if email != "" {
		t.AddSubscription(awssnssubscriptions.NewEmailSubscription(jsii.String(email), nil))
	}
	return t
}
