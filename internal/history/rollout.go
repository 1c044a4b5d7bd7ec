package history

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/lock"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/text"
)

// Rollout bookkeeping, per rule and push, for one notice per rule when a
// push that reached many targets has ended on all of them (pk
// "rollout#<rule>#<event id>"):
//
//	sk "rollout"               the header: what was pushed, expected, ended, the notice's claim
//	sk "target#<service key>"  one target the rollout was opened for; once it ended, how
//
// The intake opens a rollout when it dispatches a push's targets: it writes
// one target item per target, the only targets whose ends the rollout
// counts, then sets the header's expected count. An end is a conditional
// update of its target item (not ended yet) and an increment of the
// header's counter in one transaction, so a retry, a redelivery or a
// duplicate event counts once, and an end of a target the rollout was not
// opened for counts nothing (it is reported per target). The end that finds
// the count complete claims the notice (one conditional update); only the
// claimer sends, and marks it sent. Every item is small and of bounded
// size: the header has fixed fields, a target item a reason cut to
// MaxEndReason bytes; a thousand targets are ten transactions to open.
//
// A rollout, once ended, stays ended: a redelivery of its push opens
// nothing again, and its ends find their targets ended. Rollouts are for
// pushes (ECR events and push commands); a sweep's event id is the same
// from one sweep of a digest to the next, so a sweep opens none and its
// targets are reported one by one, as they are few.

// RolloutRetention is how long rollout items live: far longer than any
// rollout takes (a blue/green bake, a paused hook waits 24 h at most).
const RolloutRetention = 14 * 24 * time.Hour

// MaxEndReason bounds the reason one end keeps, in bytes.
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
	// Expected is how many targets the rollout was opened for (set by
	// OpenRollout from its targets).
	Expected int `dynamodbav:"expected"`
	Ended    int `dynamodbav:"ended"`
}

// RolloutTarget is one target a rollout is opened for.
type RolloutTarget struct {
	ServiceKey string `dynamodbav:"service_key"`
	Account    string `dynamodbav:"account"`
	Region     string `dynamodbav:"region"`
	Cluster    string `dynamodbav:"cluster"`
	Service    string `dynamodbav:"service"`
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
	// Parked: the target's work item was parked in the work dead-letter
	// queue, still failing transiently, and is ended as failed so that its
	// rule's notice goes. A later end of the same target (a redrive that
	// deployed it) is not the rollout's any more: EndRollout leaves it
	// untracked, and its caller reports it by itself.
	Parked bool `dynamodbav:"parked,omitempty"`
}

// RolloutEnding is what EndRollout found.
type RolloutEnding struct {
	// Tracked: a rollout of the rule and event was opened for this target,
	// and counts its end. Untracked ends are reported per target, as always.
	Tracked bool
	// Counted: this call counted the end (false: it was counted before).
	Counted bool
	Rollout Rollout
	// Last: every target ended and the caller owns the rule's notice: send
	// it, then RolloutNoticeSent with Owner, its claim's token. Ends is then
	// every target's end.
	Last  bool
	Owner string
	Ends  []RolloutEnd
}

// ErrNoticePending is EndRollout's answer to an end counted before, of a
// rollout that ended, whose notice another call claimed and has not marked
// sent: a concurrent duplicate of the last end, or a claimer whose answer
// was lost. The caller tries again later: by then the notice was sent, or
// the claim outlived its claimer (claimUntil) and the retry takes it over.
var ErrNoticePending = errors.New("the rollout's notice is claimed by another call and not sent yet")

// maxTransactItems is DynamoDB's bound on the actions of one transaction.
const maxTransactItems = 100

