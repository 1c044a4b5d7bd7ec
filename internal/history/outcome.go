package history

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/lock"
)

// Deployment outcomes the watcher records, and Superseded, which the
// deploy path records for a deployment its newer deploy replaced (ECS
// reports no end of such a deployment).
const (
	Completed  = "completed"
	Failed     = "failed"
	RolledBack = "rolled_back"
	Superseded = "superseded"
)

// SetOutcome records how a deployment ended on both items of its record,
// and on the service's state: a digest whose deployment failed or rolled
// back is remembered there, so no retry, redrive or sweep deploys it to
// that service again; one that completed is forgotten.
//
// It is idempotent: recorded is false when the outcome (or a final one) was
// already there, so a duplicate event is reported once. A rollback may
// follow a failure; nothing overrides a rollback or a completion. The write
// carries a token of its own, so when DynamoDB applied it but the response
// was lost, the SDK's retry is recognised as the same write (recorded).
func (w *Store) SetOutcome(ctx context.Context, r Record, outcome, reason string, at time.Time) (recorded bool, err error) {
	cond := "attribute_not_exists(deployment_outcome) OR outcome_token = :tok"
	if outcome == RolledBack {
		cond += " OR deployment_outcome = :failed"
	}
	values := map[string]types.AttributeValue{
		":o":   &types.AttributeValueMemberS{Value: outcome},
		":r":   &types.AttributeValueMemberS{Value: reason},
		":f":   &types.AttributeValueMemberS{Value: at.UTC().Format(time.RFC3339Nano)},
		":tok": &types.AttributeValueMemberS{Value: lock.NewToken()},
	}
	if outcome == RolledBack {
		values[":failed"] = &types.AttributeValueMemberS{Value: Failed}
	}
	update := func(pk, sk string) types.TransactWriteItem {
		return types.TransactWriteItem{Update: &types.Update{
			TableName: aws.String(w.table),
			Key: map[string]types.AttributeValue{
				"pk": &types.AttributeValueMemberS{Value: pk},
				"sk": &types.AttributeValueMemberS{Value: sk},
			},
			UpdateExpression:          aws.String("SET deployment_outcome = :o, deployment_reason = :r, finished_at = :f, outcome_token = :tok"),
			ConditionExpression:       aws.String("attribute_exists(pk) AND (" + cond + ")"),
			ExpressionAttributeValues: values,
		}}
	}
	items := []types.TransactWriteItem{update("service#"+r.serviceKey(), r.serviceSK())}
	if r.DeploymentID != "" {
		items = append(items, update("deployment#"+r.DeploymentID, "deploy"))
	}
	if r.Digest != "" && outcome != Superseded { // a digest replaced did not fail
		items = append(items, w.digestOutcome(r, outcome))
	}
	err = w.transact(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	var cancelled *types.TransactionCanceledException
	if errors.As(err, &cancelled) && !awsenv.IsTransactionConflict(err) {
		for _, reason := range cancelled.CancellationReasons {
			if aws.ToString(reason.Code) == "ConditionalCheckFailed" {
				return false, nil
			}
		}
	}
	if err != nil {
		return false, fmt.Errorf("record outcome of deployment %s: %w", r.DeploymentID, err)
	}
	return true, nil
}

// digestOutcome remembers (failed, rolled back) or forgets (completed) the
// record's digest on its service's state item, which never expires (see
// NewServices; an expiry left by an older version is removed).
func (w *Store) digestOutcome(r Record, outcome string) types.TransactWriteItem {
	expr := "ADD failed_digests :d REMOVE expires_at"
	if outcome == Completed {
		expr = "DELETE failed_digests :d REMOVE expires_at"
	}
	return w.stateUpdate(r.serviceKey(), expr, map[string]types.AttributeValue{
		":d": &types.AttributeValueMemberSS{Value: []string{r.Digest}},
	})
}
