// Package history records what each deploy did in the state table, so the
// watcher can follow a deployment by its ECS id and operators can list a
// service's recent deploys.
//
// Items (one table, pk/sk, TTL expires_at):
//
//	pk "service#<account>/<region>/<cluster>/<service>"  sk "deploy#<RFC3339 UTC time>#<event id>#<rule>"
//	pk "deployment#<ECS deployment id>"                  sk "deploy"  (same attributes, for the watcher)
package history

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Retention is how long history items live before DynamoDB's TTL removes them.
const Retention = 90 * 24 * time.Hour

// Record is one deploy of one target.
type Record struct {
	Rule               string    `dynamodbav:"rule"`
	Repository         string    `dynamodbav:"repository"`
	RegistryAccount    string    `dynamodbav:"registry_account"`
	RegistryRegion     string    `dynamodbav:"registry_region"`
	Tag                string    `dynamodbav:"tag"`
	Digest             string    `dynamodbav:"digest"`
	Account            string    `dynamodbav:"account"`
	Region             string    `dynamodbav:"region"`
	Cluster            string    `dynamodbav:"cluster"`
	Service            string    `dynamodbav:"service"`
	Containers         []string  `dynamodbav:"containers,stringset,omitempty"`
	FromTaskDefinition string    `dynamodbav:"from_task_definition,omitempty"`
	ToTaskDefinition   string    `dynamodbav:"to_task_definition,omitempty"`
	DeploymentID       string    `dynamodbav:"deployment_id,omitempty"`
	EventID            string    `dynamodbav:"event_id"`
	Outcome            string    `dynamodbav:"outcome"`
	Reason             string    `dynamodbav:"reason,omitempty"`
	PushedAt           time.Time `dynamodbav:"pushed_at"`
	DeployedAt         time.Time `dynamodbav:"deployed_at"`

	// Set by the watcher once ECS says how the deployment ended.
	DeploymentOutcome string    `dynamodbav:"deployment_outcome,omitempty"`
	DeploymentReason  string    `dynamodbav:"deployment_reason,omitempty"`
	FinishedAt        time.Time `dynamodbav:"finished_at,omitempty"`
}

// serviceSK is the sort key of a record's service item.
func (r Record) serviceSK() string {
	return fmt.Sprintf("deploy#%s#%s#%s", r.DeployedAt.UTC().Format(time.RFC3339Nano), r.EventID, r.Rule)
}

// ServiceKey identifies a service across accounts and regions; the lock
// uses the same key.
func ServiceKey(account, region, cluster, service string) string {
	return fmt.Sprintf("%s/%s/%s/%s", account, region, cluster, service)
}

// dynamoAPI is what the store needs of DynamoDB.
type dynamoAPI interface {
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
}

// Store reads and writes history records.
type Store struct {
	db    dynamoAPI
	table string
}

// NewStore returns a Store on the table.
func NewStore(db dynamoAPI, table string) *Store {
	return &Store{db: db, table: table}
}

// Put writes a record, and its deployment-id index item when it has an id,
// in one transaction so the watcher never sees half of it.
func (w *Store) Put(ctx context.Context, r Record) error {
	base, err := attributevalue.MarshalMap(r)
	if err != nil {
		return fmt.Errorf("marshal history record: %w", err)
	}
	expires := &types.AttributeValueMemberN{Value: fmt.Sprint(r.DeployedAt.Add(Retention).Unix())}
	item := func(pk, sk string) map[string]types.AttributeValue {
		m := make(map[string]types.AttributeValue, len(base)+3)
		for k, v := range base {
			m[k] = v
		}
		m["pk"] = &types.AttributeValueMemberS{Value: pk}
		m["sk"] = &types.AttributeValueMemberS{Value: sk}
		m["expires_at"] = expires
		return m
	}
	key := ServiceKey(r.Account, r.Region, r.Cluster, r.Service)
	items := []types.TransactWriteItem{{Put: &types.Put{
		TableName: aws.String(w.table),
		Item:      item("service#"+key, r.serviceSK()),
	}}}
	if r.DeploymentID != "" {
		items = append(items, types.TransactWriteItem{Put: &types.Put{
			TableName: aws.String(w.table),
			Item:      item("deployment#"+r.DeploymentID, "deploy"),
		}})
	}
	if _, err := w.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items}); err != nil {
		return fmt.Errorf("write history of %s: %w", key, err)
	}
	return nil
}