// OpenRollout opens the rollout of a rule's targets for one push: the
// targets (by service key; a service named twice counts once) are the ones
// whose ends it counts. Opening a rollout that is open, or that ended,
// changes nothing, so the intake's retry and a redelivery of the push may
// open it again; an open that died half-way is finished by the next.
func (w *Store) OpenRollout(ctx context.Context, r Rollout, targets []RolloutTarget, now time.Time) error {
	seen := map[string]bool{}
	var unique []RolloutTarget
	for _, t := range targets {
		if !seen[t.ServiceKey] {
			seen[t.ServiceKey] = true
			unique = append(unique, t)
		}
	}
	r.Ended, r.OpenedAt = 0, now
	item, err := attributevalue.MarshalMap(r)
	if err != nil {
		return fmt.Errorf("marshal rollout: %w", err)
	}
	delete(item, "expected") // set once every target item is written
	key := rolloutKey(r.Rule, r.EventID)
	copyKey(item, key)
	exp := &types.AttributeValueMemberN{Value: fmt.Sprint(now.Add(RolloutRetention).Unix())}
	item["expires_at"] = exp
	if len(unique) < maxTransactItems {
		// One transaction: the header (counting the targets already) and
		// every target item — a single call on the push's path before the
		// fan-out, and no open half done.
		done, err := w.openAtOnce(ctx, r, item, unique, exp)
		if err != nil || done {
			return err
		}
		// A header without expected: an open of an older version died
		// half-way; the steps below finish it.
	}
	_, err = w.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                           aws.String(w.table),
		Item:                                item,
		ConditionExpression:                 aws.String("attribute_not_exists(pk)"),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var exists *types.ConditionalCheckFailedException
	switch {
	case errors.As(err, &exists):
		if _, opened := exists.Item["expected"]; opened {
			return nil // open or ended: a retry of the intake, a redelivery
		}
	case err != nil:
		return fmt.Errorf("open rollout of %s for %s: %w", r.Rule, r.EventID, err)
	}
	var g errgroup.Group
	g.SetLimit(4)
	for i := 0; i < len(unique); i += maxTransactItems {
		chunk := unique[i:min(i+maxTransactItems, len(unique))]
		g.Go(func() error { return w.writeTargets(ctx, r, chunk, exp) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	_, err = w.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           aws.String(w.table),
		Key:                 key,
		UpdateExpression:    aws.String("SET expected = :m"),
		ConditionExpression: aws.String("attribute_exists(pk) AND attribute_not_exists(expected)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":m": num(len(unique)),
		},
	})
	if errors.As(err, &exists) {
		return nil // another open of the same push finished first
	}
	if err != nil {
		return fmt.Errorf("open rollout of %s for %s: %w", r.Rule, r.EventID, err)
	}
	return nil
}

// openAtOnce opens a rollout of fewer than maxTransactItems targets in one
// transaction: the header with expected set, if it does not exist, and the
// target items. done is true when the rollout is open (now, or already: a
// retry of the intake, a redelivery), false when a header without expected
// is there (an open that died half-way, to be finished step by step).
func (w *Store) openAtOnce(ctx context.Context, r Rollout, header map[string]types.AttributeValue, targets []RolloutTarget, exp types.AttributeValue) (done bool, err error) {
	header = maps.Clone(header)
	header["expected"] = num(len(targets))
	items := append([]types.TransactWriteItem{{Put: &types.Put{
		TableName:                           aws.String(w.table),
		Item:                                header,
		ConditionExpression:                 aws.String("attribute_not_exists(pk)"),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}}}, targetItems(w.table, r, targets, exp)...)
	err = w.transact(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	var cancelled *types.TransactionCanceledException
	if errors.As(err, &cancelled) && len(cancelled.CancellationReasons) > 0 &&
		aws.ToString(cancelled.CancellationReasons[0].Code) == "ConditionalCheckFailed" {
		_, opened := cancelled.CancellationReasons[0].Item["expected"]
		return opened, nil
	}
	if err != nil {
		return false, fmt.Errorf("open rollout of %s for %s: %w", r.Rule, r.EventID, err)
	}
	return true, nil
}

// writeTargets writes target items, in one transaction. Each write sets
// only what names the target, so writing it again (a retry of the open)
// leaves an end already recorded on it as it is.
func (w *Store) writeTargets(ctx context.Context, r Rollout, targets []RolloutTarget, exp types.AttributeValue) error {
	items := targetItems(w.table, r, targets, exp)
	if err := w.transact(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items}); err != nil {
		return fmt.Errorf("open rollout of %s for %s: write %d targets: %w", r.Rule, r.EventID, len(targets), err)
	}
	return nil
}

// targetItems are the writes of target items, each setting only what
// names the target.
func targetItems(table string, r Rollout, targets []RolloutTarget, exp types.AttributeValue) []types.TransactWriteItem {
	items := make([]types.TransactWriteItem, 0, len(targets))
	for _, t := range targets {
		items = append(items, types.TransactWriteItem{Update: &types.Update{
			TableName:        aws.String(table),
			Key:              targetKey(r.Rule, r.EventID, t.ServiceKey),
			UpdateExpression: aws.String("SET service_key = :k, account = :a, #region = :r, #cluster = :c, #service = :s, expires_at = :exp"),
			ExpressionAttributeNames: map[string]string{
				"#region": "region", "#cluster": "cluster", "#service": "service",
			},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":k": str(t.ServiceKey), ":a": str(t.Account), ":r": str(t.Region), ":c": str(t.Cluster), ":s": str(t.Service),
				":exp": exp,
			},
		}})
	}
	return items
}

