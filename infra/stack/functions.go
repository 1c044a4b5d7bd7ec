package stack

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambdadestinations"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// bundle assembles a function's asset: its bootstrap with the rules file
// beside it, where the function looks for it by default.
// bundled is a function's asset directory and the SHA-256 of the rules
// file in it: the bytes the function runs, hashed as they were written, so
// the value cannot drift from the asset.
type bundled struct {
	dir, rulesSHA256 string
}

func bundle(fn string, p Props) (bundled, error) {
	bootstrap := filepath.Join(p.DistDir, fn, "bootstrap")
	bin, err := os.ReadFile(bootstrap)
	if err != nil {
		return bundled{}, fmt.Errorf("function %s is not built (%v): run `make build` first", fn, err)
	}
	rulesData, err := os.ReadFile(p.RulesFile)
	if err != nil {
		return bundled{}, fmt.Errorf("read rules file: %w", err)
	}
	dir := filepath.Join(p.BundleDir, fn)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return bundled{}, fmt.Errorf("bundle %s: %w", fn, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bootstrap"), bin, 0o755); err != nil {
		return bundled{}, fmt.Errorf("bundle %s: %w", fn, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "autodeploy.yaml"), rulesData, 0o644); err != nil {
		return bundled{}, fmt.Errorf("bundle %s: %w", fn, err)
	}
	sum := sha256.Sum256(rulesData)
	return bundled{dir: dir, rulesSHA256: hex.EncodeToString(sum[:])}, nil
}

type functionSpec struct {
	bundle      bundled
	description string
	timeout     awscdk.Duration
	memory      float64
	table       awsdynamodb.Table
	retention   awslogs.RetentionDays
	alarms      awssns.ITopic
	env         map[string]*string
	// roleName, when set, names the role: stacks in other accounts trust it
	// by name.
	roleName string
	// polled: the function is only invoked by an event source mapping
	// (synchronously), so it has no async retries and no failure queue:
	// what it fails stays in its source's queue and redrive policy.
	polled bool
}

// RulesSHA256Env names the variable that carries, on every function, the
// SHA-256 of the rules file bundled beside its bootstrap: the CLI reads it
// to say when an operator's local rules file is not the one deployed.
const RulesSHA256Env = "AUTODEPLOY_RULES_SHA256"

func environment(spec functionSpec) *map[string]*string {
	// The central account spares each cold start an STS call.
	env := map[string]*string{"AUTODEPLOY_TABLE": spec.table.TableName(), "AUTODEPLOY_ACCOUNT": awscdk.Aws_ACCOUNT_ID()}
	for k, v := range spec.env {
		env[k] = v
	}
	env[RulesSHA256Env] = jsii.String(spec.bundle.rulesSHA256)
	return &env
}

type function struct {
	fn       awslambda.Function
	role     awsiam.Role
	logGroup awslogs.LogGroup
	// failures holds the events Lambda gave up on (its on-failure
	// destination); nil for a polled function.
	failures awssqs.Queue
}

// newFunction creates a function the way every function here is made:
// provided.al2023 on arm64, JSON logs into its own log group with retention,
// its own role (no managed policies), async retries with an on-failure
// queue (unless polled), and alarms on errors and on failed events.
func newFunction(s awscdk.Stack, name string, spec functionSpec) function {
	logGroup := awslogs.NewLogGroup(s, jsii.String(name+"Logs"), &awslogs.LogGroupProps{
		Retention:     spec.retention,
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
	role := awsiam.NewRole(s, jsii.String(name+"Role"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil),
		Description: jsii.String("ecr-autodeploy " + strings.ToLower(name)),
		RoleName:    optional(spec.roleName),
	})
	// Our own log permissions on our own log group instead of the managed
	// AWSLambdaBasicExecutionRole, which allows every log group.
	logGroup.GrantWrite(role)
	props := &awslambda.FunctionProps{
		Description:           jsii.String(spec.description),
		Runtime:               awslambda.Runtime_PROVIDED_AL2023(),
		Architecture:          awslambda.Architecture_ARM_64(),
		Handler:               jsii.String("bootstrap"),
		Code:                  awslambda.Code_FromAsset(jsii.String(spec.bundle.dir), nil),
		MemorySize:            jsii.Number(spec.memory),
		Timeout:               spec.timeout,
		Role:                  role,
		LogGroup:              logGroup,
		LoggingFormat:         awslambda.LoggingFormat_JSON,
		ApplicationLogLevelV2: awslambda.ApplicationLogLevel_INFO,
		SystemLogLevelV2:      awslambda.SystemLogLevel_WARN,
		Environment:           environment(spec),
	}
	var failures awssqs.Queue
	if !spec.polled {
		failures = secureQueue(s, name+"FailedEvents", "events the "+strings.ToLower(name)+" failed after Lambda's retries")
		props.RetryAttempts = jsii.Number(2)
		props.MaxEventAge = awscdk.Duration_Hours(jsii.Number(6))
		props.OnFailure = awslambdadestinations.NewSqsDestination(failures)
	}
	fn := awslambda.NewFunction(s, jsii.String(name), props)
	spec.table.Grant(role, jsii.String("dynamodb:GetItem"), jsii.String("dynamodb:PutItem"), jsii.String("dynamodb:DeleteItem"),
		jsii.String("dynamodb:UpdateItem"), jsii.String("dynamodb:Query"), jsii.String("dynamodb:ConditionCheckItem"))

	alarmOn(s, name+"ErrorsAlarm", "The "+strings.ToLower(name)+" returned errors: see its log group for level=ERROR lines",
		fn.MetricErrors(&awscloudwatch.MetricOptions{Period: awscdk.Duration_Minutes(jsii.Number(5)), Statistic: jsii.String("Sum")}),
		spec.alarms)
	if failures != nil {
		queueAlarm(s, name+"FailedEvents", failures, spec.alarms)
	}
	return function{fn: fn, role: role, logGroup: logGroup, failures: failures}
}

// secureQueue is an encrypted, SSL-only queue that keeps messages 14 days.
func secureQueue(s awscdk.Stack, id, purpose string) awssqs.Queue {
	q := awssqs.NewQueue(s, jsii.String(id), &awssqs.QueueProps{
		Encryption:      awssqs.QueueEncryption_SQS_MANAGED,
		EnforceSSL:      jsii.Bool(true),
		RetentionPeriod: awscdk.Duration_Days(jsii.Number(14)),
	})
	cdknag.NagSuppressions_AddResourceSuppressions(q, &[]*cdknag.NagPackSuppression{{
		Id:     jsii.String("AwsSolutions-SQS3"),
		Reason: jsii.String("This queue is itself a dead-letter queue (" + purpose + "); an alarm fires on its first message."),
	}}, jsii.Bool(false))
	return q
}

// optional is nil for "" (CloudFormation picks), else the string.
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return jsii.String(s)
}
