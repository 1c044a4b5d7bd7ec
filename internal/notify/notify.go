// Package notify publishes deployment notices to an SNS topic.
package notify

import (
	"context"
	"fmt"
	"strings"

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

// maxSubject keeps subjects under SNS's limit of 100 characters.
const maxSubject = 99

// Notify publishes one message. The subject is made fit for SNS (one line,
// under 100 characters) here, so callers need not know its limits.
func (t *Topic) Notify(ctx context.Context, subject, message string) error {
	if _, err := t.client.Publish(ctx, &sns.PublishInput{
		TopicArn: aws.String(t.arn), Subject: aws.String(fitSubject(subject)), Message: aws.String(message),
	}); err != nil {
		return fmt.Errorf("publish to %s: %w", t.arn, err)
	}
	return nil
}

func fitSubject(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > maxSubject {
		s = string(r[:maxSubject-1]) + "…"
	}
	return s
}
