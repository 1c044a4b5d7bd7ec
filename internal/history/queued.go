package history

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Queued notes a work item a sweep queued for a service: which digest, when
// and by which sweep. The next sweep leaves the service alone while the
// note names the digest it would queue and is younger than the work queue's
// whole retry span (queue.RetrySpan), instead of queuing a second item
// behind the first. Nothing clears it: the worker's deploy puts the service
// in sync (the sweep then queues nothing), a failure marks the digest failed
// (FailedDigests), a newer digest is not the one noted, and an item parked
// or lost lets the note age past the span.
type Queued struct {
	Digest string    `dynamodbav:"digest"`
	At     time.Time `dynamodbav:"at"`
	By     string    `dynamodbav:"by"` // the sweep's event id
}

// Waiting reports whether q names digest and was noted less than span
// before now: the item it notes may still be in its queue.
func (q *Queued) Waiting(digest string, now time.Time, span time.Duration) bool {
	return q != nil && q.Digest == digest && now.Sub(q.At) < span
}

// String is the note as a sweep's line says it.
func (q *Queued) String() string {
	if q == nil {
		return ""
	}
	return fmt.Sprintf("queued by %s at %s", q.By, q.At.UTC().Format(time.RFC3339))
}

// NoteQueued writes q on the service's state item: one unconditional
// UpdateItem, which leaves the lock, hold and failures beside it as they
// are. Writing the same note twice (a retry) is harmless.
func (w *Store) NoteQueued(ctx context.Context, serviceKey string, q Queued) error {
	v, err := attributevalue.Marshal(q)
	if err != nil {
		return fmt.Errorf("note queued item of %s: %w", serviceKey, err)
	}
	_, err = w.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(w.table),
		Key:                       stateKey(serviceKey).Attributes(),
		UpdateExpression:          aws.String("SET #q = :q"),
		ExpressionAttributeNames:  map[string]string{"#q": "queued"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":q": v},
	})
	if err != nil {
		return fmt.Errorf("note queued item of %s: %w", serviceKey, err)
	}
	return nil
}
