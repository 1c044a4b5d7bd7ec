package history

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/lock"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

func TestStoreRoundTrip(t *testing.T) {
	t.Parallel()
	m := testenv.StartMoto(t)
	store := NewStore(dynamodb.NewFromConfig(m.AWSConfig()), m.CreateTable(t, "autodeploy"))
	ctx := context.Background()
	at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	rec := func(i int, deployment string) Record {
		return Record{
			Rule: "web-staging", Repository: "web", Tag: "main-" + string(rune('a'+i)), Digest: "sha256:x",
			Account: testenv.Account, Region: testenv.Region, Cluster: "staging", Service: "web",
			Containers: []string{"app"}, FromTaskDefinition: "td:1", ToTaskDefinition: "td:2",
			DeploymentID: deployment, EventID: "e" + string(rune('a'+i)), Outcome: "deployed",
			PushedAt: at.Add(time.Duration(i) * time.Minute), DeployedAt: at.Add(time.Duration(i)*time.Minute + time.Second),
		}
	}
	want := []Record{rec(0, "ecs-svc/1"), rec(1, ""), rec(2, "ecs-svc/3")}
	for _, r := range want {
		if err := store.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	// Another service's history must not show up.
	other := rec(3, "ecs-svc/4")
	other.Service = "api"
	if err := store.Put(ctx, other); err != nil {
		t.Fatal(err)
	}

	got, err := store.Recent(ctx, ServiceKey(testenv.Account, testenv.Region, "staging", "web"), 10)
	if err != nil {
		t.Fatal(err)
	}
	newestFirst := []Record{want[2], want[1], want[0]}
	if diff := cmp.Diff(newestFirst, got); diff != "" {
		t.Errorf("Recent (-want +got):\n%s", diff)
	}

	byID, found, err := store.ByDeployment(ctx, "ecs-svc/3")
	if err != nil || !found {
		t.Fatalf("ByDeployment = %v, %v", found, err)
	}
	if diff := cmp.Diff(want[2], byID); diff != "" {
		t.Errorf("ByDeployment (-want +got):\n%s", diff)
	}
	if _, found, err := store.ByDeployment(ctx, "ecs-svc/unknown"); found || err != nil {
		t.Errorf("unknown deployment: found=%v err=%v", found, err)
	}
}

func TestOutcomesAndPromotionBookkeeping(t *testing.T) {
	t.Parallel()
	m := testenv.StartMoto(t)
	store := NewStore(dynamodb.NewFromConfig(m.AWSConfig()), m.CreateTable(t, "autodeploy"))
	ctx := context.Background()
	at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	rec := Record{Rule: "r", Repository: "web", Account: testenv.Account, Region: testenv.Region, Cluster: "c", Service: "s",
		DeploymentID: "ecs-svc/1", EventID: "e1", Outcome: "deployed", PushedAt: at, DeployedAt: at.Add(time.Second)}
	if err := store.Put(ctx, rec); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		outcome  string
		recorded bool
	}{
		{Failed, true},     // circuit breaker gave up
		{Failed, false},    // duplicate delivery
		{RolledBack, true}, // and rolled back: a rollback follows a failure
		{Completed, false}, // nothing overrides a rollback
		{RolledBack, false},
	}
	for i, st := range steps {
		got, err := store.SetOutcome(ctx, rec, st.outcome, "why", at.Add(time.Minute))
		if err != nil || got != st.recorded {
			t.Fatalf("step %d SetOutcome(%s) = %v, %v; want %v", i, st.outcome, got, err, st.recorded)
		}
	}
	for _, read := range []func() (Record, error){
		func() (Record, error) { r, _, err := store.ByDeployment(ctx, "ecs-svc/1"); return r, err },
		func() (Record, error) {
			rs, err := store.Recent(ctx, ServiceKey(testenv.Account, testenv.Region, "c", "s"), 1)
			if len(rs) == 0 {
				return Record{}, err
			}
			return rs[0], err
		},
	} {
		got, err := read()
		if err != nil || got.DeploymentOutcome != RolledBack || !got.FinishedAt.Equal(at.Add(time.Minute)) {
			t.Errorf("recorded outcome = %q at %s, %v", got.DeploymentOutcome, got.FinishedAt, err)
		}
	}
	if ok, err := store.SetOutcome(ctx, Record{Account: "1", Region: "r", Cluster: "c", Service: "gone", DeploymentID: "x", DeployedAt: at}, Completed, "", at); ok || err != nil {
		t.Errorf("outcome of an unknown record: %v, %v", ok, err)
	}

	// Two targets; "a" is delivered twice and counts once. The targets'
	// names are read only once the count reached them.
	for i, step := range []struct {
		key  string
		want Progress
	}{
		{"a", Progress{Completed: 1}},
		{"a", Progress{Completed: 1}},
		{"b", Progress{Completed: 2, Done: []string{"a", "b"}}},
		{"b", Progress{Completed: 2, Done: []string{"a", "b"}}},
	} {
		got, err := store.MarkTargetCompleted(ctx, "r", "sha256:d", step.key, 2, at)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(step.want, got); diff != "" {
			t.Errorf("completion %d (%s) (-want +got):\n%s", i+1, step.key, diff)
		}
	}
}

