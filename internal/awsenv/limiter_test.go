package awsenv

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/sync/errgroup"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

// TestAdaptiveLimiterIsPerOperation throttles DescribeTaskDefinition (a
// cold sweep describing 1,000 task definitions at ECS's 20/s) through a
// real client, then calls DescribeServices, which ECS did not throttle. The
// SDK's adaptive mode keeps one limiter per client, on for good after the
// first throttle, so it would hold DescribeServices to the rate it measured
// for another operation; awsenv's keeps the throttle with the operation it
// hit. Asserted on the limiters' state, not on timings (a loaded machine
// makes any timing flaky). FakeAWS plays ECS's buckets (moto has none).
func TestAdaptiveLimiterIsPerOperation(t *testing.T) {
	ctx := context.Background()
	fake := testenv.StartFakeAWS(t)
	fake.Limits(testenv.ECSLimits{DescribeTaskDef: testenv.Limit{Burst: 2, PerSecond: 100}})
	retryer := Retry{Adaptive: true, Base: 10 * time.Millisecond, Max: 100 * time.Millisecond}.New().(*perOperation)
	client := ecs.NewFromConfig(aws.Config{Region: testenv.Region, BaseEndpoint: aws.String(fake.URL),
		Retryer:     func() aws.Retryer { return retryer },
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")})
	var services []string
	for i := range 10 {
		services = append(services, fmt.Sprintf("s%d", i))
		fake.Seed(testenv.Region, "c", services[i], "registry/app:v1")
	}
	described, err := client.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("c"), Services: services})
	if err != nil {
		t.Fatal(err)
	}
	g, gctx := errgroup.WithContext(ctx)
	for i := range 10 {
		g.Go(func() error {
			_, err := client.DescribeTaskDefinition(gctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: described.Services[i%10].TaskDefinition,
				Include: []ecstypes.TaskDefinitionField{ecstypes.TaskDefinitionFieldTags}})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatalf("a throttled DescribeTaskDefinition was not retried to success: %v", err)
	}
	if fake.Refused()["DescribeTaskDefinition"] == 0 {
		t.Fatal("DescribeTaskDefinition was never throttled: the test shows nothing")
	}
	for range 20 {
		if _, err := client.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("c"), Services: services}); err != nil {
			t.Fatal(err)
		}
	}
	retryer.mu.Lock()
	defer retryer.mu.Unlock()
	got := map[string]bool{}
	for op, l := range retryer.limiters {
		got[op] = !l.throttled.IsZero()
	}
	want := map[string]bool{"DescribeServices": false, "DescribeTaskDefinition": true}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("operations whose limiter is throttled (-want +got):\n%s", diff)
	}
	if retryer.limiters["DescribeServices"] == retryer.limiters["DescribeTaskDefinition"] {
		t.Error("DescribeServices waits in DescribeTaskDefinition's limiter")
	}
}

// TestAdaptiveLimiterForgets: an operation's limiter is kept while it is
// throttled, shared by registrations and deregistrations (one ECS bucket),
// and replaced by a fresh one, which does not limit, once its last throttle
// is more than Forget ago.
func TestAdaptiveLimiterForgets(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	p := Retry{Adaptive: true, Forget: 30 * time.Second}.New().(*perOperation)
	p.now = func() time.Time { return now }
	throttle := &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded", Fault: smithy.FaultClient}
	attempt := func(op string, err error) *limiter {
		t.Helper()
		ctx := awsmiddleware.SetOperationName(context.Background(), op)
		release, terr := p.GetAttemptToken(ctx)
		if terr != nil {
			t.Fatal(terr)
		}
		l := p.limiters[bucketOf(op)]
		if rerr := release(err); rerr != nil {
			t.Fatal(rerr)
		}
		return l
	}
	registering := attempt("RegisterTaskDefinition", throttle)
	steps := []struct {
		name    string
		advance time.Duration
		op      string
		err     error
		same    bool // the limiter is registering's
	}{
		{"deregistrations share the registrations' bucket", time.Second, "DeregisterTaskDefinition", nil, true},
		{"another operation has its own", 0, "UpdateService", nil, false},
		{"kept 30 s after the last throttle", 29 * time.Second, "RegisterTaskDefinition", throttle, true},
		{"a throttle renews it", 29 * time.Second, "RegisterTaskDefinition", nil, true},
		{"forgotten past 30 s", 2 * time.Second, "RegisterTaskDefinition", nil, false},
	}
	var got, want []string
	for _, s := range steps {
		now = now.Add(s.advance)
		l := attempt(s.op, s.err)
		got = append(got, fmt.Sprintf("%s: %v", s.name, l == registering))
		want = append(want, fmt.Sprintf("%s: %v", s.name, s.same))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("limiters (-want +got):\n%s", diff)
	}
	if fresh := p.limiters["RegisterTaskDefinition"]; fresh == registering || !fresh.throttled.IsZero() {
		t.Errorf("after forgetting, the limiter is %+v, want a fresh one never throttled", fresh)
	}
}
