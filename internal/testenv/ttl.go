package testenv

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// ExpireTTL plays DynamoDB's Time to Live, which moto does not: it deletes
// every item of table whose expires_at (epoch seconds) is before now, and
// returns how many went. Tests call it at the time they want to have passed.
func ExpireTTL(t testing.TB, db *dynamodb.Client, table string, now time.Time) int {
	t.Helper()
	ctx := context.Background()
	deleted := 0
	p := dynamodb.NewScanPaginator(db, &dynamodb.ScanInput{TableName: aws.String(table)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("scan %s: %v", table, err)
		}
		for _, item := range page.Items {
			exp, ok := item["expires_at"].(*types.AttributeValueMemberN)
			if !ok {
				continue
			}
			at, err := strconv.ParseInt(exp.Value, 10, 64)
			if err != nil || time.Unix(at, 0).After(now) {
				continue
			}
			if _, err := db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(table),
				Key: map[string]types.AttributeValue{"pk": item["pk"], "sk": item["sk"]}}); err != nil {
				t.Fatalf("expire an item of %s: %v", table, err)
			}
			deleted++
		}
	}
	return deleted
}
