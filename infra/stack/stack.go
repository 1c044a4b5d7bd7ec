// Package stack is the CDK construct that provisions ecr-autodeploy from a
// rules file: the EventBridge rule on pushes to the configured repositories,
// the functions with their queues, alarms and saved queries, the state
// table and least-privilege IAM.
package stack

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambdadestinations"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssnssubscriptions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/aws-cdk-go/awscdk/v2/interfaces/interfacesawslogs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// Props configure the stack.
type Props struct {
	awscdk.StackProps
	// Rules is the loaded rules file and RulesFile its path, bundled beside
	// each function's bootstrap.
	Rules     *rules.Config
	RulesFile string
	// DistDir holds <function>/bootstrap, as `make build` writes them.
	DistDir string
	// BundleDir is where each function's asset (bootstrap + rules) is assembled.
	BundleDir string
	// AlarmEmail, when set, subscribes an address to the alarm topic.
	AlarmEmail string
	// NotifyEmail, when set, subscribes an address to the notices the
	// watcher sends per finished deployment.
	NotifyEmail string
	// LogRetention of the functions' log groups (default one month).
	LogRetention awslogs.RetentionDays
}

// Functions are the Lambda functions the repository has.
func Functions() []string { return []string{"deployer", "watcher"} }

// New builds the stack. It fails when a function is not built or the rules
// name nothing to deploy.
func New(scope constructs.Construct, id string, p Props) (awscdk.Stack, error) {
	if p.Rules == nil || len(p.Rules.Rules) == 0 {
		return nil, fmt.Errorf("stack %s: the rules file has no rules", id)
	}
	bundles := map[string]string{}
	for _, fn := range Functions() {
		dir, err := bundle(fn, p)
		if err != nil {
			return nil, err
		}
		bundles[fn] = dir
	}
	if p.LogRetention == "" {
		p.LogRetention = awslogs.RetentionDays_ONE_MONTH
	}

	s := awscdk.NewStack(scope, jsii.String(id), &p.StackProps)
	table := awsdynamodb.NewTable(s, jsii.String("State"), &awsdynamodb.TableProps{
		PartitionKey:        &awsdynamodb.Attribute{Name: jsii.String("pk"), Type: awsdynamodb.AttributeType_STRING},
		SortKey:             &awsdynamodb.Attribute{Name: jsii.String("sk"), Type: awsdynamodb.AttributeType_STRING},
		TimeToLiveAttribute: jsii.String("expires_at"),
		BillingMode:         awsdynamodb.BillingMode_PAY_PER_REQUEST,
		Encryption:          awsdynamodb.TableEncryption_AWS_MANAGED,
		PointInTimeRecoverySpecification: &awsdynamodb.PointInTimeRecoverySpecification{
			PointInTimeRecoveryEnabled: jsii.Bool(true),
		},
		// History is the record of what ran where: keep it if the stack goes.
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	})

	key := topicKey(s)
	alarms := topic(s, "Alarms", "ecr-autodeploy alarms", key, p.AlarmEmail)
	notices := topic(s, "Notifications", "ecr-autodeploy deployments", key, p.NotifyEmail)
	deployer := newFunction(s, "Deployer", functionSpec{
		bundle:      bundles["deployer"],
		description: "Rolls ECS services to images pushed to ECR (ecr-autodeploy)",
		// Lock waits (90 s at most) plus a few AWS calls per target.
		timeout:   awscdk.Duration_Minutes(jsii.Number(3)),
		memory:    256,
		table:     table,
		retention: p.LogRetention,
		alarms:    alarms,
	})
	grantDeploy(s, deployer.role, p.Rules)
	deployer.fn.AddEnvironment(jsii.String("AUTODEPLOY_NOTIFY_TOPIC_ARN"), notices.TopicArn(), nil)
	grantPublish(deployer.role, notices, key)
	failedDeploysAlarm(s, deployer.logGroup, alarms)
	logLineAlarm(s, "HistoryNotWritten", deployer.logGroup, `{ $.msg = "history not written" }`,
		"A deploy happened but its history write failed: the invocation retries to record it; if this persists, check the table", alarms)

	ruleTo(s, "EcrPushRule", "ECR pushes to the repositories of autodeploy.yaml", &awsevents.EventPattern{
		Source:     jsii.Strings("aws.ecr"),
		DetailType: jsii.Strings("ECR Image Action"),
		Account:    &[]*string{s.Account()},
		Region:     &[]*string{s.Region()},
		Detail: &map[string]any{
			"action-type":     []string{"PUSH"},
			"result":          []string{"SUCCESS"},
			"repository-name": p.Rules.Repositories(),
		},
	}, deployer.fn, "PushEventsDLQ", "ECR push events EventBridge could not deliver to the deployer", alarms)

	watcher := newFunction(s, "Watcher", functionSpec{
		bundle:      bundles["watcher"],
		description: "Reports how each ecr-autodeploy deployment ended and promotes on success",
		timeout:     awscdk.Duration_Minutes(jsii.Number(1)),
		memory:      256,
		table:       table,
		retention:   p.LogRetention,
		alarms:      alarms,
		env: map[string]*string{
			"AUTODEPLOY_DEPLOYER_FUNCTION": deployer.fn.FunctionName(),
			"AUTODEPLOY_NOTIFY_TOPIC_ARN":  notices.TopicArn(),
		},
	})
	grantWatch(s, watcher.role, p.Rules, deployer.fn, notices, key)

	ruleTo(s, "EcsDeploymentRule", "ECS deployment state changes of the services of autodeploy.yaml", &awsevents.EventPattern{
		Source:     jsii.Strings("aws.ecs"),
		DetailType: jsii.Strings("ECS Deployment State Change"),
		Account:    &[]*string{s.Account()},
		Resources:  subs(ServiceARNs(p.Rules)),
	}, watcher.fn, "DeploymentEventsDLQ", "ECS deployment events EventBridge could not deliver to the watcher", alarms)
	deploymentAlarm(s, watcher.logGroup, alarms)

	queries(s, deployer.logGroup, watcher.logGroup)
	return s, nil
}

