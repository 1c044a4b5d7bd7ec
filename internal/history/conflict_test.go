package history

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

// conflicting stands between the SDK and moto and answers chosen requests
// with the conflict DynamoDB gives a write that meets a transaction under
// way on its items, which moto never does: TransactionConflictException
// for a single write, a cancellation with a TransactionConflict reason for
// a transaction. Below the SDK, so the state retryer sees what DynamoDB's
// answer would make it see. A request is chosen by its operation and a
// piece of its expression (each store call writes its own).
type conflicting struct {
	base    http.RoundTripper
	mu      sync.Mutex
	pending map[string]int      // by kind: conflicts still to answer
	seen    map[string]int      // by kind: requests
	tokens  map[string][]string // by kind: a transaction's ClientRequestTokens
}

// conflictKinds are the store's writes on a rollout's or a digest's hot
// items, by the operation and a piece of the expression that tell them.
var conflictKinds = map[string][2]string{
	"open targets":   {"TransactWriteItems", "SET service_key"},
	"count end":      {"TransactWriteItems", "ADD ended"},
	"claim notice":   {"UpdateItem", "SET notice_owner"},
	"notice sent":    {"UpdateItem", "SET notice_sent"},
	"claim first":    {"UpdateItem", "SET first_failure = "},
	"first sent":     {"UpdateItem", "SET first_failure_sent"},
	"amend end":      {"UpdateItem", "SET outcome = :rb"},
	"set outcome":    {"TransactWriteItems", "SET deployment_outcome"},
	"mark completed": {"TransactWriteItems", "ADD completed"},
}

func (c *conflicting) kind(op string, body []byte) string {
	for k, m := range conflictKinds {
		if m[0] == op && bytes.Contains(body, []byte(m[1])) {
			return k
		}
	}
	return ""
}

func (c *conflicting) RoundTrip(r *http.Request) (*http.Response, error) {
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_20120810.")
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	kind := c.kind(op, body)
	c.mu.Lock()
	c.seen[kind]++
	if op == "TransactWriteItems" {
		var in struct{ ClientRequestToken string }
		_ = json.Unmarshal(body, &in)
		c.tokens[kind] = append(c.tokens[kind], in.ClientRequestToken)
	}
	refuse := kind != "" && c.pending[kind] > 0
	if refuse {
		c.pending[kind]--
	}
	c.mu.Unlock()
	if !refuse {
		return c.base.RoundTrip(r)
	}
	answer := `{"__type":"com.amazonaws.dynamodb.v20120810#TransactionConflictException","message":"Transaction is ongoing for the item"}`
	if op == "TransactWriteItems" {
		answer = `{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException",` +
			`"Message":"Transaction cancelled, please refer cancellation reasons for specific reasons [None, TransactionConflict]",` +
			`"CancellationReasons":[{"Code":"None"},{"Code":"TransactionConflict","Message":"Transaction is ongoing for the item"}]}`
	}
	return &http.Response{StatusCode: http.StatusBadRequest, Status: "400 Bad Request", Request: r,
		Header:        http.Header{"Content-Type": {"application/x-amz-json-1.0"}},
		Body:          io.NopCloser(strings.NewReader(answer)),
		ContentLength: int64(len(answer))}, nil
}

