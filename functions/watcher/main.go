// Command watcher is the Lambda function that follows ECS deployments the
// deployer started and reports how each ended. All logic lives in
// internal/watch.
package main

import (
	"context"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/bluegreen"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/fnenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/notify"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/promote"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/watch"
)

func main() {
	rt, err := fnenv.Init(context.Background())
	if err != nil {
		rt.Log.Error("init failed", "error", err.Error())
		os.Exit(1)
	}
	clients := awsenv.NewClients(rt.AWS)
	w := &watch.Watcher{
		Rules:   rt.Rules,
		Central: rt.Central,
		Store:   history.NewStore(awsenv.StateTable(rt.AWS), rt.Env.Table),
		Promoter: &promote.Promoter{
			ECR:              func(region, role string) promote.ECR { return clients.ECR(region, role) },
			Central:          rt.Central,
			Lambda:           awslambda.NewFromConfig(rt.AWS),
			DeployerFunction: rt.Env.DeployerFunction,
			Now:              time.Now,
		},
		CodeDeploy: func(region, role string) bluegreen.CodeDeploy { return clients.CodeDeploy(region, role) },
		Log:        rt.Log,
	}
	if rt.Env.NotifyTopic != "" {
		w.Notifier = notify.NewTopic(sns.NewFromConfig(rt.AWS), rt.Env.NotifyTopic)
	}
	lambda.Start(w.Handle)
}