// ruleTo sends matching events to fn, retrying for a day before leaving
// them in a dead-letter queue that alarms on its first message.
func ruleTo(s awscdk.Stack, id, description string, pattern *awsevents.EventPattern, fn awslambda.Function, dlqID, dlqPurpose string, alarms awssns.ITopic) {
	dlq := secureQueue(s, dlqID, dlqPurpose)
	awsevents.NewRule(s, jsii.String(id), &awsevents.RuleProps{
		Description:  jsii.String(description),
		EventPattern: pattern,
		Targets: &[]awsevents.IRuleTarget{awseventstargets.NewLambdaFunction(fn, &awseventstargets.LambdaFunctionProps{
			DeadLetterQueue: dlq,
			MaxEventAge:     awscdk.Duration_Hours(jsii.Number(24)),
			RetryAttempts:   jsii.Number(185),
		})},
	})
	queueAlarm(s, dlqID, dlq, alarms)
}

// subs turns Fn::Sub strings into tokens.
func subs(arns []string) *[]*string {
	out := make([]*string, len(arns))
	for i, a := range arns {
		out[i] = awscdk.Fn_Sub(jsii.String(a), nil)
	}
	return &out
}

// deploymentAlarm fires on any deployment the watcher saw fail or roll back.
func deploymentAlarm(s awscdk.Stack, logGroup awslogs.LogGroup, topic awssns.ITopic) {
	mf := awslogs.NewMetricFilter(s, jsii.String("DeploymentsNotCompletedFilter"), &awslogs.MetricFilterProps{
		LogGroup:        logGroup,
		FilterPattern:   awslogs.FilterPattern_Literal(jsii.String(`{ $.msg = "deployment" && ($.outcome = "failed" || $.outcome = "rolled_back") }`)),
		MetricNamespace: jsii.String("Autodeploy"),
		MetricName:      jsii.String("DeploymentsNotCompleted"),
		MetricValue:     jsii.String("1"),
	})
	alarmOn(s, "DeploymentsNotCompletedAlarm", "An autodeploy deployment failed or was rolled back: query ecr-autodeploy/deployment-outcomes",
		mf.Metric(&awscloudwatch.MetricOptions{Period: awscdk.Duration_Minutes(jsii.Number(5)), Statistic: jsii.String("Sum")}),
		topic)
}

