package history

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

func TestStoreRoundTrip(t *testing.T) {
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

	for i, key := range []string{"a", "b", "a"} {
		keys, err := store.MarkTargetCompleted(ctx, "r", "sha256:d", key, at)
		if err != nil {
			t.Fatal(err)
		}
		if want := min(i+1, 2); len(keys) != want {
			t.Errorf("after %d completions: %v", i+1, keys)
		}
	}
	first, err1 := store.ClaimPromotion(ctx, "r", "sha256:d", at)
	second, err2 := store.ClaimPromotion(ctx, "r", "sha256:d", at)
	if !first || second || err1 != nil || err2 != nil {
		t.Errorf("claims = %v, %v (%v, %v); want exactly one", first, second, err1, err2)
	}
	if err := store.ReleasePromotion(ctx, "r", "sha256:d"); err != nil {
		t.Fatal(err)
	}
	if again, _ := store.ClaimPromotion(ctx, "r", "sha256:d", at); !again {
		t.Error("a released claim cannot be taken again")
	}
}