// conflict makes the next n requests of kind conflict.
func (c *conflicting) conflict(kind string, n int) {
	if _, ok := conflictKinds[kind]; !ok {
		panic("no such kind: " + kind)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pending[kind] = n
	c.seen[kind], c.tokens[kind] = 0, nil
}

func (c *conflicting) requests(kind string) (n int, tokens []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen[kind], slices.Clone(c.tokens[kind])
}

// newConflicting is a store on moto whose client is the state table's
// (awsenv.StateTable's retryer, its backoff shortened) through conflicting.
func newConflicting(t *testing.T) (*conflicting, *Store) {
	t.Helper()
	m := testenv.StartMoto(t)
	table := m.CreateTable(t, "autodeploy")
	c := &conflicting{base: http.DefaultTransport, pending: map[string]int{}, seen: map[string]int{}, tokens: map[string][]string{}}
	db := dynamodb.NewFromConfig(m.AWSConfig(), func(o *dynamodb.Options) {
		o.Retryer = awsenv.Retry{Base: time.Millisecond, Max: 4 * time.Millisecond}.New()
		o.HTTPClient = &http.Client{Transport: c}
	})
	return c, NewStore(db, table)
}

// Every write of the rollout and promotion bookkeeping that DynamoDB may
// refuse for a transaction on its items (the ends of a rollout, the
// completions of a digest all write one item) succeeds once the conflicts
// pass, N conflicts in a row, and counts once when it is delivered again:
// a transaction is sent again by the store with a fresh ClientRequestToken
// (a token DynamoDB saw answers with the first call's result), a single
// write by the state retryer.
func TestEveryHotWriteOutlastsConflicts(t *testing.T) {
	const n = 3
	ctx := context.Background()
	now := time.Now()
	tests := []struct {
		kind string
		// setup runs before the conflicts and returns the notice's owner,
		// if it claimed one.
		setup func(t *testing.T, s *Store) string
		// call meets n conflicts, then runs again without (again).
		call func(t *testing.T, s *Store, owner string, again bool)
	}{
		{kind: "open targets", call: func(t *testing.T, s *Store, _ string, _ bool) {
			if err := s.OpenRollout(ctx, Rollout{Rule: "r", EventID: "e"}, targetsOf(2), now); err != nil {
				t.Fatal(err)
			}
			if got, err := s.EndRollout(ctx, "r", "e", end(1, Completed), now); err != nil || !got.Tracked || got.Rollout.Expected != 2 {
				t.Fatalf("an end of the rollout opened: %+v, %v", got, err)
			}
		}},
		{kind: "count end", setup: open(2), call: func(t *testing.T, s *Store, _ string, again bool) {
			got, err := s.EndRollout(ctx, "r", "e", end(0, Completed), now)
			if err != nil || got.Counted == again || got.Rollout.Ended != 1 {
				t.Fatalf("end (again %v): %+v, %v; want it counted once", again, got, err)
			}
		}},
		{kind: "claim notice", setup: open(1), call: func(t *testing.T, s *Store, _ string, again bool) {
			got, err := s.EndRollout(ctx, "r", "e", end(0, Completed), now)
			if again {
				if got.Last || (err != nil && !errors.Is(err, ErrNoticePending)) {
					t.Fatalf("a duplicate of the last end: %+v, %v; want it to wait for the claimer", got, err)
				}
				return
			}
			if err != nil || !got.Last || len(got.Ends) != 1 {
				t.Fatalf("last end: %+v, %v", got, err)
			}
		}},
		{kind: "notice sent", setup: func(t *testing.T, s *Store) string {
			open(1)(t, s)
			got, err := s.EndRollout(ctx, "r", "e", end(0, Completed), now)
			if err != nil || !got.Last {
				t.Fatalf("last end: %+v, %v", got, err)
			}
			return got.Owner
		}, call: func(t *testing.T, s *Store, owner string, _ bool) {
			if err := s.RolloutNoticeSent(ctx, "r", "e", owner, now); err != nil {
				t.Fatal(err)
			}
			if got, err := s.EndRollout(ctx, "r", "e", end(0, Completed), now.Add(time.Hour)); err != nil || got.Last {
				t.Fatalf("a redelivery after the notice was sent: %+v, %v; want nothing to send", got, err)
			}
		}},
		{kind: "claim first", setup: endFailed, call: func(t *testing.T, s *Store, _ string, again bool) {
			_, claimed, err := s.ClaimFirstFailure(ctx, "r", "e", end(0, "").ServiceKey, now)
			if err != nil || (!again && !claimed) {
				t.Fatalf("claim: %v, %v", claimed, err)
			}
		}},
		{kind: "first sent", setup: func(t *testing.T, s *Store) string {
			endFailed(t, s)
			if _, claimed, err := s.ClaimFirstFailure(ctx, "r", "e", end(0, "").ServiceKey, now); err != nil || !claimed {
				t.Fatalf("claim: %v, %v", claimed, err)
			}
			return ""
		}, call: func(t *testing.T, s *Store, _ string, _ bool) {
			if err := s.FirstFailureSent(ctx, "r", "e", end(0, "").ServiceKey, now); err != nil {
				t.Fatal(err)
			}
			if _, claimed, err := s.ClaimFirstFailure(ctx, "r", "e", end(0, "").ServiceKey, now.Add(time.Hour)); err != nil || claimed {
				t.Fatalf("claim after it was sent: %v, %v; want none", claimed, err)
			}
		}},
		{kind: "amend end", setup: endFailed, call: func(t *testing.T, s *Store, _ string, _ bool) {
			if _, err := s.EndRollout(ctx, "r", "e", end(0, RolledBack), now); err != nil {
				t.Fatal(err)
			}
			ends, err := s.RolloutEnds(ctx, "r", "e")
			if err != nil || len(ends) != 1 || ends[0].Outcome != RolledBack {
				t.Fatalf("ends %+v, %v; want the failure amended to rolled_back", ends, err)
			}
		}},
		{kind: "set outcome", setup: func(t *testing.T, s *Store) string {
			if err := s.Put(ctx, Record{Account: testenv.Account, Region: testenv.Region, Cluster: "fleet", Service: "svc-00",
				DeploymentID: "ecs-svc/1", Digest: "sha256:a", Outcome: "deployed", DeployedAt: now}); err != nil {
				t.Fatal(err)
			}
			return ""
		}, call: func(t *testing.T, s *Store, _ string, again bool) {
			r, _, err := s.ByDeployment(ctx, "ecs-svc/1")
			if err != nil {
				t.Fatal(err)
			}
			recorded, err := s.SetOutcome(ctx, r, Failed, "circuit breaker", now)
			if err != nil || recorded == again {
				t.Fatalf("outcome (again %v): recorded %v, %v; want it recorded once", again, recorded, err)
			}
			if r, _, err = s.ByDeployment(ctx, "ecs-svc/1"); err != nil || r.DeploymentOutcome != Failed {
				t.Fatalf("record %+v, %v", r, err)
			}
		}},
		{kind: "mark completed", call: func(t *testing.T, s *Store, _ string, _ bool) {
			p, err := s.MarkTargetCompleted(ctx, "r", "sha256:c", "k-0", 2, now)
			if err != nil || p.Completed != 1 {
				t.Fatalf("completion: %+v, %v; want it counted once", p, err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			t.Parallel()
			c, store := newConflicting(t)
			var owner string
			if tt.setup != nil {
				owner = tt.setup(t, store)
			}
			c.conflict(tt.kind, n)
			tt.call(t, store, owner, false)
			requests, tokens := c.requests(tt.kind)
			if requests != n+1 {
				t.Errorf("%d requests, want %d: %d conflicts, then the write", requests, n+1, n)
			}
			if conflictKinds[tt.kind][0] == "TransactWriteItems" {
				if fresh := len(slices.Compact(slices.Sorted(slices.Values(tokens)))); fresh != n+1 || slices.Contains(tokens, "") {
					t.Errorf("tokens %q: want a fresh one on each of the %d tries", tokens, n+1)
				}
			}
			tt.call(t, store, owner, true) // delivered again: counts nothing twice
		})
	}
}

// A conflict that outlasts every attempt is an error, and the caller's
// retry (Lambda's, the queue's) counts nothing twice.
func TestConflictsThatLastFailAndTheRetryCountsOnce(t *testing.T) {
	c, store := newConflicting(t)
	ctx := context.Background()
	now := time.Now()
	_ = open(1)(t, store)
	c.conflict("claim notice", awsenv.MaxAttempts)
	if _, err := store.EndRollout(ctx, "r", "e", end(0, Failed), now); err == nil {
		t.Fatal("a claim that conflicts on every attempt: no error")
	}
	retry, err := store.EndRollout(ctx, "r", "e", end(0, Failed), now.Add(ClaimStale))
	if err != nil || retry.Counted || !retry.Last || retry.Rollout.Ended != 1 {
		t.Fatalf("the retry: %+v, %v; want the claim, nothing counted again", retry, err)
	}

	c.conflict("mark completed", 2)
	p, err := store.MarkTargetCompleted(ctx, "r", "sha256:c", "k-0", 2, now)
	if err != nil || p.Completed != 1 {
		t.Fatalf("completion after two conflicts: %+v, %v", p, err)
	}
	c.conflict("mark completed", transactAttempts)
	if _, err := store.MarkTargetCompleted(ctx, "r", "sha256:c", "k-1", 2, now); err == nil {
		t.Fatal("a completion that conflicts on every attempt: no error")
	}
	for range 2 { // the retry, and a duplicate of it
		if p, err = store.MarkTargetCompleted(ctx, "r", "sha256:c", "k-1", 2, now); err != nil || p.Completed != 2 || len(p.Done) != 2 {
			t.Fatalf("completion's retry: %+v, %v", p, err)
		}
	}
	if diff := cmp.Diff([]string{"k-0", "k-1"}, p.Done); diff != "" {
		t.Errorf("done (-want +got):\n%s", diff)
	}
}

// open opens rollout r/e of n targets.
func open(n int) func(t *testing.T, s *Store) string {
	return func(t *testing.T, s *Store) string {
		t.Helper()
		if err := s.OpenRollout(context.Background(), Rollout{Rule: "r", EventID: "e"}, targetsOf(n), time.Now()); err != nil {
			t.Fatal(err)
		}
		return ""
	}
}

// endFailed opens rollout r/e of two targets and fails the first.
func endFailed(t *testing.T, s *Store) string {
	t.Helper()
	open(2)(t, s)
	if got, err := s.EndRollout(context.Background(), "r", "e", end(0, Failed), time.Now()); err != nil || !got.Counted {
		t.Fatalf("failure: %+v, %v", got, err)
	}
	return ""
}