func TestPromotionClaims(t *testing.T) {
	t.Parallel()
	m := testenv.StartMoto(t)
	store := NewStore(dynamodb.NewFromConfig(m.AWSConfig()), m.CreateTable(t, "autodeploy"))
	ctx := context.Background()
	now := time.Now()
	steps := []struct {
		name  string
		owner string
		at    time.Time
		want  Claim
		other string
	}{
		{"first event claims", "e1", now, Claimed, ""},
		{"another event finds it claimed", "e2", now, ClaimedByOther, "e1"},
		{"a retry of the claiming event takes its own claim again", "e1", now.Add(time.Minute), Claimed, ""},
		{"a stale claim (its watcher died) is taken over", "e2", now.Add(time.Minute + ClaimStale + time.Second), Claimed, ""},
		{"the dead watcher's retry now finds it claimed", "e1", now.Add(time.Minute + ClaimStale + 2*time.Second), ClaimedByOther, "e2"},
	}
	for _, st := range steps {
		got, other, err := store.ClaimPromotion(ctx, "r", "sha256:d", st.owner, st.at)
		if err != nil || got != st.want || other != st.other {
			t.Fatalf("%s: ClaimPromotion = %v, %q, %v; want %v, %q", st.name, got, other, err, st.want, st.other)
		}
	}
	// Releasing someone else's claim leaves it; the owner's release frees it.
	if err := store.ReleasePromotion(ctx, "r", "sha256:d", "e1"); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := store.ClaimPromotion(ctx, "r", "sha256:d", "e3", now); got != ClaimedByOther {
		t.Fatalf("after a release by a non-owner: %v, want ClaimedByOther", got)
	}
	if err := store.ReleasePromotion(ctx, "r", "sha256:d", "e2"); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := store.ClaimPromotion(ctx, "r", "sha256:d", "e3", now); got != Claimed {
		t.Fatalf("after the owner's release: %v, want Claimed", got)
	}
	if err := store.PromotionDone(ctx, "r", "sha256:d"); err != nil {
		t.Fatal(err)
	}
	for _, owner := range []string{"e3", "e4"} {
		if got, _, _ := store.ClaimPromotion(ctx, "r", "sha256:d", owner, now.Add(time.Hour)); got != AlreadyPromoted {
			t.Fatalf("%s after done: %v, want AlreadyPromoted", owner, got)
		}
	}
}

// TestWritesWhoseResponseWasLost: moto applies each write, a proxy loses
// its answer, the SDK retries the same request; each must count as done.
func TestWritesWhoseResponseWasLost(t *testing.T) {
	t.Parallel()
	m := testenv.StartMoto(t)
	table := m.CreateTable(t, "autodeploy")
	proxy := testenv.StartProxy(t, m.Endpoint)
	store := NewStore(dynamodb.NewFromConfig(proxy.Config(m.AWSConfig())), table)
	ctx := context.Background()
	at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	rec := Record{Rule: "r", Repository: "web", Digest: "sha256:d", Account: testenv.Account, Region: testenv.Region,
		Cluster: "c", Service: "s", DeploymentID: "ecs-svc/1", EventID: "e1", Outcome: "deployed", PushedAt: at, DeployedAt: at}
	if err := store.Put(ctx, rec); err != nil {
		t.Fatal(err)
	}

	proxy.Lose("TransactWriteItems", 1)
	recorded, err := store.SetOutcome(ctx, rec, Completed, "", at)
	if err != nil || !recorded || proxy.Lost("TransactWriteItems") != 1 {
		t.Fatalf("SetOutcome whose answer was lost = %v, %v (lost %d); want recorded", recorded, err, proxy.Lost("TransactWriteItems"))
	}
	if again, err := store.SetOutcome(ctx, rec, Completed, "", at); again || err != nil {
		t.Fatalf("a second delivery = %v, %v; want not recorded", again, err)
	}

	proxy.Lose("UpdateItem", 1)
	claim, _, err := store.ClaimPromotion(ctx, "r", "sha256:d", "e1", time.Now())
	if err != nil || claim != Claimed || proxy.Lost("UpdateItem") != 1 {
		t.Fatalf("ClaimPromotion whose answer was lost = %v, %v; want Claimed", claim, err)
	}
}

