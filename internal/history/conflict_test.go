package history

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
)

// A fake, not moto: occupying plays DynamoDB's transaction isolation, which moto lacks (the
// suite serialises every call instead): while a TransactWriteItems is under
// way (hold, about a transaction's latency in AWS) its items are busy; another
// transaction touching one is cancelled with TransactionConflict, a single
// PutItem/UpdateItem on one fails with TransactionConflictException. Nothing
// is applied by a refused call. Plain writes do not make items busy.
type occupying struct {
	dynamoAPI
	hold      time.Duration
	mu        sync.Mutex
	busy      map[string]int
	conflicts atomic.Int64
}

func akey(k map[string]types.AttributeValue) string {
	return aws.ToString(strOf(k["pk"])) + "|" + aws.ToString(strOf(k["sk"]))
}

func txKeys(in *dynamodb.TransactWriteItemsInput) []string {
	var ks []string
	for _, it := range in.TransactItems {
		switch {
		case it.Update != nil:
			ks = append(ks, akey(it.Update.Key))
		case it.Put != nil:
			ks = append(ks, akey(it.Put.Item))
		case it.Delete != nil:
			ks = append(ks, akey(it.Delete.Key))
		case it.ConditionCheck != nil:
			ks = append(ks, akey(it.ConditionCheck.Key))
		}
	}
	return ks
}

func (o *occupying) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, f ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	ks := txKeys(in)
	o.mu.Lock()
	reasons := make([]types.CancellationReason, len(ks))
	conflict := false
	for i, k := range ks {
		reasons[i].Code = aws.String("None")
		if o.busy[k] > 0 {
			reasons[i].Code, conflict = aws.String("TransactionConflict"), true
		}
	}
	if !conflict {
		for _, k := range ks {
			o.busy[k]++
		}
	}
	o.mu.Unlock()
	if conflict {
		o.conflicts.Add(1)
		return nil, &types.TransactionCanceledException{Message: aws.String("Transaction cancelled"), CancellationReasons: reasons}
	}
	// Busy for the transaction's latency only; moto (serialised by the
	// suite) then applies it, outside the window.
	time.Sleep(o.hold)
	o.mu.Lock()
	for _, k := range ks {
		o.busy[k]--
	}
	o.mu.Unlock()
	return o.dynamoAPI.TransactWriteItems(ctx, in, f...)
}

func (o *occupying) single(k string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.busy[k] > 0 {
		o.conflicts.Add(1)
		return &types.TransactionConflictException{Message: aws.String("Transaction is ongoing for the item")}
	}
	return nil
}

func (o *occupying) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, f ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if err := o.single(akey(in.Key)); err != nil {
		return nil, err
	}
	return o.dynamoAPI.UpdateItem(ctx, in, f...)
}

func (o *occupying) PutItem(ctx context.Context, in *dynamodb.PutItemInput, f ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if err := o.single(akey(in.Item)); err != nil {
		return nil, err
	}
	return o.dynamoAPI.PutItem(ctx, in, f...)
}

// sdkRetried plays, above occupying, what the SDK's state retryer does
// below the store in AWS (awsenv.NewStateRetryer knows
// TransactionConflictException): a single write refused for a transaction
// on its item is sent again, up to awsenv.MaxAttempts, with full-jitter
// backoff (here from 20 ms to 1 s, shorter than the SDK's, so the test is
// the harder case). Transactions are the store's own to retry (transact).
type sdkRetried struct{ dynamoAPI }

// retry is the state retryer (awsenv.NewStateRetryer) on a single write
// that met a transaction: MaxAttempts attempts, full jitter doubling from
// 20 ms to 2 s (its conflict delay).
func (r sdkRetried) retry(ctx context.Context, call func() error) error {
	backoff := 20 * time.Millisecond
	var err error
	for range awsenv.MaxAttempts {
		var conflict *types.TransactionConflictException
		if err = call(); !errors.As(err, &conflict) {
			return err
		}
		time.Sleep(time.Duration(rand.Int64N(int64(backoff))))
		backoff = min(2*backoff, 2*time.Second)
	}
	return err
}

func (r sdkRetried) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, f ...func(*dynamodb.Options)) (out *dynamodb.UpdateItemOutput, err error) {
	err = r.retry(ctx, func() error { out, err = r.dynamoAPI.UpdateItem(ctx, in, f...); return err })
	return out, err
}

func (r sdkRetried) PutItem(ctx context.Context, in *dynamodb.PutItemInput, f ...func(*dynamodb.Options)) (out *dynamodb.PutItemOutput, err error) {
	err = r.retry(ctx, func() error { out, err = r.dynamoAPI.PutItem(ctx, in, f...); return err })
	return out, err
}

