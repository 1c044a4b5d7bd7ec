package history

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Rollout bookkeeping, per rule and push (or sweep) event, for one notice
// per rule when a push that reached many targets has ended on all of them
// (pk "rollout#<rule>#<event id>"):
//
//	sk "rollout"                         the header: what was pushed, round, expected, ended, the notice's claim
//	sk "end#<round, 6 digits>#<service>" one target's end: outcome, reason, where
//
// The intake opens the header when it dispatches a rule's targets (expected
// = how many); each target's end is a conditional put of its end item and
// an increment of the header's counter in one transaction, so a retry or a
// redelivery of the same end counts once. The end that finds the count
// complete claims the notice (one conditional update); only the claimer
// sends, and marks it sent. Every item is small and of bounded size: the
// header has fixed fields, an end item a reason cut to MaxEndReason bytes.
//
// A sweep's event id is the same from one sweep of a digest to the next:
// a dispatch that finds the last round ended starts the next round
// (expected = its targets, ended = 0); a dispatch that finds a round still
// open (a retry of the intake, or a sweep while the last one's deployments
// still run) leaves it as it is.

// RolloutRetention is how long rollout items live: far longer than any
// rollout takes (a blue/green bake, a paused hook waits 24 h at most).
const RolloutRetention = 14 * 24 * time.Hour

// MaxEndReason bounds the reason one end item keeps, in bytes.
const MaxEndReason = 1024

// Rollout is a rollout's header.
type Rollout struct {
	Rule       string    `dynamodbav:"rule"`
	EventID    string    `dynamodbav:"event_id"`
	Repository string    `dynamodbav:"repository"`
	Tag        string    `dynamodbav:"tag"`
	Digest     string    `dynamodbav:"digest"`
	PushedAt   time.Time `dynamodbav:"pushed_at"`
	OpenedAt   time.Time `dynamodbav:"opened_at"`
	Round      int       `dynamodbav:"round"`
	Expected   int       `dynamodbav:"expected"`
	Ended      int       `dynamodbav:"ended"`
}

// RolloutEnd is how one target's part of a rollout ended.
type RolloutEnd struct {
	ServiceKey   string    `dynamodbav:"service_key"`
	Account      string    `dynamodbav:"account"`
	Region       string    `dynamodbav:"region"`
	Cluster      string    `dynamodbav:"cluster"`
	Service      string    `dynamodbav:"service"`
	Outcome      string    `dynamodbav:"outcome"`
	Reason       string    `dynamodbav:"reason,omitempty"`
	DeploymentID string    `dynamodbav:"deployment_id,omitempty"`
	At           time.Time `dynamodbav:"at"`
}

// RolloutEnding is what EndRollout found.
type RolloutEnding struct {
	// Tracked: a rollout is open for the rule and event, and counts this
	// end. Untracked ends are reported per target, as always.
	Tracked bool
	// Counted: this call counted the end (false: it was counted before).
	Counted bool
	Rollout Rollout
	// Last: every target ended and the caller owns the rule's notice: send
	// it, then RolloutNoticeSent. Ends is then every end of the round.
	Last bool
	Ends []RolloutEnd
}

