package history

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/lock"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

// Against moto: a hold lands on the state item the deployer reads when it
// locks, beside what the lock and the watcher keep there; resume lifts it;
// States reads many services' state at once.
func TestHoldsAndStates(t *testing.T) {
	m := testenv.StartMoto(t)
	table := m.CreateTable(t, "autodeploy")
	db := dynamodb.NewFromConfig(m.AWSConfig())
	store := NewStore(db, table)
	services := NewServices(lock.New(db, table), store)
	ctx := context.Background()
	key := ServiceKey(testenv.Account, testenv.Region, "prod", "web")
	at := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	hold := Hold{By: "alice", At: at, Reason: "incident 4711"}

	if err := store.SetHold(ctx, key, hold); err != nil {
		t.Fatal(err)
	}
	held, err := services.Take(ctx, key, "deploy")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&hold, held.State().Hold); diff != "" {
		t.Errorf("hold read at lock time (-want +got):\n%s", diff)
	}
	if got := held.State().Hold.String(); got != "held by alice since 2026-11-26T10:00:00Z: incident 4711" {
		t.Errorf("reason = %q", got)
	}
	// A hold set while a deploy holds the lock stays when the deploy finishes.
	rec := Record{Rule: "r", Repository: "web", Digest: "sha256:1", Account: testenv.Account, Region: testenv.Region,
		Cluster: "prod", Service: "web", ToTaskDefinition: "td:2", EventID: "e1", Outcome: "deployed", PushedAt: at, DeployedAt: at}
	if err := held.Finish(ctx, rec); err != nil {
		t.Fatal(err)
	}

	var keys []string
	for i := range 130 { // more than one BatchGetItem holds
		keys = append(keys, ServiceKey(testenv.Account, testenv.Region, "c", fmt.Sprintf("s%03d", i)))
	}
	states, err := store.States(ctx, append(keys, key))
	if err != nil {
		t.Fatal(err)
	}
	if len(states) != 131 || states[key].Hold == nil || states[key].LastTaskDefinition != "td:2" || states[keys[7]].Hold != nil {
		t.Errorf("states: %d, held %+v, other %+v", len(states), states[key], states[keys[7]])
	}

	was, err := store.Resume(ctx, key)
	if err != nil || was == nil || was.By != "alice" {
		t.Fatalf("Resume = %+v, %v; want alice's hold", was, err)
	}
	if was, err := store.Resume(ctx, key); err != nil || was != nil {
		t.Errorf("second Resume = %+v, %v; want nothing to lift", was, err)
	}
	held, err = services.Take(ctx, key, "deploy-2")
	if err != nil {
		t.Fatal(err)
	}
	if held.State().Hold != nil || held.State().LastTaskDefinition != "td:2" {
		t.Errorf("after resume: %+v", held.State())
	}
	_ = held.Release(ctx)
}