// grantPublish lets a role publish to an encrypted topic.
func grantPublish(role awsiam.Role, topic awssns.Topic, key awskms.Key) {
	topic.GrantPublish(role)
	key.Grant(role, jsii.String("kms:GenerateDataKey*"), jsii.String("kms:Decrypt"))
	cdknag.NagSuppressions_AddResourceSuppressions(role, &[]*cdknag.NagPackSuppression{{
		Id:        jsii.String("AwsSolutions-IAM5"),
		Reason:    jsii.String("kms:GenerateDataKey* names the two GenerateDataKey actions, on the topic key only."),
		AppliesTo: &[]any{"Action::kms:GenerateDataKey*"},
	}}, jsii.Bool(true))
}

// logLineAlarm fires on any log line the pattern matches.
func logLineAlarm(s awscdk.Stack, name string, logGroup awslogs.LogGroup, pattern, description string, topic awssns.ITopic) {
	mf := awslogs.NewMetricFilter(s, jsii.String(name+"Filter"), &awslogs.MetricFilterProps{
		LogGroup:        logGroup,
		FilterPattern:   awslogs.FilterPattern_Literal(jsii.String(pattern)),
		MetricNamespace: jsii.String("Autodeploy"),
		MetricName:      jsii.String(name),
		MetricValue:     jsii.String("1"),
	})
	alarmOn(s, name+"Alarm", description,
		mf.Metric(&awscloudwatch.MetricOptions{Period: awscdk.Duration_Minutes(jsii.Number(5)), Statistic: jsii.String("Sum")}),
		topic)
}

// failedDeploysAlarm fires on a deploy that failed permanently: it is not
// retried, so a person has to act.
func failedDeploysAlarm(s awscdk.Stack, logGroup awslogs.LogGroup, topic awssns.ITopic) {
	logLineAlarm(s, "DeploysFailed", logGroup, `{ $.msg = "deploy" && $.outcome = "failed" }`,
		"A push could not be deployed to a service: query ecr-autodeploy/failed-deploys", topic)
}

// grantWatch gives the watcher its table, ECR tagging on the repositories
// of rules that promote, publishing notices, and invoking the deployer.
func grantWatch(s awscdk.Stack, role awsiam.Role, cfg *rules.Config, deployer awslambda.Function, notices awssns.Topic, key awskms.Key) {
	var repos []string
	for _, r := range cfg.Rules {
		arn := "arn:${AWS::Partition}:ecr:${AWS::Region}:${AWS::AccountId}:repository/" + r.Repository
		if r.Promote != nil && !slices.Contains(repos, arn) {
			repos = append(repos, arn)
		}
	}
	if len(repos) > 0 {
		role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String("PromoteDigests"),
			Actions:   jsii.Strings("ecr:BatchGetImage", "ecr:PutImage"),
			Resources: subs(repos),
		}))
	}
	grantPublish(role, notices, key)
	deployer.GrantInvoke(role)
	cdknag.NagSuppressions_AddResourceSuppressions(role, &[]*cdknag.NagPackSuppression{{
		Id:        jsii.String("AwsSolutions-IAM5"),
		Reason:    jsii.String("Invoking the deployer is granted on its ARN and its versions (ARN:*), as CDK's grantInvoke does."),
		AppliesTo: &[]any{map[string]string{"regex": `/^Resource::<\w+\.Arn>:\*$/`}},
	}}, jsii.Bool(true))
}

// bundle assembles a function's asset: its bootstrap with the rules file
// beside it, where the function looks for it by default.
func bundle(fn string, p Props) (string, error) {
	bootstrap := filepath.Join(p.DistDir, fn, "bootstrap")
	bin, err := os.ReadFile(bootstrap)
	if err != nil {
		return "", fmt.Errorf("function %s is not built (%v): run `make build` first", fn, err)
	}
	rulesData, err := os.ReadFile(p.RulesFile)
	if err != nil {
		return "", fmt.Errorf("read rules file: %w", err)
	}
	dir := filepath.Join(p.BundleDir, fn)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("bundle %s: %w", fn, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bootstrap"), bin, 0o755); err != nil {
		return "", fmt.Errorf("bundle %s: %w", fn, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "autodeploy.yaml"), rulesData, 0o644); err != nil {
		return "", fmt.Errorf("bundle %s: %w", fn, err)
	}
	return dir, nil
}

