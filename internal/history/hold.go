package history

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// SetHold holds a service: deploys skip it until Resume. The hold is an
// attribute of the service's state item, written without its lock (a hold
// must work while a deploy runs; that deploy finishes, the next is skipped).
// Holding a held service replaces who, when and why.
func (w *Store) SetHold(ctx context.Context, serviceKey string, h Hold) error {
	v, err := attributevalue.Marshal(h)
	if err != nil {
		return fmt.Errorf("hold %s: %w", serviceKey, err)
	}
	if _, err := w.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(w.table), Key: stateKey(serviceKey).Attributes(),
		UpdateExpression:          aws.String("SET #hold = :hold"),
		ExpressionAttributeNames:  map[string]string{"#hold": "hold"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":hold": v},
	}); err != nil {
		return fmt.Errorf("hold %s: %w", serviceKey, err)
	}
	return nil
}

// Resume lifts a hold and returns it (nil when the service was not held);
// resuming twice is harmless.
func (w *Store) Resume(ctx context.Context, serviceKey string) (*Hold, error) {
	out, err := w.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(w.table), Key: stateKey(serviceKey).Attributes(),
		UpdateExpression:         aws.String("REMOVE #hold"),
		ExpressionAttributeNames: map[string]string{"#hold": "hold"},
		ReturnValues:             types.ReturnValueUpdatedOld,
	})
	if err != nil {
		return nil, fmt.Errorf("resume %s: %w", serviceKey, err)
	}
	var old ServiceState
	if err := attributevalue.UnmarshalMap(out.Attributes, &old); err != nil {
		return nil, fmt.Errorf("resume %s: %w", serviceKey, err)
	}
	return old.Hold, nil
}

// maxBatchGet is DynamoDB's BatchGetItem limit.
const maxBatchGet = 100

// States reads the state items of many services, 100 to a call; a service
// never deployed has the zero state.
func (w *Store) States(ctx context.Context, serviceKeys []string) (map[string]ServiceState, error) {
	out := map[string]ServiceState{}
	byPK := map[string]string{}
	for _, k := range serviceKeys {
		byPK[stateKey(k).PK] = k
		out[k] = ServiceState{}
	}
	pks := slices.Sorted(maps.Keys(byPK))
	for start := 0; start < len(pks); start += maxBatchGet {
		var keys []map[string]types.AttributeValue
		for _, pk := range pks[start:min(start+maxBatchGet, len(pks))] {
			keys = append(keys, stateKey(byPK[pk]).Attributes())
		}
		pending := map[string]types.KeysAndAttributes{w.table: {Keys: keys}}
		for attempt := 0; len(pending) > 0; attempt++ {
			if attempt > 0 {
				// DynamoDB left some keys unread (throughput): back off and ask again.
				select {
				case <-ctx.Done():
					return nil, ctx.Err()
				case <-time.After(time.Duration(min(attempt, 6)) * 100 * time.Millisecond):
				}
			}
			res, err := w.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: pending})
			if err != nil {
				return nil, fmt.Errorf("read service states: %w", err)
			}
			for _, item := range res.Responses[w.table] {
				var st ServiceState
				if err := attributevalue.UnmarshalMap(item, &st); err != nil {
					return nil, fmt.Errorf("read service states: %w", err)
				}
				pk, _ := item["pk"].(*types.AttributeValueMemberS)
				if pk != nil {
					out[byPK[pk.Value]] = st
				}
			}
			pending = res.UnprocessedKeys
		}
	}
	return out, nil
}
