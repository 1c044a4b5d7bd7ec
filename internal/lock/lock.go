// Package lock serialises deploys to one ECS service across concurrent
// Lambda invocations and operators with a lease on a DynamoDB item.
//
// No clock is compared across machines: a lease carries a record version
// number (rvn) that its holder changes every Lease/3 while it works. A taker
// that finds the lease held notes the rvn and may take it over only after
// seeing the same rvn for a whole lease duration on its own monotonic clock
// (the scheme of the Amazon DynamoDB Lock Client). A laptop whose clock is
// minutes off therefore cannot break a live lease.
//
// Every conditional write names the writer's owner token, so a write that
// DynamoDB applied but whose response was lost succeeds again when the SDK
// retries it, instead of failing its own condition.
//
// The lock lives on an item that may hold other attributes (the service's
// state); taking it returns them, so a deploy reads its state in the same
// call that locks, and releasing can be part of a caller's transaction.
package lock

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// dynamoAPI is what the locker needs of DynamoDB.
type dynamoAPI interface {
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
}

// Locker takes leases on items of one table (pk/sk, TTL attribute expires_at).
type Locker struct {
	db    dynamoAPI
	table string
	// Lease is how long a lease holds without a renewal. Holders renew every
	// Lease/3, so it only has to outlast a stalled or dead holder.
	Lease time.Duration
	// MaxWait bounds waiting for a held lease; the context may end it sooner.
	MaxWait time.Duration
	// Now and Sleep are the clock, replaceable in tests. Only durations
	// measured on this one clock are ever used.
	Now   func() time.Time
	Sleep func(context.Context, time.Duration) error
}

// New returns a Locker with defaults fit for a Lambda deploy: a dead
// holder's lease is taken over 20 s after a waiter first sees it, and the
// item never expires (a service's state lives on it).
func New(db dynamoAPI, table string) *Locker {
	return &Locker{db: db, table: table, Lease: 20 * time.Second, MaxWait: 90 * time.Second,
		Now: time.Now, Sleep: sleep}
}

// TimeoutError says a lease stayed held for longer than the wait allowed.
// It is transient: a later attempt will find it free.
type TimeoutError struct {
	Key    string
	Holder string
	Waited time.Duration
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("lock %s still held by %s after waiting %s", e.Key, e.Holder, e.Waited.Round(time.Millisecond))
}

// ErrLeaseLost says the lease was taken over by another holder (its renewals
// stalled for a whole lease), so the work it guarded must stop.
var ErrLeaseLost = errors.New("lease lost: another holder took the lock over")

// Key names the item a lock lives on.
type Key struct{ PK, SK string }

func (k Key) String() string { return k.PK + "/" + k.SK }

// Attributes is the key as DynamoDB takes it.
func (k Key) Attributes() map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: k.PK},
		"sk": &types.AttributeValueMemberS{Value: k.SK},
	}
}

// Attribute names of the lease on the item.
const (
	attrOwner    = "lock_owner"
	attrHolder   = "lock_holder"
	attrRVN      = "lock_rvn"
	attrLeaseMS  = "lock_lease_ms"
	attrTakenAt  = "lock_taken_at"
	attrExpireAt = "expires_at"
)

// Lease is a held lock.
type Lease struct {
	l     *Locker
	key   Key
	owner string
	// Item is the whole item as it stood right after the lease was taken.
	Item map[string]types.AttributeValue
	// TookOver is the holder of a lease this one may have taken over: it
	// held the item and did not renew it for a whole lease (it died, or
	// released it just then). "" when the item was free at once.
	TookOver string

	mu      sync.Mutex
	renewed time.Time // when the last successful write of the lease was sent
	lost    error
	stop    chan struct{}
	done    chan struct{}
}

