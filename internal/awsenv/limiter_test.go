package awsenv

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/sync/errgroup"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

// TestAdaptiveLimiterIsPerOperation throttles DescribeTaskDefinition (a
// cold sweep describing 1,000 task definitions at ECS's 20/s), waits as
// sweeps do between runs, then times DescribeServices, which ECS did not
// throttle. With the SDK's adaptive mode (one limiter per client, on for
// good after the first throttle) the client still holds DescribeServices to
// what it measured last; with awsenv's (a limiter per operation) it goes at
// once. FakeAWS plays ECS's buckets (moto has none).
func TestAdaptiveLimiterIsPerOperation(t *testing.T) {
	tests := []struct {
		name    string
		retryer func() aws.Retryer
		slow    bool
	}{
		{"SDK adaptive mode", func() aws.Retryer {
			return retry.NewAdaptiveMode(func(o *retry.AdaptiveModeOptions) {
				o.StandardOptions = append(o.StandardOptions, func(so *retry.StandardOptions) { so.MaxAttempts = 20 })
			})
		}, true},
		{"awsenv", Retry{Adaptive: true, Base: 10 * time.Millisecond, Max: 100 * time.Millisecond}.New, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			fake := testenv.StartFakeAWS(t)
			fake.Limits(testenv.ECSLimits{DescribeTaskDef: testenv.Limit{Burst: 2, PerSecond: 100}})
			client := ecs.NewFromConfig(aws.Config{Region: testenv.Region, BaseEndpoint: aws.String(fake.URL), Retryer: tt.retryer,
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
			describeServices := func() time.Duration {
				start := time.Now()
				g, gctx := errgroup.WithContext(ctx)
				g.SetLimit(20)
				for range 100 {
					g.Go(func() error {
						_, err := client.DescribeServices(gctx, &ecs.DescribeServicesInput{Cluster: aws.String("c"), Services: services})
						return err
					})
				}
				if err := g.Wait(); err != nil {
					t.Fatal(err)
				}
				return time.Since(start)
			}
			before := describeServices()
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
			throttled := fake.Refused()["DescribeTaskDefinition"]
			if throttled == 0 {
				t.Fatal("DescribeTaskDefinition was never throttled: the test shows nothing")
			}
			time.Sleep(2 * time.Second) // the next sweep
			after := describeServices()
			t.Logf("100 DescribeServices: %s before, %s after %d throttled DescribeTaskDefinition", before, after, throttled)
			// Unlimited, 100 calls at 20 at once take ~70 ms here (~250 ms
			// under -race); the SDK's one limiter held them to ~1-2 s.
			if slow := after > 4*before; slow != tt.slow {
				t.Errorf("after the throttles, 100 unthrottled DescribeServices took %s against %s before; want slow (> 4×) %v", after, before, tt.slow)
			}
		})
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
