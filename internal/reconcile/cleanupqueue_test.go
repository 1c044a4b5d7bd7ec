package reconcile

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work/queue"
)

// On moto's SQS: each cleanup goes to its place's work queue (the central
// one, and the queue named for another place), in its envelope, with the
// attributes work items carry.
func TestCleanupQueueSendsToEachPlace(t *testing.T) {
	t.Parallel()
	m := testenv.StartMoto(t)
	client := sqs.NewFromConfig(m.AWSConfig())
	central := rules.Place{Account: testenv.Account, Region: testenv.Region}
	other := rules.Place{Account: "222222222222", Region: "us-east-1"}
	home := m.CreateWorkQueue(t, client, "work", time.Minute, 5)
	away := m.CreateWorkQueue(t, client, queue.NameFor("work", central, other), time.Minute, 5)
	q := &CleanupQueue{SQS: client, BaseURL: home.URL, Central: central}
	cmds := []work.Cleanup{
		{Account: central.Account, Region: central.Region, Family: "web", Keep: 3, Services: []work.CleanupService{{Cluster: "prod", Service: "web"}}, Rules: []string{"web-prod"}, Origin: "test"},
		{Account: other.Account, Region: other.Region, Role: "arn:aws:iam::222222222222:role/t", Family: "api", Keep: 2, Delete: true,
			Services: []work.CleanupService{{Cluster: "prod", Service: "api"}}, Rules: []string{"api"}, Origin: "test"},
	}
	if err := q.SendCleanups(context.Background(), cmds); err != nil {
		t.Fatal(err)
	}
	for i, url := range []string{home.URL, away.URL} {
		out, err := client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10,
			MessageAttributeNames: []string{"All"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) != 1 {
			t.Fatalf("%s: %d messages, want 1", url, len(out.Messages))
		}
		got, err := work.DecodeCommand([]byte(aws.ToString(out.Messages[0].Body)))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(work.Command(cmds[i]), got); diff != "" {
			t.Errorf("%s: item (-sent +received):\n%s", url, diff)
		}
		attrs := map[string]string{}
		for k, v := range out.Messages[0].MessageAttributes {
			attrs[k] = aws.ToString(v.StringValue)
		}
		want := map[string]string{queue.AttrKind: "cleanup", queue.AttrPlace: cmds[i].Place().String(), queue.AttrRule: cmds[i].Rules[0],
			queue.AttrQueue: url[len(url)-len(queue.NameFor("work", central, cmds[i].Place())):]}
		if diff := cmp.Diff(want, attrs); diff != "" {
			t.Errorf("%s: attributes (-want +got):\n%s", url, diff)
		}
	}
}
