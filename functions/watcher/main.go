// Command watcher is the Lambda function that follows ECS deployments the
// deployer started and reports how each ended. All logic lives in
// internal/watch.
package main

import (
	"context"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/fnenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/logging"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/notify"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/promote"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/watch"
)

func main() {
	ctx := context.Background()
	env, err := fnenv.Load(os.Getenv, fnenv.Executable())
	log := logging.New(os.Stdout, env.LogLevel)
	if err != nil {
		log.Error("init failed", "error", err.Error())
		os.Exit(1)
	}
	cfg, err := rules.Load(env.ConfigPath)
	if err != nil {
		log.Error("init failed: rules file", "error", err.Error())
		os.Exit(1)
	}
	awsCfg, err := awsenv.Load(ctx)
	if err != nil {
		log.Error("init failed", "error", err.Error())
		os.Exit(1)
	}
	w := &watch.Watcher{
		Rules: cfg,
		Store: history.NewStore(dynamodb.NewFromConfig(awsCfg), env.Table),
		Promoter: &promote.Promoter{
			ECR: func(region string) promote.ECR {
				return ecr.NewFromConfig(awsCfg, func(o *ecr.Options) {
					if region != "" {
						o.Region = region
					}
				})
			},
			Lambda:           awslambda.NewFromConfig(awsCfg),
			DeployerFunction: env.DeployerFunction,
			Now:              time.Now,
		},
		Log: log,
	}
	if env.NotifyTopic != "" {
		w.Notifier = notify.NewTopic(sns.NewFromConfig(awsCfg), env.NotifyTopic)
	}
	lambda.Start(w.Handle)
}
