package deploy

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

// conflictOnce answers the first "first failure sent" mark with
// TransactionConflictException, as DynamoDB does for a single write on the
// header while another target's end (a transaction on the header) is under
// way, after the SDK's retries.
type conflictOnce struct {
	*dynamodb.Client
	mu   sync.Mutex
	done bool
}

func (c *conflictOnce) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if strings.Contains(aws.ToString(in.UpdateExpression), "SET first_failure_sent") {
		c.mu.Lock()
		first := !c.done
		c.done = true
		c.mu.Unlock()
		if first {
			return nil, &types.TransactionConflictException{Message: aws.String("Transaction is ongoing for the item")}
		}
	}
	return c.Client.UpdateItem(ctx, in, o...)
}

// A lost "sent" mark of the first failure's notice (a conflict past the
// SDK's retries) leaves the permanent failure permanent: the notice went
// out, and a retry of the deploy would only send it again. Store on moto;
// the conflict is a fake above the SDK.
func TestFirstFailureSentMarkLostSendsOnce(t *testing.T) {
	m := testenv.StartMoto(t)
	db := &conflictOnce{Client: testenv.SerialDynamoDB(m.AWSConfig())}
	store := history.NewStore(db, m.CreateTable(t, "autodeploy"))
	ctx := context.Background()
	f := newFixture(t)
	notices := &titles{}
	f.d.Notifier, f.d.Rollouts = notices, store
	delete(f.ecs.services, "staging/web-worker")
	ev := pushEvent(t, "web", "main-aaa0009", t0)
	sum, err := f.d.Handle(ctx, ev)
	for _, r := range sum.Results {
		if r.Service == "web-worker" && r.Retryable {
			t.Errorf("web-worker's permanent failure made Retryable by one conflict: %s", r.Reason)
		}
	}
	if err != nil {
		if _, err := f.d.Handle(ctx, ev); err != nil { // Lambda's retry
			t.Fatal(err)
		}
	}
	want := []string{"staging/web-worker NOT deployed web:main-aaa0009"}
	if diff := cmp.Diff(want, notices.list()); diff != "" {
		t.Errorf("notices (-want +got):\n%s", diff)
	}
}
