package deploy

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecrevent"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/notify"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

// placedDispatcher queues every job but those fail names, which fail for
// good as a place without a work queue does; its results name their place,
// as the queue's dispatcher's do.
type placedDispatcher struct {
	central rules.Place
	fail    string // a service
}

func (p placedDispatcher) Dispatch(_ context.Context, push ecrevent.Push, jobs []Job) (Summary, error) {
	sum := Summary{EventID: push.EventID}
	for _, j := range jobs {
		at := j.Target.Where(p.central)
		res := Result{Rule: j.Rule.Name, Account: at.Account, Region: at.Region, Cluster: j.Target.Cluster, Service: j.Target.Service,
			Outcome: Queued}
		if j.Target.Service == p.fail {
			res.Outcome, res.Reason = Failed, "no work queue for place "+at.String()+" (the stack makes one per target place)"
		}
		sum.Results = append(sum.Results, res)
	}
	return sum, nil
}

// failEnds fails the first n counts of an end (the rollout's transaction
// that records it) with an error the store does not retry, as DynamoDB's
// 5xx after the SDK's retries.
type failEnds struct {
	*dynamodb.Client
	mu sync.Mutex
	n  int
}

func (f *failEnds) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	if len(in.TransactItems) == 2 && in.TransactItems[1].Update != nil && strings.Contains(aws.ToString(in.TransactItems[1].Update.UpdateExpression), "ADD ended") {
		f.mu.Lock()
		fail := f.n > 0
		f.n--
		f.mu.Unlock()
		if fail {
			return nil, &smithy.GenericAPIError{Code: "InternalServerError", Message: "Internal server error", Fault: smithy.FaultServer}
		}
	}
	return f.Client.TransactWriteItems(ctx, in, o...)
}

// A target the dispatcher never queued (its place has no work queue) ends
// in its rule's rollout, so the rule's notice goes when the other target's
// deployment ends; being the rollout's first failure, it is told at once,
// and not again per target. When its end cannot be recorded, the push
// fails its invocation (Lambda retries it) and the retry ends it: one first
// failure, one rule notice, however often the push is delivered.
func TestADispatchFailureEndsItsRollout(t *testing.T) {
	tests := []struct {
		name      string
		failEnds  int // the ends of web-worker whose record fails
		wantError []bool
	}{
		{"ended at once, the push delivered twice", 0, []bool{false, false}},
		{"its end not recorded: the push fails, its retry ends it", 1, []bool{true, false, false}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := testenv.StartMoto(t)
			db := &failEnds{Client: testenv.SerialDynamoDB(m.AWSConfig()), n: tc.failEnds}
			store := history.NewStore(db, m.CreateTable(t, "autodeploy"))
			ctx := context.Background()
			f := newFixture(t)
			notices := &titles{}
			f.d.Notifier, f.d.Rollouts = notices, store
			f.d.Dispatcher = placedDispatcher{central: f.d.Central, fail: "web-worker"}
			ev := pushEvent(t, "web", "main-ggg000"+string(rune('1'+i)), t0)
			for n, wantErr := range tc.wantError {
				if _, err := f.d.Handle(ctx, ev); (err != nil) != wantErr {
					t.Fatalf("delivery %d: error %v, want one: %v", n+1, err, wantErr)
				}
			}
			tag := "web:main-ggg000" + string(rune('1'+i))
			first := []string{"staging/web-worker NOT deployed " + tag}
			if diff := cmp.Diff(first, notices.list()); diff != "" {
				t.Fatalf("notices before staging/web's deployment ended (-want +got):\n%s", diff)
			}
			push, err := ecrevent.Parse(ev)
			if err != nil {
				t.Fatal(err)
			}
			end := history.RolloutEnd{ServiceKey: history.ServiceKey("123456789012", "eu-west-1", "staging", "web"),
				Account: "123456789012", Region: "eu-west-1", Cluster: "staging", Service: "web", Outcome: notify.Completed, At: time.Now()}
			if tracked, err := notify.EndTarget(ctx, store, notices, f.d.Log, "web-staging", push.EventID, end, time.Now()); err != nil || !tracked {
				t.Fatalf("staging/web's end: %v, %v", tracked, err)
			}
			want := append(first, "rule web-staging deployed "+tag+" to 1 of 2 services, 1 FAILED")
			if diff := cmp.Diff(want, notices.list()); diff != "" {
				t.Errorf("notices (-want +got):\n%s", diff)
			}
		})
	}
}
