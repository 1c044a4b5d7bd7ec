package stack

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/jsii-runtime-go"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/deploy"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/metrics"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work/queue"
)

// DashboardName is the dashboard's name in the stack's region.
const DashboardName = "ecr-autodeploy"

// dashboardRuleLines is the most rules graphed line by line; past it each
// graph searches the rules' metrics instead.
const dashboardRuleLines = 20

// dashboard shows at a glance what ops ask first: did pushes deploy, how long
// until running, what failed or rolled back, is anything parked in a queue,
// are the functions healthy. Rules are known at synth, so each rule gets its
// own lines (the functions file metrics per rule as well as per service),
// up to dashboardRuleLines rules; past that a search per line kind.
func dashboard(s awscdk.Stack, cfg *rules.Config, fns []function, queues map[string]awssqs.Queue, work workQueues) awscloudwatch.Dashboard {
	five := awscdk.Duration_Minutes(jsii.Number(5))
	custom := func(name, stat, label string, dims map[string]string) awscloudwatch.IMetric {
		m := map[string]*string{}
		for k, v := range dims {
			m[k] = jsii.String(v)
		}
		return awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
			Namespace: jsii.String(metrics.Namespace), MetricName: jsii.String(name), DimensionsMap: &m,
			Statistic: jsii.String(stat), Period: five, Label: jsii.String(label),
		})
	}
	graph := func(title string, stacked bool, left ...awscloudwatch.IMetric) awscloudwatch.IWidget {
		return awscloudwatch.NewGraphWidget(&awscloudwatch.GraphWidgetProps{
			Title: jsii.String(title), Left: &left, Width: jsii.Number(12), Height: jsii.Number(6), Stacked: jsii.Bool(stacked),
		})
	}

	var byOutcome []awscloudwatch.IMetric
	for _, o := range []deploy.Outcome{deploy.Deployed, deploy.Skipped, deploy.Failed} {
		byOutcome = append(byOutcome, custom(metrics.Deploys, "Sum", string(o), map[string]string{"outcome": string(o)}))
	}
	var pushToRunning, notCompleted, drift []awscloudwatch.IMetric
	if len(cfg.Rules) <= dashboardRuleLines {
		for _, r := range cfg.Rules {
			dims := map[string]string{"rule": r.Name}
			pushToRunning = append(pushToRunning,
				custom(metrics.PushToRunning, "p50", r.Name+" p50", dims), custom(metrics.PushToRunning, "p90", r.Name+" p90", dims))
			notCompleted = append(notCompleted,
				custom(metrics.DeploymentsFailed, "Sum", r.Name+" failed", dims), custom(metrics.DeploymentsRolledBack, "Sum", r.Name+" rolled back", dims))
			drift = append(drift, custom(metrics.Drift, "Maximum", r.Name, dims))
		}
	} else {
		// Past dashboardRuleLines, one search per line kind finds every
		// rule's metric: the body stays the same size at any number of
		// rules (it passed CloudFormation's 1 MB template at ~1,000).
		search := func(name, stat, label string) awscloudwatch.IMetric {
			return awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
				Expression:   jsii.String(fmt.Sprintf(`SEARCH('{%s,rule} MetricName="%s"', '%s', 300)`, metrics.Namespace, name, stat)),
				Label:        jsii.String(strings.TrimSpace("${PROP('Dim.rule')} " + label)),
				Period:       five,
				UsingMetrics: &map[string]awscloudwatch.IMetric{},
			})
		}
		pushToRunning = append(pushToRunning, search(metrics.PushToRunning, "p50", "p50"), search(metrics.PushToRunning, "p90", "p90"))
		notCompleted = append(notCompleted, search(metrics.DeploymentsFailed, "Sum", "failed"), search(metrics.DeploymentsRolledBack, "Sum", "rolled back"))
		drift = append(drift, search(metrics.Drift, "Maximum", ""))
	}
	names := make([]string, 0, len(queues))
	for n := range queues {
		names = append(names, n)
	}
	sort.Strings(names)
	var depth []awscloudwatch.IMetric
	for _, n := range names {
		depth = append(depth, queues[n].MetricApproximateNumberOfMessagesVisible(&awscloudwatch.MetricOptions{
			Statistic: jsii.String("Maximum"), Period: five, Label: jsii.String(n)}))
	}
	backlog, age := workBacklog(work, five)
	var errs, duration []awscloudwatch.IMetric
	for _, f := range fns {
		name := *f.fn.Node().Id()
		errs = append(errs,
			f.fn.MetricErrors(&awscloudwatch.MetricOptions{Statistic: jsii.String("Sum"), Period: five, Label: jsii.String(name + " errors")}),
			f.fn.MetricThrottles(&awscloudwatch.MetricOptions{Statistic: jsii.String("Sum"), Period: five, Label: jsii.String(name + " throttles")}))
		duration = append(duration,
			f.fn.MetricDuration(&awscloudwatch.MetricOptions{Statistic: jsii.String("p50"), Period: five, Label: jsii.String(name + " p50")}),
			f.fn.MetricDuration(&awscloudwatch.MetricOptions{Statistic: jsii.String("Maximum"), Period: five, Label: jsii.String(name + " max")}))
	}

	rows := []*[]awscloudwatch.IWidget{
		{awscloudwatch.NewTextWidget(&awscloudwatch.TextWidgetProps{Width: jsii.Number(24), Height: jsii.Number(2), Markdown: jsii.String(
			"## ecr-autodeploy\n" +
				"Failed deploys: Logs Insights query `ecr-autodeploy/failed-deploys`. Events parked in a queue: " +
				"`autodeploy redrive --queue push|deployer|work`. A service's story: `autodeploy history --cluster C --service S`.")})},
		{graph("Deploys by outcome (targets per event)", true, byOutcome...), graph("Push to running per rule (ms)", false, pushToRunning...)},
		{graph("Failed and rolled-back deployments", true, notCompleted...), graph("Dead-letter and failure queues (messages waiting)", false, depth...)},
		{graph("Work items waiting, per target place", true, backlog...), graph("Oldest work item waiting, per target place (s)", false, age...)},
		{graph("Function errors and throttles", false, errs...), graph("Function duration (ms)", false, duration...)},
	}
	if sweeps(cfg) {
		rows = append(rows, &[]awscloudwatch.IWidget{graph("Sweep drift: targets found behind, per rule", true, drift...)})
	}
	return awscloudwatch.NewDashboard(s, jsii.String("Dashboard"), &awscloudwatch.DashboardProps{
		DashboardName:   awscdk.Fn_Join(jsii.String("-"), &[]*string{jsii.String(DashboardName), awscdk.Aws_REGION()}),
		DefaultInterval: awscdk.Duration_Days(jsii.Number(7)),
		Widgets:         &rows,
	})
}