// Acquire takes the lease on key, waiting while another holder has it.
// holder is recorded on the item for whoever inspects the table.
func (l *Locker) Acquire(ctx context.Context, key Key, holder string) (*Lease, error) {
	owner := NewToken()
	start := l.Now()
	backoff := 100 * time.Millisecond
	var seenRVN, seenHolder string
	var seenAt time.Time
	seenLease := l.Lease
	for {
		sent := l.Now()
		cond := "attribute_not_exists(#owner) OR #owner = :owner"
		values := map[string]types.AttributeValue{
			":owner":  &types.AttributeValueMemberS{Value: owner},
			":holder": &types.AttributeValueMemberS{Value: holder},
			":rvn":    &types.AttributeValueMemberS{Value: NewToken()},
			":lease":  &types.AttributeValueMemberN{Value: strconv.FormatInt(l.Lease.Milliseconds(), 10)},
			":at":     &types.AttributeValueMemberS{Value: sent.UTC().Format(time.RFC3339Nano)},
		}
		// A locked item never expires: its other attributes (a service's
		// hold, failed digests) must not vanish with time; taking removes
		// an expiry an older version left.
		update := "SET #owner = :owner, #holder = :holder, #rvn = :rvn, #lease = :lease, #at = :at REMOVE #exp"
		takeover := seenRVN != "" && sent.Sub(seenAt) >= seenLease
		if takeover {
			// The holder has not renewed for a whole lease: it is gone.
			cond += " OR #rvn = :seen"
			values[":seen"] = &types.AttributeValueMemberS{Value: seenRVN}
		}
		out, err := l.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:           aws.String(l.table),
			Key:                 key.Attributes(),
			UpdateExpression:    aws.String(update),
			ConditionExpression: aws.String(cond),
			ExpressionAttributeNames: map[string]string{
				"#owner": attrOwner, "#holder": attrHolder, "#rvn": attrRVN, "#lease": attrLeaseMS,
				"#at": attrTakenAt, "#exp": attrExpireAt,
			},
			ExpressionAttributeValues:           values,
			ReturnValues:                        types.ReturnValueAllNew,
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		})
		if err == nil {
			le := &Lease{l: l, key: key, owner: owner, Item: out.Attributes, renewed: sent,
				stop: make(chan struct{}), done: make(chan struct{})}
			if takeover {
				le.TookOver = seenHolder
			}
			go le.heartbeat(ctx)
			return le, nil
		}
		var held *types.ConditionalCheckFailedException
		if !errors.As(err, &held) {
			return nil, fmt.Errorf("take lock %s: %w", key, err)
		}
		if rvn := str(held.Item, attrRVN); rvn != seenRVN {
			seenRVN, seenAt, seenHolder = rvn, l.Now(), str(held.Item, attrHolder)
			seenLease = l.Lease
			if ms, err := strconv.ParseInt(num(held.Item, attrLeaseMS), 10, 64); err == nil && ms > 0 {
				seenLease = time.Duration(ms) * time.Millisecond
			}
		}
		waited := l.Now().Sub(start)
		if waited >= l.MaxWait {
			return nil, &TimeoutError{Key: key.String(), Holder: seenHolder, Waited: waited}
		}
		// Full jitter keeps racing waiters from retrying in lockstep.
		if err := l.Sleep(ctx, backoff/2+rand.N(backoff/2+1)); err != nil {
			return nil, fmt.Errorf("wait for lock %s: %w", key, err)
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

// heartbeat renews the lease every Lease/3 until Stop or the context ends.
func (le *Lease) heartbeat(ctx context.Context) {
	defer close(le.done)
	tick := time.NewTicker(max(le.l.Lease/3, time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-le.stop:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := le.renew(ctx); errors.Is(err, ErrLeaseLost) {
			return
		}
	}
}

// renew changes the rvn, so waiters see the holder is alive.
func (le *Lease) renew(ctx context.Context) error {
	sent := le.l.Now()
	_, err := le.l.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(le.l.table),
		Key:                       le.key.Attributes(),
		UpdateExpression:          aws.String("SET #rvn = :rvn"),
		ConditionExpression:       aws.String("#owner = :owner"),
		ExpressionAttributeNames:  map[string]string{"#rvn": attrRVN, "#owner": attrOwner},
		ExpressionAttributeValues: map[string]types.AttributeValue{":rvn": &types.AttributeValueMemberS{Value: NewToken()}, ":owner": &types.AttributeValueMemberS{Value: le.owner}},
	})
	le.mu.Lock()
	defer le.mu.Unlock()
	var taken *types.ConditionalCheckFailedException
	switch {
	case errors.As(err, &taken):
		le.lost = ErrLeaseLost
	case err == nil:
		le.renewed = sent
	}
	return le.lost
}