// memDB is an in-memory table that answers exactly the calls a rollout's
// open and ends make (their expressions, matched as written in rollout.go),
// concurrently, with a latency per call, so that the ends of a burst meet
// on the header as they do in DynamoDB; wrapped in occupying, a
// transaction's items are busy for its latency. moto cannot show this: it
// applies concurrent transactions without isolation, so the suite serialises
// every call, and its per-call CPU then spaces the ends out.
type memDB struct {
	dynamoAPI // unused calls panic
	mu        sync.Mutex
	items     map[string]map[string]types.AttributeValue
	lat       time.Duration
}

func (m *memDB) get(k map[string]types.AttributeValue) map[string]types.AttributeValue {
	return m.items[akey(k)]
}

func numOf(v types.AttributeValue) int {
	if n, ok := v.(*types.AttributeValueMemberN); ok {
		i, _ := strconv.Atoi(n.Value)
		return i
	}
	return 0
}

// cond evaluates the conditions rollout.go writes.
func cond(expr string, it map[string]types.AttributeValue, vals map[string]types.AttributeValue) bool {
	has := func(a string) bool { _, ok := it[a]; return ok }
	switch expr {
	case "":
		return true
	case "attribute_not_exists(pk)":
		return !has("pk")
	case "attribute_exists(pk) AND attribute_not_exists(expected)":
		return has("pk") && !has("expected")
	case "attribute_exists(pk) AND attribute_not_exists(outcome)":
		return has("pk") && !has("outcome")
	case "attribute_exists(expected)":
		return has("expected")
	}
	if strings.HasPrefix(expr, "ended >= expected AND") {
		me := aws.ToString(strOf(vals[":me"]))
		return has("expected") && numOf(it["ended"]) >= numOf(it["expected"]) &&
			(!has("notice_owner") || (!has("notice_sent") && (aws.ToString(strOf(it["notice_owner"])) == me ||
				numOf(it["notice_at"]) < numOf(vals[":stale"]))))
	}
	panic("condition not played: " + expr)
}

// apply applies SET a = :v, ... and ADD a :v.
func apply(expr string, it map[string]types.AttributeValue, names map[string]string, vals map[string]types.AttributeValue) {
	if rest, ok := strings.CutPrefix(expr, "ADD "); ok {
		f := strings.Fields(rest)
		it[f[0]] = num(numOf(it[f[0]]) + numOf(vals[f[1]]))
		return
	}
	rest, ok := strings.CutPrefix(expr, "SET ")
	if !ok {
		panic("update not played: " + expr)
	}
	for _, a := range strings.Split(rest, ",") {
		lhs, rhs, _ := strings.Cut(a, "=")
		lhs, rhs = strings.TrimSpace(lhs), strings.TrimSpace(rhs)
		if n, ok := names[lhs]; ok {
			lhs = n
		}
		it[lhs] = vals[rhs]
	}
}

func copyItem(it map[string]types.AttributeValue) map[string]types.AttributeValue {
	out := map[string]types.AttributeValue{}
	for k, v := range it {
		out[k] = v
	}
	return out
}

func (m *memDB) GetItem(ctx context.Context, in *dynamodb.GetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	time.Sleep(m.lat)
	m.mu.Lock()
	defer m.mu.Unlock()
	it := m.get(in.Key)
	if it == nil {
		return &dynamodb.GetItemOutput{}, nil
	}
	return &dynamodb.GetItemOutput{Item: copyItem(it)}, nil
}

func (m *memDB) PutItem(ctx context.Context, in *dynamodb.PutItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	time.Sleep(m.lat)
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.get(in.Item)
	if old == nil {
		old = map[string]types.AttributeValue{}
	}
	if !cond(aws.ToString(in.ConditionExpression), old, in.ExpressionAttributeValues) {
		return nil, &types.ConditionalCheckFailedException{Message: aws.String("failed"), Item: copyItem(old)}
	}
	m.items[akey(in.Item)] = copyItem(in.Item)
	return &dynamodb.PutItemOutput{}, nil
}

func (m *memDB) update(key map[string]types.AttributeValue, u *types.Update) {
	it := m.get(key)
	if it == nil {
		it = copyItem(key)
		m.items[akey(key)] = it
	}
	apply(aws.ToString(u.UpdateExpression), it, u.ExpressionAttributeNames, u.ExpressionAttributeValues)
}

