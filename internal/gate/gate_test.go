package gate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

// base is the tests' "now"; digests d(1), d(2)… are distinct.
var base = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func d(i int) string { return fmt.Sprintf("sha256:%064d", i) }

// env is one moto server, reached through a proxy that serialises
// DynamoDB requests (moto applies concurrent conditional writes without
// isolation, DynamoDB atomically) and can lose answers.
type env struct {
	store *Store
	proxy *testenv.Proxy
	db    *dynamodb.Client
	table string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	m := testenv.StartMoto(t)
	table := m.CreateTable(t, "autodeploy")
	proxy := testenv.StartProxy(t, m.Endpoint)
	db := dynamodb.NewFromConfig(proxy.Config(m.AWSConfig()))
	return &env{store: NewStore(db, table), proxy: proxy, db: db, table: table}
}

// outcome is what one call of a transition reports, for comparing.
type outcome struct {
	State   State
	Applied bool    // created, applied, expired…
	Refused Refusal // Approve and Reject
	Detail  string  // who approved, what blocked, which alarm…
}

// transition is one row of a gate's table: setup brings a fresh rule's
// gate to where the row starts; act is the transition by a caller; first
// is what the first delivery reports, again what a second delivery (or the
// loser of a race) reports; final is the gate's state after either.
type transition struct {
	name  string
	setup func(ctx context.Context, t *testing.T, s *Store, rule string)
	act   func(ctx context.Context, s *Store, rule, caller string) (outcome, error)
	first outcome
	again outcome
	// final is the state of the gate of digest d(1) after either.
	final State
	// detailOfCaller: first's (and again's) Detail is the winning caller.
	detailOfCaller bool
	// detailEither: of two racing callers, one applies and either may
	// report the Detail (a request's superseding: the loser of the write
	// may be the one that supersedes); together they report first's.
	detailEither bool
}

// runTransitions runs every row three ways, each on a rule of its own:
// delivered twice by one caller (the second applies nothing); with the
// first call's answer lost (the SDK's retry counts as applied once); and
// by two callers racing (exactly one wins, the other reports again).
func runTransitions(t *testing.T, e *env, get func(ctx context.Context, s *Store, rule string) (State, error), rows []transition) {
	ctx := context.Background()
	for i, tt := range rows {
		t.Run(tt.name, func(t *testing.T) {
			want := func(o outcome, caller string) outcome {
				if tt.detailOfCaller {
					o.Detail = caller
				}
				return o
			}
			check := func(rule string) {
				t.Helper()
				st, err := get(ctx, e.store, rule)
				if err != nil {
					t.Fatal(err)
				}
				if st != tt.final {
					t.Errorf("state of %s's gate after = %q, want %q", d(1)[:12], st, tt.final)
				}
			}
			t.Run("twice", func(t *testing.T) {
				rule := fmt.Sprintf("r%d-twice", i)
				tt.setup(ctx, t, e.store, rule)
				for n, w := range []outcome{want(tt.first, "alice"), want(tt.again, "alice")} {
					got, err := tt.act(ctx, e.store, rule, "alice")
					if err != nil {
						t.Fatalf("delivery %d: %v", n+1, err)
					}
					if diff := cmp.Diff(w, got); diff != "" {
						t.Errorf("delivery %d (-want +got):\n%s", n+1, diff)
					}
				}
				check(rule)
			})
			t.Run("answer lost", func(t *testing.T) {
				rule := fmt.Sprintf("r%d-lost", i)
				tt.setup(ctx, t, e.store, rule)
				lost := e.proxy.Lost("TransactWriteItems")
				e.proxy.Lose("TransactWriteItems", 1)
				got, err := tt.act(ctx, e.store, rule, "alice")
				if err != nil {
					t.Fatal(err)
				}
				if e.proxy.Lost("TransactWriteItems") == lost {
					t.Fatal("no answer was lost: the transition wrote nothing")
				}
				if diff := cmp.Diff(want(tt.first, "alice"), got); diff != "" {
					t.Errorf("with its answer lost (-want +got):\n%s", diff)
				}
				check(rule)
			})
			t.Run("race", func(t *testing.T) {
				rule := fmt.Sprintf("r%d-race", i)
				tt.setup(ctx, t, e.store, rule)
				callers := []string{"alice", "bob"}
				got := make([]outcome, 2)
				errs := make([]error, 2)
				var wg sync.WaitGroup
				for j, c := range callers {
					wg.Go(func() { got[j], errs[j] = tt.act(ctx, e.store, rule, c) })
				}
				wg.Wait()
				if err := errors.Join(errs...); err != nil {
					t.Fatal(err)
				}
				if tt.first == tt.again { // a transition that applies nothing
					for j := range got {
						if diff := cmp.Diff(tt.first, got[j]); diff != "" {
							t.Errorf("%s (-want +got):\n%s", callers[j], diff)
						}
					}
					check(rule)
					return
				}
				if tt.detailEither {
					applied, details := 0, got[0].Detail+got[1].Detail
					for j := range got {
						applied += map[bool]int{true: 1}[got[j].Applied]
						got[j].Detail, got[j].Applied = "", false
					}
					first := tt.first
					first.Detail, first.Applied = "", false
					if applied != 1 || details != tt.first.Detail || got[0] != first || got[1] != first {
						t.Errorf("two racing callers got %+v (details %q); want one applied and %q between them", got, details, tt.first.Detail)
					}
					check(rule)
					return
				}
				winners := 0
				for j := range got {
					if cmp.Equal(got[j], want(tt.first, callers[j])) && cmp.Equal(got[1-j], want(tt.again, callers[j])) {
						winners++
					}
				}
				if winners != 1 {
					t.Errorf("two racing callers got %+v; want exactly one %+v and the other %+v", got, tt.first, tt.again)
				}
				check(rule)
			})
		})
	}
}

