package redrive

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

// fakeQueue is a small SQS: received messages stay hidden until deleted or
// made visible again. Tests here use it for what they break on purpose;
// integration_test.go runs the same code against moto's SQS.
type fakeQueue struct {
	bodies     map[string]string
	order      []string
	hidden     map[string]bool
	deleteErrs int
	receiveErr error
}

func newQueue(bodies ...string) *fakeQueue {
	q := &fakeQueue{bodies: map[string]string{}, hidden: map[string]bool{}}
	for i, b := range bodies {
		id := fmt.Sprintf("m%d", i+1)
		q.bodies[id] = b
		q.order = append(q.order, id)
	}
	return q
}

func (q *fakeQueue) ReceiveMessage(_ context.Context, in *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	if q.receiveErr != nil {
		return nil, q.receiveErr
	}
	out := &sqs.ReceiveMessageOutput{}
	for _, id := range q.order {
		if _, ok := q.bodies[id]; ok && !q.hidden[id] && len(out.Messages) < int(in.MaxNumberOfMessages) {
			q.hidden[id] = true
			out.Messages = append(out.Messages, types.Message{MessageId: aws.String(id), ReceiptHandle: aws.String(id), Body: aws.String(q.bodies[id])})
		}
	}
	return out, nil
}

func (q *fakeQueue) DeleteMessage(_ context.Context, in *sqs.DeleteMessageInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error) {
	if q.deleteErrs > 0 {
		q.deleteErrs--
		return nil, errors.New("connection reset")
	}
	delete(q.bodies, aws.ToString(in.ReceiptHandle))
	return &sqs.DeleteMessageOutput{}, nil
}

func (q *fakeQueue) ChangeMessageVisibility(_ context.Context, in *sqs.ChangeMessageVisibilityInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	if in.VisibilityTimeout == 0 {
		q.hidden[aws.ToString(in.ReceiptHandle)] = false
	}
	return &sqs.ChangeMessageVisibilityOutput{}, nil
}

func (q *fakeQueue) left() int { return len(q.bodies) }

type fakeDeployer struct {
	answer  func(payload []byte) (*lambda.InvokeOutput, error)
	invoked []string
}

func (d *fakeDeployer) Invoke(_ context.Context, in *lambda.InvokeInput, _ ...func(*lambda.Options)) (*lambda.InvokeOutput, error) {
	d.invoked = append(d.invoked, string(in.Payload))
	return d.answer(in.Payload)
}

func deployed(_ []byte) (*lambda.InvokeOutput, error) {
	return &lambda.InvokeOutput{StatusCode: 200, Payload: []byte(`{"event_id":"e","results":[{"outcome":"deployed"}]}`)}, nil
}

func TestRedrive(t *testing.T) {
	push := string(testenv.Event(t, "ecr-push-main.json"))
	ctx := context.Background()
	for _, tt := range []struct {
		name        string
		queue       *fakeQueue
		answer      func([]byte) (*lambda.InvokeOutput, error)
		dryRun      bool
		moved, left []string // results
		remaining   int
		invoked     int
	}{
		{name: "moved and deleted", queue: newQueue(push, push), answer: deployed,
			moved: []string{"deployer: 1 deployed, 0 skipped, 0 failed", "deployer: 1 deployed, 0 skipped, 0 failed"}, invoked: 2},
		{name: "the deployer fails again: left", queue: newQueue(push), answer: func([]byte) (*lambda.InvokeOutput, error) {
			return &lambda.InvokeOutput{StatusCode: 200, FunctionError: aws.String("Unhandled"),
				Payload: []byte(`{"errorMessage":"1 target(s) failed and will be retried","errorType":"errorString"}`)}, nil
		}, left: []string{"left: the deployer failed again: 1 target(s) failed and will be retried"}, remaining: 1, invoked: 1},
		{name: "invoke refused: left", queue: newQueue(push), answer: func([]byte) (*lambda.InvokeOutput, error) {
			return nil, errors.New("AccessDeniedException")
		}, left: []string{"left: invoke deployer: AccessDeniedException"}, remaining: 1, invoked: 1},
		{name: "unreadable: left, not sent", queue: newQueue("garbage"), answer: deployed,
			left: []string{"left: not JSON: invalid character 'g' looking for beginning of value; inspect it in the queue"}, remaining: 1},
		{name: "dry run sends nothing", queue: newQueue(push, push), answer: deployed, dryRun: true,
			left: []string{"would send to deployer", "would send to deployer"}, remaining: 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := &fakeDeployer{answer: tt.answer}
			r := &Redriver{SQS: tt.queue, Lambda: d, Function: "deployer", DryRun: tt.dryRun}
			rep, err := r.Run(ctx, "q")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.moved, results(rep.Moved)); diff != "" {
				t.Errorf("moved (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.left, results(rep.Left)); diff != "" {
				t.Errorf("left (-want +got):\n%s", diff)
			}
			if tt.queue.left() != tt.remaining || len(d.invoked) != tt.invoked {
				t.Errorf("%d messages remain, %d invocations; want %d, %d", tt.queue.left(), len(d.invoked), tt.remaining, tt.invoked)
			}
			for id, h := range tt.queue.hidden {
				if _, ok := tt.queue.bodies[id]; ok && h {
					t.Errorf("message %s left hidden: the next run and the alarm would not see it", id)
				}
			}
		})
	}
}

