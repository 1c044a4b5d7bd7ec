package reconcile

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/cleanup"
)

// fakeRegisterBucket is a fake ECS endpoint (no moto: moto neither
// throttles nor refuses a concurrent deregistration): the family web has
// revisions 1–4, all the product's, and every DeregisterTaskDefinition and
// DeleteTaskDefinitions is refused with code/message. It counts those calls
// as they reach the wire, after the client's retries.
func fakeRegisterBucket(t *testing.T, code, message string) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var bucket atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		op := r.Header.Get("X-Amz-Target")
		op = op[strings.LastIndex(op, ".")+1:]
		arn := func(n int) string { return fmt.Sprintf("arn:aws:ecs:eu-west-1:123456789012:task-definition/web:%d", n) }
		switch op {
		case "ListTaskDefinitions":
			_ = json.NewEncoder(w).Encode(map[string]any{"taskDefinitionArns": []string{arn(4), arn(3), arn(2), arn(1)}})
		case "DescribeTaskDefinition":
			_ = json.NewEncoder(w).Encode(map[string]any{
				"taskDefinition": map[string]any{"taskDefinitionArn": arn(2), "family": "web", "revision": 2},
				"tags":           []map[string]string{{"key": "autodeploy:rule", "value": "web"}},
			})
		case "DeregisterTaskDefinition", "DeleteTaskDefinitions":
			bucket.Add(1)
			w.Header().Set("X-Amzn-ErrorType", code)
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": message})
		default:
			http.Error(w, "unexpected "+op, http.StatusNotImplemented)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &bucket
}

// A clean-up run through the worker's ECS clients (awsenv.ForWorker over
// the functions' adaptive retryer, as wiring.Worker builds them) makes each
// call on the register bucket once: a throttled deregistration (the bucket
// is empty) and a "Too many concurrent attempts" one (a deploy is
// registering in the family) end the run after one call, not after the
// client's retries spent the bucket or raced the deploy.
func TestCleanupCallsOnTheRegisterBucketAreNotRetried(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, code, message string }{
		{"throttled", "ThrottlingException", "Rate exceeded"},
		{"concurrent with a deploy", "ClientException", "Too many concurrent attempts to create a new revision of the specified family."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, bucket := fakeRegisterBucket(t, tc.code, tc.message)
			cfg := aws.Config{Region: "eu-west-1", Credentials: credentials.NewStaticCredentialsProvider("a", "b", ""),
				BaseEndpoint: aws.String(srv.URL), Retryer: awsenv.NewRetryer}
			client := awsenv.NewClients(awsenv.ForWorker(cfg)).ECS("eu-west-1", "")
			svc := types.Service{ServiceName: aws.String("web"), TaskDefinition: aws.String("web:4")}
			target := cleanup.Target{Family: "web", Keep: 2, Services: []cleanup.Service{{Described: svc}}}
			b := cleanup.NewBudget(CleanupBudget)
			res, err := cleanup.New(client, slog.New(slog.DiscardHandler)).Run(context.Background(), target, b)
			if err != nil {
				t.Fatalf("a refusal on the register bucket ends the run, it is no error: %v", err)
			}
			if !res.Throttled || !b.Throttled() {
				t.Errorf("result %+v, budget throttled %v: want the run ended as throttled", res, b.Throttled())
			}
			if n := bucket.Load(); n != 1 {
				t.Errorf("%d calls reached the register bucket for one deregistration; want 1", n)
			}
			if len(res.Deregistered) != 0 || len(res.Left) == 0 {
				t.Errorf("deregistered %v, left %v: want nothing done and the candidates left to the next run", res.Deregistered, res.Left)
			}
		})
	}
}