// TestServiceState: the state item a deploy reads when it locks, as the
// deployer (Finish) and the watcher (SetOutcome) write it; against moto.
func TestServiceState(t *testing.T) {
	t.Parallel()
	m := testenv.StartMoto(t)
	table := m.CreateTable(t, "autodeploy")
	db := dynamodb.NewFromConfig(m.AWSConfig())
	store := NewStore(db, table)
	locks := lock.New(db, table)
	services := NewServices(locks, store)
	ctx := context.Background()
	key := ServiceKey(testenv.Account, testenv.Region, "c", "s")
	at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	rec := Record{Rule: "r", Repository: "web", Digest: "sha256:bad", Account: testenv.Account, Region: testenv.Region,
		Cluster: "c", Service: "s", ToTaskDefinition: "td:2", DeploymentID: "ecs-svc/2", EventID: "e1", Outcome: "deployed",
		PushedAt: at, DeployedAt: at}

	held, err := services.Take(ctx, key, "first")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ServiceState{}, held.State()); diff != "" {
		t.Errorf("new service's state (-want +got):\n%s", diff)
	}
	if err := held.Finish(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if recorded, err := store.SetOutcome(ctx, rec, RolledBack, "circuit breaker", at); !recorded || err != nil {
		t.Fatalf("SetOutcome = %v, %v", recorded, err)
	}
	held, err = services.Take(ctx, key, "second")
	if err != nil {
		t.Fatalf("Finish did not release the lock: %v", err)
	}
	want := ServiceState{FailedDigests: []string{"sha256:bad"}, LastTaskDefinition: "td:2"}
	if diff := cmp.Diff(want, held.State()); diff != "" {
		t.Errorf("state after a rolled-back deploy (-want +got):\n%s", diff)
	}
	failure := rec
	failure.Outcome, failure.EventID, failure.DeploymentID, failure.DeployedAt = "failed", "e2", "", at.Add(time.Minute)
	if err := held.Finish(ctx, failure); err != nil {
		t.Fatal(err)
	}

	// A later deploy of the digest that completes clears it.
	again := rec
	again.DeploymentID, again.EventID, again.DeployedAt = "ecs-svc/3", "e3", at.Add(2*time.Minute)
	if err := store.Put(ctx, again); err != nil {
		t.Fatal(err)
	}
	if recorded, err := store.SetOutcome(ctx, again, Completed, "", at); !recorded || err != nil {
		t.Fatalf("SetOutcome = %v, %v", recorded, err)
	}
	held, err = services.Take(ctx, key, "third")
	if err != nil {
		t.Fatal(err)
	}
	want = ServiceState{LastTaskDefinition: "td:2", LastFailures: map[string]string{"r": FailureKey("e2", "r")}}
	if diff := cmp.Diff(want, held.State()); diff != "" {
		t.Errorf("state after a failure and a completion (-want +got):\n%s", diff)
	}

	// A holder that lost its lock still writes its record.
	brief := lock.New(db, table)
	brief.Lease = 200 * time.Millisecond
	_ = held.Release(ctx)
	stale, err := NewServices(brief, store).Take(ctx, key, "stalled")
	if err != nil {
		t.Fatal(err)
	}
	stale.(*heldLock).lease.Stop() // stalls: no more renewals
	next, err := NewServices(brief, store).Take(ctx, key, "next")
	if err != nil {
		t.Fatal(err)
	}
	late := rec
	late.EventID, late.DeploymentID, late.ToTaskDefinition, late.DeployedAt = "e4", "ecs-svc/4", "td:4", at.Add(3*time.Minute)
	if err := stale.Finish(ctx, late); err != nil {
		t.Fatalf("Finish after the lock was lost: %v", err)
	}
	if _, found, err := store.ByDeployment(ctx, "ecs-svc/4"); !found || err != nil {
		t.Errorf("the stalled holder's record was lost: found=%v err=%v", found, err)
	}
	if err := next.Release(ctx); err != nil {
		t.Errorf("the new holder's lock was released by the stalled one: %v", err)
	}
}

func TestServiceKeyNamesAServiceAlikeByNameOrARN(t *testing.T) {
	t.Parallel()
	byName := ServiceKey("123456789012", "eu-west-1", "prod", "web")
	byARN := ServiceKey("123456789012", "eu-west-1", "arn:aws:ecs:eu-west-1:123456789012:cluster/prod",
		"arn:aws:ecs:eu-west-1:123456789012:service/prod/web")
	if byName != byARN {
		t.Errorf("ServiceKey by ARN = %q, by name = %q; the CLI and the deployer would lock different keys", byARN, byName)
	}
}
