// Command deployer is the Lambda function that rolls ECS services to images
// pushed to ECR. All logic lives in internal/deploy.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/fnenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/intake"
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
	// ECR's pushes, the schedule's sweeps and the product's own commands.
	lambda.Start(intake.Handler{Deployer: d, Sweeper: sweeper, Log: rt.Log}.Handle)
}
