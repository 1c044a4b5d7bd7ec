package history

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/lock"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

// Against moto, with DynamoDB's TTL played by testenv.ExpireTTL (moto has
// none): a service deployed 89 days ago, then held, and a digest rolled back
// there, keep their hold and their mark however long the service stays
// quiet; its deploy records still expire after Retention.
func TestStateOutlivesRetention(t *testing.T) {
	t.Parallel()
	m := testenv.StartMoto(t)
	table := m.CreateTable(t, "autodeploy")
	db := dynamodb.NewFromConfig(m.AWSConfig())
	store := NewStore(db, table)
	locks := lock.New(db, table)
	ctx := context.Background()
	key := ServiceKey(testenv.Account, testenv.Region, "prod", "web")
	deployedAt := time.Now().Add(-89 * 24 * time.Hour)
	locks.Now = func() time.Time { return deployedAt }
	services := NewServices(locks, store)

	held, err := services.Take(ctx, key, "evt-1/web")
	if err != nil {
		t.Fatal(err)
	}
	rec := Record{Rule: "web", Account: testenv.Account, Region: testenv.Region, Cluster: "prod", Service: "web",
		Digest: "sha256:bad", ToTaskDefinition: "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:2",
		DeploymentID: "ecs-svc/1", EventID: "evt-1", Outcome: "deployed", DeployedAt: deployedAt}
	if err := held.Finish(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if _, err := store.SetOutcome(ctx, rec, RolledBack, "circuit breaker", deployedAt.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := store.PlaceHold(ctx, key, Hold{By: "alice", At: time.Now(), Reason: "incident"}, false); err != nil {
		t.Fatal(err)
	}

	if n := testenv.ExpireTTL(t, db, table, time.Now().Add(2*24*time.Hour)); n != 2 {
		t.Errorf("expired %d items two days on, want the record's two (service and deployment items)", n)
	}
	states, err := store.States(ctx, []string{key})
	if err != nil {
		t.Fatal(err)
	}
	st := states[key]
	if st.Hold == nil || !st.DigestFailed("sha256:bad") {
		t.Errorf("state after the TTL ran: %+v; want the hold and the rolled-back digest kept", st)
	}
	// Taking the lock later (a push skipped as held) keeps it so.
	locks.Now = time.Now
	again, err := services.Take(ctx, key, "evt-2/web")
	if err != nil {
		t.Fatal(err)
	}
	if err := again.Release(ctx); err != nil {
		t.Fatal(err)
	}
	// Only the hold's own history event expires (it is history).
	if n := testenv.ExpireTTL(t, db, table, time.Now().Add(10*Retention)); n != 1 {
		t.Errorf("expired %d items long after, want only the hold's event", n)
	}
	states, err = store.States(ctx, []string{key})
	if err != nil {
		t.Fatal(err)
	}
	if st := states[key]; st.Hold == nil || !st.DigestFailed("sha256:bad") {
		t.Errorf("the state item expired: %+v", st)
	}
}

// A state item an older version left with an expiry loses it when a hold
// is placed, so the hold does not vanish with it.
func TestHoldClearsAnOlderExpiry(t *testing.T) {
	t.Parallel()
	m := testenv.StartMoto(t)
	table := m.CreateTable(t, "autodeploy")
	db := dynamodb.NewFromConfig(m.AWSConfig())
	store := NewStore(db, table)
	ctx := context.Background()
	key := ServiceKey(testenv.Account, testenv.Region, "prod", "web")
	// An older version's locker left the state item to expire 90 days
	// after a take, 89 days ago.
	if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: map[string]types.AttributeValue{
		"pk":         &types.AttributeValueMemberS{Value: stateKey(key).PK},
		"sk":         &types.AttributeValueMemberS{Value: stateKey(key).SK},
		"expires_at": &types.AttributeValueMemberN{Value: strconv.FormatInt(time.Now().Add(24*time.Hour).Unix(), 10)},
	}}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.PlaceHold(ctx, key, Hold{By: "alice", At: time.Now(), Reason: "incident"}, false); err != nil {
		t.Fatal(err)
	}
	testenv.ExpireTTL(t, db, table, time.Now().Add(2*24*time.Hour))
	if h, err := store.readHold(ctx, key); err != nil || h == nil {
		t.Errorf("hold after the older expiry passed: %v, %v", h, err)
	}
}
