package awsenv

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/smithy-go"
)

// The worker's clients give up a throttled call after WorkerMaxAttempts,
// so the item returns to its queue, where the worker backs it off; the
// other functions keep MaxAttempts. Counted against an HTTP server that
// throttles every call (a fake: moto does not throttle), with the backoff
// shrunk to a millisecond; nothing here is timed.
func TestWorkerRetriesFewerTimes(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"__type":"ThrottlingException","message":"Rate exceeded"}`))
	}))
	defer srv.Close()
	fast := func() aws.Retryer { return Retry{Base: time.Millisecond, Max: time.Millisecond}.New() }
	base := aws.Config{Region: "eu-west-1", BaseEndpoint: aws.String(srv.URL), Retryer: fast,
		Credentials: aws.AnonymousCredentials{}}
	tests := []struct {
		name string
		cfg  aws.Config
		want int64
	}{
		{"the functions' clients", base, MaxAttempts},
		{"the worker's clients", ForWorker(base), WorkerMaxAttempts},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls.Store(0)
			_, err := ecs.NewFromConfig(tt.cfg).ListClusters(context.Background(), &ecs.ListClustersInput{})
			var apiErr smithy.APIError
			if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "ThrottlingException" {
				t.Fatalf("ListClusters: %v, want the throttle", err)
			}
			if got := calls.Load(); got != tt.want {
				t.Errorf("%d attempts, want %d", got, tt.want)
			}
		})
	}
}

// ForWorker bounds the attempts of whatever retryer the config has and keeps
// the rest of it: adaptive mode's GetAttemptToken (its per-operation rate
// limiter), a v1 retryer, or the SDK's default when none is set.
func TestForWorkerKeepsTheRetryer(t *testing.T) {
	tests := []struct {
		name   string
		base   func() aws.Retryer
		wantV2 bool
	}{
		{"adaptive per operation", NewRetryer, true},
		{"standard", NewStateRetryer, true},
		{"none (the SDK's default)", nil, true},
		{"a v1 retryer", func() aws.Retryer {
			return v1Only{retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = 8 })}
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ForWorker(aws.Config{Retryer: tt.base}).Retryer()
			if tt.base == nil {
				// The SDK's default makes 3 attempts, fewer than the bound.
				if got := r.MaxAttempts(); got != 3 {
					t.Errorf("MaxAttempts = %d, want the SDK default's 3", got)
				}
				return
			}
			if got := r.MaxAttempts(); got != WorkerMaxAttempts {
				t.Errorf("MaxAttempts = %d, want %d", got, WorkerMaxAttempts)
			}
			v2, ok := r.(maxAttemptsV2)
			if ok != tt.wantV2 {
				t.Fatalf("retryer %T, want a RetryerV2 kept: %v", r, tt.wantV2)
			}
			if ok && tt.base != nil {
				if _, adaptive := v2.RetryerV2.(*perOperation); adaptive != (tt.name == "adaptive per operation") {
					t.Errorf("inner retryer %T", v2.RetryerV2)
				}
			}
		})
	}
}

// The bound only lowers: a retryer that already makes fewer attempts (a
// test's one attempt, the SDK's default three) keeps its number.
func TestForWorkerOnlyLowers(t *testing.T) {
	for _, n := range []int{1, 3, WorkerMaxAttempts} {
		base := func() aws.Retryer { return retry.AddWithMaxAttempts(retry.NewStandard(), n) }
		if got := ForWorker(aws.Config{Retryer: base}).Retryer().MaxAttempts(); got != n {
			t.Errorf("a retryer of %d attempts makes %d under ForWorker", n, got)
		}
	}
}

// v1Only hides a retryer's GetAttemptToken.
type v1Only struct{ r aws.RetryerV2 }

func (v v1Only) IsErrorRetryable(err error) bool { return v.r.IsErrorRetryable(err) }
func (v v1Only) MaxAttempts() int                { return v.r.MaxAttempts() }
func (v v1Only) RetryDelay(attempt int, err error) (time.Duration, error) {
	return v.r.RetryDelay(attempt, err)
}
func (v v1Only) GetRetryToken(ctx context.Context, err error) (func(error) error, error) {
	return v.r.GetRetryToken(ctx, err)
}

//lint:ignore SA1019 a v1 retryer is what this fake plays
func (v v1Only) GetInitialToken() func(error) error { return v.r.GetInitialToken() }
