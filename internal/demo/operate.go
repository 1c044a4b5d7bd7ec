package demo

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/emulator"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/redrive"
)

// chatTopic creates the notices topic with a queue subscribed where Chatbot's
// endpoint would be: it gets the same "default" message Chatbot renders.
func (d *demo) chatTopic(ctx context.Context, cfg aws.Config) (string, error) {
	snsc := sns.NewFromConfig(cfg)
	d.sqs = sqs.NewFromConfig(cfg)
	topic, err := snsc.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("autodeploy-notices")})
	if err != nil {
		return "", fmt.Errorf("create topic: %w", err)
	}
	q, err := d.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("chat")})
	if err != nil {
		return "", fmt.Errorf("create queue: %w", err)
	}
	d.chat = aws.ToString(q.QueueUrl)
	if _, err := snsc.Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("sqs"),
		Endpoint:   aws.String("arn:aws:sqs:" + emulator.Region + ":" + emulator.Account + ":chat"),
		Attributes: map[string]string{"RawMessageDelivery": "true"}}); err != nil {
		return "", fmt.Errorf("subscribe: %w", err)
	}
	return aws.ToString(topic.TopicArn), nil
}

// chatMessages prints the notices published since the last call, as a chat
// channel would show them: title, then next steps.
func (d *demo) chatMessages(ctx context.Context) error {
	for {
		out, err := d.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(d.chat), MaxNumberOfMessages: 10})
		if err != nil {
			return fmt.Errorf("read chat queue: %w", err)
		}
		if len(out.Messages) == 0 {
			return nil
		}
		for _, m := range out.Messages {
			var msg struct {
				Content struct {
					Title     string   `json:"title"`
					NextSteps []string `json:"nextSteps"`
				} `json:"content"`
				Metadata struct {
					ThreadID string `json:"threadId"`
				} `json:"metadata"`
			}
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &msg); err != nil {
				return fmt.Errorf("chat message %s: %w", aws.ToString(m.Body), err)
			}
			d.p.line("  chat (thread %s): %s", msg.Metadata.ThreadID, msg.Content.Title)
			for _, step := range msg.Content.NextSteps {
				d.p.line("        next: %s", step)
			}
			if _, err := d.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(d.chat), ReceiptHandle: m.ReceiptHandle}); err != nil {
				return err
			}
		}
	}
}

// redrive parks a push the way Lambda does after its retries (a failure
// record wrapping the event), then runs what `autodeploy redrive` runs.
func (d *demo) redrive(ctx context.Context, cfg aws.Config) error {
	s := step{tag: "main-7c1d2e3", minute: 11}
	tag, digest, err := d.push(ctx, s)
	if err != nil {
		return err
	}
	event, err := d.pushEvent(tag, digest, s)
	if err != nil {
		return err
	}
	q, err := d.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("DeployerFailedEvents")})
	if err != nil {
		return err
	}
	record, err := json.Marshal(map[string]any{
		"version":         "1.0",
		"requestContext":  map[string]any{"condition": "RetriesExhausted", "approximateInvokeCount": 3},
		"requestPayload":  json.RawMessage(event),
		"responsePayload": map[string]string{"errorMessage": "1 target(s) failed and will be retried: staging/web: ThrottlingException", "errorType": "errorString"},
	})
	if err != nil {
		return err
	}
	if _, err := d.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: q.QueueUrl, MessageBody: aws.String(string(record))}); err != nil {
		return err
	}
	d.p.line("  pushed web:%s → %s; the deployer was throttled three times and Lambda parked the event", tag, digest)
	d.p.line("  $ autodeploy redrive --queue deployer")
	r := &redrive.Redriver{SQS: d.sqs, Function: "function",
		Lambda: lambda.NewFromConfig(cfg, func(o *lambda.Options) { o.BaseEndpoint = aws.String(d.deployer.Endpoint) })}
	rep, err := r.Run(ctx, aws.ToString(q.QueueUrl))
	if err != nil {
		return err
	}
	for _, it := range rep.Moved {
		d.p.line("  moved  %s\n         parked: %s\n         %s", it.Event, it.Parked, it.Result)
	}
	for _, it := range rep.Left {
		d.p.line("  left   %s: %s", it.Event, it.Result)
	}
	d.p.line("  %d moved, %d left", len(rep.Moved), len(rep.Left))
	return d.running(ctx)
}