func (m *memDB) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	time.Sleep(m.lat)
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.get(in.Key)
	if old == nil {
		old = map[string]types.AttributeValue{}
	}
	if !cond(aws.ToString(in.ConditionExpression), old, in.ExpressionAttributeValues) {
		var item map[string]types.AttributeValue
		if len(old) > 0 {
			item = copyItem(old)
		}
		return nil, &types.ConditionalCheckFailedException{Message: aws.String("failed"), Item: item}
	}
	m.update(in.Key, &types.Update{UpdateExpression: in.UpdateExpression, ExpressionAttributeNames: in.ExpressionAttributeNames,
		ExpressionAttributeValues: in.ExpressionAttributeValues})
	return &dynamodb.UpdateItemOutput{Attributes: copyItem(m.get(in.Key))}, nil
}

func (m *memDB) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, _ ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	reasons := make([]types.CancellationReason, len(in.TransactItems))
	failed := false
	for i, t := range in.TransactItems {
		reasons[i].Code = aws.String("None")
		var key, values map[string]types.AttributeValue
		var expr *string
		if t.Put != nil {
			key, expr, values = t.Put.Item, t.Put.ConditionExpression, t.Put.ExpressionAttributeValues
		} else {
			key, expr, values = t.Update.Key, t.Update.ConditionExpression, t.Update.ExpressionAttributeValues
		}
		old := m.get(key)
		if old == nil {
			old = map[string]types.AttributeValue{}
		}
		if !cond(aws.ToString(expr), old, values) {
			reasons[i].Code, failed = aws.String("ConditionalCheckFailed"), true
			reasons[i].Item = copyItem(old)
		}
	}
	if failed {
		return nil, &types.TransactionCanceledException{Message: aws.String("cancelled"), CancellationReasons: reasons}
	}
	for _, t := range in.TransactItems {
		if t.Put != nil {
			m.items[akey(t.Put.Item)] = copyItem(t.Put.Item)
			continue
		}
		m.update(t.Update.Key, t.Update)
	}
	return &dynamodb.TransactWriteItemsOutput{}, nil
}

func (m *memDB) Query(ctx context.Context, in *dynamodb.QueryInput, _ ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	time.Sleep(m.lat)
	m.mu.Lock()
	defer m.mu.Unlock()
	pk := aws.ToString(strOf(in.ExpressionAttributeValues[":pk"]))
	prefix := aws.ToString(strOf(in.ExpressionAttributeValues[":target"]))
	var keys []string
	for k := range m.items {
		if strings.HasPrefix(k, pk+"|"+prefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	out := &dynamodb.QueryOutput{}
	for _, k := range keys {
		out.Items = append(out.Items, copyItem(m.items[k]))
	}
	return out, nil
}

// The ends of one rollout all write its header (a transaction's
// ADD ended, then a claim), and DynamoDB cancels a transaction that meets
// another on an item instead of queueing it. A burst of skips — a push
// whose every target already runs the digest (a re-tag), a rule's targets
// held — at the worker's default 2 invocations x 10 items per place, or the
// watcher (unbounded concurrency): n ends at once on one header, with AWS-like
// latencies (5 ms a call, 15 ms a transaction). Each must be counted within
// EndRollout's 8 tries (its claim within the SDK's, sdkRetried), and one end must
// own the rule's notice.
func TestHotRolloutHeaderOutlastsTransactionConflicts(t *testing.T) {
	for _, n := range []int{20, 40, 60, 100} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			mem := &memDB{items: map[string]map[string]types.AttributeValue{}, lat: 5 * time.Millisecond}
			o := &occupying{dynamoAPI: mem, hold: 15 * time.Millisecond, busy: map[string]int{}}
			store := NewStore(sdkRetried{o}, "autodeploy")
			ctx := context.Background()
			now := time.Now()
			if err := store.OpenRollout(ctx, Rollout{Rule: "fleet", EventID: "retag"}, targetsOf(n), now); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			var failed, last atomic.Int64
			var first atomic.Value
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					got, err := store.EndRollout(ctx, "fleet", "retag", end(i, "skipped"), now)
					if err != nil && !errors.Is(err, ErrNoticePending) {
						failed.Add(1)
						first.CompareAndSwap(nil, err.Error())
					}
					if got.Last {
						last.Add(1)
					}
				}()
			}
			wg.Wait()
			if failed.Load() > 0 {
				t.Errorf("%d of %d ends not recorded (%d conflicts met); first: %v", failed.Load(), n, o.conflicts.Load(), first.Load())
			}
			if last.Load() != 1 {
				t.Errorf("the rule's notice claimed %d times, want 1", last.Load())
			}
		})
	}
}
