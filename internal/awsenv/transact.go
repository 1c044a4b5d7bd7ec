package awsenv

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/lock"
)

// TransactAttempts bounds the tries of a transaction that DynamoDB cancels
// for another transaction under way on its items: the ends of one rollout
// (a re-tag of a hundred services, all skipped at once), the completions
// of one digest, two callers deciding one gate.
const TransactAttempts = 12

// TransactWriter is the call TransactWrite makes.
type TransactWriter interface {
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

// TransactWrite runs a transaction. One that DynamoDB cancels for another
// transaction on its items (IsTransactionConflict) is sent again after a
// jittered, growing wait (ConflictBackoff), up to TransactAttempts times,
// each time with a fresh ClientRequestToken: the SDK sends one token on all
// its attempts, and DynamoDB answers identical calls of a token, for 10
// minutes, with the first call's result — the cancellation again. Within
// one try the token stays, so the SDK's retry of a try whose answer was
// lost is idempotent. A single write that meets a transaction is the state
// retryer's to retry (NewStateRetryer). Any other error, a cancellation for
// the transaction's conditions among them, is returned as it is, for the
// caller to read.
func TransactWrite(ctx context.Context, db TransactWriter, in *dynamodb.TransactWriteItemsInput) error {
	for attempt := 1; ; attempt++ {
		try := *in
		try.ClientRequestToken = aws.String(lock.NewToken())
		_, err := db.TransactWriteItems(ctx, &try)
		if !IsTransactionConflict(err) {
			return err
		}
		if attempt == TransactAttempts {
			return fmt.Errorf("still conflicting after %d attempts: %w", attempt, err)
		}
		if err := ConflictBackoff(ctx, attempt); err != nil {
			return fmt.Errorf("wait to retry a conflicting transaction: %w", err)
		}
	}
}

// ConflictBackoff waits before the next attempt of a transaction that
// conflicted: full jitter, growing from 20 ms to at most 2 s, as the writes
// that conflict arrive together.
func ConflictBackoff(ctx context.Context, attempt int) error {
	t := time.NewTimer(conflictDelay(attempt))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// conflictDelay is the wait before attempt+1 of a write that conflicted
// with a transaction: full jitter up to 20 ms·2^(attempt-1), at most 2 s.
func conflictDelay(attempt int) time.Duration {
	limit := min(2*time.Second, 20*time.Millisecond<<min(max(attempt-1, 0), 10))
	return time.Duration(rand.Int64N(int64(limit)))
}