// EndRollout records how one target of a rule's rollout for a push ended,
// once: a retry, a redelivery or a duplicate event finds its target ended
// and counts nothing. An end of a target the rollout was not opened for
// (or of a push with no rollout) is not tracked. When every target has
// ended, one caller claims the notice (Last, with its own token as Owner):
// the one that counted the last end, or, when that claim failed, any end's
// retry; a concurrent duplicate of the last end does not own it too. While
// a claim is live and the notice not sent, an end counted before is told
// ErrNoticePending, so that its caller tries again; a claim that outlived its claimer (claimUntil)
// (its claimer died, or lost the claim's answer) is taken over. A failed
// end that a rollback follows is amended to rolled_back, not counted
// again. A target ended as parked (RolloutEnd.Parked) counts no later end:
// an end that is not parked is then untracked (its redrive's own end,
// which the caller reports by itself), a parked one a duplicate. Writes
// that meet another transaction on their items are tried again: a
// transaction by the store (transact), a single write by the state
// retryer (awsenv.NewStateRetryer).
func (w *Store) EndRollout(ctx context.Context, rule, eventID string, end RolloutEnd, now time.Time) (RolloutEnding, error) {
	end.Reason = text.Cut(end.Reason, MaxEndReason)
	var ending RolloutEnding
	tkey := targetKey(rule, eventID, end.ServiceKey)
	// Two reads at most: a concurrent delivery of the same end that
	// recorded it between this one's read and write makes the second read
	// find it ended.
	for read := 1; ; read++ {
		out, err := w.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(w.table), Key: tkey, ConsistentRead: aws.Bool(true)})
		if err != nil {
			return ending, fmt.Errorf("read target %s of rollout %s: %w", end.ServiceKey, rolloutPK(rule, eventID), err)
		}
		if out.Item == nil {
			return ending, nil // not a target of this rollout, or no rollout
		}
		ending.Tracked = true
		if _, ended := out.Item["outcome"]; ended {
			if _, parked := out.Item["parked"]; parked && !end.Parked {
				// Counted as parked (and told in the rule's notice): this
				// later end, of its redrive, is reported by itself.
				return RolloutEnding{}, nil
			}
			if err := w.amendEnd(ctx, tkey, end); err != nil {
				return ending, err
			}
			break
		}
		counted, endedMeanwhile, err := w.countEnd(ctx, rule, eventID, tkey, end)
		if err != nil {
			return ending, err
		}
		if counted {
			ending.Counted = true
			break
		}
		if !endedMeanwhile {
			return RolloutEnding{}, nil // no header: an open that never finished
		}
		if read == 2 {
			return ending, fmt.Errorf("end of %s in rollout %s: its target item changed under two reads", end.ServiceKey, rolloutPK(rule, eventID))
		}
	}
	return w.claimNotice(ctx, rolloutKey(rule, eventID), ending, lock.NewToken(), now)
}