type functionSpec struct {
	bundle      string
	description string
	timeout     awscdk.Duration
	memory      float64
	table       awsdynamodb.Table
	retention   awslogs.RetentionDays
	alarms      awssns.ITopic
	env         map[string]*string
}

func environment(spec functionSpec) *map[string]*string {
	env := map[string]*string{"AUTODEPLOY_TABLE": spec.table.TableName()}
	for k, v := range spec.env {
		env[k] = v
	}
	return &env
}

type function struct {
	fn       awslambda.Function
	role     awsiam.Role
	logGroup awslogs.LogGroup
}

// newFunction creates a function the way every function here is made:
// provided.al2023 on arm64, JSON logs into its own log group with retention,
// its own role (no managed policies), async retries with an on-failure
// queue, and alarms on errors and on failed events.
func newFunction(s awscdk.Stack, name string, spec functionSpec) function {
	logGroup := awslogs.NewLogGroup(s, jsii.String(name+"Logs"), &awslogs.LogGroupProps{
		Retention:     spec.retention,
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
	role := awsiam.NewRole(s, jsii.String(name+"Role"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil),
		Description: jsii.String("ecr-autodeploy " + strings.ToLower(name)),
	})
	// Our own log permissions on our own log group instead of the managed
	// AWSLambdaBasicExecutionRole, which allows every log group.
	logGroup.GrantWrite(role)
	failures := secureQueue(s, name+"FailedEvents", "events the "+strings.ToLower(name)+" failed after Lambda's retries")
	fn := awslambda.NewFunction(s, jsii.String(name), &awslambda.FunctionProps{
		Description:           jsii.String(spec.description),
		Runtime:               awslambda.Runtime_PROVIDED_AL2023(),
		Architecture:          awslambda.Architecture_ARM_64(),
		Handler:               jsii.String("bootstrap"),
		Code:                  awslambda.Code_FromAsset(jsii.String(spec.bundle), nil),
		MemorySize:            jsii.Number(spec.memory),
		Timeout:               spec.timeout,
		Role:                  role,
		LogGroup:              logGroup,
		LoggingFormat:         awslambda.LoggingFormat_JSON,
		ApplicationLogLevelV2: awslambda.ApplicationLogLevel_INFO,
		SystemLogLevelV2:      awslambda.SystemLogLevel_WARN,
		Environment:           environment(spec),
		RetryAttempts:         jsii.Number(2),
		MaxEventAge:           awscdk.Duration_Hours(jsii.Number(6)),
		OnFailure:             awslambdadestinations.NewSqsDestination(failures),
	})
	spec.table.Grant(role, jsii.String("dynamodb:GetItem"), jsii.String("dynamodb:PutItem"), jsii.String("dynamodb:DeleteItem"),
		jsii.String("dynamodb:UpdateItem"), jsii.String("dynamodb:Query"), jsii.String("dynamodb:ConditionCheckItem"))

	alarmOn(s, name+"ErrorsAlarm", "The "+strings.ToLower(name)+" returned errors: see its log group for level=ERROR lines",
		fn.MetricErrors(&awscloudwatch.MetricOptions{Period: awscdk.Duration_Minutes(jsii.Number(5)), Statistic: jsii.String("Sum")}),
		spec.alarms)
	queueAlarm(s, name+"FailedEvents", failures, spec.alarms)
	return function{fn: fn, role: role, logGroup: logGroup}
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

func queueAlarm(s awscdk.Stack, name string, q awssqs.Queue, topic awssns.ITopic) {
	alarmOn(s, name+"Alarm", "A message is waiting in "+name+": an event was not processed; inspect and redrive it",
		q.MetricApproximateNumberOfMessagesVisible(&awscloudwatch.MetricOptions{Period: awscdk.Duration_Minutes(jsii.Number(5)), Statistic: jsii.String("Maximum")}),
		topic)
}

// alarmOn alarms the topic as soon as metric reaches 1 in a period; no
// data is no trouble.
func alarmOn(s awscdk.Stack, id, description string, metric awscloudwatch.IMetric, topic awssns.ITopic) {
	a := awscloudwatch.NewAlarm(s, jsii.String(id), &awscloudwatch.AlarmProps{
		AlarmDescription:   jsii.String(description),
		Metric:             metric,
		Threshold:          jsii.Number(1),
		EvaluationPeriods:  jsii.Number(1),
		ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
		TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
	})
	a.AddAlarmAction(awscloudwatchactions.NewSnsAction(topic))
}

// topicKey encrypts the topics. It is our own key: CloudWatch cannot
// publish to a topic under the AWS-managed SNS key.
func topicKey(s awscdk.Stack) awskms.Key {
	key := awskms.NewKey(s, jsii.String("TopicKey"), &awskms.KeyProps{
		Description:       jsii.String("ecr-autodeploy topics"),
		EnableKeyRotation: jsii.Bool(true),
	})
	key.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("cloudwatch.amazonaws.com"), nil)},
		Actions:    jsii.Strings("kms:Decrypt", "kms:GenerateDataKey*"),
		Resources:  jsii.Strings("*"),
		// Only this account's alarms may use the key (confused deputy).
		Conditions: &map[string]any{
			"StringEquals": map[string]any{"aws:SourceAccount": s.Account()},
			"ArnLike":      map[string]any{"aws:SourceArn": awscdk.Fn_Sub(jsii.String("arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:*"), nil)},
		},
	}), nil)
	return key
}

