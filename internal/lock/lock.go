// Package lock serialises deploys to one ECS service across concurrent
// Lambda invocations with a lease in DynamoDB: a conditional write takes it,
// an expiry frees it if its holder dies, and waiters back off with jitter.
package lock

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// dynamoAPI is what the locker needs of DynamoDB.
type dynamoAPI interface {
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
}

// Locker takes per-key leases in one table (pk/sk, TTL attribute expires_at).
type Locker struct {
	db    dynamoAPI
	table string
	// Lease is how long a lease holds without its holder; it must outlast
	// one deploy (a few AWS calls) by a wide margin.
	Lease time.Duration
	// MaxWait bounds waiting for a held lease; the context may end it sooner.
	MaxWait time.Duration
	// Now and Sleep are the clock, replaceable in tests.
	Now   func() time.Time
	Sleep func(context.Context, time.Duration) error
}

// New returns a Locker with defaults fit for a Lambda deploy.
func New(db dynamoAPI, table string) *Locker {
	return &Locker{db: db, table: table, Lease: 2 * time.Minute, MaxWait: 90 * time.Second,
		Now: time.Now, Sleep: sleep}
}

// TimeoutError says a lease stayed held for longer than the wait allowed.
// It is transient: a later attempt will find it free.
type TimeoutError struct {
	Key    string
	Waited time.Duration
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("lock %s still held by another deploy after waiting %s", e.Key, e.Waited.Round(time.Millisecond))
}

// ErrLeaseLost is returned by Release when the lease expired and was taken
// by another holder in the meantime.
var ErrLeaseLost = errors.New("lease expired and was taken over before release")

// Lease is a held lock.
type Lease struct {
	l     *Locker
	key   string
	owner string
}

// Key is the table key of a lock, pk "lock#<key>", sk "lock".
func itemKey(key string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: "lock#" + key},
		"sk": &types.AttributeValueMemberS{Value: "lock"},
	}
}

// Acquire takes the lease on key, waiting while another holder has it.
// holder is recorded on the item for whoever inspects the table.
func (l *Locker) Acquire(ctx context.Context, key, holder string) (*Lease, error) {
	owner := newOwner()
	start := l.Now()
	backoff := 100 * time.Millisecond
	for {
		now := l.Now()
		item := itemKey(key)
		item["owner"] = &types.AttributeValueMemberS{Value: owner}
		item["holder"] = &types.AttributeValueMemberS{Value: holder}
		item["lease_until"] = &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Add(l.Lease).UnixMilli(), 10)}
		// TTL only tidies the table; expiry is decided by lease_until because
		// DynamoDB deletes expired items lazily.
		item["expires_at"] = &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Add(l.Lease+24*time.Hour).Unix(), 10)}
		_, err := l.db.PutItem(ctx, &dynamodb.PutItemInput{
			TableName:           aws.String(l.table),
			Item:                item,
			ConditionExpression: aws.String("attribute_not_exists(pk) OR lease_until < :now"),
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":now": &types.AttributeValueMemberN{Value: strconv.FormatInt(now.UnixMilli(), 10)},
			},
		})
		if err == nil {
			return &Lease{l: l, key: key, owner: owner}, nil
		}
		var held *types.ConditionalCheckFailedException
		if !errors.As(err, &held) {
			return nil, fmt.Errorf("take lock %s: %w", key, err)
		}
		waited := l.Now().Sub(start)
		if waited >= l.MaxWait {
			return nil, &TimeoutError{Key: key, Waited: waited}
		}
		// Full jitter keeps racing waiters from retrying in lockstep.
		if err := l.Sleep(ctx, backoff/2+rand.N(backoff/2+1)); err != nil {
			return nil, fmt.Errorf("wait for lock %s: %w", key, err)
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

// Lock is Acquire for callers that only need to unlock again.
func (l *Locker) Lock(ctx context.Context, key, holder string) (func(context.Context) error, error) {
	le, err := l.Acquire(ctx, key, holder)
	if err != nil {
		return nil, err
	}
	return le.Release, nil
}

// Release gives the lease up, unless it was already lost to another holder.
func (le *Lease) Release(ctx context.Context) error {
	_, err := le.l.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:           aws.String(le.l.table),
		Key:                 itemKey(le.key),
		ConditionExpression: aws.String("#owner = :owner"),
		ExpressionAttributeNames: map[string]string{
			"#owner": "owner",
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":owner": &types.AttributeValueMemberS{Value: le.owner},
		},
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

func newOwner() string {
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