// countEnd records one end on its target item and counts it on the header,
// in one transaction (w.transact: tried again while it conflicts). Not
// counted: endedMeanwhile when a concurrent delivery of the same end
// recorded it first (a read finds it ended), else the header is missing.
func (w *Store) countEnd(ctx context.Context, rule, eventID string, tkey map[string]types.AttributeValue, end RolloutEnd) (counted, endedMeanwhile bool, err error) {
	values := map[string]types.AttributeValue{
		":o": str(end.Outcome), ":r": str(end.Reason), ":d": str(end.DeploymentID),
		":at": str(end.At.UTC().Format(time.RFC3339Nano)),
	}
	set := "SET outcome = :o, reason = :r, deployment_id = :d, #at = :at"
	if end.Parked {
		set += ", parked = :parked"
		values[":parked"] = &types.AttributeValueMemberBOOL{Value: true}
	}
	err = w.transact(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Update: &types.Update{
			TableName: aws.String(w.table), Key: tkey,
			UpdateExpression:          aws.String(set),
			ConditionExpression:       aws.String("attribute_exists(pk) AND attribute_not_exists(outcome)"),
			ExpressionAttributeNames:  map[string]string{"#at": "at"},
			ExpressionAttributeValues: values,
		}},
		{Update: &types.Update{
			TableName: aws.String(w.table), Key: rolloutKey(rule, eventID),
			UpdateExpression:          aws.String("ADD ended :one"),
			ConditionExpression:       aws.String("attribute_exists(expected)"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":one": num(1)},
		}},
	}})
	var cancelled *types.TransactionCanceledException
	if errors.As(err, &cancelled) && !awsenv.IsTransactionConflict(err) {
		code := func(i int) string {
			if i < len(cancelled.CancellationReasons) {
				return aws.ToString(cancelled.CancellationReasons[i].Code)
			}
			return ""
		}
		switch {
		case code(0) == "ConditionalCheckFailed":
			return false, true, nil
		case code(1) == "ConditionalCheckFailed":
			return false, false, nil
		}
	}
	if err != nil {
		return false, false, fmt.Errorf("record end of %s in rollout %s: %w", end.ServiceKey, rolloutPK(rule, eventID), err)
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
	pk := aws.ToString(strOf(key["pk"]))
	header, claimed, err := w.claim(ctx, key, ruleNotice, owner, now)
	if err != nil {
		return ending, err
	}
	if header == nil {
		return ending, nil
	}
	if err := attributevalue.UnmarshalMap(header, &ending.Rollout); err != nil && claimed {
		return ending, fmt.Errorf("read rollout %s: %w", pk, err)
	}
	if !claimed { // ending.Rollout: the freshest count, for the log
		_, taken := header["notice_owner"]
		_, sent := header["notice_sent"]
		if !ending.Counted && taken && !sent && ending.Rollout.Ended >= ending.Rollout.Expected {
			return ending, fmt.Errorf("rollout %s: %w", pk, ErrNoticePending)
		}
		return ending, nil
	}
	ending.Last, ending.Owner = true, owner
	ending.Ends, err = w.RolloutEnds(ctx, ending.Rollout.Rule, ending.Rollout.EventID)
	return ending, err
}

// noticeKind is a notice whose claim a rollout's header keeps: one
// sender, and a mark once it was sent.
type noticeKind int

const (
	// ruleNotice is the rule's notice, once every target ended.
	ruleNotice noticeKind = iota
	// firstFailureNotice is the rollout's first permanent failure's, told
	// at once while targets are still under way.
	firstFailureNotice
)

// noticeClaim names a notice's attributes on the header: its claimer,
// when it claimed, until when the claim holds (claimUntil), when it was
// sent; when is the header's condition for a claim, what the notice's name
// in errors.
type noticeClaim struct{ owner, at, until, sent, when, what string }

// claimSkew is how long a claim outlives its claimer's deadline: the
// notice it sends on a context of its own (5 s), and the clock skew
// between two Lambda hosts.
const claimSkew = 30 * time.Second

// claimUntil is when a notice's claim made now stops holding: its
// claimer's invocation ends at ctx's deadline (Lambda's), after which it
// sends nothing, so a retry of the end (Lambda's first comes a minute after
// the invocation died) takes the claim over instead of waiting out
// ClaimStale behind a dead claimer — which outlasted both of Lambda's
// retries and left the rule's notice unsent. Measured on the real clock
// (time.Until) and added to now, so that a caller's clock is kept.
// Without a deadline: ClaimStale.
func claimUntil(ctx context.Context, now time.Time) time.Time {
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl); left < ClaimStale-claimSkew {
			return now.Add(max(left, 0) + claimSkew)
		}
	}
	return now.Add(ClaimStale)
}

