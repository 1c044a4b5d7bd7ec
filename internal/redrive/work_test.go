package redrive

import (
	"context"
	"errors"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecrevent"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work/queue"
)

// sendLost wraps moto's SQS: the first `lose` sends are applied by moto but
// their answers lost (a fake of the network: moto cannot drop an answer).
type sendLost struct {
	*sqs.Client
	mu   sync.Mutex
	lose int
}

func (s *sendLost) SendMessage(ctx context.Context, in *sqs.SendMessageInput, o ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	out, err := s.Client.SendMessage(ctx, in, o...)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil && s.lose > 0 {
		s.lose--
		return nil, errors.New("read tcp: connection reset by peer")
	}
	return out, err
}

// A parked work item goes back to the work queue it came from (the central
// place's, or another place's), body and attributes unchanged, and leaves
// the dead-letter queue only once sent; what names no queue or is not a
// work item stays. A second run finds nothing to send. On moto's SQS.
func TestRedriveWorkItems(t *testing.T) {
	ctx := context.Background()
	m := testenv.StartMoto(t)
	client := sqs.NewFromConfig(m.AWSConfig())
	central := m.CreateWorkQueue(t, client, "autodeploy-work", time.Minute, 3)
	other, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("autodeploy-work-222222222222-us-east-1")})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := rules.Parse("autodeploy.yaml", []byte("version: 1\nrules:\n  - name: web\n    repository: web\n    tags: [\"*\"]\n    targets:\n      - {cluster: c, service: s}\n      - {cluster: c, service: s, account: \"222222222222\", region: us-east-1}\n"))
	if err != nil {
		t.Fatal(err)
	}
	place := rules.Place{Account: testenv.Account, Region: testenv.Region}
	push := ecrevent.Push{EventID: "e1", Account: place.Account, Region: place.Region, Repository: "web", Tag: "v1", Digest: "sha256:" + strings.Repeat("ab", 32)}
	str := func(v string) types.MessageAttributeValue {
		return types.MessageAttributeValue{DataType: aws.String("String"), StringValue: aws.String(v)}
	}
	park := func(i int, queueName string) string {
		body, err := work.Encode(work.NewDeployTarget(push, cfg.Rules[0], i, place))
		if err != nil {
			t.Fatal(err)
		}
		attrs := map[string]types.MessageAttributeValue{queue.AttrKind: str("deploy-target"), queue.AttrRule: str("web")}
		if queueName != "" {
			attrs[queue.AttrQueue] = str(queueName)
		}
		if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(central.DLQ), MessageBody: aws.String(string(body)), MessageAttributes: attrs}); err != nil {
			t.Fatal(err)
		}
		return string(body)
	}
	toCentral := park(0, "autodeploy-work")
	toOther := park(1, "autodeploy-work-222222222222-us-east-1")
	park(0, "")
	if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(central.DLQ), MessageBody: aws.String("{")}); err != nil {
		t.Fatal(err)
	}

	// A dry run sends nothing and says where each would go.
	rep, err := (&WorkRedriver{SQS: client, DryRun: true}).Run(ctx, central.DLQ)
	if err != nil || len(rep.Moved) != 0 || len(rep.Left) != 4 {
		t.Fatalf("dry run: %+v, %v", rep, err)
	}
	r := &WorkRedriver{SQS: &sendLost{Client: client, lose: 1}}
	rep, err = r.Run(ctx, central.DLQ)
	if err != nil {
		t.Fatal(err)
	}
	var results []string
	for _, it := range append(rep.Moved, rep.Left...) {
		results = append(results, it.Result)
	}
	sort.Strings(results)
	// The lost answer: sent (moto has it) but left, so it goes again below.
	if len(rep.Moved) != 1 || len(rep.Left) != 3 {
		t.Errorf("first run: moved %d, left %d; %v", len(rep.Moved), len(rep.Left), results)
	}
	for _, want := range []string{"names no work queue", "unexpected end of JSON input", "connection reset by peer"} {
		if !strings.Contains(strings.Join(results, "\n"), want) {
			t.Errorf("results lack %q: %v", want, results)
		}
	}
	rep, err = r.Run(ctx, central.DLQ)
	if err != nil || len(rep.Moved) != 1 || len(rep.Left) != 2 {
		t.Errorf("second run: %+v, %v; want the lost one sent again and moved", rep, err)
	}
	rep, err = r.Run(ctx, central.DLQ)
	if err != nil || len(rep.Moved) != 0 || len(rep.Left) != 2 {
		t.Errorf("third run: %+v, %v; want nothing more to move", rep, err)
	}

	bodies := func(url string) []string {
		out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10, MessageAttributeNames: []string{"All"}})
		if err != nil {
			t.Fatal(err)
		}
		var b []string
		for _, msg := range out.Messages {
			if got := aws.ToString(msg.MessageAttributes[queue.AttrRule].StringValue); got != "web" {
				t.Errorf("attributes not kept: %v", msg.MessageAttributes)
			}
			b = append(b, aws.ToString(msg.Body))
		}
		return b
	}
	// Each went to its own queue; the one whose answer was lost went twice
	// (the worker skips the second).
	gotCentral, gotOther := bodies(central.URL), bodies(aws.ToString(other.QueueUrl))
	if len(gotCentral)+len(gotOther) != 3 {
		t.Errorf("%d + %d messages in the work queues, want 3 (one sent twice)", len(gotCentral), len(gotOther))
	}
	for _, q := range []struct {
		got  []string
		want string
	}{{gotCentral, toCentral}, {gotOther, toOther}} {
		if len(q.got) == 0 {
			t.Errorf("a work queue got nothing, want %s", q.want)
		}
		for _, b := range q.got {
			if diff := cmp.Diff(q.want, b); diff != "" {
				t.Errorf("a work queue got another place's item (-want +got):\n%s", diff)
			}
		}
	}
}

// SourceQueue prefers the queue SQS names on a message it moved.
func TestSourceQueue(t *testing.T) {
	const dlq = "https://sqs.eu-west-1.amazonaws.com/111111111111/Stack-WorkDeadLetters-ABC"
	tests := []struct {
		name    string
		msg     types.Message
		want    string
		wantErr string
	}{
		{"SQS's source", types.Message{Attributes: map[string]string{"DeadLetterQueueSourceArn": "arn:aws:sqs:eu-west-1:111111111111:work-222222222222-us-east-1"},
			MessageAttributes: map[string]types.MessageAttributeValue{queue.AttrQueue: {StringValue: aws.String("other")}}},
			"https://sqs.eu-west-1.amazonaws.com/111111111111/work-222222222222-us-east-1", ""},
		{"the dispatcher's attribute", types.Message{MessageAttributes: map[string]types.MessageAttributeValue{queue.AttrQueue: {StringValue: aws.String("work")}}},
			"https://sqs.eu-west-1.amazonaws.com/111111111111/work", ""},
		{"a path in the attribute", types.Message{MessageAttributes: map[string]types.MessageAttributeValue{queue.AttrQueue: {StringValue: aws.String("../x/work")}}}, "", "names no work queue"},
		{"neither", types.Message{}, "", "names no work queue"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SourceQueue(dlq, tt.msg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("SourceQueue = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