// Open and Due list only the gates not ended: pending approvals for status
// and the metric, and what a sweep is to end when a timer was lost.
func TestOpenAndDue(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	s := e.store
	if _, err := s.RequestApproval(ctx, ApprovalRequest{Rule: "prod", Digest: d(1), Repository: "web", Tag: "v1.0.0", PushedAt: base, At: base, Expires: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RequestApproval(ctx, ApprovalRequest{Rule: "eu", Digest: d(1), Repository: "web", Tag: "v1.0.0", PushedAt: base, At: base, Expires: 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.StartScan(ctx, ScanRequest{Rule: "prod", Digest: d(2), Repository: "web", PushedAt: base, At: base, Wait: 30 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.StartBake(ctx, BakeRequest{Rule: "staging", Digest: d(3), At: base, Bake: 15 * time.Minute, Alarms: []string{"5xx"}}); err != nil {
		t.Fatal(err)
	}
	keys := func(gs []OpenGate) []string {
		var out []string
		for _, g := range gs {
			out = append(out, fmt.Sprintf("%s/%s/%s", g.Kind, g.Rule, g.Digest[len(g.Digest)-1:]))
		}
		return out
	}
	all, err := s.Open(ctx, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"approval/eu/1", "approval/prod/1", "bake/staging/3", "scan/prod/2"}, keys(all)); diff != "" {
		t.Errorf("Open (-want +got):\n%s", diff)
	}
	approvals, err := s.Open(ctx, KindApproval, "prod")
	if err != nil || len(approvals) != 1 || approvals[0].Tag != "v1.0.0" || !approvals[0].Due.Equal(base.Add(time.Hour)) {
		t.Errorf("Open(approval, prod) = %+v, %v", approvals, err)
	}
	due, err := s.Due(ctx, base.Add(30*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"bake/staging/3", "scan/prod/2"}, keys(due)); diff != "" {
		t.Errorf("Due at +30m (-want +got):\n%s", diff)
	}
	// Ended gates leave the index with their end.
	if _, _, err := s.TimeOutScan(ctx, "prod", d(2), base.Add(30*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Approve(ctx, "prod", d(1), "alice", base.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	due, err = s.Due(ctx, base.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"bake/staging/3"}, keys(due)); diff != "" {
		t.Errorf("Due at +2h (-want +got):\n%s", diff)
	}
}

// A gate's item expires Retention after its end; an open one only
// Retention after its due time, so DynamoDB's TTL (played by
// testenv.ExpireTTL) never takes a gate still waiting.
func TestGatesExpireAfterTheyEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	s := e.store
	if _, err := s.RequestApproval(ctx, ApprovalRequest{Rule: "prod", Digest: d(1), Repository: "web", PushedAt: base, At: base, Expires: 14 * 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.StartScan(ctx, ScanRequest{Rule: "prod", Digest: d(2), Repository: "web", PushedAt: base, At: base, Wait: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.ScanCompleted(ctx, ScanResult{Rule: "prod", Digest: d(2), Repository: "web", Block: []string{"CRITICAL"}, At: base.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	// Past the scan's retention, before the pending approval's due + retention.
	if n := testenv.ExpireTTL(t, e.db, e.table, base.Add(time.Minute+Retention+time.Second)); n != 1 {
		t.Errorf("expired %d items, want the ended scan's one", n)
	}
	if _, found, err := s.GetScan(ctx, "prod", d(2)); err != nil || found {
		t.Errorf("ended scan after its retention: found %v, %v", found, err)
	}
	if a, found, err := s.GetApproval(ctx, "prod", d(1)); err != nil || !found || a.State != Pending {
		t.Errorf("pending approval after 90 days: %+v, %v, %v", a, found, err)
	}
	if open, err := s.Open(ctx, KindApproval, ""); err != nil || len(open) != 1 {
		t.Errorf("open approvals = %+v, %v; want the pending one", open, err)
	}
}

func TestLog(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	Log(context.Background(), log, "web-prod", d(7), KindScan, string(Blocked), "1 CRITICAL, 3 HIGH")
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("not one JSON line: %q: %v", buf.String(), err)
	}
	for k, want := range map[string]any{"msg": "gate", "level": "INFO", "rule": "web-prod", "digest": d(7), "gate": "scan", "outcome": "blocked", "reason": "1 CRITICAL, 3 HIGH"} {
		if line[k] != want {
			t.Errorf("%s = %v, want %v", k, line[k], want)
		}
	}
}

// rawItem reads a gate's item as stored.
func rawItem(t *testing.T, e *env, kind Kind, rule, digest string) map[string]types.AttributeValue {
	t.Helper()
	out, err := e.db.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(e.table), Key: gateKey(kind, rule, digest), ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	return out.Item
}
