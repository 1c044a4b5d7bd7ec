package history

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
)

// Promotion bookkeeping, per rule and digest (pk "promote#<rule>#<digest>"):
// sk "target#<service key>" for each target that completed the digest,
// sk "count" {completed: how many of those}, and sk "promoted", the claim:
// {state: claimed|done, owner, claimed_at}.

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

// Progress is how far a digest's promotion by a rule has come.
type Progress struct {
	// Completed counts the targets that completed the digest so far.
	Completed int
	// Done is the service key of every target that completed it, read only
	// once Completed reached the rule's targets (nil before).
	Done []string
}

// MarkTargetCompleted notes that one target of a rule completed a digest:
// its own item and a counter, in one transaction, so a duplicate counts
// once. Only once the count reaches targets (the rule's) does it read the
// targets' items (paged) for the caller to confirm every target by name;
// before that a completion costs the same two calls, however many targets
// the rule has. A transaction cancelled for another one on the counter is
// tried again (w.transact).
func (w *Store) MarkTargetCompleted(ctx context.Context, rule, digest, serviceKey string, targets int, at time.Time) (Progress, error) {
	pk := promotionPK(rule, digest)
	expires := &types.AttributeValueMemberN{Value: fmt.Sprint(at.Add(Retention).Unix())}
	counter := map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: pk},
		"sk": &types.AttributeValueMemberS{Value: "count"},
	}
	mark := &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Put: &types.Put{
			TableName: aws.String(w.table),
			Item: map[string]types.AttributeValue{
				"pk":         &types.AttributeValueMemberS{Value: pk},
				"sk":         &types.AttributeValueMemberS{Value: "target#" + serviceKey},
				"expires_at": expires,
			},
			ConditionExpression: aws.String("attribute_not_exists(pk)"),
		}},
		{Update: &types.Update{
			TableName: aws.String(w.table), Key: counter,
			UpdateExpression:          aws.String("ADD completed :one SET expires_at = :exp"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":one": num(1), ":exp": expires},
		}},
	}}
	// Completions of one digest arrive together, all on the counter: a
	// transaction that meets another's is cancelled (TransactionConflict),
	// which transact tries again with a fresh token.
	err := w.transact(ctx, mark)
	var cancelled *types.TransactionCanceledException
	if errors.As(err, &cancelled) && !awsenv.IsTransactionConflict(err) && len(cancelled.CancellationReasons) > 0 &&
		aws.ToString(cancelled.CancellationReasons[0].Code) == "ConditionalCheckFailed" {
		err = nil // a duplicate: counted before
	}
	if err != nil {
		return Progress{}, fmt.Errorf("mark %s completed for %s: %w", serviceKey, pk, err)
	}
	out, err := w.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(w.table), Key: counter, ConsistentRead: aws.Bool(true)})
	if err != nil {
		return Progress{}, fmt.Errorf("read completions of %s: %w", pk, err)
	}
	var p Progress
	if n, ok := out.Item["completed"].(*types.AttributeValueMemberN); ok {
		p.Completed, _ = strconv.Atoi(n.Value)
	}
	if p.Completed < targets {
		return p, nil
	}
	pages := dynamodb.NewQueryPaginator(w.db, &dynamodb.QueryInput{
		TableName:              aws.String(w.table),
		KeyConditionExpression: aws.String("pk = :pk AND begins_with(sk, :t)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": &types.AttributeValueMemberS{Value: pk},
			":t":  &types.AttributeValueMemberS{Value: "target#"},
		},
		ProjectionExpression: aws.String("sk"),
		ConsistentRead:       aws.Bool(true),
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return Progress{}, fmt.Errorf("read completions of %s: %w", pk, err)
		}
		for _, item := range page.Items {
			if sk, ok := item["sk"].(*types.AttributeValueMemberS); ok {
				p.Done = append(p.Done, strings.TrimPrefix(sk.Value, "target#"))
			}
		}
	}
	return p, nil
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
