// Command deployer is the Lambda function that rolls ECS services to images
// pushed to ECR. All logic lives in internal/deploy.
package main

import (
	"context"
	"encoding/json"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/fnenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/reconcile"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/wiring"
)

func main() {
	rt, err := fnenv.Init(context.Background())
	if err != nil {
		rt.Log.Error("init failed", "error", err.Error())
		os.Exit(1)
	}
	// With AUTODEPLOY_WORK_QUEUE_URL the targets go to the work queues (the
	// worker deploys them); without it the deployer rolls them itself.
	d, sweeper := wiring.New(rt).Intake()
	// EventBridge's schedule asks for a sweep; everything else is a push.
	lambda.Start(func(ctx context.Context, raw json.RawMessage) (any, error) {
		if o, ok := reconcile.Scheduled(raw); ok {
			return sweeper.Sweep(ctx, o)
		}
		return d.Handle(ctx, raw)
	})
}