// Check says whether the lease is still surely held: nil, or ErrLeaseLost
// once it was taken over or has gone a whole lease (less a margin for the
// write in flight) without a successful renewal. Check before each write
// the lease guards.
func (le *Lease) Check() error {
	le.mu.Lock()
	defer le.mu.Unlock()
	if le.lost == nil && le.l.Now().Sub(le.renewed) >= le.l.Lease-le.l.Lease/10 {
		le.lost = ErrLeaseLost
	}
	if le.lost != nil {
		return fmt.Errorf("lock %s: %w", le.key, le.lost)
	}
	return nil
}

// Stop ends the renewals; Release and ReleaseUpdate call it.
func (le *Lease) Stop() {
	select {
	case <-le.stop:
	default:
		close(le.stop)
	}
	<-le.done
}

// releaseParts are the clauses that give the lease up on its item.
func (le *Lease) releaseParts() (remove, cond string, names map[string]string, values map[string]types.AttributeValue) {
	return "REMOVE #owner, #holder, #rvn, #lease, #at",
		// An absent owner is our own release retried by the SDK.
		"attribute_not_exists(#owner) OR #owner = :owner",
		map[string]string{"#owner": attrOwner, "#holder": attrHolder, "#rvn": attrRVN, "#lease": attrLeaseMS, "#at": attrTakenAt},
		map[string]types.AttributeValue{":owner": &types.AttributeValueMemberS{Value: le.owner}}
}

// Release gives the lease up, unless it was already taken over.
func (le *Lease) Release(ctx context.Context) error {
	le.Stop()
	remove, cond, names, values := le.releaseParts()
	_, err := le.l.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(le.l.table),
		Key:                       le.key.Attributes(),
		UpdateExpression:          aws.String(remove),
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	})
	var lost *types.ConditionalCheckFailedException
	if errors.As(err, &lost) {
		return fmt.Errorf("release lock %s: %w", le.key, ErrLeaseLost)
	}
	if err != nil {
		return fmt.Errorf("release lock %s: %w", le.key, err)
	}
	return nil
}

// ReleaseUpdate is a transaction item that releases the lease and applies
// update (UpdateExpression clauses other than REMOVE, such as "SET a = :a
// ADD b :b"; "" for none) with its names and values, so a
// caller can write its results and unlock in one call. A transaction
// cancelled by this item's condition means the lease was lost.
func (le *Lease) ReleaseUpdate(update string, names map[string]string, values map[string]types.AttributeValue) types.TransactWriteItem {
	le.Stop()
	remove, cond, n, v := le.releaseParts()
	for k, x := range values {
		v[k] = x
	}
	for k, x := range names {
		n[k] = x
	}
	expr := remove
	if update != "" {
		expr = update + " " + remove
	}
	return types.TransactWriteItem{Update: &types.Update{
		TableName:                 aws.String(le.l.table),
		Key:                       le.key.Attributes(),
		UpdateExpression:          aws.String(expr),
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeNames:  n,
		ExpressionAttributeValues: v,
	}}
}

func str(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func num(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberN); ok {
		return v.Value
	}
	return ""
}

// NewToken is a random token naming one writer or one write.
func NewToken() string {
	b := make([]byte, 12)
	_, _ = crand.Read(b) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
