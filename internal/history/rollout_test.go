package history

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

// counting wraps DynamoDB and counts the calls and the bytes of the items
// they return, so a test can show what one completion costs. It also makes
// one call at a time: moto's server applies concurrent transactions without
// isolation (it loses increments, and fails with "dictionary changed size
// during iteration"), where DynamoDB serialises the writes to an item.
// Callers still interleave between their calls, which is the race tested.
type counting struct {
	dynamoAPI
	serial sync.Mutex
	calls  atomic.Int64
	bytes  atomic.Int64
	// lose, when set for an operation, makes its next call apply and then
	// answer an error, as when DynamoDB's response is lost on the way.
	mu   sync.Mutex
	lose map[string]bool
	// conflicts, per operation, is how many of its next calls DynamoDB
	// refuses for another transaction under way (not applied): moto never
	// does, DynamoDB does when ends of one rollout meet on its header.
	conflicts map[string]int
}

func (c *counting) conflict(op string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conflicts[op] == 0 {
		return nil
	}
	c.conflicts[op]--
	if op == "UpdateItem" {
		return &types.TransactionConflictException{Message: aws.String("Transaction is ongoing for the item")}
	}
	return &types.TransactionCanceledException{Message: aws.String("Transaction cancelled"),
		CancellationReasons: []types.CancellationReason{{Code: aws.String("None")}, {Code: aws.String("TransactionConflict")}}}
}

var errLost = errors.New("connection reset: the response was lost")

func (c *counting) lost(op string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lose[op] {
		c.lose[op] = false
		return true
	}
	return false
}

func (c *counting) add(items ...map[string]types.AttributeValue) {
	c.calls.Add(1)
	for _, it := range items {
		c.bytes.Add(int64(itemSize(it)))
	}
}

func (c *counting) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	c.serial.Lock()
	defer c.serial.Unlock()
	if err := c.conflict("UpdateItem"); err != nil {
		c.add()
		return nil, err
	}
	out, err := c.dynamoAPI.UpdateItem(ctx, in, o...)
	if out != nil {
		c.add(out.Attributes)
	} else {
		c.add()
	}
	if err == nil && c.lost("UpdateItem") {
		return nil, errLost
	}
	return out, err
}

func (c *counting) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	c.serial.Lock()
	defer c.serial.Unlock()
	c.add()
	return c.dynamoAPI.PutItem(ctx, in, o...)
}

func (c *counting) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	c.serial.Lock()
	defer c.serial.Unlock()
	c.add()
	if err := c.conflict("TransactWriteItems"); err != nil {
		return nil, err
	}
	out, err := c.dynamoAPI.TransactWriteItems(ctx, in, o...)
	if err == nil && c.lost("TransactWriteItems") {
		return nil, errLost
	}
	return out, err
}

func (c *counting) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	c.serial.Lock()
	defer c.serial.Unlock()
	out, err := c.dynamoAPI.Query(ctx, in, o...)
	if out != nil {
		c.add(out.Items...)
	} else {
		c.add()
	}
	return out, err
}

func (c *counting) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	c.serial.Lock()
	defer c.serial.Unlock()
	out, err := c.dynamoAPI.GetItem(ctx, in, o...)
	if out != nil {
		c.add(out.Item)
	} else {
		c.add()
	}
	return out, err
}

// itemSize is an item's size as DynamoDB counts it, near enough: names
// and values.
func itemSize(item map[string]types.AttributeValue) int {
	n := 0
	for k, v := range item {
		n += len(k)
		switch v := v.(type) {
		case *types.AttributeValueMemberS:
			n += len(v.Value)
		case *types.AttributeValueMemberN:
			n += len(v.Value)
		case *types.AttributeValueMemberSS:
			for _, s := range v.Value {
				n += len(s)
			}
		default:
			n += 8
		}
	}
	return n
}

func newCounting(t *testing.T) (*counting, *Store) {
	t.Helper()
	m := testenv.StartMoto(t)
	table := m.CreateTable(t, "autodeploy")
	c := &counting{dynamoAPI: dynamodb.NewFromConfig(m.AWSConfig()), lose: map[string]bool{}, conflicts: map[string]int{}}
	return c, NewStore(c, table)
}