// OpenRollout opens (or, after its last round ended, reopens) the rollout
// of a rule's targets for one event: expected targets from now on. Opening
// a rollout that is open already changes nothing, so the intake's retry
// may open it again.
func (w *Store) OpenRollout(ctx context.Context, r Rollout, now time.Time) error {
	r.Round, r.Ended, r.OpenedAt = 1, 0, now
	item, err := attributevalue.MarshalMap(r)
	if err != nil {
		return fmt.Errorf("marshal rollout: %w", err)
	}
	key := rolloutKey(r.Rule, r.EventID)
	copyKey(item, key)
	item["expires_at"] = &types.AttributeValueMemberN{Value: fmt.Sprint(now.Add(RolloutRetention).Unix())}
	_, err = w.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                           aws.String(w.table),
		Item:                                item,
		ConditionExpression:                 aws.String("attribute_not_exists(pk)"),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var exists *types.ConditionalCheckFailedException
	if !errors.As(err, &exists) {
		if err != nil {
			return fmt.Errorf("open rollout of %s for %s: %w", r.Rule, r.EventID, err)
		}
		return nil
	}
	var old Rollout
	if err := attributevalue.UnmarshalMap(exists.Item, &old); err != nil {
		return fmt.Errorf("read rollout of %s for %s: %w", r.Rule, r.EventID, err)
	}
	if old.Ended < old.Expected {
		return nil // open: a retry of the intake, or a sweep while it runs
	}
	_, err = w.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(w.table),
		Key:       key,
		UpdateExpression: aws.String("SET #round = :next, expected = :m, ended = :zero, opened_at = :now, expires_at = :exp, " +
			"repository = :repo, tag = :tag, digest = :digest, pushed_at = :pushed REMOVE notice_owner, notice_at, notice_sent"),
		ConditionExpression:      aws.String("#round = :round AND ended >= expected"),
		ExpressionAttributeNames: map[string]string{"#round": "round"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":round":  num(old.Round),
			":next":   num(old.Round + 1),
			":m":      num(r.Expected),
			":zero":   num(0),
			":now":    item["opened_at"],
			":exp":    item["expires_at"],
			":repo":   item["repository"],
			":tag":    item["tag"],
			":digest": item["digest"],
			":pushed": item["pushed_at"],
		},
	})
	if errors.As(err, &exists) {
		return nil // another dispatch reopened it
	}
	if err != nil {
		return fmt.Errorf("reopen rollout of %s for %s: %w", r.Rule, r.EventID, err)
	}
	return nil
}

// conflictAttempts bounds the tries of an end that DynamoDB refuses for a
// concurrent transaction on the header (many targets ending at once).
const conflictAttempts = 8

// EndRollout records how one target of a rule's rollout for an event
// ended, once: a retry, a redelivery or a duplicate event finds its end
// item and counts nothing. When every target has ended, the first caller to
// see it claims the notice (Last); a caller that claimed and did not mark
// it sent (it died, or the claim's response was lost) claims it again on
// its retry, as the claim is its own (owner: the target's service key). A
// failed end that a rollback follows is amended to rolled_back, not
// counted again.
func (w *Store) EndRollout(ctx context.Context, rule, eventID string, end RolloutEnd, now time.Time) (RolloutEnding, error) {
	end.Reason = cut(end.Reason, MaxEndReason)
	key := rolloutKey(rule, eventID)
	var ending RolloutEnding
	for attempt := 1; ; attempt++ {
		out, err := w.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(w.table), Key: key, ConsistentRead: aws.Bool(true)})
		if err != nil {
			return ending, fmt.Errorf("read rollout of %s for %s: %w", rule, eventID, err)
		}
		if out.Item == nil {
			return ending, nil
		}
		if err := attributevalue.UnmarshalMap(out.Item, &ending.Rollout); err != nil {
			return ending, fmt.Errorf("read rollout of %s for %s: %w", rule, eventID, err)
		}
		ending.Tracked = true
		counted, retry, err := w.countEnd(ctx, key, ending.Rollout, end, now)
		if err != nil {
			return ending, err
		}
		if retry && attempt < conflictAttempts {
			// Jittered, growing: ends of one rollout arrive together.
			wait := time.Duration(rand.Int64N(int64(10*time.Millisecond) << min(attempt, 5)))
			select {
			case <-ctx.Done():
				return ending, fmt.Errorf("end of %s in rollout of %s for %s: %w", end.ServiceKey, rule, eventID, ctx.Err())
			case <-time.After(wait):
			}
			continue
		}
		if retry {
			return ending, fmt.Errorf("end of %s in rollout of %s for %s: the rollout's header stayed busy after %d attempts", end.ServiceKey, rule, eventID, attempt)
		}
		ending.Counted = counted
		break
	}
	return w.claimNotice(ctx, key, ending, end.ServiceKey, now)
}

