package reconcile

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work"
)

// On moto's SQS: a cleanup sent with SendDelayed is not received before
// its delay (DelaySeconds, rounded up to a second) and is received after.
func TestCleanupQueueSendDelayedHidesTheItemForItsDelay(t *testing.T) {
	t.Parallel()
	m := testenv.StartMoto(t)
	client := sqs.NewFromConfig(m.AWSConfig())
	central := rules.Place{Account: testenv.Account, Region: testenv.Region}
	home := m.CreateWorkQueue(t, client, "work", time.Minute, 5)
	q := &CleanupQueue{SQS: client, BaseURL: home.URL, Central: central}
	cmd := work.Cleanup{Account: central.Account, Region: central.Region, Family: "web", Keep: 3,
		Services: []work.CleanupService{{Cluster: "prod", Service: "web"}}, Rules: []string{"web-prod"}, Origin: "test"}
	ctx := context.Background()
	if err := q.SendDelayed(ctx, []work.Cleanup{cmd}, 1500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	receive := func(wait int32) int {
		out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(home.URL), MaxNumberOfMessages: 10, WaitTimeSeconds: wait})
		if err != nil {
			t.Fatal(err)
		}
		return len(out.Messages)
	}
	if n := receive(0); n != 0 {
		t.Fatalf("%d messages received at once, want none before the delay", n)
	}
	time.Sleep(2500 * time.Millisecond)
	if n := receive(1); n != 1 {
		t.Errorf("%d messages received after the delay, want 1", n)
	}
}