func (k noticeKind) claim() noticeClaim {
	if k == firstFailureNotice {
		return noticeClaim{owner: "first_failure", at: "first_failure_at", until: "first_failure_until", sent: "first_failure_sent",
			when: "attribute_exists(expected) AND ended < expected", what: "the first failure's notice"}
	}
	return noticeClaim{owner: "notice_owner", at: "notice_at", until: "notice_until", sent: "notice_sent",
		when: "ended >= expected", what: "the notice"}
}

// claim claims notice k of the rollout whose header is key for owner,
// when the header's condition holds and the notice is unclaimed, or
// claimed but unsent by owner itself or by a claimer that can no longer be
// sending (claimUntil passed: it died).
// header is the header as claimed, or as it stood when the claim failed
// (nil: no header).
func (w *Store) claim(ctx context.Context, key map[string]types.AttributeValue, k noticeKind, owner string, now time.Time) (header map[string]types.AttributeValue, claimed bool, err error) {
	c := k.claim()
	out, err := w.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:        aws.String(w.table),
		Key:              key,
		UpdateExpression: aws.String(fmt.Sprintf("SET %s = :me, %s = :now, %s = :until", c.owner, c.at, c.until)),
		// A claim without until is an older version's: stale by its age.
		ConditionExpression: aws.String(fmt.Sprintf("%s AND (attribute_not_exists(%s) OR (attribute_not_exists(%s) AND "+
			"(%s = :me OR %s < :now OR (attribute_not_exists(%s) AND %s < :stale))))",
			c.when, c.owner, c.sent, c.owner, c.until, c.until, c.at)),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":me":    str(owner),
			":now":   &types.AttributeValueMemberN{Value: strconv.FormatInt(now.UnixMilli(), 10)},
			":until": &types.AttributeValueMemberN{Value: strconv.FormatInt(claimUntil(ctx, now).UnixMilli(), 10)},
			":stale": &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Add(-ClaimStale).UnixMilli(), 10)},
		},
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var refused *types.ConditionalCheckFailedException
	if errors.As(err, &refused) {
		return refused.Item, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("claim %s of rollout %s: %w", c.what, aws.ToString(strOf(key["pk"])), err)
	}
	return out.Attributes, true, nil
}

// markSent marks notice k, claimed by owner, sent, so that no retry of its
// claimer sends it again. A claim taken over meanwhile (stale) is its new
// owner's to mark.
func (w *Store) markSent(ctx context.Context, key map[string]types.AttributeValue, k noticeKind, owner string, now time.Time) error {
	c := k.claim()
	_, err := w.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           aws.String(w.table),
		Key:                 key,
		UpdateExpression:    aws.String(fmt.Sprintf("SET %s = :now", c.sent)),
		ConditionExpression: aws.String(c.owner + " = :me"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":me":  str(owner),
			":now": &types.AttributeValueMemberN{Value: strconv.FormatInt(now.UnixMilli(), 10)},
		},
	})
	var taken *types.ConditionalCheckFailedException
	if errors.As(err, &taken) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("mark %s of rollout %s sent: %w", c.what, aws.ToString(strOf(key["pk"])), err)
	}
	return nil
}