// countEnd writes one end and counts it, in one transaction; retry means
// the header changed underneath (a concurrent transaction, a new round).
func (w *Store) countEnd(ctx context.Context, key map[string]types.AttributeValue, r Rollout, end RolloutEnd, now time.Time) (counted, retry bool, err error) {
	item, err := attributevalue.MarshalMap(end)
	if err != nil {
		return false, false, fmt.Errorf("marshal rollout end: %w", err)
	}
	endKey := map[string]types.AttributeValue{"pk": key["pk"], "sk": &types.AttributeValueMemberS{Value: endSK(r.Round, end.ServiceKey)}}
	copyKey(item, endKey)
	item["expires_at"] = &types.AttributeValueMemberN{Value: fmt.Sprint(now.Add(RolloutRetention).Unix())}
	_, err = w.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Put: &types.Put{TableName: aws.String(w.table), Item: item, ConditionExpression: aws.String("attribute_not_exists(pk)")}},
		{Update: &types.Update{
			TableName: aws.String(w.table), Key: key,
			UpdateExpression:          aws.String("ADD ended :one"),
			ConditionExpression:       aws.String("#round = :round"),
			ExpressionAttributeNames:  map[string]string{"#round": "round"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":one": num(1), ":round": num(r.Round)},
		}},
	}})
	var cancelled *types.TransactionCanceledException
	if errors.As(err, &cancelled) {
		code := func(i int) string {
			if i < len(cancelled.CancellationReasons) {
				return aws.ToString(cancelled.CancellationReasons[i].Code)
			}
			return ""
		}
		switch {
		case code(0) == "ConditionalCheckFailed":
			return false, false, w.amendEnd(ctx, endKey, end)
		case code(1) == "ConditionalCheckFailed", code(0) == "TransactionConflict", code(1) == "TransactionConflict":
			return false, true, nil
		}
	}
	if err != nil {
		return false, false, fmt.Errorf("record end of %s in rollout %s: %w", end.ServiceKey, rolloutPK(r.Rule, r.EventID), err)
	}
	return true, false, nil
}

// amendEnd turns a recorded failure into the rollback that followed it.
func (w *Store) amendEnd(ctx context.Context, endKey map[string]types.AttributeValue, end RolloutEnd) error {
	if end.Outcome != RolledBack {
		return nil
	}
	_, err := w.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(w.table), Key: endKey,
		UpdateExpression:    aws.String("SET outcome = :rb, reason = :reason"),
		ConditionExpression: aws.String("outcome = :failed"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":rb": &types.AttributeValueMemberS{Value: RolledBack}, ":failed": &types.AttributeValueMemberS{Value: Failed},
			":reason": &types.AttributeValueMemberS{Value: end.Reason},
		},
	})
	var notFailed *types.ConditionalCheckFailedException
	if err != nil && !errors.As(err, &notFailed) {
		return fmt.Errorf("amend end of %s: %w", end.ServiceKey, err)
	}
	return nil
}

// claimNotice claims the rule's notice for owner when every target ended.
func (w *Store) claimNotice(ctx context.Context, key map[string]types.AttributeValue, ending RolloutEnding, owner string, now time.Time) (RolloutEnding, error) {
	out, err := w.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:        aws.String(w.table),
		Key:              key,
		UpdateExpression: aws.String("SET notice_owner = :me, notice_at = :now"),
		ConditionExpression: aws.String("#round = :round AND ended >= expected AND (attribute_not_exists(notice_owner) OR " +
			"(attribute_not_exists(notice_sent) AND (notice_owner = :me OR notice_at < :stale)))"),
		ExpressionAttributeNames: map[string]string{"#round": "round"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":me":    &types.AttributeValueMemberS{Value: owner},
			":now":   &types.AttributeValueMemberN{Value: strconv.FormatInt(now.UnixMilli(), 10)},
			":stale": &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Add(-ClaimStale).UnixMilli(), 10)},
			":round": num(ending.Rollout.Round),
		},
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var notYet *types.ConditionalCheckFailedException
	if errors.As(err, &notYet) {
		if notYet.Item != nil {
			_ = attributevalue.UnmarshalMap(notYet.Item, &ending.Rollout) // the freshest count, for the log
		}
		return ending, nil
	}
	if err != nil {
		return ending, fmt.Errorf("claim the notice of rollout %s: %w", aws.ToString(strOf(key["pk"])), err)
	}
	if err := attributevalue.UnmarshalMap(out.Attributes, &ending.Rollout); err != nil {
		return ending, fmt.Errorf("read rollout: %w", err)
	}
	ending.Last = true
	ending.Ends, err = w.RolloutEnds(ctx, ending.Rollout.Rule, ending.Rollout.EventID, ending.Rollout.Round)
	return ending, err
}