// Recent returns up to limit records of one service, newest first.
func (w *Store) Recent(ctx context.Context, serviceKey string, limit int32) ([]Record, error) {
	out, err := w.db.Query(ctx, &dynamodb.QueryInput{
		TableName:              aws.String(w.table),
		KeyConditionExpression: aws.String("pk = :pk AND begins_with(sk, :deploy)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk":     &types.AttributeValueMemberS{Value: "service#" + serviceKey},
			":deploy": &types.AttributeValueMemberS{Value: "deploy#"},
		},
		ScanIndexForward: aws.Bool(false),
		Limit:            aws.Int32(limit),
	})
	if err != nil {
		return nil, fmt.Errorf("query history of %s: %w", serviceKey, err)
	}
	var recs []Record
	if err := attributevalue.UnmarshalListOfMaps(out.Items, &recs); err != nil {
		return nil, fmt.Errorf("read history of %s: %w", serviceKey, err)
	}
	return recs, nil
}

// ByDeployment returns the record of the deploy that started an ECS
// deployment; found is false for deployments this system did not start.
func (w *Store) ByDeployment(ctx context.Context, deploymentID string) (rec Record, found bool, err error) {
	out, err := w.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(w.table),
		Key: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: "deployment#" + deploymentID},
			"sk": &types.AttributeValueMemberS{Value: "deploy"},
		},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return Record{}, false, fmt.Errorf("get deployment %s: %w", deploymentID, err)
	}
	if out.Item == nil {
		return Record{}, false, nil
	}
	if err := attributevalue.UnmarshalMap(out.Item, &rec); err != nil {
		return Record{}, false, fmt.Errorf("read deployment %s: %w", deploymentID, err)
	}
	return rec, true, nil
}

// Deployment outcomes the watcher records.
const (
	Completed  = "completed"
	Failed     = "failed"
	RolledBack = "rolled_back"
)

// SetOutcome records how a deployment ended on both items of its record.
// It is idempotent: recorded is false when the outcome (or a final one) was
// already there, so a duplicate event is reported once. A rollback may
// follow a failure; nothing overrides a rollback or a completion.
func (w *Store) SetOutcome(ctx context.Context, r Record, outcome, reason string, at time.Time) (recorded bool, err error) {
	cond := "attribute_not_exists(deployment_outcome)"
	if outcome == RolledBack {
		cond += " OR deployment_outcome = :failed"
	}
	values := map[string]types.AttributeValue{
		":o": &types.AttributeValueMemberS{Value: outcome},
		":r": &types.AttributeValueMemberS{Value: reason},
		":f": &types.AttributeValueMemberS{Value: at.UTC().Format(time.RFC3339Nano)},
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
			UpdateExpression:          aws.String("SET deployment_outcome = :o, deployment_reason = :r, finished_at = :f"),
			ConditionExpression:       aws.String("attribute_exists(pk) AND (" + cond + ")"),
			ExpressionAttributeValues: values,
		}}
	}
	key := ServiceKey(r.Account, r.Region, r.Cluster, r.Service)
	items := []types.TransactWriteItem{update("service#"+key, r.serviceSK())}
	if r.DeploymentID != "" {
		items = append(items, update("deployment#"+r.DeploymentID, "deploy"))
	}
	_, err = w.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	var cancelled *types.TransactionCanceledException
	if errors.As(err, &cancelled) {
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

// MarkTargetCompleted notes that one target of a rule completed a digest
// and returns the service keys of every target that completed it so far.
func (w *Store) MarkTargetCompleted(ctx context.Context, rule, digest, serviceKey string, at time.Time) ([]string, error) {
	pk := "promote#" + rule + "#" + digest
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

// ClaimPromotion returns true exactly once per rule and digest, so racing
// completions promote once.
func (w *Store) ClaimPromotion(ctx context.Context, rule, digest string, at time.Time) (bool, error) {
	_, err := w.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(w.table),
		Item: map[string]types.AttributeValue{
			"pk":         &types.AttributeValueMemberS{Value: "promote#" + rule + "#" + digest},
			"sk":         &types.AttributeValueMemberS{Value: "promoted"},
			"expires_at": &types.AttributeValueMemberN{Value: fmt.Sprint(at.Add(Retention).Unix())},
		},
		ConditionExpression: aws.String("attribute_not_exists(pk)"),
	})
	var taken *types.ConditionalCheckFailedException
	if errors.As(err, &taken) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("claim promotion of %s for %s: %w", digest, rule, err)
	}
	return true, nil
}

// ReleasePromotion undoes a claim whose promotion failed, so a retry of the
// event can promote.
func (w *Store) ReleasePromotion(ctx context.Context, rule, digest string) error {
	_, err := w.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: aws.String(w.table),
		Key: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: "promote#" + rule + "#" + digest},
			"sk": &types.AttributeValueMemberS{Value: "promoted"},
		},
	})
	if err != nil {
		return fmt.Errorf("release promotion of %s for %s: %w", digest, rule, err)
	}
	return nil
}
