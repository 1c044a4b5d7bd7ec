// Command watcher is the Lambda function that follows the deployments the
// deployer started and reports how each ended. All logic lives in
// internal/watch; internal/wiring builds it.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/fnenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/timer"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/wiring"
)

func main() {
	rt, err := fnenv.Init(context.Background())
	if err != nil {
		rt.Log.Error("init failed", "error", err.Error())
		os.Exit(1)
	}
	timers, err := timer.LoadConfig(os.Getenv)
	if err != nil {
		rt.Log.Error("init failed", "error", err.Error())
		os.Exit(1)
	}
	lambda.Start(wiring.New(rt).Watcher(timers).Handle)
}