// targetsOf are svc-00 … svc-<n-1> of cluster fleet, as end names them.
func targetsOf(n int) []RolloutTarget {
	var ts []RolloutTarget
	for i := range n {
		e := end(i, "")
		ts = append(ts, RolloutTarget{ServiceKey: e.ServiceKey, Account: e.Account, Region: e.Region, Cluster: e.Cluster, Service: e.Service})
	}
	return ts
}

func end(i int, outcome string) RolloutEnd {
	svc := fmt.Sprintf("svc-%02d", i)
	return RolloutEnd{ServiceKey: ServiceKey(testenv.Account, testenv.Region, "fleet", svc), Account: testenv.Account,
		Region: testenv.Region, Cluster: "fleet", Service: svc, Outcome: outcome, At: time.Now()}
}

// 50 targets end at once, some twice (a redelivery, a duplicate event),
// and the last two race: exactly one caller owns the rule's notice, and it
// reads every end once.
func TestRolloutEndsOnce(t *testing.T) {
	_, store := newCounting(t)
	ctx := context.Background()
	now := time.Now()
	const targets = 50
	r := Rollout{Rule: "fleet", EventID: "evt-1", Repository: "sidecar", Tag: "v2", Digest: "sha256:d", PushedAt: now}
	for range 2 { // the intake's retry opens it again: nothing changes
		if err := store.OpenRollout(ctx, r, targetsOf(targets), now); err != nil {
			t.Fatal(err)
		}
	}
	outcome := func(i int) string {
		switch {
		case i%10 == 3:
			return Failed
		case i%10 == 7:
			return "skipped"
		}
		return Completed
	}
	var deliveries []int
	for i := range targets - 2 {
		deliveries = append(deliveries, i)
		if i%4 == 0 {
			deliveries = append(deliveries, i) // delivered twice
		}
	}
	var (
		mu      sync.Mutex
		last    []string
		counted = map[string]int{}
		wg      sync.WaitGroup
	)
	run := func(i int) {
		defer wg.Done()
		e := end(i, outcome(i))
		got, err := store.EndRollout(ctx, "fleet", "evt-1", e, now)
		if errors.Is(err, ErrNoticePending) && !got.Counted {
			return // a concurrent duplicate of the last end: its caller tries again
		}
		if err != nil {
			t.Error(err)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if !got.Tracked {
			t.Errorf("end %d not tracked", i)
		}
		if got.Counted {
			counted[e.ServiceKey]++
		}
		if got.Last {
			last = append(last, got.Owner)
			if len(got.Ends) != targets {
				t.Errorf("the last end read %d ends, want %d", len(got.Ends), targets)
			}
		}
	}
	for _, i := range deliveries {
		wg.Add(1)
		go run(i)
	}
	wg.Wait()
	if len(last) != 0 {
		t.Fatalf("notice claimed before every target ended: %v", last)
	}
	// The last two, racing, each delivered twice.
	for _, i := range []int{targets - 2, targets - 1, targets - 2, targets - 1} {
		wg.Add(1)
		go run(i)
	}
	wg.Wait()
	if len(last) != 1 {
		t.Fatalf("notice claimed by %v, want exactly one", last)
	}
	for i := range targets {
		if n := counted[end(i, "").ServiceKey]; n != 1 {
			t.Errorf("target %d counted %d times", i, n)
		}
	}
	if err := store.RolloutNoticeSent(ctx, "fleet", "evt-1", last[0], now); err != nil {
		t.Fatal(err)
	}
	// Once sent, even the claimer's retry does not claim it again.
	for _, i := range []int{0, targets - 1, targets - 2} {
		if got, err := store.EndRollout(ctx, "fleet", "evt-1", end(i, Completed), now); err != nil || got.Last || got.Counted {
			t.Errorf("end %d after the notice: last=%v counted=%v err=%v", i, got.Last, got.Counted, err)
		}
	}
	ends, err := store.RolloutEnds(ctx, "fleet", "evt-1")
	if err != nil {
		t.Fatal(err)
	}
	byOutcome := map[string]int{}
	for _, e := range ends {
		byOutcome[e.Outcome]++
	}
	if diff := cmp.Diff(map[string]int{Completed: 40, Failed: 5, "skipped": 5}, byOutcome); diff != "" {
		t.Errorf("ends by outcome (-want +got):\n%s", diff)
	}
}

// DynamoDB applied a write but its answer was lost: the SDK's (or Lambda's)
// retry counts nothing twice and sends no second notice. A claimer that lost
// its claim's answer is told the notice is pending, as any duplicate is,
// until the claim is stale; then its retry takes the notice over, once.
func TestRolloutWriteAppliedResponseLost(t *testing.T) {
	c, store := newCounting(t)
	ctx := context.Background()
	now := time.Now()
	if err := store.OpenRollout(ctx, Rollout{Rule: "r", EventID: "e"}, targetsOf(2), now); err != nil {
		t.Fatal(err)
	}
	c.lose["TransactWriteItems"] = true
	if _, err := store.EndRollout(ctx, "r", "e", end(0, Completed), now); !errors.Is(err, errLost) {
		t.Fatalf("first end: %v, want the lost answer", err)
	}
	again, err := store.EndRollout(ctx, "r", "e", end(0, Completed), now)
	if err != nil || again.Counted || again.Last || again.Rollout.Ended != 1 {
		t.Fatalf("retry of the first end: %+v, %v; want a duplicate, ended 1", again, err)
	}
	// The last end's claim is applied, its answer lost.
	c.lose["UpdateItem"] = true
	if _, err := store.EndRollout(ctx, "r", "e", end(1, Completed), now); !errors.Is(err, errLost) {
		t.Fatalf("last end: %v, want the lost answer", err)
	}
	for _, i := range []int{0, 1} { // another target's duplicate, the claimer's retry
		if got, err := store.EndRollout(ctx, "r", "e", end(i, Completed), now); !errors.Is(err, ErrNoticePending) || got.Last {
			t.Errorf("end %d while the lost claim is live: %+v, %v; want pending", i, got, err)
		}
	}
	later := now.Add(ClaimStale + time.Second)
	retry, err := store.EndRollout(ctx, "r", "e", end(1, Completed), later)
	if err != nil || !retry.Last || retry.Counted || len(retry.Ends) != 2 {
		t.Fatalf("the claimer's retry once the claim is stale: %+v, %v; want it to own the notice", retry, err)
	}
	if got, err := store.EndRollout(ctx, "r", "e", end(0, Completed), later); !errors.Is(err, ErrNoticePending) || got.Last {
		t.Errorf("a duplicate after the take-over: %+v, %v; want pending", got, err)
	}
	if err := store.RolloutNoticeSent(ctx, "r", "e", retry.Owner, later); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 1} {
		if got, err := store.EndRollout(ctx, "r", "e", end(i, Completed), later); err != nil || got.Last {
			t.Errorf("end %d after sent: %+v, %v", i, got, err)
		}
	}
}

