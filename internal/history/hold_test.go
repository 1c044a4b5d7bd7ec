package history

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/lock"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

// Against moto: a hold lands on the state item the deployer reads when it
// locks, beside what the lock and the watcher keep there; resume lifts it;
// States reads many services' state at once.
func TestHoldsAndStates(t *testing.T) {
	t.Parallel()
	_, _, store, services := servicesOnMoto(t)
	ctx := context.Background()
	key := ServiceKey(testenv.Account, testenv.Region, "prod", "web")
	at := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	hold := Hold{By: "alice", At: at, Reason: "incident 4711"}

	if _, err := store.PlaceHold(ctx, key, hold, false); err != nil {
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

	was, err := store.LiftHold(ctx, key, "bob", at.Add(time.Hour))
	if err != nil || was == nil || was.By != "alice" {
		t.Fatalf("LiftHold = %+v, %v; want alice's hold", was, err)
	}
	if was, err := store.LiftHold(ctx, key, "bob", at.Add(2*time.Hour)); err != nil || was != nil {
		t.Errorf("second LiftHold = %+v, %v; want nothing to lift", was, err)
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

// Against moto, through a proxy that can lose answers: a second hold is
// refused, a replacing one keeps the first in its event, resume lifts it;
// each write whose answer was lost counts as done once; the events list
// newest first and never appear among the deploys the watcher, rollback and
// status read.
func TestPlaceAndLiftHold(t *testing.T) {
	t.Parallel()
	m := testenv.StartMoto(t)
	table := m.CreateTable(t, "autodeploy")
	proxy := testenv.StartProxy(t, m.Endpoint)
	db := dynamodb.NewFromConfig(proxy.Config(m.AWSConfig()))
	store := NewStore(db, table)
	ctx := context.Background()
	key := ServiceKey(testenv.Account, testenv.Region, "prod", "web")
	at := time.Date(2026, 11, 26, 10, 0, 0, 123456789, time.UTC)
	alice := Hold{By: "alice", At: at, Reason: "incident 4711"}
	bob := Hold{By: "bob", At: at.Add(time.Minute), Reason: "load test"}

	proxy.Lose("TransactWriteItems", 1)
	if prev, err := store.PlaceHold(ctx, key, alice, false); err != nil || prev != nil || proxy.Lost("TransactWriteItems") != 1 {
		t.Fatalf("PlaceHold whose answer was lost = %v, %v (lost %d); want placed", prev, err, proxy.Lost("TransactWriteItems"))
	}
	_, err := store.PlaceHold(ctx, key, bob, false)
	var already *AlreadyHeldError
	if !errors.As(err, &already) || already.Hold.By != "alice" {
		t.Fatalf("second PlaceHold = %v; want refused, naming alice's hold", err)
	}
	prev, err := store.PlaceHold(ctx, key, bob, true)
	if err != nil || prev == nil || *prev != alice {
		t.Fatalf("replacing PlaceHold = %+v, %v; want alice's hold replaced", prev, err)
	}
	proxy.Lose("TransactWriteItems", 1)
	lifted, err := store.LiftHold(ctx, key, "carol", at.Add(2*time.Minute))
	if err != nil || lifted == nil || *lifted != bob || proxy.Lost("TransactWriteItems") != 2 {
		t.Fatalf("LiftHold whose answer was lost = %+v, %v; want bob's hold lifted", lifted, err)
	}
	if again, err := store.LiftHold(ctx, key, "carol", at.Add(3*time.Minute)); err != nil || again != nil {
		t.Fatalf("second LiftHold = %+v, %v; want nothing to lift", again, err)
	}

	evs, err := store.HoldEvents(ctx, key, 10)
	if err != nil {
		t.Fatal(err)
	}
	want := []HoldEvent{
		{Action: HoldLifted, By: "carol", At: at.Add(2 * time.Minute), Previous: &bob},
		{Action: HoldPlaced, By: "bob", At: bob.At, Reason: "load test", Previous: &alice},
		{Action: HoldPlaced, By: "alice", At: at, Reason: "incident 4711"},
	}
	if diff := cmp.Diff(want, evs, cmpopts.IgnoreFields(HoldEvent{}, "Token")); diff != "" {
		t.Errorf("hold events, newest first (-want +got):\n%s", diff)
	}
	if recs, err := store.Recent(ctx, key, 10); err != nil || len(recs) != 0 {
		t.Errorf("Recent = %+v, %v; want no deploys (holds are not deploys)", recs, err)
	}
}

// Hold events sort by time in the table, so a limit keeps the newest: with
// RFC3339Nano keys "…00.5Z" sorted after "…00.55Z".
func TestHoldEventsNewestFirstWithinASecond(t *testing.T) {
	t.Parallel()
	m := testenv.StartMoto(t)
	table := m.CreateTable(t, "autodeploy")
	store := NewStore(dynamodb.NewFromConfig(m.AWSConfig()), table)
	ctx := context.Background()
	key := ServiceKey(testenv.Account, testenv.Region, "prod", "web")
	base := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	if _, err := store.PlaceHold(ctx, key, Hold{By: "alice", At: base.Add(500 * time.Millisecond), Reason: "x"}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := store.LiftHold(ctx, key, "bob", base.Add(550*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	evs, err := store.HoldEvents(ctx, key, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Action != HoldLifted {
		t.Errorf("newest hold event with limit 1: %+v, want the resume", evs)
	}
}

// servicesOnMoto is a state table on moto, its client, and the store and
// the services (lease and state item) on it.
func servicesOnMoto(t *testing.T) (*dynamodb.Client, string, *Store, *Services) {
	t.Helper()
	m := testenv.StartMoto(t)
	table := m.CreateTable(t, "autodeploy")
	db := dynamodb.NewFromConfig(m.AWSConfig())
	store := NewStore(db, table)
	return db, table, store, NewServices(lock.New(db, table), store)
}
