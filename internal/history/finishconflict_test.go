package history

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/lock"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

// conflictOnce cancels the first transaction that touches a service's state
// item with TransactionConflict, as DynamoDB does while another transaction
// on it is under way (the watcher's SetOutcome, which now writes the state
// item on every ended deployment: DELETE under_way).
type conflictOnce struct {
	dynamoAPI
	done atomic.Bool
}

func (c *conflictOnce) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, f ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	ks := txKeys(in)
	for _, k := range ks {
		if strings.HasSuffix(k, "|state") {
			if c.done.CompareAndSwap(false, true) {
				reasons := make([]types.CancellationReason, len(ks))
				for i := range reasons {
					reasons[i].Code = aws.String("None")
				}
				reasons[len(ks)-1].Code = aws.String("TransactionConflict")
				return nil, &types.TransactionCanceledException{Message: aws.String("Transaction cancelled, please refer cancellation reasons for specific reasons [None, TransactionConflict]"), CancellationReasons: reasons}
			}
		}
	}
	return c.dynamoAPI.TransactWriteItems(ctx, in, f...)
}

// Finish meets one TransactionConflict on the state item (a fake above
// moto, whose suite serialises calls and never conflicts): like the other
// transactions it goes through Store.transact and tries again, so the
// deploy's history is written, not left to a retry and the repair path.
func TestFinishOutlastsATransactionConflict(t *testing.T) {
	m := testenv.StartMoto(t)
	table := m.CreateTable(t, "autodeploy")
	db := &conflictOnce{dynamoAPI: dynamodb.NewFromConfig(m.AWSConfig())}
	store := NewStore(db, table)
	services := NewServices(lock.New(dynamodb.NewFromConfig(m.AWSConfig()), table), store)
	ctx := context.Background()
	key := ServiceKey(testenv.Account, testenv.Region, "c", "s")
	at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	rec := Record{Rule: "r", Repository: "web", Digest: "sha256:d", Account: testenv.Account, Region: testenv.Region,
		Cluster: "c", Service: "s", ToTaskDefinition: "td:2", DeploymentID: "ecs-svc/2", EventID: "e1", Outcome: "deployed",
		PushedAt: at, DeployedAt: at}
	held, err := services.Take(ctx, key, "first")
	if err != nil {
		t.Fatal(err)
	}
	if err := held.Finish(ctx, rec); err != nil {
		t.Errorf("Finish on one TransactionConflict: %v; want it tried again as Store.transact does", err)
	}
	if !db.done.Load() {
		t.Fatal("no conflict played: the state item's key is not as assumed")
	}
}
