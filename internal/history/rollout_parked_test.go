package history

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// A target ended as parked (its work item in the dead-letter queue) counts
// once, however often the parked end comes; a later end that is not parked
// (its redrive deployed it) is untracked, for its caller to report, and
// counts nothing, nor changes the end the rule's notice told.
func TestAParkedEndCountsOnceAndLaterEndsAreUntracked(t *testing.T) {
	_, store := newCounting(t)
	ctx := context.Background()
	now := time.Now()
	r := Rollout{Rule: "r", EventID: "push-p", Digest: "sha256:1"}
	if err := store.OpenRollout(ctx, r, targetsOf(2), now); err != nil {
		t.Fatal(err)
	}
	parked := end(1, "not_deployed")
	parked.Parked, parked.Reason = true, "parked in the work dead-letter queue after 10 receives"
	steps := []struct {
		name                   string
		end                    RolloutEnd
		tracked, counted, last bool
	}{
		{"svc-00 fails", end(0, Failed), true, true, false},
		{"svc-01 parks, the last", parked, true, true, true},
		{"svc-01's parked end again", parked, true, false, false},
		{"svc-01's redrive completes", end(1, Completed), false, false, false},
		{"svc-01's redrive's duplicate event", end(1, Completed), false, false, false},
		{"svc-01's redrive rolls back", end(1, RolledBack), false, false, false},
	}
	for _, s := range steps {
		got, err := store.EndRollout(ctx, "r", "push-p", s.end, now)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got.Tracked != s.tracked || got.Counted != s.counted || got.Last != s.last {
			t.Errorf("%s: tracked=%v counted=%v last=%v, want %v %v %v", s.name, got.Tracked, got.Counted, got.Last, s.tracked, s.counted, s.last)
		}
		if got.Last {
			if err := store.RolloutNoticeSent(ctx, "r", "push-p", got.Owner, now); err != nil {
				t.Fatal(err)
			}
		}
	}
	ends, err := store.RolloutEnds(ctx, "r", "push-p")
	if err != nil {
		t.Fatal(err)
	}
	var outcomes []string
	for _, e := range ends {
		outcomes = append(outcomes, e.Service+" "+e.Outcome+" "+e.Reason)
	}
	want := []string{"svc-00 failed ", "svc-01 not_deployed parked in the work dead-letter queue after 10 receives"}
	if diff := cmp.Diff(want, outcomes); diff != "" {
		t.Errorf("ends (-want +got):\n%s", diff)
	}
}

// The first failure's notice is claimed once per rollout: by the first
// failure, again by its own retries until marked sent, by no other failure
// (unless the claim is stale and unsent), and by none once every target
// ended (the rule's notice says it) or of a push with no rollout.
func TestFirstFailureClaimedOnce(t *testing.T) {
	_, store := newCounting(t)
	ctx := context.Background()
	now := time.Now()
	open := func(event string, n int) {
		t.Helper()
		if err := store.OpenRollout(ctx, Rollout{Rule: "r", EventID: event, Digest: "sha256:1"}, targetsOf(n), now); err != nil {
			t.Fatal(err)
		}
	}
	key := func(i int) string { return end(i, "").ServiceKey }
	open("e1", 3)
	open("e2", 3)
	open("e3", 1)
	if _, err := store.EndRollout(ctx, "r", "e3", end(0, "not_deployed"), now); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name    string
		event   string
		target  int
		at      time.Time
		sent    bool // mark it sent after
		claimed bool
	}{
		{"the first failure", "e1", 0, now, false, true},
		{"its retry before it was sent", "e1", 0, now, true, true},
		{"its retry after it was sent", "e1", 0, now, false, false},
		{"a second failure", "e1", 1, now, false, false},
		{"a second failure, much later", "e1", 1, now.Add(ClaimStale + time.Minute), false, false},
		{"another rollout's first", "e2", 1, now, false, true},
		{"a stale unsent claim taken over", "e2", 2, now.Add(ClaimStale + time.Minute), false, true},
		{"the first claimer's retry after the takeover", "e2", 1, now.Add(ClaimStale + time.Minute), false, false},
		{"a rollout whose every target ended", "e3", 0, now, false, false},
		{"a push with no rollout", "e-none", 0, now, false, false},
	}
	for _, s := range steps {
		r, claimed, err := store.ClaimFirstFailure(ctx, "r", s.event, key(s.target), s.at)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if claimed != s.claimed {
			t.Errorf("%s: claimed %v, want %v", s.name, claimed, s.claimed)
		}
		if claimed && r.Expected != 3 {
			t.Errorf("%s: expected %d, want 3", s.name, r.Expected)
		}
		if s.sent {
			if err := store.FirstFailureSent(ctx, "r", s.event, key(s.target), s.at); err != nil {
				t.Fatal(err)
			}
		}
	}
}
