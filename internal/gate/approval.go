package gate

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Approval is a person's approval of one digest for one rule.
type Approval struct {
	Rule       string    `dynamodbav:"rule"`
	Digest     string    `dynamodbav:"digest"`
	Repository string    `dynamodbav:"repository"`
	Tag        string    `dynamodbav:"tag,omitempty"`
	State      State     `dynamodbav:"state"`
	PushedAt   time.Time `dynamodbav:"pushed_at"`
	// RequestedAt is when the push asked; Due when a pending one expires.
	RequestedAt time.Time `dynamodbav:"requested_at"`
	Due         time.Time `dynamodbav:"due"`
	// By and DecidedAt: who approved or rejected it, and when; Reason is
	// a rejection's.
	By        string    `dynamodbav:"by,omitempty"`
	DecidedAt time.Time `dynamodbav:"decided_at,omitempty"`
	Reason    string    `dynamodbav:"reason,omitempty"`
	// SupersededBy is the digest whose newer push superseded it.
	SupersededBy string `dynamodbav:"superseded_by,omitempty"`
	// EndedAt is when it left pending.
	EndedAt time.Time `dynamodbav:"ended_at,omitempty"`
}

// ApprovalRequest is a push a rule with approval would deploy.
type ApprovalRequest struct {
	Rule, Digest, Repository, Tag string
	PushedAt                      time.Time // orders pushes: the newer supersedes
	At                            time.Time
	Expires                       time.Duration // the rule's approval.expires
}

// Requested is what RequestApproval did.
type Requested struct {
	// Approval is the digest's approval now: pending when this call (or an
	// earlier one) asked for it, superseded when a newer push of the rule
	// is pending already, or as decided before (approved, rejected).
	Approval Approval
	// Created: this call asked (a new approval, or an expired or
	// superseded one asked again by a newer push): notice it.
	Created bool
	// Superseded are the older pending approvals of the rule this call
	// superseded: notice them.
	Superseded []Approval
}

// RequestApproval asks for the approval of a digest by a rule. The same
// push again (a retry, a redrive) finds its approval and creates nothing; a
// newer push of the same digest asks again for one that expired or was
// superseded, never for one approved or rejected. An older pending
// approval of the rule is superseded by the newer push (PushedAt, then the
// digest breaks ties): each racing request writes itself and its index
// entry first and then reads the rule's open approvals, so the later of
// two reads sees both and every older one ends superseded.
func (s *Store) RequestApproval(ctx context.Context, req ApprovalRequest) (Requested, error) {
	a := Approval{Rule: req.Rule, Digest: req.Digest, Repository: req.Repository, Tag: req.Tag, State: Pending,
		PushedAt: req.PushedAt.UTC(), RequestedAt: req.At.UTC(), Due: req.At.Add(req.Expires).UTC()}
	open := OpenGate{Tag: a.Tag, PushedAt: a.PushedAt, Due: a.Due}
	item, err := attributevalue.MarshalMap(a)
	if err != nil {
		return Requested{}, fmt.Errorf("marshal approval: %w", err)
	}
	got, created, err := s.start(ctx, KindApproval, req.Rule, req.Digest, item, open)
	if err != nil {
		return Requested{}, err
	}
	cur, err := approvalOf(got)
	if err != nil {
		return Requested{}, err
	}
	if !created && (cur.State == Expired || cur.State == Superseded) && a.PushedAt.After(cur.PushedAt) {
		// A newer push of this digest: ask again.
		got, created, err = s.apply(ctx, KindApproval, req.Rule, req.Digest, change{
			set: "#state = :pending, requested_at = :req, #due = :due, due_ms = :due_ms, pushed_at = :pushed, pushed_ms = :pushed_ms, " +
				"#tag = :tag, expires_at = :exp REMOVE superseded_by, ended_at",
			cond: "#state = :was AND pushed_ms = :was_pushed",
			values: map[string]types.AttributeValue{
				":pending": str(string(Pending)), ":req": timeValue(a.RequestedAt), ":due": timeValue(a.Due), ":due_ms": millis(a.Due),
				":pushed": timeValue(a.PushedAt), ":pushed_ms": millis(a.PushedAt), ":tag": str(a.Tag),
				":exp": epoch(a.Due.Add(Retention)), ":was": str(string(cur.State)), ":was_pushed": millis(cur.PushedAt),
			},
			reopen: &open,
		})
		if err != nil {
			return Requested{}, err
		}
		if cur, err = approvalOf(got); err != nil {
			return Requested{}, err
		}
	}
	out := Requested{Approval: cur, Created: created}
	if cur.State != Pending {
		return out, nil
	}
	others, err := s.Open(ctx, KindApproval, req.Rule)
	if err != nil {
		return out, err
	}
	for _, o := range others {
		if o.Digest == cur.Digest {
			continue
		}
		older, newer := o.Digest, cur.Digest
		if newerPush(o.PushedAt, o.Digest, cur.PushedAt, cur.Digest) {
			older, newer = cur.Digest, o.Digest
		}
		sup, applied, err := s.supersede(ctx, req.Rule, older, newer, req.At)
		if err != nil {
			return out, err
		}
		if older == cur.Digest {
			out.Approval = sup
			return out, nil // ours is the older: nothing else is ours to supersede
		}
		if applied {
			out.Superseded = append(out.Superseded, sup)
		}
	}
	return out, nil
}

