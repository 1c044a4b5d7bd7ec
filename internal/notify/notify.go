// Package notify publishes deployment notices to an SNS topic.
package notify

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
)

type snsAPI interface {
	Publish(ctx context.Context, in *sns.PublishInput, optFns ...func(*sns.Options)) (*sns.PublishOutput, error)
}

// Topic publishes to one topic.
type Topic struct {
	client snsAPI
	arn    string
}

// NewTopic returns a notifier on the topic.
func NewTopic(client snsAPI, arn string) *Topic { return &Topic{client: client, arn: arn} }

// Notify publishes one message.
func (t *Topic) Notify(ctx context.Context, subject, message string) error {
	if _, err := t.client.Publish(ctx, &sns.PublishInput{
		TopicArn: aws.String(t.arn), Subject: aws.String(subject), Message: aws.String(message),
	}); err != nil {
		return fmt.Errorf("publish to %s: %w", t.arn, err)
	}
	return nil
}
