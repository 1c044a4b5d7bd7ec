package history

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/lock"
)

// sortableTime is a UTC time whose text sorts as the time does.
const sortableTime = "2006-01-02T15:04:05.000000000Z"

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
				st, err := stateOf(item)
				if err != nil {
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

// Actions of hold events.
const (
	HoldPlaced = "hold"
	HoldLifted = "resume"
)

// HoldEvent is a hold placed or lifted, as `autodeploy history` lists it.
// Its items (sk "hold#<time>#<token>") sort beside the deploy records under
// the service's pk but outside their "deploy#" prefix, so nothing that reads
// deploys (Recent: the watcher, rollback, status) ever sees one.
type HoldEvent struct {
	Action string    `dynamodbav:"action"`
	By     string    `dynamodbav:"by"`
	At     time.Time `dynamodbav:"at"`
	// Reason is the hold's (HoldPlaced).
	Reason string `dynamodbav:"reason,omitempty"`
	// Previous is the hold lifted (HoldLifted) or replaced (HoldPlaced with
	// replace), so no holder's reason is ever lost.
	Previous *Hold  `dynamodbav:"previous,omitempty"`
	Token    string `dynamodbav:"token"`
}

// AlreadyHeldError refuses to hold a held service without replace.
type AlreadyHeldError struct{ Hold Hold }

func (e *AlreadyHeldError) Error() string { return "already " + e.Hold.String() }

// errHoldChanged: the hold changed between reading and writing it.
var errHoldChanged = errors.New("its hold changed meanwhile (another operator?); run the command again")

// PlaceHold holds a service and writes the hold's event in one
// transaction. A service already held is refused with *AlreadyHeldError,
// unless replace: then the event keeps the hold it replaced. The write is
// conditional on the hold read just before, so two operators at once cannot
// both think they placed theirs; when the write was applied but its answer
// lost, the SDK's retry fails that condition and finds its own event: done.
func (w *Store) PlaceHold(ctx context.Context, serviceKey string, h Hold, replace bool) (replaced *Hold, err error) {
	ev := HoldEvent{Action: HoldPlaced, By: h.By, At: h.At, Reason: h.Reason}
	prev, err := w.changeHold(ctx, serviceKey, &ev, func(prev *Hold) error {
		if prev != nil && !replace {
			return &AlreadyHeldError{Hold: *prev}
		}
		return nil
	}, &h)
	if err != nil {
		return nil, fmt.Errorf("hold %s: %w", serviceKey, err)
	}
	return prev, nil
}

// LiftHold lifts a service's hold and writes the resume's event in one
// transaction; it returns the hold lifted, nil (and writes nothing) when the
// service was not held. Lifting twice is harmless.
func (w *Store) LiftHold(ctx context.Context, serviceKey, by string, at time.Time) (*Hold, error) {
	ev := HoldEvent{Action: HoldLifted, By: by, At: at}
	prev, err := w.changeHold(ctx, serviceKey, &ev, func(*Hold) error { return nil }, nil)
	if err != nil {
		return nil, fmt.Errorf("resume %s: %w", serviceKey, err)
	}
	return prev, nil
}

// changeHold reads the hold, lets check refuse, and writes next (nil:
// remove) with ev, conditional on the hold read. It returns the hold read.
func (w *Store) changeHold(ctx context.Context, serviceKey string, ev *HoldEvent, check func(*Hold) error, next *Hold) (*Hold, error) {
	ev.Token = lock.NewToken()
	// A fixed-width time: RFC3339Nano drops trailing zeros, and "…00.5Z"
	// would sort after "…00.55Z", so --limit would cut the wrong events.
	evKey := lock.Key{PK: "service#" + serviceKey, SK: fmt.Sprintf("hold#%s#%s", ev.At.UTC().Format(sortableTime), ev.Token)}
	for range 3 {
		prev, err := w.readHold(ctx, serviceKey)
		if err != nil {
			return nil, err
		}
		if err := check(prev); err != nil {
			return nil, err
		}
		if next == nil && prev == nil {
			return nil, nil
		}
		ev.Previous = prev
		item, err := attributevalue.MarshalMap(ev)
		if err != nil {
			return nil, err
		}
		maps.Copy(item, evKey.Attributes())
		item["expires_at"] = &types.AttributeValueMemberN{Value: fmt.Sprint(ev.At.Add(Retention).Unix())}
		update := &types.Update{
			TableName: aws.String(w.table), Key: stateKey(serviceKey).Attributes(),
			// The state item never expires (see NewServices): an expiry an
			// older version left on it goes with this write.
			UpdateExpression:          aws.String("REMOVE #hold, expires_at"),
			ExpressionAttributeNames:  map[string]string{"#hold": "hold"},
			ExpressionAttributeValues: map[string]types.AttributeValue{},
		}
		if next != nil {
			v, err := attributevalue.Marshal(next)
			if err != nil {
				return nil, err
			}
			update.UpdateExpression = aws.String("SET #hold = :hold REMOVE expires_at")
			update.ExpressionAttributeValues[":hold"] = v
		}
		if prev == nil {
			update.ConditionExpression = aws.String("attribute_not_exists(#hold)")
		} else {
			at, err := attributevalue.Marshal(prev.At)
			if err != nil {
				return nil, err
			}
			update.ConditionExpression = aws.String("#hold.#at = :pat AND #hold.#by = :pby")
			update.ExpressionAttributeNames["#at"], update.ExpressionAttributeNames["#by"] = "at", "by"
			update.ExpressionAttributeValues[":pat"] = at
			update.ExpressionAttributeValues[":pby"] = &types.AttributeValueMemberS{Value: prev.By}
		}
		if len(update.ExpressionAttributeValues) == 0 {
			update.ExpressionAttributeValues = nil
		}
		_, err = w.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
			{Update: update},
			{Put: &types.Put{TableName: aws.String(w.table), Item: item}},
		}})
		var cancelled *types.TransactionCanceledException
		if !errors.As(err, &cancelled) || !lockConditionFailed(cancelled, 0) {
			if err != nil {
				return nil, err
			}
			return prev, nil
		}
		// Our own write, applied once already (its answer lost)?
		done, err := w.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(w.table), Key: evKey.Attributes(),
			ConsistentRead: aws.Bool(true), ProjectionExpression: aws.String("pk")})
		if err != nil {
			return nil, err
		}
		if done.Item != nil {
			return prev, nil
		}
	}
	return nil, errHoldChanged
}

