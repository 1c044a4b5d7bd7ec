package awsenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"
)

func TestIsTransactionConflict(t *testing.T) {
	cancelled := func(codes ...string) error {
		e := &types.TransactionCanceledException{Message: aws.String("Transaction cancelled")}
		for _, c := range codes {
			e.CancellationReasons = append(e.CancellationReasons, types.CancellationReason{Code: aws.String(c)})
		}
		return fmt.Errorf("record end: %w", e)
	}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"single write", fmt.Errorf("claim: %w", &types.TransactionConflictException{Message: aws.String("Transaction is ongoing for the item")}), true},
		{"transaction, one conflict", cancelled("None", "TransactionConflict"), true},
		{"transaction, conflict and condition", cancelled("ConditionalCheckFailed", "TransactionConflict"), true},
		{"transaction, condition only", cancelled("ConditionalCheckFailed", "None"), false},
		{"transaction, no reasons", cancelled(), false},
		{"condition", &types.ConditionalCheckFailedException{}, false},
		{"nil", nil, false},
		{"other", errors.New("boom"), false},
	}
	for _, tt := range tests {
		if got := IsTransactionConflict(tt.err); got != tt.want {
			t.Errorf("%s: IsTransactionConflict = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// conflictingDynamoDB answers the first conflicts requests of each
// operation with the conflict DynamoDB gives it when a transaction is under
// way on its items, and every other request with {}.
type conflictingDynamoDB struct {
	conflicts int
	mu        sync.Mutex
	calls     map[string]int
}

func (c *conflictingDynamoDB) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_20120810.")
	_, _ = io.Copy(io.Discard, r.Body)
	c.mu.Lock()
	c.calls[op]++
	n := c.calls[op]
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	if n > c.conflicts {
		_, _ = io.WriteString(w, "{}")
		return
	}
	w.WriteHeader(http.StatusBadRequest)
	if op == "TransactWriteItems" {
		_, _ = io.WriteString(w, `{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException",`+
			`"Message":"Transaction cancelled, please refer cancellation reasons for specific reasons [None, TransactionConflict]",`+
			`"CancellationReasons":[{"Code":"None"},{"Code":"TransactionConflict","Message":"Transaction is ongoing for the item"}]}`)
		return
	}
	_, _ = io.WriteString(w, `{"__type":"com.amazonaws.dynamodb.v20120810#TransactionConflictException","message":"Transaction is ongoing for the item"}`)
}

// The state table's client (StateTable, its retryer as in the functions)
// sends a single write that met a transaction again, and leaves a
// cancelled transaction to its caller, which must send it with a fresh
// token (the SDK would send the same one).
func TestStateTableRetriesSingleWriteConflictsOnly(t *testing.T) {
	fake := &conflictingDynamoDB{conflicts: 2, calls: map[string]int{}}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	db := StateTable(aws.Config{Region: "eu-west-1", BaseEndpoint: aws.String(srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")})
	ctx := context.Background()
	key := map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "rollout#r#e"}, "sk": &types.AttributeValueMemberS{Value: "rollout"}}
	if _, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String("t"), Key: key,
		UpdateExpression: aws.String("SET notice_sent = :n"), ExpressionAttributeValues: map[string]types.AttributeValue{
			":n": &types.AttributeValueMemberN{Value: "1"}}}); err != nil {
		t.Fatalf("UpdateItem after 2 conflicts: %v", err)
	}
	_, err := db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Update: &types.Update{TableName: aws.String("t"), Key: key, UpdateExpression: aws.String("ADD ended :one"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":one": &types.AttributeValueMemberN{Value: "1"}}}}}})
	if !IsTransactionConflict(err) {
		t.Fatalf("TransactWriteItems: %v, want its cancellation for a conflict", err)
	}
	want := map[string]int{"UpdateItem": 3, "TransactWriteItems": 1}
	if diff := cmp.Diff(want, fake.calls); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}