// An end is tracked only for a target its rollout was opened for: no
// rollout, or another target (a sweep's, a target added to the rules since),
// is reported per target, and counts nothing — so the count cannot complete
// while a target it was opened for still deploys. A failure that a
// rollback follows is amended, not counted again. A rollout that ended
// stays ended: opening it again (a redelivery of its push) changes nothing,
// and a late duplicate of an end counts nothing.
func TestRolloutCountsOnlyItsTargetsAndStaysEnded(t *testing.T) {
	_, store := newCounting(t)
	ctx := context.Background()
	now := time.Now()
	r := Rollout{Rule: "r", EventID: "push-1", Digest: "sha256:1"}
	if err := store.OpenRollout(ctx, r, targetsOf(2), now); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name                   string
		end                    RolloutEnd
		tracked, counted, last bool
	}{
		{"no rollout for the event", end(0, Completed), false, false, false},
		{"a target the rollout was not opened for", end(2, Completed), false, false, false},
		{"svc-00 fails", end(0, Failed), true, true, false},
		{"the rollback after the failure", end(0, RolledBack), true, false, false},
		{"svc-02 again, after another open", end(2, Completed), false, false, false},
		{"svc-01, the last", end(1, Completed), true, true, true},
		{"svc-00's late duplicate", end(0, Completed), true, false, false},
		{"svc-01's redelivery after its push was opened again", end(1, Completed), true, false, false},
	}
	var ends []RolloutEnd
	for i, s := range steps {
		event := "push-1"
		switch i {
		case 0:
			event = "push-none"
		case 4:
			// Another open of push-1, for svc-02 only: the rollout is open.
			if err := store.OpenRollout(ctx, r, targetsOf(3)[2:], now); err != nil {
				t.Fatal(err)
			}
		case 7:
			// A redelivery of the push, after its rollout ended.
			if err := store.OpenRollout(ctx, r, targetsOf(2), now); err != nil {
				t.Fatal(err)
			}
		}
		got, err := store.EndRollout(ctx, "r", event, s.end, now)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got.Tracked != s.tracked || got.Counted != s.counted || got.Last != s.last {
			t.Errorf("%s: tracked=%v counted=%v last=%v, want %v %v %v", s.name, got.Tracked, got.Counted, got.Last, s.tracked, s.counted, s.last)
		}
		if got.Last {
			ends = got.Ends
			if got.Rollout.Expected != 2 || got.Rollout.Ended != 2 {
				t.Errorf("%s: ended %d of %d, want 2 of 2", s.name, got.Rollout.Ended, got.Rollout.Expected)
			}
			if err := store.RolloutNoticeSent(ctx, "r", event, got.Owner, now); err != nil {
				t.Fatal(err)
			}
		}
	}
	var outcomes []string
	for _, e := range ends {
		outcomes = append(outcomes, e.Service+" "+e.Outcome)
	}
	if diff := cmp.Diff([]string{"svc-00 rolled_back", "svc-01 completed"}, outcomes); diff != "" {
		t.Errorf("ends (-want +got):\n%s", diff)
	}
}

