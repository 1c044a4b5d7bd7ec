// Command deployer is the Lambda function that rolls ECS services to images
// pushed to ECR. All logic lives in internal/deploy.
package main

import (
	"context"
	"encoding/json"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/bluegreen"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/deploy"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/fnenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/lock"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/notify"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/reconcile"
)

func main() {
	rt, err := fnenv.Init(context.Background())
	if err != nil {
		rt.Log.Error("init failed", "error", err.Error())
		os.Exit(1)
	}
	clients := awsenv.NewClients(rt.AWS)
	db := awsenv.StateTable(rt.AWS)
	d := &deploy.Deployer{
		Rules:       rt.Rules,
		Central:     rt.Central,
		ECS:         func(region, role string) deploy.ECS { return clients.ECS(region, role) },
		Services:    history.NewServices(lock.New(db, rt.Env.Table), history.NewStore(db, rt.Env.Table)),
		Log:         rt.Log,
		Concurrency: rt.Env.Concurrency,
		Now:         time.Now,
		SSM:         func(region, role string) deploy.SSM { return clients.SSM(region, role) },
		CodeDeploy:  func(region, role string) bluegreen.CodeDeploy { return clients.CodeDeploy(region, role) },
	}
	if rt.Env.NotifyTopic != "" {
		d.Notifier = notify.NewTopic(sns.NewFromConfig(rt.AWS), rt.Env.NotifyTopic)
	}
	sweeper := &reconcile.Sweeper{
		Rules: rt.Rules, ECR: func(region, role string) reconcile.ECR { return clients.ECR(region, role) }, ECS: d.ECS,
		States: history.NewStore(db, rt.Env.Table), Deployer: d, Log: rt.Log, Now: time.Now,
		SSM: func(region, role string) reconcile.ParameterStore { return clients.SSM(region, role) },
	}
	// EventBridge's schedule asks for a sweep; everything else is a push.
	lambda.Start(func(ctx context.Context, raw json.RawMessage) (any, error) {
		if o, ok := reconcile.Scheduled(raw); ok {
			return sweeper.Sweep(ctx, o)
		}
		return d.Handle(ctx, raw)
	})
}