// readHold is the service's hold now (a strongly consistent read).
func (w *Store) readHold(ctx context.Context, serviceKey string) (*Hold, error) {
	out, err := w.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(w.table), Key: stateKey(serviceKey).Attributes(),
		ConsistentRead: aws.Bool(true), ProjectionExpression: aws.String("#hold"), ExpressionAttributeNames: map[string]string{"#hold": "hold"}})
	if err != nil {
		return nil, err
	}
	var st ServiceState
	if err := attributevalue.UnmarshalMap(out.Item, &st); err != nil {
		return nil, err
	}
	return st.Hold, nil
}

// HoldEvents returns up to limit holds and resumes of one service, newest first.
func (w *Store) HoldEvents(ctx context.Context, serviceKey string, limit int32) ([]HoldEvent, error) {
	out, err := w.db.Query(ctx, &dynamodb.QueryInput{
		TableName:              aws.String(w.table),
		KeyConditionExpression: aws.String("pk = :pk AND begins_with(sk, :hold)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk":   &types.AttributeValueMemberS{Value: "service#" + serviceKey},
			":hold": &types.AttributeValueMemberS{Value: "hold#"},
		},
		ScanIndexForward: aws.Bool(false),
		Limit:            aws.Int32(limit),
	})
	if err != nil {
		return nil, fmt.Errorf("query holds of %s: %w", serviceKey, err)
	}
	var evs []HoldEvent
	if err := attributevalue.UnmarshalListOfMaps(out.Items, &evs); err != nil {
		return nil, fmt.Errorf("read holds of %s: %w", serviceKey, err)
	}
	return evs, nil
}
