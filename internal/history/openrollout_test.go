package history

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

// opCount counts the store's writes by operation.
type opCount struct {
	dynamoAPI
	mu sync.Mutex
	n  map[string]int
}

func (c *opCount) note(op string) { c.mu.Lock(); c.n[op]++; c.mu.Unlock() }

func (c *opCount) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	c.note("PutItem")
	return c.dynamoAPI.PutItem(ctx, in, o...)
}

func (c *opCount) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	c.note("UpdateItem")
	return c.dynamoAPI.UpdateItem(ctx, in, o...)
}

func (c *opCount) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	c.note("TransactWriteItems")
	return c.dynamoAPI.TransactWriteItems(ctx, in, o...)
}

// A rollout of fewer than 100 targets opens in one call on the push's path
// before its fan-out (header and target items in one transaction); opening
// it again (the intake's retry, a redelivery) writes nothing and keeps what
// an end counted. Against moto.
func TestSmallRolloutOpensInOneCall(t *testing.T) {
	m := testenv.StartMoto(t)
	db := &opCount{dynamoAPI: dynamodb.NewFromConfig(m.AWSConfig()), n: map[string]int{}}
	store := NewStore(db, m.CreateTable(t, "autodeploy"))
	ctx := context.Background()
	now := time.Now()
	if err := store.OpenRollout(ctx, Rollout{Rule: "fleet", EventID: "push-1"}, targetsOf(20), now); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]int{"TransactWriteItems": 1}, db.n); diff != "" {
		t.Errorf("calls to open 20 targets (-want +got):\n%s", diff)
	}
	got, err := store.EndRollout(ctx, "fleet", "push-1", end(0, "skipped"), now)
	if err != nil || !got.Tracked || !got.Counted || got.Rollout.Expected != 20 {
		t.Fatalf("an end after the open: %+v, %v", got, err)
	}
	if err := store.OpenRollout(ctx, Rollout{Rule: "fleet", EventID: "push-1"}, targetsOf(20), now); err != nil {
		t.Fatal(err)
	}
	again, err := store.EndRollout(ctx, "fleet", "push-1", end(1, "skipped"), now)
	if err != nil || again.Rollout.Ended != 2 || again.Rollout.Expected != 20 {
		t.Errorf("after a second open: %+v, %v; want 2 of 20 ended", again.Rollout, err)
	}
}