// RolloutEnds reads the end of every target of a rollout, page by page;
// a target that has not ended is left out.
func (w *Store) RolloutEnds(ctx context.Context, rule, eventID string) ([]RolloutEnd, error) {
	p := dynamodb.NewQueryPaginator(w.db, &dynamodb.QueryInput{
		TableName:              aws.String(w.table),
		KeyConditionExpression: aws.String("pk = :pk AND begins_with(sk, :target)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk":     str(rolloutPK(rule, eventID)),
			":target": str(targetSK("")),
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
		for _, e := range some {
			if e.Outcome != "" {
				ends = append(ends, e)
			}
		}
	}
	return ends, nil
}

// RolloutNoticeSent marks the claimed notice of a rollout sent, so that no
// retry of its claimer sends it again.
func (w *Store) RolloutNoticeSent(ctx context.Context, rule, eventID, owner string, now time.Time) error {
	return w.markSent(ctx, rolloutKey(rule, eventID), ruleNotice, owner, now)
}

// ClaimFirstFailure claims the notice of a rollout's first permanent
// failure, the end of target serviceKey, which EndRollout counted: a person
// hears of it at once, not only in the rule's notice when every target
// ended — which may be never (an ECS event lost). One target's failure is
// told this way per rollout: claimed is true for the first target to
// claim, and again for that target's own retries until it is marked sent
// (FirstFailureSent), or for any target once the claim outlived its claimer (claimUntil)
// and unsent (its claimer died). claimed is false once every target ended
// (the rule's notice says it all) or another failure holds the claim;
// r is then the header as it stood, else as claimed.
func (w *Store) ClaimFirstFailure(ctx context.Context, rule, eventID, serviceKey string, now time.Time) (r Rollout, claimed bool, err error) {
	header, claimed, err := w.claim(ctx, rolloutKey(rule, eventID), firstFailureNotice, serviceKey, now)
	if err != nil || header == nil {
		return r, false, err
	}
	if err := attributevalue.UnmarshalMap(header, &r); err != nil && claimed {
		return r, false, fmt.Errorf("read rollout %s: %w", rolloutPK(rule, eventID), err)
	}
	return r, claimed, nil
}

// FirstFailureSent marks the first failure's notice, claimed for
// serviceKey, sent, so that no retry sends it again.
func (w *Store) FirstFailureSent(ctx context.Context, rule, eventID, serviceKey string, now time.Time) error {
	return w.markSent(ctx, rolloutKey(rule, eventID), firstFailureNotice, serviceKey, now)
}

// supersedeLookback is how many of a service's latest records Supersede
// reads: a deployment under way is among the last few deploys.
const supersedeLookback = 10

// SupersededReason is the reason a deployment superseded by a deploy of
// push eventID under rule to revision running is recorded with.
func SupersededReason(eventID, rule, running string) string {
	return fmt.Sprintf("replaced by %s (rule %s, event %s) before it ended", running, rule, eventID)
}

// Supersede ends, as superseded, every deployment of ours still under way
// on a service that a newer deploy replaced: ECS reports no end of a
// deployment an UpdateService replaced, so without this its rollout never
// ends. The newer deploy is push eventID under rule, to revision running;
// its own records, records of running and records deployed at or after
// since (the newer deploy's time: a late completion of an older deploy must
// not end a newer one) are left alone. It returns the
// records it ended, as ended — also those an earlier try of the same deploy
// ended (same reason), so that a retry counts their ends when the try that
// recorded them died before it did.
func (w *Store) Supersede(ctx context.Context, serviceKey, eventID, rule, running string, since, at time.Time) ([]Record, error) {
	recent, err := w.Recent(ctx, serviceKey, supersedeLookback)
	if err != nil {
		return nil, fmt.Errorf("supersede deployments of %s: %w", serviceKey, err)
	}
	reason := SupersededReason(eventID, rule, running)
	var ended []Record
	for _, r := range recent {
		if r.DeploymentID == "" || r.Outcome != "deployed" || (r.EventID == eventID && r.Rule == rule) ||
			r.ToTaskDefinition == running || !r.DeployedAt.Before(since) {
			continue
		}
		switch r.DeploymentOutcome {
		case "":
			recorded, err := w.SetOutcome(ctx, r, Superseded, reason, at)
			if err != nil {
				return ended, fmt.Errorf("supersede deployment %s of %s: %w", r.DeploymentID, serviceKey, err)
			}
			if !recorded {
				continue // it ended meanwhile: the watcher reports it
			}
		case Superseded:
			if r.DeploymentReason != reason {
				continue
			}
		default:
			continue
		}
		r.DeploymentOutcome, r.DeploymentReason, r.FinishedAt = Superseded, reason, at
		ended = append(ended, r)
	}
	return ended, nil
}

func rolloutPK(rule, eventID string) string { return "rollout#" + rule + "#" + eventID }

func rolloutKey(rule, eventID string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": str(rolloutPK(rule, eventID)), "sk": str("rollout")}
}

func targetSK(serviceKey string) string { return "target#" + serviceKey }

func targetKey(rule, eventID, serviceKey string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": str(rolloutPK(rule, eventID)), "sk": str(targetSK(serviceKey))}
}

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

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
