package demo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/bluegreen"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/deploy"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/emulator"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/lock"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/redrive"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// SandboxStack is the stack name the sandbox gives its stand-in deployer,
// the CLI's default, so that status, plan and reconcile compare the
// sandbox's rules file with "the deployed one" as they would in AWS.
const SandboxStack = "EcrAutodeploy"

// SandboxDeployer is the stand-in deployer's function name: moto keeps
// its configuration (environment included) and runs no code.
const SandboxDeployer = "autodeploy-sandbox-deployer"

// sandboxPushes are the images the sandbox pushes: web's release v1.4.0 is
// deployed to prod (so history, hold and rollback have something to work
// on), the rest wait to be planned or reconciled.
var sandboxPushes = []struct{ repository, tag string }{
	{"web", "v1.4.0"}, {"web", "v1.5.0"}, {"web", "main-4f2a9c1"}, {"web", "canary-7c1d2e3"},
	{"checkout", "main-1a2b3c4"}, {"payments", "main-1a2b3c4"},
	{"billing", "v1.1.0"}, {"reports", "main-5d6e7f8"}, {"search", "main-9a8b7c6"},
}

// SeedSandbox prepares a running moto (cfg aims at it) for the operator's
// CLI: the state table, the demo's repositories, images and services
// (ECS-native ones as plain services: without the demo's ECS front moto
// has no service deployments), the bake's alarm, one real deploy of web
// v1.4.0 to prod/web by the deployer's own code, and a stand-in stack
// whose deployer records rulesFile's SHA-256. It says what it made on out.
func SeedSandbox(ctx context.Context, cfg aws.Config, table string, rulesFile []byte, out io.Writer) error {
	p := printer{w: out}
	rcfg, err := rules.Parse("autodeploy.yaml (embedded)", rulesFile)
	if err != nil {
		return err
	}
	if err := (&emulator.Moto{Endpoint: aws.ToString(cfg.BaseEndpoint)}).CreateTable(ctx, table); err != nil {
		return err
	}
	ecsc, ecrc := ecs.NewFromConfig(cfg), ecr.NewFromConfig(cfg)
	all := append(services(), gateServices()...)
	for _, n := range nativeServices() {
		all = append(all, n.Service)
	}
	repos := map[string]bool{}
	for _, push := range sandboxPushes {
		if repos[push.repository] {
			continue
		}
		repos[push.repository] = true
		if _, err := ecrc.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String(push.repository)}); err != nil {
			return fmt.Errorf("create repository %s: %w", push.repository, err)
		}
	}
	for _, s := range all {
		if _, err := emulator.SeedService(ctx, ecsc, s); err != nil {
			return err
		}
		if s.BlueGreen {
			if err := emulator.SeedDeploymentGroup(ctx, codedeploy.NewFromConfig(cfg), "web", s.Name, s.Cluster, s.Name); err != nil {
				return err
			}
		}
		p.line("  service %s/%s", s.Cluster, s.Name)
	}
	if err := (&demo{motoCfg: cfg}).seedBakeAlarm(ctx); err != nil {
		return err
	}
	digests := map[string]string{}
	for _, push := range sandboxPushes {
		digest, err := emulator.PushImage(ctx, ecrc, push.repository, push.tag)
		if err != nil {
			return err
		}
		digests[push.repository+":"+push.tag] = digest
		p.line("  image %s:%s (%s)", push.repository, push.tag, digest[:19])
	}
	if err := sandboxDeploy(ctx, cfg, rcfg, table, "web", "v1.4.0", digests["web:v1.4.0"]); err != nil {
		return err
	}
	p.line("  deployed web:v1.4.0 to prod/web (rule web-prod), as the deployer does: history has it")
	if err := sandboxStack(ctx, cfg, rulesFile); err != nil {
		return err
	}
	p.line("  stack %s: a stand-in deployer %s that records the rules file's SHA-256", SandboxStack, SandboxDeployer)
	return nil
}

// seedBakeAlarm is seedGates' alarm, without its services.
func (d *demo) seedBakeAlarm(ctx context.Context) error {
	if _, err := d.cloudWatch().PutMetricAlarm(ctx, &cloudwatch.PutMetricAlarmInput{
		AlarmName: aws.String(bakeAlarm), Namespace: aws.String("AWS/ApplicationELB"), MetricName: aws.String("HTTPCode_Target_5XX_Count"),
		Statistic: cwtypes.StatisticSum, Period: aws.Int32(60), EvaluationPeriods: aws.Int32(1), Threshold: aws.Float64(10),
		ComparisonOperator: cwtypes.ComparisonOperatorGreaterThanThreshold,
	}); err != nil {
		return fmt.Errorf("create alarm %s: %w", bakeAlarm, err)
	}
	return nil
}

