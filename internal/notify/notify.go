// Package notify publishes notices of deployments to an SNS topic, in a
// form for each kind of subscriber: AWS Chatbot's custom format for chat
// (and any HTTPS, SQS or Lambda subscriber), plain text for e-mail.
package notify

import (
	"context"
	"encoding/json"
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

// Notify publishes one notice with SNS's per-protocol message structure:
// "default" is the Chatbot JSON, "email" the plain text.
func (t *Topic) Notify(ctx context.Context, n Notice) error {
	in, err := publishInput(t.arn, n)
	if err != nil {
		return err
	}
	if _, err := t.client.Publish(ctx, in); err != nil {
		return fmt.Errorf("publish to %s: %w", t.arn, err)
	}
	return nil
}

func publishInput(topic string, n Notice) (*sns.PublishInput, error) {
	chat, err := n.Chatbot()
	if err != nil {
		return nil, err
	}
	msg, err := json.Marshal(map[string]string{"default": string(chat), "email": n.Email()})
	if err != nil {
		return nil, fmt.Errorf("render notice: %w", err)
	}
	return &sns.PublishInput{
		TopicArn:         aws.String(topic),
		Subject:          aws.String(fitSubject("[autodeploy] " + n.Title())),
		Message:          aws.String(string(msg)),
		MessageStructure: aws.String("json"),
	}, nil
}

// fitSubject makes s what SNS takes as a subject: ASCII, one line, under
// 100 characters.
func fitSubject(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > maxSubject {
		s = s[:maxSubject-3] + "..."
	}
	return s
}