// A delete that fails leaves the message, which the next run delivers
// again: the event reaches the deployer twice, which it skips as running.
func TestDeliveredButNotDeletedIsSentAgain(t *testing.T) {
	push := string(testenv.Event(t, "ecr-push-main.json"))
	q := newQueue(push)
	q.deleteErrs = 1
	d := &fakeDeployer{answer: deployed}
	r := &Redriver{SQS: q, Lambda: d, Function: "deployer"}
	rep, err := r.Run(context.Background(), "q")
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Left) != 1 || !strings.Contains(rep.Left[0].Result, "delivered but not deleted (connection reset)") {
		t.Fatalf("report = %+v", rep)
	}
	rep, err = r.Run(context.Background(), "q")
	if err != nil || len(rep.Moved) != 1 || q.left() != 0 || len(d.invoked) != 2 || d.invoked[0] != d.invoked[1] {
		t.Errorf("second run: %+v, %v; %d left, invoked %d times", rep, err, q.left(), len(d.invoked))
	}
}

func TestReceiveFailureIsAnError(t *testing.T) {
	q := newQueue()
	q.receiveErr = errors.New("AWS.SimpleQueueService.NonExistentQueue")
	_, err := (&Redriver{SQS: q, Lambda: &fakeDeployer{answer: deployed}, Function: "deployer"}).Run(context.Background(), "https://sqs/q")
	if err == nil || !strings.Contains(err.Error(), "receive from https://sqs/q: AWS.SimpleQueueService.NonExistentQueue") {
		t.Errorf("error = %v", err)
	}
}

func results(items []Item) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.Result)
	}
	return out
}

// A parked sweep (a scheduled event Lambda gave up on) is redriven like a
// push, and the report says what the sweep did.
func TestRedriveASweep(t *testing.T) {
	q := newQueue(string(testenv.Event(t, "scheduled-reconcile.json")))
	d := &fakeDeployer{answer: func([]byte) (*lambda.InvokeOutput, error) {
		return &lambda.InvokeOutput{StatusCode: 200, Payload: []byte(`{"event_id":"e","targets":[{"outcome":"in_sync"},{"outcome":"deployed"}],"drift":1}`)}, nil
	}}
	rep, err := (&Redriver{SQS: q, Lambda: d, Function: "deployer"}).Run(context.Background(), "q")
	if err != nil || len(rep.Moved) != 1 || rep.Moved[0].Result != "deployer: swept 2 targets, 1 behind" {
		t.Errorf("report = %+v, %v", rep, err)
	}
	if !strings.Contains(rep.Moved[0].Event, `aws.events "Scheduled Event"`) {
		t.Errorf("event described as %q", rep.Moved[0].Event)
	}
}
