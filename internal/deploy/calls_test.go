package deploy

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/lock"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

// callCount counts the state table's calls by operation.
type callCount struct {
	*dynamodb.Client
	mu  sync.Mutex
	ops map[string]int
}

func (c *callCount) note(op string) { c.mu.Lock(); c.ops[op]++; c.mu.Unlock() }

func (c *callCount) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	c.note("UpdateItem")
	return c.Client.UpdateItem(ctx, in, o...)
}
func (c *callCount) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	c.note("PutItem")
	return c.Client.PutItem(ctx, in, o...)
}
func (c *callCount) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	c.note("TransactWriteItems")
	return c.Client.TransactWriteItems(ctx, in, o...)
}
func (c *callCount) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	c.note("GetItem")
	return c.Client.GetItem(ctx, in, o...)
}
func (c *callCount) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	c.note("Query")
	return c.Client.Query(ctx, in, o...)
}

// DESIGN "Deploying one target" step 8: one target costs exactly the lock
// write, the four ECS calls and one transaction — also with rollouts kept,
// when no deployment of ours may be under way on the service (the state item
// read with the lock says so): its first deploy, and one after its last
// deployment ended. Only a deploy that replaces one under way reads the
// service's records to end it superseded. State table calls against moto.
func TestOneTargetCostsTheLockWriteAndOneTransaction(t *testing.T) {
	m := testenv.StartMoto(t)
	table := m.CreateTable(t, "autodeploy")
	db := &callCount{Client: testenv.SerialDynamoDB(m.AWSConfig()), ops: map[string]int{}}
	store := history.NewStore(db, table)
	f := newFixture(t)
	f.d.Rollouts = store
	f.d.Services = history.NewServices(lock.New(db, table), store)
	ctx := context.Background()
	deploy := func(tag string, at time.Time) Result {
		t.Helper()
		db.mu.Lock()
		db.ops = map[string]int{}
		db.mu.Unlock()
		sum, err := f.d.Handle(ctx, pushEvent(t, "web", tag, at)) // web-prod: one target
		if err != nil || len(sum.Results) != 1 || sum.Results[0].Outcome != Deployed {
			t.Fatalf("%s: %+v, %v", tag, sum.Results, err)
		}
		return sum.Results[0]
	}
	want := map[string]int{"UpdateItem": 1, "TransactWriteItems": 1}
	first := deploy("v1.0.0", t0)
	if diff := cmp.Diff(want, db.ops); diff != "" {
		t.Errorf("first deploy: state table calls (-want +got):\n%s", diff)
	}
	rec, _, err := store.ByDeployment(ctx, first.DeploymentID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.SetOutcome(ctx, rec, history.Completed, "", t0.Add(time.Minute)); err != nil { // the watcher
		t.Fatal(err)
	}
	deploy("v1.0.1", t0.Add(2*time.Minute))
	if diff := cmp.Diff(want, db.ops); diff != "" {
		t.Errorf("deploy after the last deployment ended: state table calls (-want +got):\n%s", diff)
	}
	// v1.0.1's deployment is under way: v1.0.2 replaces it and ends it
	// superseded, which reads the service's records once.
	second := deploy("v1.0.2", t0.Add(3*time.Minute))
	if db.ops["Query"] != 1 {
		t.Errorf("deploy replacing one under way: %v, want one Query", db.ops)
	}
	states, err := store.States(ctx, []string{history.ServiceKey(first.Account, first.Region, first.Cluster, first.Service)})
	if err != nil {
		t.Fatal(err)
	}
	if got := states[history.ServiceKey(first.Account, first.Region, first.Cluster, first.Service)].UnderWay; len(got) != 1 || got[0] != second.DeploymentID {
		t.Errorf("under way after v1.0.2: %v, want only %s", got, second.DeploymentID)
	}
}
