package gate

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func request(ctx context.Context, t *testing.T, s *Store, rule string, digest int, pushed time.Duration) Requested {
	t.Helper()
	r, err := s.RequestApproval(ctx, ApprovalRequest{Rule: rule, Digest: d(digest), Repository: "web", Tag: "v1.0." + string(rune('0'+digest)),
		PushedAt: base.Add(pushed), At: base.Add(pushed), Expires: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func requested(r Requested, err error) (outcome, error) {
	var sup []string
	for _, a := range r.Superseded {
		sup = append(sup, a.Digest)
	}
	return outcome{State: r.Approval.State, Applied: r.Created, Detail: strings.Join(sup, ",")}, err
}

// decided is what Approve or Reject said: the approval as decided, or the
// refusal with the approval as it is.
func decided(a Approval, err error) (outcome, error) {
	var refused *RefusedError
	if errors.As(err, &refused) {
		return outcome{State: refused.Approval.State, Refused: refused.Reason, Detail: refused.Approval.By}, nil
	}
	return outcome{State: a.State, Applied: err == nil, Detail: a.By}, err
}

func approve(at time.Duration) func(ctx context.Context, s *Store, rule, caller string) (outcome, error) {
	return func(ctx context.Context, s *Store, rule, caller string) (outcome, error) {
		return decided(s.Approve(ctx, rule, d(1), caller, base.Add(at)))
	}
}

func TestApprovalTransitions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	pending := func(ctx context.Context, t *testing.T, s *Store, rule string) { request(ctx, t, s, rule, 1, 0) }
	nothing := func(context.Context, *testing.T, *Store, string) {}
	reject := func(ctx context.Context, s *Store, rule, caller string) (outcome, error) {
		return decided(s.Reject(ctx, rule, d(1), caller, "CVE-2026-0001 in libfoo", base.Add(time.Minute)))
	}
	expire := func(at time.Duration) func(ctx context.Context, s *Store, rule, caller string) (outcome, error) {
		return func(ctx context.Context, s *Store, rule, _ string) (outcome, error) {
			a, expired, err := s.ExpireApproval(ctx, rule, d(1), base.Add(at))
			return outcome{State: a.State, Applied: expired}, err
		}
	}
	push := func(digest int, pushed time.Duration) func(ctx context.Context, s *Store, rule, caller string) (outcome, error) {
		return func(ctx context.Context, s *Store, rule, _ string) (outcome, error) {
			return requested(s.RequestApproval(ctx, ApprovalRequest{Rule: rule, Digest: d(digest), Repository: "web", Tag: "v",
				PushedAt: base.Add(pushed), At: base.Add(pushed), Expires: time.Hour}))
		}
	}
	rows := []transition{
		{name: "pending → approved, recording who", setup: pending, act: approve(time.Minute),
			first: outcome{State: Approved, Applied: true}, again: outcome{State: Approved, Refused: RefusedAlreadyApproved},
			final: Approved, detailOfCaller: true},
		{name: "pending → rejected, recording who", setup: pending, act: reject,
			first: outcome{State: Rejected, Applied: true}, again: outcome{State: Rejected, Refused: RefusedRejected},
			final: Rejected, detailOfCaller: true},
		{name: "pending → superseded by a newer push", setup: pending, act: push(2, time.Minute),
			first: outcome{State: Pending, Applied: true, Detail: d(1)}, again: outcome{State: Pending},
			final: Superseded, detailEither: true},
		{name: "an older push arriving second is superseded at once",
			setup: func(ctx context.Context, t *testing.T, s *Store, rule string) {
				request(ctx, t, s, rule, 2, time.Minute)
			},
			act: push(1, 0), first: outcome{State: Superseded, Applied: true}, again: outcome{State: Superseded}, final: Superseded},
		{name: "pending → expired at its time", setup: pending, act: expire(time.Hour),
			first: outcome{State: Expired, Applied: true}, again: outcome{State: Expired}, final: Expired},
		{name: "not expired before its time", setup: pending, act: expire(time.Hour - time.Millisecond),
			first: outcome{State: Pending}, again: outcome{State: Pending}, final: Pending},
		{name: "approving a superseded one is refused",
			setup: func(ctx context.Context, t *testing.T, s *Store, rule string) {
				request(ctx, t, s, rule, 1, 0)
				request(ctx, t, s, rule, 2, time.Minute)
			},
			act: approve(2 * time.Minute), first: outcome{State: Superseded, Refused: RefusedSuperseded}, again: outcome{State: Superseded, Refused: RefusedSuperseded},
			final: Superseded},
		{name: "approving an expired one is refused",
			setup: func(ctx context.Context, t *testing.T, s *Store, rule string) {
				request(ctx, t, s, rule, 1, 0)
				if _, ok, err := s.ExpireApproval(ctx, rule, d(1), base.Add(time.Hour)); err != nil || !ok {
					t.Fatalf("expire: %v, %v", ok, err)
				}
			},
			act: approve(2 * time.Hour), first: outcome{State: Expired, Refused: RefusedExpired}, again: outcome{State: Expired, Refused: RefusedExpired},
			final: Expired},
		{name: "approving past its time, its timer not fired yet, expires it and is refused", setup: pending, act: approve(time.Hour),
			first: outcome{State: Expired, Refused: RefusedExpired}, again: outcome{State: Expired, Refused: RefusedExpired}, final: Expired},
		{name: "approving a rejected one is refused, naming who rejected",
			setup: func(ctx context.Context, t *testing.T, s *Store, rule string) {
				request(ctx, t, s, rule, 1, 0)
				if _, err := s.Reject(ctx, rule, d(1), "carol", "not this one", base.Add(time.Minute)); err != nil {
					t.Fatal(err)
				}
			},
			act:   approve(2 * time.Minute),
			first: outcome{State: Rejected, Refused: RefusedRejected, Detail: "carol"}, again: outcome{State: Rejected, Refused: RefusedRejected, Detail: "carol"},
			final: Rejected},
		{name: "rejecting an approved one is refused, naming who approved",
			setup: func(ctx context.Context, t *testing.T, s *Store, rule string) {
				request(ctx, t, s, rule, 1, 0)
				if _, err := s.Approve(ctx, rule, d(1), "carol", base.Add(time.Minute)); err != nil {
					t.Fatal(err)
				}
			},
			act:   reject,
			first: outcome{State: Approved, Refused: RefusedAlreadyApproved, Detail: "carol"}, again: outcome{State: Approved, Refused: RefusedAlreadyApproved, Detail: "carol"},
			final: Approved},
		{name: "approving one never asked is refused", setup: nothing, act: approve(time.Minute),
			first: outcome{Refused: RefusedNotFound}, again: outcome{Refused: RefusedNotFound}},
		{name: "the same push again asks nothing", setup: pending, act: push(1, 0),
			first: outcome{State: Pending}, again: outcome{State: Pending}, final: Pending},
		{name: "an expired digest pushed again is asked anew",
			setup: func(ctx context.Context, t *testing.T, s *Store, rule string) {
				request(ctx, t, s, rule, 1, 0)
				if _, ok, err := s.ExpireApproval(ctx, rule, d(1), base.Add(time.Hour)); err != nil || !ok {
					t.Fatalf("expire: %v, %v", ok, err)
				}
			},
			act: push(1, 2*time.Hour), first: outcome{State: Pending, Applied: true}, again: outcome{State: Pending}, final: Pending},
		{name: "a rejected digest pushed again stays rejected",
			setup: func(ctx context.Context, t *testing.T, s *Store, rule string) {
				request(ctx, t, s, rule, 1, 0)
				if _, err := s.Reject(ctx, rule, d(1), "carol", "no", base.Add(time.Minute)); err != nil {
					t.Fatal(err)
				}
			},
			act: push(1, 2*time.Hour), first: outcome{State: Rejected}, again: outcome{State: Rejected}, final: Rejected},
	}
	runTransitions(t, e, func(ctx context.Context, s *Store, rule string) (State, error) {
		a, _, err := s.GetApproval(ctx, rule, d(1))
		return a.State, err
	}, rows)
}

// What Approve and the refusals carry for the CLI to say: who and when,
// the digest that superseded, when it expired; errors.As reaches the
// refusal through wrapping.
func TestApprovalRecordsAndRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	s := e.store
	request(ctx, t, s, "prod", 1, 0)
	a, err := s.Approve(ctx, "prod", d(1), "alice", base.Add(5*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	want := Approval{Rule: "prod", Digest: d(1), Repository: "web", Tag: "v1.0.1", State: Approved, PushedAt: base, RequestedAt: base,
		Due: base.Add(time.Hour), By: "alice", DecidedAt: base.Add(5 * time.Minute), EndedAt: base.Add(5 * time.Minute)}
	if diff := cmp.Diff(want, a); diff != "" {
		t.Errorf("approved (-want +got):\n%s", diff)
	}
	_, err = s.Approve(ctx, "prod", d(1), "bob", base.Add(6*time.Minute))
	var refused *RefusedError
	if !errors.As(errors.Join(errors.New("approve"), err), &refused) || refused.Reason != RefusedAlreadyApproved ||
		err.Error() != "approval of "+d(1)+" for rule prod: already approved by alice at 2026-11-25T10:05:00Z" {
		t.Errorf("second approval: %v", err)
	}

	request(ctx, t, s, "eu", 1, 0)
	r := request(ctx, t, s, "eu", 2, time.Minute)
	if len(r.Superseded) != 1 || r.Superseded[0].SupersededBy != d(2) || !r.Superseded[0].EndedAt.Equal(base.Add(time.Minute)) {
		t.Errorf("superseded: %+v", r.Superseded)
	}
	if _, err := s.Approve(ctx, "eu", d(1), "alice", base.Add(2*time.Minute)); err == nil ||
		err.Error() != "approval of "+d(1)+" for rule eu: superseded at 2026-11-25T10:01:00Z by a newer push, "+d(2) {
		t.Errorf("approve superseded: %v", err)
	}
	if _, err := s.Reject(ctx, "eu", d(2), "bob", "", base.Add(2*time.Hour)); err == nil ||
		err.Error() != "approval of "+d(2)+" for rule eu: expired at 2026-11-25T11:01:00Z (asked at 2026-11-25T10:01:00Z); push it again to ask anew" {
		t.Errorf("reject expired: %v", err)
	}
	if _, err := s.Approve(ctx, "none", d(9), "alice", base); err == nil || !strings.Contains(err.Error(), "there is none") {
		t.Errorf("approve unknown: %v", err)
	}
}

// Three pushes of one rule racing: whatever the order their writes and
// reads interleave in, only the newest stays pending and the other two
// end superseded by it.
func TestApprovalRacingPushesLeaveTheNewest(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	for round := range 3 {
		rule := "r" + string(rune('0'+round))
		errs := make(chan error, 3)
		for i := 1; i <= 3; i++ {
			go func() {
				_, err := e.store.RequestApproval(ctx, ApprovalRequest{Rule: rule, Digest: d(i), Repository: "web",
					PushedAt: base.Add(time.Duration(i) * time.Second), At: base.Add(time.Duration(round) * time.Millisecond), Expires: time.Hour})
				errs <- err
			}()
		}
		for range 3 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		for i, want := range map[int]State{1: Superseded, 2: Superseded, 3: Pending} {
			a, _, err := e.store.GetApproval(ctx, rule, d(i))
			if err != nil || a.State != want {
				t.Errorf("round %d: %s is %s (%v), want %s", round, d(i)[:12], a.State, err, want)
			}
			if want == Superseded && a.SupersededBy == d(i) {
				t.Errorf("round %d: %s superseded by itself", round, d(i)[:12])
			}
		}
		open, err := e.store.Open(ctx, KindApproval, rule)
		if err != nil || len(open) != 1 || open[0].Digest != d(3) {
			t.Errorf("round %d: open approvals %+v, %v; want only the newest", round, open, err)
		}
	}
}
