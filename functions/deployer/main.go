// Command deployer is the Lambda function that rolls ECS services to images
// pushed to ECR. All logic lives in internal/deploy.
package main

import (
	"context"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/deploy"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/fnenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/lock"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/logging"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
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
	clients := awsenv.NewECSClients(awsCfg)
	db := dynamodb.NewFromConfig(awsCfg)
	d := &deploy.Deployer{
		Rules:       cfg,
		ECS:         func(region, role string) deploy.ECS { return clients.For(region, role) },
		Locks:       lock.New(db, env.Table),
		History:     history.NewStore(db, env.Table),
		Log:         log,
		Concurrency: env.Concurrency,
		Now:         time.Now,
	}
	log.Debug("ready", "rules", len(cfg.Rules), "config", env.ConfigPath)
	lambda.Start(d.Handle)
}
