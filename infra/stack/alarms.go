package stack

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/jsii-runtime-go"
)

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

// reportsLostPattern matches the lines that say people may not have been
// told: an end a rule's rollout did not record (its one notice waits for
// it; the target is retried to record it), a repaired deployment's end not
// recorded, and a notice SNS refused (not sent again: twice is worse).
const reportsLostPattern = `{ $.msg = "rollout end not recorded" || $.msg = "deployment end not recorded" || $.msg = "notification not sent" }`

// reportsLostName is the metric, and the alarm's name stem, of reportsLostPattern.
const reportsLostName = "ReportsLost"

// reportsLostDescription is the description of reportsLostPattern's alarm.
const reportsLostDescription = "A rollout's end, a deployment's end or a notice was not recorded or not sent: people may not have been told how a deploy ended. " +
	"Query the functions' logs for msg \"rollout end not recorded\", \"deployment end not recorded\" or \"notification not sent\""

// logLineAlarm fires on any log line the pattern matches in any of the
// log groups: a metric filter on each feeds one metric, which the alarm
// sums. The first group's filter keeps the id it always had.
func logLineAlarm(s awscdk.Stack, name string, logGroups []awslogs.LogGroup, pattern, description string, topic awssns.ITopic) {
	for i, lg := range logGroups {
		id := name + "Filter"
		if i > 0 {
			id = name + *lg.Node().Id() + "Filter"
		}
		awslogs.NewMetricFilter(s, jsii.String(id), &awslogs.MetricFilterProps{
			LogGroup:        lg,
			FilterPattern:   awslogs.FilterPattern_Literal(jsii.String(pattern)),
			MetricNamespace: jsii.String("Autodeploy"),
			MetricName:      jsii.String(name),
			MetricValue:     jsii.String("1"),
		})
	}
	alarmOn(s, name+"Alarm", description,
		awscloudwatch.NewMetric(&awscloudwatch.MetricProps{Namespace: jsii.String("Autodeploy"), MetricName: jsii.String(name),
			Period: awscdk.Duration_Minutes(jsii.Number(5)), Statistic: jsii.String("Sum")}),
		topic)
}

// deploysFailedPattern matches a deploy, sweep or publish line that failed,
// and a work item the worker refused (its rule no longer takes it: never
// deployed, never received again).
const deploysFailedPattern = `{ (($.msg = "deploy" || $.msg = "reconcile" || $.msg = "publish") && $.outcome = "failed") || $.msg = "work item refused" }`

// failedDeploysAlarm fires on a deploy that failed permanently: it is not
// retried, so a person has to act.
func failedDeploysAlarm(s awscdk.Stack, logGroups []awslogs.LogGroup, topic awssns.ITopic) {
	logLineAlarm(s, "DeploysFailed", logGroups, deploysFailedPattern,
		"A push or a sweep could not bring a service to its image, or publish it: query ecr-autodeploy/failed-deploys and ecr-autodeploy/sweeps", topic)
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