// newerPush reports whether push a (time, digest) is newer than push b.
func newerPush(aAt time.Time, aDigest string, bAt time.Time, bDigest string) bool {
	if c := aAt.Compare(bAt); c != 0 {
		return c > 0
	}
	return cmp.Compare(aDigest, bDigest) > 0
}

// supersede ends a pending approval of rule for the newer push of by.
func (s *Store) supersede(ctx context.Context, rule, digest, by string, at time.Time) (Approval, bool, error) {
	got, applied, err := s.apply(ctx, KindApproval, rule, digest, change{
		set:  "#state = :sup, superseded_by = :by, ended_at = :at, expires_at = :exp",
		cond: "#state = :pending",
		values: map[string]types.AttributeValue{":sup": str(string(Superseded)), ":by": str(by), ":at": timeValue(at.UTC()),
			":exp": epoch(at.Add(Retention)), ":pending": str(string(Pending))},
		final: true,
	})
	if err != nil {
		return Approval{}, false, err
	}
	a, err := approvalOf(got)
	return a, applied, err
}

// Refusal says why an approval could not be approved or rejected.
type Refusal string

const (
	RefusedNotFound        Refusal = "not found"
	RefusedAlreadyApproved Refusal = "already approved"
	RefusedRejected        Refusal = "rejected"
	RefusedSuperseded      Refusal = "superseded"
	RefusedExpired         Refusal = "expired"
)

// RefusedError refuses to approve or reject an approval that is not
// pending; Approval is the approval as it is (zero for RefusedNotFound).
type RefusedError struct {
	Rule, Digest string
	Reason       Refusal
	Approval     Approval
}

func (e *RefusedError) Error() string {
	a := e.Approval
	what := fmt.Sprintf("approval of %s for rule %s", e.Digest, e.Rule)
	switch e.Reason {
	case RefusedNotFound:
		return what + ": there is none (was it pushed, and does the rule have approval:?)"
	case RefusedAlreadyApproved:
		return fmt.Sprintf("%s: already approved by %s at %s", what, a.By, a.DecidedAt.Format(time.RFC3339))
	case RefusedRejected:
		return fmt.Sprintf("%s: rejected by %s at %s: %s", what, a.By, a.DecidedAt.Format(time.RFC3339), a.Reason)
	case RefusedSuperseded:
		return fmt.Sprintf("%s: superseded at %s by a newer push, %s", what, a.EndedAt.Format(time.RFC3339), a.SupersededBy)
	case RefusedExpired:
		return fmt.Sprintf("%s: expired at %s (asked at %s); push it again to ask anew", what, a.Due.Format(time.RFC3339), a.RequestedAt.Format(time.RFC3339))
	}
	return what + ": " + string(e.Reason)
}

