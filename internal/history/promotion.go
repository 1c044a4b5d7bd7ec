package history

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Promotion bookkeeping, per rule and digest (pk "promote#<rule>#<digest>"):
// sk "target#<service key>" for each target that completed the digest, and
// sk "promoted", the claim: {state: claimed|done, owner, claimed_at}.

// ClaimStale is how old a claim must be, on the claimer's clock, before
// another owner may take it over: far longer than a promotion takes (two ECR
// calls and an invoke), and than any sane clock skew between two watchers.
const ClaimStale = 5 * time.Minute

// Claim says what ClaimPromotion found.
type Claim int

const (
	// Claimed: the caller owns the promotion now and must promote, then
	// call PromotionDone (or ReleasePromotion when it failed).
	Claimed Claim = iota
	// AlreadyPromoted: a promotion of this digest by this rule finished.
	AlreadyPromoted
	// ClaimedByOther: another owner is promoting it right now.
	ClaimedByOther
)

// MarkTargetCompleted notes that one target of a rule completed a digest
// and returns the service keys of every target that completed it so far.
func (w *Store) MarkTargetCompleted(ctx context.Context, rule, digest, serviceKey string, at time.Time) ([]string, error) {
	pk := promotionPK(rule, digest)
	_, err := w.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(w.table),
		Item: map[string]types.AttributeValue{
			"pk":         &types.AttributeValueMemberS{Value: pk},
			"sk":         &types.AttributeValueMemberS{Value: "target#" + serviceKey},
			"expires_at": &types.AttributeValueMemberN{Value: fmt.Sprint(at.Add(Retention).Unix())},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("mark %s completed for %s: %w", serviceKey, pk, err)
	}
	out, err := w.db.Query(ctx, &dynamodb.QueryInput{
		TableName:              aws.String(w.table),
		KeyConditionExpression: aws.String("pk = :pk AND begins_with(sk, :t)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": &types.AttributeValueMemberS{Value: pk},
			":t":  &types.AttributeValueMemberS{Value: "target#"},
		},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("read completions of %s: %w", pk, err)
	}
	var keys []string
	for _, item := range out.Items {
		if sk, ok := item["sk"].(*types.AttributeValueMemberS); ok {
			keys = append(keys, sk.Value[len("target#"):])
		}
	}
	return keys, nil
}

// ClaimPromotion claims the promotion of digest by rule for owner. The
// owner is the event that asks (its id is the same on every Lambda retry and
// redrive, and the write the same on every SDK retry), so a retry of the
// event that claimed takes its own claim again and finishes the promotion;
// a claim left by a watcher that died is taken over once ClaimStale old.
// A finished promotion is never claimed again. other names the owner of a
// live claim, for the log.
func (w *Store) ClaimPromotion(ctx context.Context, rule, digest, owner string, now time.Time) (claim Claim, other string, err error) {
	_, err = w.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:        aws.String(w.table),
		Key:              promotionKey(rule, digest),
		UpdateExpression: aws.String("SET #state = :claimed, #owner = :owner, claimed_at = :now, expires_at = :exp"),
		// A claim item without state predates claims with owners: it
		// counts as done.
		ConditionExpression:      aws.String("attribute_not_exists(pk) OR (#state = :claimed AND (#owner = :owner OR claimed_at < :stale))"),
		ExpressionAttributeNames: map[string]string{"#state": "state", "#owner": "owner"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":claimed": &types.AttributeValueMemberS{Value: "claimed"},
			":owner":   &types.AttributeValueMemberS{Value: owner},
			":now":     &types.AttributeValueMemberN{Value: strconv.FormatInt(now.UnixMilli(), 10)},
			":stale":   &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Add(-ClaimStale).UnixMilli(), 10)},
			":exp":     &types.AttributeValueMemberN{Value: fmt.Sprint(now.Add(Retention).Unix())},
		},
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var taken *types.ConditionalCheckFailedException
	if errors.As(err, &taken) {
		state, _ := taken.Item["state"].(*types.AttributeValueMemberS)
		if state != nil && state.Value == "claimed" {
			o, _ := taken.Item["owner"].(*types.AttributeValueMemberS)
			if o != nil {
				other = o.Value
			}
			return ClaimedByOther, other, nil
		}
		return AlreadyPromoted, "", nil
	}
	if err != nil {
		return 0, "", fmt.Errorf("claim promotion of %s for %s: %w", digest, rule, err)
	}
	return Claimed, "", nil
}

// PromotionDone marks a claimed promotion finished, for good.
func (w *Store) PromotionDone(ctx context.Context, rule, digest string) error {
	_, err := w.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(w.table),
		Key:                       promotionKey(rule, digest),
		UpdateExpression:          aws.String("SET #state = :done"),
		ExpressionAttributeNames:  map[string]string{"#state": "state"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":done": &types.AttributeValueMemberS{Value: "done"}},
	})
	if err != nil {
		return fmt.Errorf("mark promotion of %s for %s done: %w", digest, rule, err)
	}
	return nil
}

// ReleasePromotion gives up owner's claim after a failed promotion, so any
// later event may promote at once; a claim owned by another is left alone.
func (w *Store) ReleasePromotion(ctx context.Context, rule, digest, owner string) error {
	_, err := w.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                aws.String(w.table),
		Key:                      promotionKey(rule, digest),
		ConditionExpression:      aws.String("#state = :claimed AND #owner = :owner"),
		ExpressionAttributeNames: map[string]string{"#state": "state", "#owner": "owner"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":claimed": &types.AttributeValueMemberS{Value: "claimed"},
			":owner":   &types.AttributeValueMemberS{Value: owner},
		},
	})
	var notOurs *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &notOurs) {
		return fmt.Errorf("release promotion of %s for %s: %w", digest, rule, err)
	}
	return nil
}

func promotionPK(rule, digest string) string { return "promote#" + rule + "#" + digest }

func promotionKey(rule, digest string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: promotionPK(rule, digest)},
		"sk": &types.AttributeValueMemberS{Value: "promoted"},
	}
}