// sandboxDeploy runs the deployer's code in-process on a push of
// repository:tag, as its Lambda would: a real revision, lock and history.
func sandboxDeploy(ctx context.Context, cfg aws.Config, rcfg *rules.Config, table, repository, tag, digest string) error {
	clients := awsenv.NewClients(cfg)
	db := dynamodb.NewFromConfig(cfg)
	d := &deploy.Deployer{Rules: rcfg, Central: rules.Place{Account: emulator.Account, Region: emulator.Region},
		ECS:      func(region, role string) deploy.ECS { return clients.ECS(region, role) },
		Services: history.NewServices(lock.New(db, table), history.NewStore(db, table)),
		Log:      slog.New(slog.NewTextHandler(io.Discard, nil)), Concurrency: 2, Now: time.Now,
		SSM:        func(region, role string) deploy.SSM { return clients.SSM(region, role) },
		CodeDeploy: func(region, role string) bluegreen.CodeDeploy { return clients.CodeDeploy(region, role) }}
	event, err := json.Marshal(map[string]any{
		"version": "0", "id": "sandbox-" + tag, "detail-type": "ECR Image Action", "source": "aws.ecr",
		"account": emulator.Account, "region": emulator.Region, "time": time.Now().UTC().Format(time.RFC3339), "resources": []string{},
		"detail": map[string]any{"result": "SUCCESS", "repository-name": repository, "image-digest": digest, "action-type": "PUSH",
			"image-tag": tag, "manifest-media-type": "application/vnd.oci.image.manifest.v1+json",
			"artifact-media-type": "application/vnd.oci.image.config.v1+json"},
	})
	if err != nil {
		return err
	}
	sum, err := d.Handle(ctx, event)
	if err != nil {
		return fmt.Errorf("deploy %s:%s: %w", repository, tag, err)
	}
	for _, r := range sum.Results {
		if r.Outcome != deploy.Deployed {
			return fmt.Errorf("deploy %s:%s to %s/%s: %s (%s)", repository, tag, r.Cluster, r.Service, r.Outcome, r.Reason)
		}
	}
	return nil
}

// SandboxStackTemplate is a stack with what the CLI reads of the real
// one: the deployer function, carrying sha (the rules file's SHA-256) in
// the variable the real stack sets, named by the output it reads.
func SandboxStackTemplate(function, sha string) (string, error) {
	tmpl := map[string]any{
		"Resources": map[string]any{
			"Role": map[string]any{"Type": "AWS::IAM::Role", "Properties": map[string]any{"RoleName": function + "-role",
				"AssumeRolePolicyDocument": map[string]any{"Version": "2012-10-17", "Statement": []any{map[string]any{
					"Effect": "Allow", "Principal": map[string]any{"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}}}}},
			"Deployer": map[string]any{"Type": "AWS::Lambda::Function", "Properties": map[string]any{"FunctionName": function,
				"Runtime": "provided.al2023", "Handler": "bootstrap", "Role": map[string]any{"Fn::GetAtt": []string{"Role", "Arn"}},
				"Code":        map[string]any{"ZipFile": "a stand-in: the sandbox runs no deployer"},
				"Environment": map[string]any{"Variables": map[string]string{"AUTODEPLOY_RULES_SHA256": sha}}}},
		},
		"Outputs": map[string]any{redrive.OutputDeployerFunction: map[string]any{"Value": map[string]any{"Ref": "Deployer"}}},
	}
	body, err := json.Marshal(tmpl)
	return string(body), err
}

func sandboxStack(ctx context.Context, cfg aws.Config, rulesFile []byte) error {
	sum := sha256.Sum256(rulesFile)
	body, err := SandboxStackTemplate(SandboxDeployer, hex.EncodeToString(sum[:]))
	if err != nil {
		return err
	}
	if _, err := cloudformation.NewFromConfig(cfg).CreateStack(ctx, &cloudformation.CreateStackInput{
		StackName: aws.String(SandboxStack), TemplateBody: aws.String(body)}); err != nil {
		return fmt.Errorf("create stack %s: %w", SandboxStack, err)
	}
	return nil
}