// Approve approves a pending approval for by at at, and returns it
// approved; an approval that is not pending is refused with
// *RefusedError, saying why: already approved (by whom), rejected,
// superseded, expired (one whose time is up is expired by this call), or
// not found. Of two people approving at once exactly one succeeds.
func (s *Store) Approve(ctx context.Context, rule, digest, by string, at time.Time) (Approval, error) {
	return s.decide(ctx, rule, digest, Approved, by, "", at)
}

// Reject rejects a pending approval for by at at with reason, refused as
// Approve is.
func (s *Store) Reject(ctx context.Context, rule, digest, by, reason string, at time.Time) (Approval, error) {
	return s.decide(ctx, rule, digest, Rejected, by, reason, at)
}

func (s *Store) decide(ctx context.Context, rule, digest string, to State, by, reason string, at time.Time) (Approval, error) {
	set := "#state = :to, #by = :by, decided_at = :at, ended_at = :at, expires_at = :exp"
	values := map[string]types.AttributeValue{":to": str(string(to)), ":by": str(by), ":at": timeValue(at.UTC()),
		":exp": epoch(at.Add(Retention)), ":pending": str(string(Pending)), ":now": millis(at)}
	if reason != "" {
		set += ", #reason = :reason"
		values[":reason"] = str(reason)
	}
	got, applied, err := s.apply(ctx, KindApproval, rule, digest, change{
		set: set, cond: "#state = :pending AND due_ms > :now", values: values, final: true,
	})
	if err != nil {
		return Approval{}, err
	}
	if got == nil {
		return Approval{}, &RefusedError{Rule: rule, Digest: digest, Reason: RefusedNotFound}
	}
	a, err := approvalOf(got)
	if err != nil {
		return Approval{}, err
	}
	if applied {
		return a, nil
	}
	if a.State == Pending { // its time is up, its timer not fired yet
		if a, _, err = s.ExpireApproval(ctx, rule, digest, at); err != nil {
			return Approval{}, err
		}
	}
	reasons := map[State]Refusal{Approved: RefusedAlreadyApproved, Rejected: RefusedRejected, Superseded: RefusedSuperseded, Expired: RefusedExpired}
	return Approval{}, &RefusedError{Rule: rule, Digest: digest, Reason: reasons[a.State], Approval: a}
}

// ExpireApproval ends a pending approval whose time is up at at (its
// timer fired, or a sweep found it due); expired is false, and nothing
// changes, when it is not pending or not due yet.
func (s *Store) ExpireApproval(ctx context.Context, rule, digest string, at time.Time) (a Approval, expired bool, err error) {
	got, applied, err := s.apply(ctx, KindApproval, rule, digest, change{
		set:  "#state = :expired, ended_at = :at, expires_at = :exp",
		cond: "#state = :pending AND due_ms <= :now",
		values: map[string]types.AttributeValue{":expired": str(string(Expired)), ":at": timeValue(at.UTC()),
			":exp": epoch(at.Add(Retention)), ":pending": str(string(Pending)), ":now": millis(at)},
		final: true,
	})
	if err != nil || got == nil {
		return Approval{}, false, err
	}
	a, err = approvalOf(got)
	return a, applied, err
}

// GetApproval reads the approval of a digest for a rule.
func (s *Store) GetApproval(ctx context.Context, rule, digest string) (Approval, bool, error) {
	got, err := s.get(ctx, KindApproval, rule, digest)
	if err != nil || got == nil {
		return Approval{}, false, err
	}
	a, err := approvalOf(got)
	return a, err == nil, err
}

func approvalOf(item map[string]types.AttributeValue) (Approval, error) {
	var a Approval
	if err := attributevalue.UnmarshalMap(item, &a); err != nil {
		return Approval{}, fmt.Errorf("read approval: %w", err)
	}
	return a, nil
}