// topic is an encrypted, SSL-only topic with an optional e-mail subscriber.
func topic(s awscdk.Stack, id, name string, key awskms.Key, email string) awssns.Topic {
	t := awssns.NewTopic(s, jsii.String(id), &awssns.TopicProps{
		DisplayName: jsii.String(name),
		MasterKey:   key,
		EnforceSSL:  jsii.Bool(true),
	})
	if email != "" {
		t.AddSubscription(awssnssubscriptions.NewEmailSubscription(jsii.String(email), nil))
	}
	return t
}

// grantDeploy gives the deployer exactly what a deploy needs: the services
// of the rules and nothing else; roles to assume for targets elsewhere.
func grantDeploy(s awscdk.Stack, role awsiam.Role, cfg *rules.Config) {
	services, roles := ServiceARNs(cfg), AssumedRoles(cfg)
	if len(services) > 0 {
		role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String("RollConfiguredServices"),
			Actions:   jsii.Strings("ecs:DescribeServices", "ecs:UpdateService"),
			Resources: subs(services),
		}))
		role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String("RegisterRevisions"),
			Actions:   jsii.Strings("ecs:DescribeTaskDefinition", "ecs:RegisterTaskDefinition"),
			Resources: jsii.Strings("*"),
		}))
		role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:        jsii.String("TagNewRevisions"),
			Actions:    jsii.Strings("ecs:TagResource"),
			Resources:  jsii.Strings("*"),
			Conditions: &map[string]any{"StringEquals": map[string]any{"ecs:CreateAction": "RegisterTaskDefinition"}},
		}))
		role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:        jsii.String("PassTaskRolesToEcsOnly"),
			Actions:    jsii.Strings("iam:PassRole"),
			Resources:  subs(PassRoles(cfg)),
			Conditions: &map[string]any{"StringEquals": map[string]any{"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
		}))
	}
	if len(roles) > 0 {
		role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String("AssumeTargetRoles"),
			Actions:   jsii.Strings("sts:AssumeRole"),
			Resources: jsii.Strings(roles...),
		}))
	}
	cdknag.NagSuppressions_AddResourceSuppressions(role, &[]*cdknag.NagPackSuppression{{
		Id: jsii.String("AwsSolutions-IAM5"),
		Reason: jsii.String("ecs:DescribeTaskDefinition and ecs:RegisterTaskDefinition take no resource-level permissions; " +
			"ecs:TagResource is limited by ecs:CreateAction=RegisterTaskDefinition; iam:PassRole by iam:PassedToService=ecs-tasks.amazonaws.com " +
			"and to the rules' pass-roles (default: the account's own roles; the running revision's roles are unknown at synth); " +
			"log stream names are chosen by Lambda."),
		AppliesTo: &[]any{"Resource::*", map[string]string{"regex": `/^Resource::<\w+Logs\w+\.Arn>:\*$/`},
			map[string]string{"regex": `/^Resource::arn:.*:iam::.*:role\/.*\*.*$/`}},
	}}, jsii.Bool(true))
}

