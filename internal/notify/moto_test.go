package notify

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

// Against moto: SNS hands a non-e-mail subscriber (here SQS, as Chatbot's
// HTTPS endpoint) the "default" message, the Chatbot JSON.
func TestSubscribersGetChatbotJSON(t *testing.T) {
	m := testenv.StartMoto(t)
	ctx := context.Background()
	cfg := m.AWSConfig()
	snsc, sqsc := sns.NewFromConfig(cfg), sqs.NewFromConfig(cfg)
	topic, err := snsc.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("notices")})
	if err != nil {
		t.Fatal(err)
	}
	q, err := sqsc.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("chat")})
	if err != nil {
		t.Fatal(err)
	}
	queueARN := "arn:aws:sqs:" + testenv.Region + ":" + testenv.Account + ":chat"
	if _, err := snsc.Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("sqs"), Endpoint: aws.String(queueARN),
		Attributes: map[string]string{"RawMessageDelivery": "true"}}); err != nil {
		t.Fatal(err)
	}
	n := deployment(Failed, "tasks failed to start")
	if err := NewTopic(snsc, aws.ToString(topic.TopicArn)).Notify(ctx, n); err != nil {
		t.Fatal(err)
	}
	out, err := sqsc.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, WaitTimeSeconds: 2})
	if err != nil || len(out.Messages) != 1 {
		t.Fatalf("received %v, %v; want one message", out, err)
	}
	var got chatbotMessage
	if err := json.Unmarshal([]byte(aws.ToString(out.Messages[0].Body)), &got); err != nil {
		t.Fatalf("subscriber got %q, not the Chatbot JSON: %v", aws.ToString(out.Messages[0].Body), err)
	}
	if got.Source != "custom" || got.Content.Title != "❌ "+n.Title() || got.Metadata.ThreadID != n.threadID() {
		t.Errorf("subscriber got %+v", got)
	}
}
