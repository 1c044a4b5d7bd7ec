// Package stack is the CDK construct that provisions ecr-autodeploy from a
// rules file: the EventBridge rule on pushes to the configured repositories,
// the functions with their queues, alarms and saved queries, the state
// table and least-privilege IAM.
package stack

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work/queue"
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
	// Slack, when set, wires a Slack channel to the alarm and notice topics
	// through AWS Chatbot.
	Slack *Slack
	// LogRetention of the functions' log groups (default one month).
	LogRetention awslogs.RetentionDays
	// WorkConcurrency is each target place's event source mapping's
	// MaximumConcurrency: the worker invocations of one place at once
	// (0: queue.MaximumConcurrency; Lambda allows 2 to 1000).
	WorkConcurrency int
}

// central is the stack's account and region where pinned ("" where the
// stack is environment-agnostic).
func (p Props) central() rules.Place {
	var c rules.Place
	if e := p.Env; e != nil {
		c.Account, c.Region = deref(e.Account), deref(e.Region)
	}
	return c
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Functions are the Lambda functions the repository has.
func Functions() []string { return []string{"deployer", "watcher", "worker"} }

// New builds the stack. It fails when a function is not built or the rules
// name nothing to deploy.
func New(scope constructs.Construct, id string, p Props) (awscdk.Stack, error) {
	if p.Rules == nil || len(p.Rules.Rules) == 0 {
		return nil, fmt.Errorf("stack %s: the rules file has no rules", id)
	}
	bundles := map[string]bundled{}
	for _, fn := range Functions() {
		b, err := bundle(fn, p)
		if err != nil {
			return nil, err
		}
		bundles[fn] = b
	}
	if p.LogRetention == "" {
		p.LogRetention = awslogs.RetentionDays_ONE_MONTH
	}
	if err := p.Rules.CheckOwners(p.central()); err != nil {
		return nil, fmt.Errorf("stack %s: %w", id, err)
	}
	tp, err := NewTopology(p.Rules, p.central())
	if err != nil {
		return nil, fmt.Errorf("stack %s: %w", id, err)
	}
	workConcurrency, err := checkWorkConcurrency(p.WorkConcurrency)
	if err != nil {
		return nil, fmt.Errorf("stack %s: %w", id, err)
	}
	var deployerRole, watcherRole, workerRole string
	if tp.Multi() {
		deployerRole, watcherRole, workerRole = deployerRoleName(id, tp.Central), watcherRoleName(id, tp.Central), workerRoleName(id, tp.Central)
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
	work := newWorkQueues(s, tp, alarms)
	deployer := newFunction(s, "Deployer", functionSpec{
		bundle:      bundles["deployer"],
		description: "Matches ECR pushes and sweeps to the ECS services of autodeploy.yaml and queues one work item per target (ecr-autodeploy)",
		// A sweep describes every target (ten services a call) and repairs
		// published images under the lock (90 s of wait at most).
		timeout:   awscdk.Duration_Minutes(jsii.Number(3)),
		memory:    256,
		table:     table,
		retention: p.LogRetention,
		alarms:    alarms,
		roleName:  deployerRole,
		env: map[string]*string{
			"AUTODEPLOY_NOTIFY_TOPIC_ARN": notices.TopicArn(),
			"AUTODEPLOY_WORK_QUEUE_URL":   work.central.QueueUrl(),
		},
	})
	grantIntake(deployer.role, p.Rules, p.central())
	work.grantSend(deployer.role)
	table.Grant(deployer.role, jsii.String("dynamodb:BatchGetItem")) // a sweep reads every target's state at once
	grantPublish(deployer.role, notices, key)

	worker := newFunction(s, "Worker", functionSpec{
		bundle:      bundles["worker"],
		description: "Rolls the ECS services of the work items it takes from the work queues (ecr-autodeploy)",
		timeout:     awscdk.Duration_Seconds(jsii.Number(queue.WorkerTimeout.Seconds())),
		memory:      256,
		table:       table,
		retention:   p.LogRetention,
		alarms:      alarms,
		roleName:    workerRole,
		polled:      true,
		env: map[string]*string{
			"AUTODEPLOY_NOTIFY_TOPIC_ARN": notices.TopicArn(),
			"AUTODEPLOY_WORK_QUEUE_URL":   work.central.QueueUrl(),
		},
	})
	grantDeploy(worker.role, p.Rules, p.central())
	work.grantConsume(worker.role)
	grantPublish(worker.role, notices, key)
	work.mapTo(s, worker.fn, workConcurrency)
	// The deploy lines come from the worker; a sweep's (and an in-process
	// deploy's) from the deployer: the alarms read both.
	deployLogs := []awslogs.LogGroup{deployer.logGroup, worker.logGroup}
	failedDeploysAlarm(s, deployLogs, alarms)
	logLineAlarm(s, "HistoryNotWritten", deployLogs, `{ $.msg = "history not written" }`,
		"A deploy happened but its history write failed: the invocation retries to record it; if this persists, check the table", alarms)

	pushDLQ := ruleTo(s, "EcrPushRule", "ECR pushes to the repositories of autodeploy.yaml", &awsevents.EventPattern{
		Source:     jsii.Strings("aws.ecr"),
		DetailType: jsii.Strings("ECR Image Action"),
		// Pushes forwarded by the registry stacks keep their account and region.
		Account: jsii.Strings(withOthers(*s.Account(), accountsOf(tp.Registries, tp.Central))...),
		Region:  jsii.Strings(withOthers(*s.Region(), regionsOf(tp.Registries, tp.Central))...),
		Detail:  &map[string]any{"action-type": []string{"PUSH"}, "result": []string{"SUCCESS"}},
	}, &split{path: "detail.repository-name", values: anyStrings(p.Rules.Repositories())}, deployer.fn, "PushEventsDLQ", "ECR push events EventBridge could not deliver to the deployer", alarms)

	watcherEnv := map[string]*string{
		"AUTODEPLOY_DEPLOYER_FUNCTION": deployer.fn.FunctionName(),
		"AUTODEPLOY_NOTIFY_TOPIC_ARN":  notices.TopicArn(),
	}
	if q := cleanupQueue(p.Rules, work); q != nil {
		watcherEnv["AUTODEPLOY_WORK_QUEUE_URL"] = q
	}
	watcher := newFunction(s, "Watcher", functionSpec{
		bundle:      bundles["watcher"],
		description: "Reports how each ecr-autodeploy deployment ended and promotes on success",
		timeout:     awscdk.Duration_Minutes(jsii.Number(1)),
		memory:      256,
		table:       table,
		retention:   p.LogRetention,
		alarms:      alarms,
		roleName:    watcherRole,
		env:         watcherEnv,
	})
	grantWatch(s, watcher.role, p.Rules, p.central(), deployer.fn, notices, key)
	grantCleanupItems(p.Rules, work, watcher.role)
	if setsTimers(p.Rules) {
		timers(s, watcher)
	}
	if p.Rules.Reconcile.Every > 0 {
		swept := []awslambda.Function{deployer.fn}
		if gated(p.Rules) {
			// The watcher ends the gates whose time is up when their timer
			// was lost or late.
			swept = append(swept, watcher.fn)
		}
		reconcileSchedule(s, p.Rules.Reconcile.Every, swept...)
	}

	targetAccounts := withOthers(*s.Account(), accountsOf(tp.Targets, tp.Central))
	deployments := &awsevents.EventPattern{
		Source:     jsii.Strings("aws.ecs"),
		DetailType: jsii.Strings("ECS Deployment State Change"),
		Account:    jsii.Strings(targetAccounts...),
	}
	services := deploymentEntries(p.Rules, everyTarget, deployments)
	deploymentDLQ := ruleTo(s, "EcsDeploymentRule", "ECS deployment state changes of the services of autodeploy.yaml", deployments, &services, watcher.fn, "DeploymentEventsDLQ", "ECS deployment events EventBridge could not deliver to the watcher", alarms)
	deploymentAlarm(s, watcher.logGroup, alarms)
	// Any function may write that people were not told (the deploy path's
	// rollout ends and notices, the watcher's deployment ends and notices).
	logLineAlarm(s, reportsLostName, []awslogs.LogGroup{deployer.logGroup, worker.logGroup, watcher.logGroup}, reportsLostPattern,
		reportsLostDescription, alarms)
	queues := map[string]awssqs.Queue{
		"push events (deployer)": pushDLQ, "deployment events (watcher)": deploymentDLQ,
		"deployer failed events": deployer.failures, "watcher failed events": watcher.failures,
		"work items (worker)": work.dlq,
	}
	if q := blueGreen(s, p.Rules, p.central(), watcher, alarms); q != nil {
		queues["CodeDeploy events (watcher)"] = q
	}
	if q := hookRule(s, p.Rules, targetAccounts, watcher, alarms); q != nil {
		queues["hook events (watcher)"] = q
	}
	if q := gateRules(s, p.Rules, p.central(), watcher, alarms); q != nil {
		queues["gate events (watcher)"] = q
	}

	queries(s, deployLogs, deployer.logGroup, watcher.logGroup)
	dashboard(s, p.Rules, []function{deployer, worker, watcher}, queues, work)
	if err := admitToBus(s, p.Rules, tp); err != nil {
		return nil, fmt.Errorf("stack %s: %w", id, err)
	}
	if p.Slack != nil {
		slackChannel(s, *p.Slack, alarms, notices)
	}
	outputs(s, deployer, pushDLQ, work.dlq)
	return s, nil
}
