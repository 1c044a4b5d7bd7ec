package history

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

// Against moto: a hook's notice is claimed once; its claimer's retry claims
// it again until it is marked sent; a live claim keeps others out, a dead
// one (past its until) is taken over; once sent nobody claims it.
func TestHookNoticeClaims(t *testing.T) {
	t.Parallel()
	m := testenv.StartMoto(t)
	store := NewStore(dynamodb.NewFromConfig(m.AWSConfig()), m.CreateTable(t, "autodeploy"))
	ctx := context.Background()
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	type step struct {
		what  string
		hook  string
		owner string
		at    time.Time
		sent  bool // mark sent instead of claiming
		want  bool
	}
	for _, s := range []step{
		{what: "first claim", hook: "h1", owner: "evt-1", at: now, want: true},
		{what: "its retry", hook: "h1", owner: "evt-1", at: now.Add(time.Second), want: true},
		{what: "a duplicate while the claimer lives", hook: "h1", owner: "evt-2", at: now.Add(2 * time.Second), want: false},
		{what: "a duplicate after the claimer died", hook: "h1", owner: "evt-2", at: now.Add(ClaimStale + time.Minute), want: true},
		{what: "the dead claimer's mark", hook: "h1", owner: "evt-1", sent: true},
		{what: "the new claimer's mark", hook: "h1", owner: "evt-2", at: now.Add(ClaimStale + time.Minute), sent: true},
		{what: "the new claimer's retry after sending", hook: "h1", owner: "evt-2", at: now.Add(ClaimStale + 2*time.Minute), want: false},
		{what: "anyone much later", hook: "h1", owner: "evt-3", at: now.Add(time.Hour), want: false},
		{what: "another hook of the same deployment", hook: "h2", owner: "evt-3", at: now.Add(time.Hour), want: true},
	} {
		if s.sent {
			if err := store.HookNoticeSent(ctx, s.hook, s.owner, s.at); err != nil {
				t.Fatalf("%s: %v", s.what, err)
			}
			continue
		}
		got, err := store.ClaimHookNotice(ctx, s.hook, s.owner, s.at)
		if err != nil {
			t.Fatalf("%s: %v", s.what, err)
		}
		if got != s.want {
			t.Errorf("%s: claimed %v, want %v", s.what, got, s.want)
		}
	}
}

// Against moto: the service deployment found is written on both items of
// the record, and read back by deployment id and in the service's history.
func TestNoteServiceDeployment(t *testing.T) {
	t.Parallel()
	m := testenv.StartMoto(t)
	store := NewStore(dynamodb.NewFromConfig(m.AWSConfig()), m.CreateTable(t, "autodeploy"))
	ctx := context.Background()
	at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	rec := Record{Rule: "web", Repository: "web", Tag: "v1", Digest: "sha256:x", Account: testenv.Account, Region: testenv.Region,
		Cluster: "prod", Service: "web", ToTaskDefinition: "td:2", DeploymentID: "ecs-svc/1", Rollout: "ECS-native CANARY",
		EventID: "e1", Outcome: "deployed", PushedAt: at, DeployedAt: at.Add(time.Second)}
	if err := store.Put(ctx, rec); err != nil {
		t.Fatal(err)
	}
	const arn = "arn:aws:ecs:eu-west-1:123456789012:service-deployment/prod/web/abc"
	for range 2 { // a retry writes the same
		if err := store.NoteServiceDeployment(ctx, rec, arn); err != nil {
			t.Fatal(err)
		}
	}
	byID, _, err := store.ByDeployment(ctx, "ecs-svc/1")
	if err != nil {
		t.Fatal(err)
	}
	recent, err := store.Recent(ctx, ServiceKey(testenv.Account, testenv.Region, "prod", "web"), 1)
	if err != nil {
		t.Fatal(err)
	}
	want := rec
	want.ServiceDeploymentARN = arn
	if diff := cmp.Diff([]Record{want, want}, []Record{byID, recent[0]}); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
	// A record that was never written is not made up by the note.
	ghost := rec
	ghost.DeploymentID, ghost.EventID = "ecs-svc/404", "e404"
	if err := store.NoteServiceDeployment(ctx, ghost, arn); err == nil {
		t.Error("noting a service deployment on a missing record did not fail")
	}
}
