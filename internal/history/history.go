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
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecsarn"
)

// Retention is how long history items live before DynamoDB's TTL removes them.
const Retention = 90 * 24 * time.Hour

// Record is one deploy of one target.
type Record struct {
	Rule               string   `dynamodbav:"rule"`
	Repository         string   `dynamodbav:"repository"`
	RegistryAccount    string   `dynamodbav:"registry_account"`
	RegistryRegion     string   `dynamodbav:"registry_region"`
	Tag                string   `dynamodbav:"tag"`
	Digest             string   `dynamodbav:"digest"`
	Account            string   `dynamodbav:"account"`
	Region             string   `dynamodbav:"region"`
	Cluster            string   `dynamodbav:"cluster"`
	Service            string   `dynamodbav:"service"`
	Containers         []string `dynamodbav:"containers,stringset,omitempty"`
	FromTaskDefinition string   `dynamodbav:"from_task_definition,omitempty"`
	ToTaskDefinition   string   `dynamodbav:"to_task_definition,omitempty"`
	DeploymentID       string   `dynamodbav:"deployment_id,omitempty"`
	// Rollout is the service's kind of rollout when deployed ("rolling",
	// "ECS-native CANARY", "CodeDeploy-controlled blue/green"; empty from
	// older versions: rolling or CodeDeploy by the deployment id).
	Rollout string `dynamodbav:"rollout,omitempty"`
	// ServiceDeploymentARN is an ECS-native rollout's service deployment:
	// UpdateService's hint, then the one the watcher found.
	ServiceDeploymentARN string    `dynamodbav:"service_deployment_arn,omitempty"`
	EventID              string    `dynamodbav:"event_id"`
	Outcome              string    `dynamodbav:"outcome"`
	Reason               string    `dynamodbav:"reason,omitempty"`
	PushedAt             time.Time `dynamodbav:"pushed_at"`
	DeployedAt           time.Time `dynamodbav:"deployed_at"`

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
// uses the same key. A cluster or service given as an ARN counts by its
// name, so every caller (rules, events, the CLI's flags) names it alike.
func ServiceKey(account, region, cluster, service string) string {
	return fmt.Sprintf("%s/%s/%s/%s", account, region, ecsarn.Name(cluster), ecsarn.Name(service))
}

// dynamoAPI is what the store needs of DynamoDB.
type dynamoAPI interface {
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
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
	items, err := w.recordItems(r)
	if err != nil {
		return err
	}
	if err := w.transact(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items}); err != nil {
		return fmt.Errorf("write history of %s: %w", r.serviceKey(), err)
	}
	return nil
}

func (r Record) serviceKey() string { return ServiceKey(r.Account, r.Region, r.Cluster, r.Service) }

// recordItems are the writes of one record: its service item and, when it
// has a deployment id, its index item.
func (w *Store) recordItems(r Record) ([]types.TransactWriteItem, error) {
	base, err := attributevalue.MarshalMap(r)
	if err != nil {
		return nil, fmt.Errorf("marshal history record: %w", err)
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
	items := []types.TransactWriteItem{{Put: &types.Put{
		TableName: aws.String(w.table),
		Item:      item("service#"+r.serviceKey(), r.serviceSK()),
	}}}
	if r.DeploymentID != "" {
		items = append(items, types.TransactWriteItem{Put: &types.Put{
			TableName: aws.String(w.table),
			Item:      item("deployment#"+r.DeploymentID, "deploy"),
		}})
	}
	return items, nil
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