// A push to many services: opening costs a handful of calls (a
// transaction per 100 target items), an end the same three small calls as
// in a rollout of two, and an open that died half-way is finished by the
// next (the intake's retry), with the count it was opened for. 200 targets
// are two chunks, which is what a chunked open and a constant end need; a
// 1,000-target fill takes moto minutes (it copies the table per transaction
// item), and the other tests end every target.
func TestRolloutOfManyTargets(t *testing.T) {
	c, store := newCounting(t)
	ctx := context.Background()
	now := time.Now()
	const n, ended = 200, 20
	r := Rollout{Rule: "fleet", EventID: "push-many", Digest: "sha256:m"}
	c.lose["TransactWriteItems"] = true // the first chunk applied, its answer lost: the open fails
	if err := store.OpenRollout(ctx, r, targetsOf(n), now); !errors.Is(err, errLost) {
		t.Fatalf("open: %v, want the lost answer", err)
	}
	if got, err := store.EndRollout(ctx, "fleet", "push-many", end(0, Completed), now); err != nil || got.Tracked {
		t.Fatalf("an end before the open finished: %+v, %v; want untracked", got, err)
	}
	c.calls.Store(0)
	if err := store.OpenRollout(ctx, r, targetsOf(n), now); err != nil {
		t.Fatal(err)
	}
	if got, want := c.calls.Load(), int64(2+n/100); got != want {
		t.Errorf("opening for %d targets took %d calls, want %d (the header, a transaction per 100, the count)", n, got, want)
	}
	if err := store.OpenRollout(ctx, Rollout{Rule: "fleet", EventID: "push-2"}, targetsOf(2), now); err != nil {
		t.Fatal(err)
	}
	type cost struct{ calls, bytes int64 }
	measure := func(event string, i int) cost {
		c.calls.Store(0)
		c.bytes.Store(0)
		got, err := store.EndRollout(ctx, "fleet", event, end(i, Completed), now)
		if err != nil || !got.Counted || got.Last {
			t.Fatalf("end %d of %s: %+v, %v", i, event, got, err)
		}
		return cost{c.calls.Load(), c.bytes.Load()}
	}
	small := measure("push-2", 0)
	if small.calls != 3 {
		t.Errorf("an end costs %d calls, want 3 (read its target, the transaction, the claim)", small.calls)
	}
	for i := range ended {
		if got := measure("push-many", i); got.calls != small.calls || got.bytes > small.bytes+8 {
			t.Errorf("end %d of %d cost %+v, an end of 2 %+v", i, n, got, small)
		}
	}
	got, err := store.RolloutEnds(ctx, "fleet", "push-many")
	if err != nil || len(got) != ended {
		t.Errorf("ends read: %d, %v; want the %d that ended", len(got), err, ended)
	}
}

