package timer

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
)

// The recheck's target is the configured watcher, else the function this
// invocation runs as; a record without a deployment, or no function to
// invoke, sets nothing.
func TestRecheckTarget(t *testing.T) {
	const alias = watcher + ":live"
	rec := history.Record{Cluster: "prod", Service: "web", DeploymentID: "ecs-svc/1"}
	inLambda := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{InvokedFunctionArn: alias})
	for _, tt := range []struct {
		name       string
		ctx        context.Context
		configured string
		rec        history.Record
		want       string // the target, or the error
		wantErr    bool
	}{
		{"the invoked function", inLambda, "", rec, alias, false},
		{"the configured watcher wins", inLambda, watcher, rec, watcher, false},
		{"configured, outside Lambda", context.Background(), watcher, rec, watcher, false},
		{"outside Lambda, none configured", context.Background(), "", rec, "no watcher ARN", true},
		{"no deployment", inLambda, "", history.Record{Cluster: "prod", Service: "web"}, "recheck prod/web: the record names no deployment", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			r := &Rechecker{Timers: &Timers{Scheduler: f, Config: Config{Group: DefaultGroup, RoleARN: role}, Now: func() time.Time { return now }},
				Watcher: tt.configured}
			err := r.Recheck(tt.ctx, tt.rec, now.Add(5*time.Minute))
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("Recheck = %v, want %q", err, tt.want)
				}
				if f.calls != 0 {
					t.Errorf("%d CreateSchedule calls, want none", f.calls)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := aws.ToString(f.only(t).Target.Arn); got != tt.want {
				t.Errorf("target %s, want %s", got, tt.want)
			}
		})
	}
	if err := (&Rechecker{}).Recheck(inLambda, rec, now); err == nil || !strings.Contains(err.Error(), "no timers") {
		t.Errorf("Recheck without timers = %v", err)
	}
}
