package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/emulator"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

// Against moto (SQS, CloudFormation, ECS, DynamoDB) and the deployer under
// aws-lambda-rie, through the CLI's own AWS config: AWS_ENDPOINT_URL_LAMBDA
// aims Lambda at the emulator as it would at any endpoint.
func TestRedriveEndToEnd(t *testing.T) {
	m := testenv.StartMoto(t)
	proxy := testenv.StartProxy(t, m.Endpoint)
	ctx := context.Background()
	cfg := m.AWSConfig()
	table := m.CreateTable(t, "autodeploy-state")
	if _, err := emulator.SeedService(ctx, ecs.NewFromConfig(cfg), emulator.Service{Cluster: "staging", Name: "web", Family: "web",
		Containers: []emulator.Container{{Name: "app", Image: emulator.Registry + "/web:main-0000000"}}}); err != nil {
		t.Fatal(err)
	}
	rules := writeTempFile(t, "version: 1\nrules:\n  - name: web-staging\n    repository: web\n    tags: [\"main-*\"]\n    targets: [{cluster: staging, service: web}]\n")
	deployer := testenv.StartFunction(t, "deployer", rules, append(m.Env(), "AUTODEPLOY_TABLE="+table))

	// The stack's queues and outputs, as `make deploy` leaves them.
	cfn := cloudformation.NewFromConfig(cfg)
	if _, err := cfn.CreateStack(ctx, &cloudformation.CreateStackInput{StackName: aws.String("EcrAutodeploy"), TemplateBody: aws.String(`{
	  "Resources": {"PushDLQ": {"Type": "AWS::SQS::Queue"}, "DeployerFailed": {"Type": "AWS::SQS::Queue"}},
	  "Outputs": {
	    "PushEventsQueueUrl": {"Value": {"Ref": "PushDLQ"}},
	    "DeployerFailedEventsQueueUrl": {"Value": {"Ref": "DeployerFailed"}},
	    "DeployerFunctionName": {"Value": "function"}}}`)}); err != nil {
		t.Fatal(err)
	}
	outputs, err := stackOutputs(ctx, cfn, "EcrAutodeploy")
	if err != nil {
		t.Fatal(err)
	}
	pushQ, deployerQ := outputs["PushEventsQueueUrl"], outputs["DeployerFailedEventsQueueUrl"]
	q := sqs.NewFromConfig(cfg)
	push := testenv.Event(t, "ecr-push-main.json")
	record, _ := json.Marshal(map[string]any{
		"version":         "1.0",
		"requestContext":  map[string]any{"condition": "RetriesExhausted", "approximateInvokeCount": 3},
		"requestPayload":  json.RawMessage(push),
		"responsePayload": map[string]string{"errorMessage": "1 target(s) failed and will be retried", "errorType": "errorString"},
	})
	for _, msg := range []struct{ queue, body string }{{pushQ, string(push)}, {pushQ, "not an event"}, {deployerQ, string(record)}} {
		if _, err := q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(msg.queue), MessageBody: aws.String(msg.body)}); err != nil {
			t.Fatal(err)
		}
	}

	for k, v := range map[string]string{"AWS_ENDPOINT_URL": proxy.URL, "AWS_ENDPOINT_URL_LAMBDA": deployer.Endpoint,
		"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": testenv.Region, "AWS_PROFILE": "",
		"AWS_CONFIG_FILE": os.DevNull, "AWS_SHARED_CREDENTIALS_FILE": os.DevNull, "AWS_EC2_METADATA_DISABLED": "true"} {
		t.Setenv(k, v)
	}
	redriveCLI := func(args ...string) run {
		var out, errOut bytes.Buffer
		code := Run(ctx, append([]string{"redrive"}, args...), Env{Stdout: &out, Stderr: &errOut, Getenv: os.Getenv, AWS: awsenv.Load, Now: time.Now})
		return run{code, out.String(), errOut.String()}
	}
	running := func() string {
		out, err := ecs.NewFromConfig(cfg).DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("staging"), Services: []string{"web"}})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.Services[0].TaskDefinition)
	}

	// A dry run lists and sends nothing.
	r := redriveCLI("--dry-run")
	if r.code != 0 || strings.Count(r.stdout, "  send ") != 2 || !strings.Contains(r.stdout, "push queue ("+pushQ+"): 1 would be sent, 1 left (dry run") ||
		!strings.Contains(r.stdout, "(dry run: nothing is sent or deleted)") || strings.Contains(r.stdout, "would send to \n") ||
		!strings.Contains(r.stdout, "parked: Lambda gave up (RetriesExhausted after 3 attempts): 1 target(s) failed and will be retried") {
		t.Fatalf("dry run: %+v", r)
	}
	if !strings.HasSuffix(running(), "task-definition/web:1") {
		t.Fatalf("the dry run deployed: %s", running())
	}

	// The push deploys; the unreadable message stays.
	r = redriveCLI("--queue", "push")
	t.Logf("autodeploy redrive --queue push:\n%s", r.stdout)
	if r.code != 1 || !strings.Contains(r.stdout, "push queue ("+pushQ+"): 1 moved, 1 left") ||
		!strings.Contains(r.stdout, "deployer: 1 deployed, 0 skipped, 0 failed") || !strings.Contains(r.stdout, "left: not JSON") ||
		!strings.Contains(r.stderr, "1 message(s) left in the queues") {
		t.Fatalf("redrive push: %+v", r)
	}
	deployed := running()
	if !strings.HasSuffix(deployed, "task-definition/web:2") {
		t.Fatalf("service runs %s after the redrive, want web:2", deployed)
	}
	// The failure record's event is delivered, but the delete fails: it stays.
	proxy.Fail("DeleteMessage", 1)
	r = redriveCLI("--queue", "deployer")
	if r.code != 1 || !strings.Contains(r.stdout, "delivered but not deleted") {
		t.Fatalf("redrive with a failed delete: %+v", r)
	}
	// Run again (what an operator does): the same event arrives a second
	// time and the deployer skips it as already running.
	r = redriveCLI("--queue", "deployer")
	if r.code != 0 || !strings.Contains(r.stdout, "deployer queue ("+deployerQ+"): 1 moved, 0 left") ||
		!strings.Contains(r.stdout, "deployer: 0 deployed, 1 skipped, 0 failed") {
		t.Fatalf("second redrive: %+v", r)
	}
	if running() != deployed {
		t.Errorf("service moved to %s on a repeated delivery", running())
	}
	r = redriveCLI()
	if r.code != 1 || !strings.Contains(r.stdout, "push queue ("+pushQ+"): 0 moved, 1 left") || !strings.Contains(r.stdout, "deployer queue ("+deployerQ+"): 0 moved, 0 left") {
		t.Errorf("final redrive: %+v", r)
	}
}

func TestRedriveFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"--queue", "watcher"}, {"--queue", "push", "--queue-url", "https://q"}} {
		if r := cli(t, nil, "", append([]string{"redrive"}, args...)...); r.code != 2 {
			t.Errorf("redrive %v: %+v, want a usage error", args, r)
		}
	}
}

func writeTempFile(t *testing.T, content string) string {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(content); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return f.Name()
}
