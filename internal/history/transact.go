package history

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
)

// transact runs a transaction on the state table, sent again while it
// conflicts with another (awsenv.TransactWrite).
func (w *Store) transact(ctx context.Context, in *dynamodb.TransactWriteItemsInput) error {
	return awsenv.TransactWrite(ctx, w.db, in)
}
