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
	c := &counting{dynamoAPI: dynamodb.NewFromConfig(m.AWSConfig()), lose: map[string]bool{}}
	return c, NewStore(c, table)
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
	r := Rollout{Rule: "fleet", EventID: "evt-1", Repository: "sidecar", Tag: "v2", Digest: "sha256:d", PushedAt: now, Expected: targets}
	for range 2 { // the intake's retry opens it again: nothing changes
		if err := store.OpenRollout(ctx, r, now); err != nil {
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
			last = append(last, e.ServiceKey)
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
	if err := store.RolloutNoticeSent(ctx, "fleet", "evt-1", 1, last[0], now); err != nil {
		t.Fatal(err)
	}
	// Once sent, even the claimer's retry does not claim it again.
	for _, i := range []int{0, targets - 1, targets - 2} {
		if got, err := store.EndRollout(ctx, "fleet", "evt-1", end(i, Completed), now); err != nil || got.Last || got.Counted {
			t.Errorf("end %d after the notice: last=%v counted=%v err=%v", i, got.Last, got.Counted, err)
		}
	}
	ends, err := store.RolloutEnds(ctx, "fleet", "evt-1", 1)
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
// retry counts nothing twice and sends no second notice, yet a claimer that
// lost its claim's answer still owns the notice on its retry.
func TestRolloutWriteAppliedResponseLost(t *testing.T) {
	c, store := newCounting(t)
	ctx := context.Background()
	now := time.Now()
	if err := store.OpenRollout(ctx, Rollout{Rule: "r", EventID: "e", Expected: 2}, now); err != nil {
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
	if got, err := store.EndRollout(ctx, "r", "e", end(0, Completed), now); err != nil || got.Last {
		t.Errorf("another target's duplicate claimed the notice: %+v, %v", got, err)
	}
	retry, err := store.EndRollout(ctx, "r", "e", end(1, Completed), now)
	if err != nil || !retry.Last || retry.Counted || len(retry.Ends) != 2 {
		t.Fatalf("the claimer's retry: %+v, %v; want it to own the notice", retry, err)
	}
	if err := store.RolloutNoticeSent(ctx, "r", "e", retry.Rollout.Round, end(1, "").ServiceKey, now); err != nil {
		t.Fatal(err)
	}
	if got, err := store.EndRollout(ctx, "r", "e", end(1, Completed), now); err != nil || got.Last {
		t.Errorf("after sent: %+v, %v", got, err)
	}
}

// No rollout open: the end is not tracked (reported per target). A failure
// that a rollback follows is amended, not counted again. A sweep's event id
// comes back: a finished round is reopened, an open one left alone.
func TestRolloutRoundsAndAmends(t *testing.T) {
	_, store := newCounting(t)
	ctx := context.Background()
	now := time.Now()
	if got, err := store.EndRollout(ctx, "r", "none", end(0, Completed), now); err != nil || got.Tracked {
		t.Fatalf("end without a rollout: %+v, %v", got, err)
	}
	r := Rollout{Rule: "r", EventID: "reconcile-abc", Digest: "sha256:1", Expected: 2}
	if err := store.OpenRollout(ctx, r, now); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		end     RolloutEnd
		counted bool
		last    bool
	}{
		{end(0, Failed), true, false},
		{end(0, RolledBack), false, false}, // the rollback after the failure
		{end(1, Completed), true, true},
	}
	var ends []RolloutEnd
	for i, s := range steps {
		got, err := store.EndRollout(ctx, "r", "reconcile-abc", s.end, now)
		if err != nil {
			t.Fatal(err)
		}
		if got.Counted != s.counted || got.Last != s.last {
			t.Errorf("step %d: counted=%v last=%v, want %v %v", i, got.Counted, got.Last, s.counted, s.last)
		}
		ends = got.Ends
	}
	var outcomes []string
	for _, e := range ends {
		outcomes = append(outcomes, e.Service+" "+e.Outcome)
	}
	if diff := cmp.Diff([]string{"svc-00 rolled_back", "svc-01 completed"}, outcomes); diff != "" {
		t.Errorf("ends (-want +got):\n%s", diff)
	}
	// The next sweep of the digest dispatches one target again: round 2.
	r.Expected = 1
	if err := store.OpenRollout(ctx, r, now); err != nil {
		t.Fatal(err)
	}
	// A dispatch while round 2 is open changes nothing.
	r.Expected = 5
	if err := store.OpenRollout(ctx, r, now); err != nil {
		t.Fatal(err)
	}
	got, err := store.EndRollout(ctx, "r", "reconcile-abc", end(0, Completed), now)
	if err != nil || !got.Counted || !got.Last || got.Rollout.Round != 2 || got.Rollout.Expected != 1 || len(got.Ends) != 1 {
		t.Errorf("round 2: %+v, %v", got, err)
	}
}

// An end keeps a bounded reason, so an item never nears DynamoDB's 400 KB.
func TestRolloutEndReasonBounded(t *testing.T) {
	_, store := newCounting(t)
	ctx := context.Background()
	now := time.Now()
	if err := store.OpenRollout(ctx, Rollout{Rule: "r", EventID: "e", Expected: 1}, now); err != nil {
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
