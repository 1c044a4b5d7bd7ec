package history

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// NoteServiceDeployment writes the service deployment the watcher found for
// an ECS-native rollout (rollout.NativeRollout.Outcome) on both items of
// its record, when UpdateService named none or another: status, history
// and the next recheck then know it (a recheck reads two calls instead of
// three). Writing the same ARN again changes nothing.
func (w *Store) NoteServiceDeployment(ctx context.Context, r Record, arn string) error {
	update := func(pk, sk string) types.TransactWriteItem {
		return types.TransactWriteItem{Update: &types.Update{
			TableName:                 aws.String(w.table),
			Key:                       map[string]types.AttributeValue{"pk": str(pk), "sk": str(sk)},
			UpdateExpression:          aws.String("SET service_deployment_arn = :a"),
			ConditionExpression:       aws.String("attribute_exists(pk)"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":a": str(arn)},
		}}
	}
	items := []types.TransactWriteItem{update("service#"+r.serviceKey(), r.serviceSK())}
	if r.DeploymentID != "" {
		items = append(items, update("deployment#"+r.DeploymentID, "deploy"))
	}
	if err := w.transact(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items}); err != nil {
		return fmt.Errorf("note service deployment %s of deployment %s: %w", arn, r.DeploymentID, err)
	}
	return nil
}
