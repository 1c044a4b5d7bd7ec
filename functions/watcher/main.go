// Command watcher is the Lambda function that follows the deployments the
// deployer started and reports how each ended. All logic lives in
// internal/watch; internal/wiring builds it.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/fnenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/gate"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/timer"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/watch"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/wiring"
	watcherwiring "github.com/ecr-autodeploy/ecr-autodeploy/internal/wiring/watcher"
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
	// Interfaces left nil (not typed nils) without timers.
	var rechecker watch.Rechecker
	var gateTimers gate.Timers
	if r := timer.NewRechecker(rt.AWS, timers); r != nil {
		rechecker, gateTimers = r, timer.NewGateTimers(r.Timers)
	}
	lambda.Start(watcherwiring.New(wiring.New(rt), rechecker, gateTimers).Handle)
}
