package history

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

// Against moto: a sweep's note of a queued item lands on the state item
// (one never deployed too), is read by States and by the deployer's lock,
// survives a deploy's Finish and a hold beside it, and writing it twice (a
// retry) leaves one note; a later note replaces it.
func TestNoteQueued(t *testing.T) {
	t.Parallel()
	_, _, store, services := servicesOnMoto(t)
	ctx := context.Background()
	key := ServiceKey(testenv.Account, testenv.Region, "prod", "web")
	at := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	note := Queued{Digest: "sha256:1", At: at, By: "sweep-1"}

	for range 2 { // the second is a retry of the first
		if err := store.NoteQueued(ctx, key, note); err != nil {
			t.Fatal(err)
		}
	}
	hold := Hold{By: "alice", At: at, Reason: "incident"}
	if _, err := store.PlaceHold(ctx, key, hold, false); err != nil {
		t.Fatal(err)
	}
	held, err := services.Take(ctx, key, "deploy")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&note, held.State().Queued); diff != "" {
		t.Errorf("note read at lock time (-want +got):\n%s", diff)
	}
	rec := Record{Rule: "r", Repository: "web", Digest: "sha256:1", Account: testenv.Account, Region: testenv.Region,
		Cluster: "prod", Service: "web", ToTaskDefinition: "td:2", EventID: "e1", Outcome: "deployed", PushedAt: at, DeployedAt: at}
	if err := held.Finish(ctx, rec); err != nil {
		t.Fatal(err)
	}
	states, err := store.States(ctx, []string{key})
	if err != nil {
		t.Fatal(err)
	}
	want := ServiceState{LastTaskDefinition: "td:2", Hold: &hold, Queued: &note}
	if diff := cmp.Diff(want, states[key]); diff != "" {
		t.Errorf("state after the deploy (-want +got):\n%s", diff)
	}

	next := Queued{Digest: "sha256:2", At: at.Add(time.Hour), By: "sweep-7"}
	if err := store.NoteQueued(ctx, key, next); err != nil {
		t.Fatal(err)
	}
	states, err = store.States(ctx, []string{key})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&next, states[key].Queued); diff != "" {
		t.Errorf("a later note (-want +got):\n%s", diff)
	}
}

func TestQueuedWaiting(t *testing.T) {
	at := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	q := &Queued{Digest: "sha256:1", At: at, By: "sweep-1"}
	tests := []struct {
		name   string
		q      *Queued
		digest string
		now    time.Time
		want   bool
	}{
		{"same digest, young", q, "sha256:1", at.Add(time.Hour), true},
		{"same digest, as old as the span", q, "sha256:1", at.Add(2 * time.Hour), false},
		{"another digest", q, "sha256:2", at.Add(time.Minute), false},
		{"no note", nil, "sha256:1", at, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.q.Waiting(tt.digest, tt.now, 2*time.Hour); got != tt.want {
				t.Errorf("Waiting = %v, want %v", got, tt.want)
			}
		})
	}
}