// RolloutEnds reads every end of one round of a rollout, page by page.
func (w *Store) RolloutEnds(ctx context.Context, rule, eventID string, round int) ([]RolloutEnd, error) {
	p := dynamodb.NewQueryPaginator(w.db, &dynamodb.QueryInput{
		TableName:              aws.String(w.table),
		KeyConditionExpression: aws.String("pk = :pk AND begins_with(sk, :round)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk":    &types.AttributeValueMemberS{Value: rolloutPK(rule, eventID)},
			":round": &types.AttributeValueMemberS{Value: endSK(round, "")},
		},
		ConsistentRead: aws.Bool(true),
	})
	var ends []RolloutEnd
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("read ends of rollout %s: %w", rolloutPK(rule, eventID), err)
		}
		var some []RolloutEnd
		if err := attributevalue.UnmarshalListOfMaps(page.Items, &some); err != nil {
			return nil, fmt.Errorf("read ends of rollout %s: %w", rolloutPK(rule, eventID), err)
		}
		ends = append(ends, some...)
	}
	return ends, nil
}

// RolloutNoticeSent marks the claimed notice of a round sent, so that no
// retry of its claimer sends it again.
func (w *Store) RolloutNoticeSent(ctx context.Context, rule, eventID string, round int, owner string, now time.Time) error {
	_, err := w.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(w.table),
		Key:                      rolloutKey(rule, eventID),
		UpdateExpression:         aws.String("SET notice_sent = :now"),
		ConditionExpression:      aws.String("#round = :round AND notice_owner = :me"),
		ExpressionAttributeNames: map[string]string{"#round": "round"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":me":    &types.AttributeValueMemberS{Value: owner},
			":now":   &types.AttributeValueMemberN{Value: strconv.FormatInt(now.UnixMilli(), 10)},
			":round": num(round),
		},
	})
	var taken *types.ConditionalCheckFailedException
	if errors.As(err, &taken) {
		return nil // taken over as stale: its owner sends, or sent, its own
	}
	if err != nil {
		return fmt.Errorf("mark the notice of rollout %s sent: %w", rolloutPK(rule, eventID), err)
	}
	return nil
}

func rolloutPK(rule, eventID string) string { return "rollout#" + rule + "#" + eventID }

func rolloutKey(rule, eventID string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: rolloutPK(rule, eventID)},
		"sk": &types.AttributeValueMemberS{Value: "rollout"},
	}
}

func endSK(round int, serviceKey string) string { return fmt.Sprintf("end#%06d#%s", round, serviceKey) }

// copyKey copies key into item.
func copyKey(item, key map[string]types.AttributeValue) {
	for k, v := range key {
		item[k] = v
	}
}

func num(n int) types.AttributeValue { return &types.AttributeValueMemberN{Value: strconv.Itoa(n)} }

func strOf(v types.AttributeValue) *string {
	if s, ok := v.(*types.AttributeValueMemberS); ok {
		return &s.Value
	}
	return nil
}

// cut shortens s to at most n bytes, on a character boundary.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n-len("…")]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}
