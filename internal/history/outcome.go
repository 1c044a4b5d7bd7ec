package history

import (
	"context"
	"errors"
	"fmt"
	"strings"
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
	if st, ok := w.stateOutcome(r, outcome); ok {
		items = append(items, st)
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

// stateOutcome is the ended deployment's note on its service's state item
// (one update: a transaction takes one action per item): the deployment
// is no longer under way, and the record's digest is remembered (failed,
// rolled back) or forgotten (completed) — a digest superseded did not
// fail. The item never expires (see NewServices; an expiry left by an
// older version is removed). ok is false when there is nothing to note.
func (w *Store) stateOutcome(r Record, outcome string) (item types.TransactWriteItem, ok bool) {
	var add, del []string
	values := map[string]types.AttributeValue{}
	if r.DeploymentID != "" {
		del = append(del, "under_way :uw")
		values[":uw"] = &types.AttributeValueMemberSS{Value: []string{r.DeploymentID}}
	}
	if r.Digest != "" && outcome != Superseded {
		values[":d"] = &types.AttributeValueMemberSS{Value: []string{r.Digest}}
		if outcome == Completed {
			del = append(del, "failed_digests :d")
		} else {
			add = append(add, "failed_digests :d")
		}
	}
	if len(values) == 0 {
		return item, false
	}
	expr := ""
	if len(add) > 0 {
		expr += "ADD " + strings.Join(add, ", ") + " "
	}
	if len(del) > 0 {
		expr += "DELETE " + strings.Join(del, ", ") + " "
	}
	return w.stateUpdate(r.serviceKey(), expr+"REMOVE expires_at", values), true
}
