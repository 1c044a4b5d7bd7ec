package awsenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/smithy-go"
)

func TestIsTransient(t *testing.T) {
	api := func(code, msg string, fault smithy.ErrorFault) error {
		return fmt.Errorf("register task definition web: %w", &smithy.GenericAPIError{Code: code, Message: msg, Fault: fault})
	}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"throttling", api("ThrottlingException", "Rate exceeded", smithy.FaultClient), true},
		{"server", api("ServerException", "internal", smithy.FaultServer), true},
		{"concurrent revision", api("ClientException", "Too many concurrent attempts to create a new revision of the specified family.", smithy.FaultClient), true},
		{"network", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, true},
		{"access denied", api("AccessDeniedException", "not authorized", smithy.FaultClient), false},
		{"invalid parameter", api("InvalidParameterException", "bad", smithy.FaultClient), false},
		{"other client exception", api("ClientException", "Unable to describe task definition.", smithy.FaultClient), false},
	}
	for _, tt := range tests {
		if got := IsTransient(tt.err); got != tt.want {
			t.Errorf("%s: IsTransient = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestRetryerRetriesConcurrentRevision(t *testing.T) {
	r := NewRetryer()
	err := &smithy.GenericAPIError{Code: "ClientException", Message: "Too many concurrent attempts to create a new revision of the specified family.", Fault: smithy.FaultClient}
	if !r.IsErrorRetryable(err) {
		t.Error("concurrent revision error is not retried by the SDK")
	}
	if !r.IsErrorRetryable(&smithy.GenericAPIError{Code: "ThrottlingException", Fault: smithy.FaultClient}) {
		t.Error("throttling is not retried")
	}
	if r.IsErrorRetryable(&smithy.GenericAPIError{Code: "AccessDeniedException", Fault: smithy.FaultClient}) {
		t.Error("access denied is retried")
	}
	if r.MaxAttempts() != MaxAttempts {
		t.Errorf("MaxAttempts = %d", r.MaxAttempts())
	}
}

func TestClientsAreCachedPerRegionAndRole(t *testing.T) {
	c := NewClients(aws.Config{Region: "eu-west-1"})
	a, p := c.ECS("", ""), c.SSM("", "")
	if c.ECS("", "") != a || c.SSM("", "") != p {
		t.Error("same region and role gave a new client")
	}
	if c.ECS("us-east-1", "") == a || c.ECS("", "arn:aws:iam::222222222222:role/x") == a {
		t.Error("a different region or role reused a client")
	}
	if got := c.ECS("us-east-1", "").Options().Region; got != "us-east-1" {
		t.Errorf("region = %s", got)
	}
	if got := c.SSM("us-east-1", "").Options().Region; got != "us-east-1" {
		t.Errorf("SSM region = %s", got)
	}
	var _ interface {
		DescribeServices(context.Context, *ecs.DescribeServicesInput, ...func(*ecs.Options)) (*ecs.DescribeServicesOutput, error)
	} = a
}

func TestBackoffDoublesUpToItsCap(t *testing.T) {
	b := jitterBackoff{base: 50 * time.Millisecond, max: time.Second}
	for attempt, limit := range map[int]time.Duration{1: 50 * time.Millisecond, 2: 100 * time.Millisecond, 4: 400 * time.Millisecond, 6: time.Second, 40: time.Second} {
		for range 50 {
			if d, _ := b.BackoffDelay(attempt, nil); d < 0 || d > limit {
				t.Fatalf("attempt %d waited %s, want at most %s", attempt, d, limit)
			}
		}
	}
}

// A single write that met a transaction waits a conflict's milliseconds,
// not a throttle's seconds: the item is busy for a transaction's length.
func TestConflictBacksOffAsTransactionsDo(t *testing.T) {
	b := jitterBackoff{base: time.Second, max: 20 * time.Second}
	conflict := &dbtypes.TransactionConflictException{Message: aws.String("Transaction is ongoing for the item")}
	for attempt, limit := range map[int]time.Duration{1: 20 * time.Millisecond, 3: 80 * time.Millisecond, 8: 2 * time.Second, 40: 2 * time.Second} {
		for range 50 {
			if d, _ := b.BackoffDelay(attempt, conflict); d < 0 || d > limit {
				t.Fatalf("a conflict's attempt %d waited %s, want at most %s", attempt, d, limit)
			}
		}
	}
}

// With the retry quota off, a client keeps retrying through a long run of
// failures instead of failing calls outright once its quota is spent.
func TestManyFailuresNeverExhaustRetries(t *testing.T) {
	err := &smithy.GenericAPIError{Code: "InternalFailure", Fault: smithy.FaultServer}
	for _, r := range []aws.Retryer{NewRetryer(), NewStateRetryer()} {
		for i := range 1000 {
			if _, err := r.GetRetryToken(context.Background(), err); err != nil {
				t.Fatalf("retry %d refused: %v", i, err)
			}
		}
	}
}