// dashboardQueueLines is the most work queues graphed line by line; past it
// searches find every place's queue by its exact name.
const dashboardQueueLines = 10

// searchQueryLimit is CloudWatch's limit on a SEARCH expression's query
// (the metric schema and search term, between the single quotes).
const searchQueryLimit = 1024

// workBacklog are the work queues' depth and oldest message's age: a line
// per place's queue up to dashboardQueueLines places, else searches on the
// queues' exact names (no metric of each place's queue in the body).
func workBacklog(work workQueues, period awscdk.Duration) (depth, age []awscloudwatch.IMetric) {
	if len(work.byPlace) > dashboardQueueLines {
		central := work.byPlace[0].place
		var names []string
		for _, pq := range work.byPlace {
			names = append(names, queue.NameFor(work.base, central, pq.place))
		}
		search := func(metric, label string) []awscloudwatch.IMetric {
			var out []awscloudwatch.IMetric
			for _, expr := range queueSearches(metric, names) {
				out = append(out, awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
					Expression:   jsii.String(expr),
					Label:        jsii.String("${PROP('Dim.QueueName')} " + label),
					Period:       period,
					UsingMetrics: &map[string]awscloudwatch.IMetric{},
				}))
			}
			return out
		}
		return search("ApproximateNumberOfMessagesVisible", "waiting"), search("ApproximateAgeOfOldestMessage", "oldest")
	}
	for i, pq := range work.byPlace {
		label := pq.place.String()
		if i == 0 {
			label = "central"
		}
		opts := &awscloudwatch.MetricOptions{Statistic: jsii.String("Maximum"), Period: period, Label: jsii.String(label)}
		depth = append(depth, pq.queue.MetricApproximateNumberOfMessagesVisible(opts))
		age = append(age, pq.queue.MetricApproximateAgeOfOldestMessage(opts))
	}
	return depth, age
}

// queueSearches are SEARCH expressions that find metric of exactly the
// queues named, as few as CloudWatch's query limit allows. An unquoted
// value in a SEARCH term is a partial match on its tokens (QueueName=x-work
// finds every queue whose name has the tokens x and work: the work
// dead-letter queue, another stack's queues); a value in double quotes
// matches exactly that value, so each queue is named in quotes and the
// names are joined by OR.
func queueSearches(metric string, names []string) []string {
	head := fmt.Sprintf(`{AWS/SQS,QueueName} MetricName="%s" `, metric)
	var out, terms []string
	query := func(terms []string) string { return head + "(" + strings.Join(terms, " OR ") + ")" }
	flush := func() {
		if len(terms) > 0 {
			out = append(out, fmt.Sprintf(`SEARCH('%s', 'Maximum', 300)`, query(terms)))
			terms = nil
		}
	}
	for _, n := range names {
		term := fmt.Sprintf(`QueueName="%s"`, n)
		if len(terms) > 0 && len(query(append(slices.Clone(terms), term))) > searchQueryLimit {
			flush()
		}
		terms = append(terms, term)
	}
	flush()
	return out
}