// DynamoDB refuses a transaction that meets another on its items
// (TransactionConflict): the end's transaction is tried again, and
// counted once (see also TestEveryHotWriteOutlastsConflicts).
func TestConflictsAreTriedAgain(t *testing.T) {
	c, store := newCounting(t)
	ctx := context.Background()
	now := time.Now()
	if err := store.OpenRollout(ctx, Rollout{Rule: "r", EventID: "e"}, targetsOf(2), now); err != nil {
		t.Fatal(err)
	}
	c.conflicts["TransactWriteItems"] = 2
	if got, err := store.EndRollout(ctx, "r", "e", end(0, Completed), now); err != nil || !got.Counted {
		t.Fatalf("end after two conflicts: %+v, %v", got, err)
	}
	c.conflicts["TransactWriteItems"] = 3
	got, err := store.EndRollout(ctx, "r", "e", end(1, Completed), now)
	if err != nil || !got.Counted || !got.Last || len(got.Ends) != 2 {
		t.Fatalf("last end, its count conflicting thrice: %+v, %v", got, err)
	}
}

// A deploy that replaced deployments still under way ends them as
// superseded (ECS reports no end of them): the records of other events and
// rules, not its own, not one of the revision it deploys, not one that
// ended; the digest replaced is not remembered as failed; a retry of the
// deploy finds the same records, ended by it, and nothing else.
func TestSupersede(t *testing.T) {
	_, store := newCounting(t)
	ctx := context.Background()
	at := time.Now().UTC()
	key := ServiceKey(testenv.Account, testenv.Region, "fleet", "svc-00")
	rec := func(event, rule, td, depl string, ago time.Duration) Record {
		return Record{Rule: rule, Repository: "web", Tag: event, Digest: "sha256:" + event, Account: testenv.Account, Region: testenv.Region,
			Cluster: "fleet", Service: "svc-00", ToTaskDefinition: td, DeploymentID: depl, EventID: event, Outcome: "deployed",
			PushedAt: at.Add(-ago), DeployedAt: at.Add(-ago)}
	}
	done := rec("push-0", "fleet", "td:1", "ecs-svc/0", 4*time.Hour)
	records := []Record{
		done,
		rec("push-1", "fleet", "td:2", "ecs-svc/1", 3*time.Hour),
		rec("push-2", "other", "td:3", "ecs-svc/2", 2*time.Hour),
		rec("push-3", "fleet", "td:4", "ecs-svc/3", time.Hour),
		rec("push-4", "fleet", "td:4", "ecs-svc/4", 30*time.Minute), // its revision is the one now deployed
	}
	for _, r := range records {
		if err := store.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := store.SetOutcome(ctx, done, Completed, "", at); err != nil {
		t.Fatal(err)
	}
	for try := range 2 { // the deploy, and its retry
		ended, err := store.Supersede(ctx, key, "push-3", "fleet", "td:4", at, at)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range ended {
			if r.DeploymentOutcome != Superseded || r.DeploymentReason != SupersededReason("push-3", "fleet", "td:4") {
				t.Errorf("try %d: %s ended %q: %q", try, r.DeploymentID, r.DeploymentOutcome, r.DeploymentReason)
			}
			got = append(got, r.DeploymentID)
		}
		slices.Sort(got)
		if diff := cmp.Diff([]string{"ecs-svc/1", "ecs-svc/2"}, got); diff != "" {
			t.Errorf("try %d: superseded (-want +got):\n%s", try, diff)
		}
	}
	states, err := store.States(ctx, []string{key})
	if err != nil {
		t.Fatal(err)
	}
	if st := states[key]; st.DigestFailed("sha256:push-1") || st.DigestFailed("sha256:push-2") {
		t.Errorf("a superseded digest is remembered as failed: %v", st.FailedDigests)
	}
	for _, id := range []string{"ecs-svc/1", "ecs-svc/2"} {
		r, _, err := store.ByDeployment(ctx, id)
		if err != nil || r.DeploymentOutcome != Superseded {
			t.Errorf("%s recorded %q, %v", id, r.DeploymentOutcome, err)
		}
	}
	// A later deploy of another push does not claim them as its own.
	if ended, err := store.Supersede(ctx, key, "push-5", "fleet", "td:5", at, at); err != nil || len(ended) != 2 {
		var ids []string
		for _, r := range ended {
			ids = append(ids, r.DeploymentID)
		}
		t.Errorf("push-5 superseded %v, %v; want push-3's and push-4's deployments only", ids, err)
	}
}

// An end keeps a bounded reason, so an item never nears DynamoDB's 400 KB.
func TestRolloutEndReasonBounded(t *testing.T) {
	_, store := newCounting(t)
	ctx := context.Background()
	now := time.Now()
	if err := store.OpenRollout(ctx, Rollout{Rule: "r", EventID: "e"}, targetsOf(1), now); err != nil {
		t.Fatal(err)
	}
	e := end(0, Failed)
	e.Reason = strings.Repeat("é", 100_000)
	got, err := store.EndRollout(ctx, "r", "e", e, now)
	if err != nil || !got.Last {
		t.Fatalf("%+v, %v", got, err)
	}
	if n := len(got.Ends[0].Reason); n > MaxEndReason || !strings.HasSuffix(got.Ends[0].Reason, "…") {
		t.Errorf("reason kept %d bytes", n)
	}
}

// A completion costs the same calls and bytes whatever the rule's number
// of targets, until the last one, which reads the targets once, paged.
func TestPromotionBookkeepingBounded(t *testing.T) {
	c, store := newCounting(t)
	ctx := context.Background()
	at := time.Now()
	type cost struct{ calls, bytes int64 }
	perCompletion := map[int][]cost{}
	for _, targets := range []int{3, 60} {
		digest := fmt.Sprintf("sha256:%d", targets)
		for i := range targets {
			c.calls.Store(0)
			c.bytes.Store(0)
			p, err := store.MarkTargetCompleted(ctx, "r", digest, fmt.Sprintf("k-%03d", i), targets, at)
			if err != nil {
				t.Fatal(err)
			}
			if i < targets-1 {
				perCompletion[targets] = append(perCompletion[targets], cost{c.calls.Load(), c.bytes.Load()})
				if p.Done != nil || p.Completed != i+1 {
					t.Errorf("%d targets, completion %d: %+v", targets, i+1, p)
				}
				continue
			}
			if p.Completed != targets || len(p.Done) != targets || !slices.IsSorted(p.Done) {
				t.Errorf("%d targets, last completion: completed %d, %d done", targets, p.Completed, len(p.Done))
			}
		}
	}
	want := perCompletion[3][0]
	if want.calls != 2 {
		t.Errorf("a completion costs %d calls, want 2 (the transaction, the counter's read)", want.calls)
	}
	for targets, costs := range perCompletion {
		for i, got := range costs {
			// The counter's digits may grow by one byte.
			if got.calls != want.calls || got.bytes > want.bytes+2 {
				t.Errorf("%d targets, completion %d cost %+v, want %+v", targets, i+1, got, want)
			}
		}
	}
	// A duplicate costs the same and counts nothing.
	p, err := store.MarkTargetCompleted(ctx, "r", "sha256:60", "k-000", 60, at)
	if err != nil || p.Completed != 60 {
		t.Errorf("duplicate: %+v, %v", p, err)
	}
}