// ServiceARNs are the services the deployer reaches with its own
// credentials, as CloudFormation Fn::Sub strings, sorted.
func ServiceARNs(cfg *rules.Config) []string {
	seen := map[string]bool{}
	for _, r := range cfg.Rules {
		for _, t := range r.Targets {
			if t.Role != "" {
				continue
			}
			region := "${AWS::Region}"
			if t.Region != "" {
				region = t.Region
			}
			seen[fmt.Sprintf("arn:${AWS::Partition}:ecs:%s:${AWS::AccountId}:service/%s/%s", region, t.Cluster, t.Service)] = true
		}
	}
	return sortedKeys(seen)
}

// PassRoles are the roles the deployer may pass to ECS with its own
// credentials: the pass-roles of the rules with own-account targets, and any
// role of the account for such a rule that names none. ECS documents no
// iam:AssociatedResourceArn for task definitions, so the role list is the
// narrowing that IAM can enforce.
func PassRoles(cfg *rules.Config) []string {
	seen := map[string]bool{}
	for _, r := range cfg.Rules {
		if !slices.ContainsFunc(r.Targets, func(t rules.Target) bool { return t.Role == "" }) {
			continue
		}
		if len(r.PassRoles) == 0 {
			seen["arn:${AWS::Partition}:iam::${AWS::AccountId}:role/*"] = true
		}
		for _, role := range r.PassRoles {
			seen[role] = true
		}
	}
	return sortedKeys(seen)
}

// AssumedRoles are the roles the rules name, sorted.
func AssumedRoles(cfg *rules.Config) []string {
	seen := map[string]bool{}
	for _, r := range cfg.Rules {
		for _, t := range r.Targets {
			if t.Role != "" {
				seen[t.Role] = true
			}
		}
	}
	return sortedKeys(seen)
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// queries saves the CloudWatch Logs Insights queries ops start from.
func queries(s awscdk.Stack, deployer, watcher awslogs.LogGroup) {
	for _, q := range []struct {
		id, name string
		logs     awslogs.LogGroup
		props    awslogs.QueryStringProps
	}{
		{"RecentDeploysQuery", "ecr-autodeploy/recent-deploys", deployer, awslogs.QueryStringProps{
			Fields:           jsii.Strings("@timestamp", "outcome", "rule", "repository", "tag", "cluster", "service", "to_task_definition", "reason"),
			FilterStatements: jsii.Strings(`msg = "deploy"`),
			Sort:             jsii.String("@timestamp desc"),
			Limit:            jsii.Number(100),
		}},
		{"FailedDeploysQuery", "ecr-autodeploy/failed-deploys", deployer, awslogs.QueryStringProps{
			Fields:           jsii.Strings("@timestamp", "rule", "repository", "tag", "cluster", "service", "reason", "event_id", "request_id"),
			FilterStatements: jsii.Strings(`msg = "deploy" and outcome = "failed"`),
			Sort:             jsii.String("@timestamp desc"),
			Limit:            jsii.Number(100),
		}},
		{"WhereIsImageQuery", "ecr-autodeploy/where-is-each-image", deployer, awslogs.QueryStringProps{
			// The latest deployed image per service; add `and tag = "…"` to the
			// filter to find where one image runs.
			FilterStatements: jsii.Strings(`msg = "deploy" and outcome = "deployed"`),
			StatsStatements:  jsii.Strings("latest(tag) as tag, latest(digest) as digest, latest(to_task_definition) as task_definition, max(@timestamp) as deployed_at by repository, cluster, service"),
		}},
		{"DeploymentOutcomesQuery", "ecr-autodeploy/deployment-outcomes", watcher, awslogs.QueryStringProps{
			Fields:           jsii.Strings("@timestamp", "outcome", "rule", "repository", "tag", "cluster", "service", "deployment_id", "push_to_completion_ms", "reason"),
			FilterStatements: jsii.Strings(`msg = "deployment"`),
			Sort:             jsii.String("@timestamp desc"),
			Limit:            jsii.Number(100),
		}},
	} {
		awslogs.NewQueryDefinition(s, jsii.String(q.id), &awslogs.QueryDefinitionProps{
			QueryDefinitionName: jsii.String(q.name),
			QueryString:         awslogs.NewQueryString(&q.props),
			LogGroups:           &[]interfacesawslogs.ILogGroupRef{q.logs},
		})
	}
}
