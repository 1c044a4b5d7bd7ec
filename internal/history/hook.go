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

// A hook notice's claim, an item of its own:
//
//	pk "hook#<ECS hook id>"  sk "notice"  owner, claimed_at, until, sent (epoch ms), expires_at
//
// ECS gives every pause a hook id of its own (linear and canary a fresh one
// per step), so the id names the one notice a person gets for that pause,
// however often EventBridge delivers its HOOK_AWAITING_ACTION event.

// HookRetention is how long a hook notice's claim is kept: past the
// longest a PAUSE hook may wait, so a late duplicate still finds it.
const HookRetention = 14 * 24 * time.Hour

func hookKey(hookID string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": str("hook#" + hookID), "sk": str("notice")}
}

// ClaimHookNotice claims the notice of a paused hook for owner (the event
// asking): claimed is true for the first claimer, for owner's own retries
// until the notice is marked sent (HookNoticeSent), and for anyone once a
// claim outlived its claimer unsent (claimUntil: it died). Once sent, or
// while another live claimer holds it, claimed is false.
func (w *Store) ClaimHookNotice(ctx context.Context, hookID, owner string, now time.Time) (claimed bool, err error) {
	ms := func(t time.Time) types.AttributeValue {
		return &types.AttributeValueMemberN{Value: strconv.FormatInt(t.UnixMilli(), 10)}
	}
	_, err = w.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                aws.String(w.table),
		Key:                      hookKey(hookID),
		UpdateExpression:         aws.String("SET #owner = :me, claimed_at = :now, #until = :until, expires_at = :exp"),
		ConditionExpression:      aws.String("attribute_not_exists(pk) OR (attribute_not_exists(sent) AND (#owner = :me OR #until < :now))"),
		ExpressionAttributeNames: map[string]string{"#owner": "owner", "#until": "until"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":me":    str(owner),
			":now":   ms(now),
			":until": ms(claimUntil(ctx, now)),
			":exp":   &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Add(HookRetention).Unix(), 10)},
		},
	})
	var refused *types.ConditionalCheckFailedException
	if errors.As(err, &refused) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("claim the notice of hook %s: %w", hookID, err)
	}
	return true, nil
}

// HookNoticeSent marks the notice of a hook, claimed by owner, sent, so
// that no retry or duplicate sends it again. A claim taken over meanwhile
// (stale) is its new owner's to mark.
func (w *Store) HookNoticeSent(ctx context.Context, hookID, owner string, now time.Time) error {
	_, err := w.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(w.table),
		Key:                       hookKey(hookID),
		UpdateExpression:          aws.String("SET sent = :now"),
		ConditionExpression:       aws.String("#owner = :me"),
		ExpressionAttributeNames:  map[string]string{"#owner": "owner"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":me": str(owner), ":now": &types.AttributeValueMemberN{Value: strconv.FormatInt(now.UnixMilli(), 10)}},
	})
	var taken *types.ConditionalCheckFailedException
	if errors.As(err, &taken) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("mark the notice of hook %s sent: %w", hookID, err)
	}
	return nil
}
