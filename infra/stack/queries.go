package stack

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/interfaces/interfacesawslogs"
	"github.com/aws/jsii-runtime-go"
)

// queries saves the CloudWatch Logs Insights queries ops start from. The
// deploy lines are in deploys (the worker's, and the deployer's for sweeps
// and in-process deploys); sweeps in the deployer's, outcomes in the
// watcher's.
func queries(s awscdk.Stack, deploys []awslogs.LogGroup, deployer, watcher awslogs.LogGroup) {
	one := func(lg awslogs.LogGroup) []awslogs.LogGroup { return []awslogs.LogGroup{lg} }
	for _, q := range []struct {
		id, name string
		logs     []awslogs.LogGroup
		props    awslogs.QueryStringProps
	}{
		{"RecentDeploysQuery", "ecr-autodeploy/recent-deploys", deploys, awslogs.QueryStringProps{
			Fields:           jsii.Strings("@timestamp", "outcome", "rule", "repository", "tag", "cluster", "service", "to_task_definition", "reason"),
			FilterStatements: jsii.Strings(`msg = "deploy"`),
			Sort:             jsii.String("@timestamp desc"),
			Limit:            jsii.Number(100),
		}},
		{"FailedDeploysQuery", "ecr-autodeploy/failed-deploys", deploys, awslogs.QueryStringProps{
			Fields:           jsii.Strings("@timestamp", "rule", "repository", "tag", "cluster", "service", "reason", "event_id", "request_id"),
			FilterStatements: jsii.Strings(`msg = "deploy" and outcome = "failed"`),
			Sort:             jsii.String("@timestamp desc"),
			Limit:            jsii.Number(100),
		}},
		{"WhereIsImageQuery", "ecr-autodeploy/where-is-each-image", deploys, awslogs.QueryStringProps{
			// The latest deployed image per service; add `and tag = "…"` to the
			// filter to find where one image runs.
			FilterStatements: jsii.Strings(`msg = "deploy" and outcome = "deployed"`),
			StatsStatements:  jsii.Strings("latest(tag) as tag, latest(digest) as digest, latest(to_task_definition) as task_definition, max(@timestamp) as deployed_at by repository, cluster, service"),
		}},
		{"SweepsQuery", "ecr-autodeploy/sweeps", one(deployer), awslogs.QueryStringProps{
			Fields:           jsii.Strings("@timestamp", "outcome", "rule", "repository", "cluster", "service", "newest_tag", "reason", "event_id"),
			FilterStatements: jsii.Strings(`msg = "reconcile"`),
			Sort:             jsii.String("@timestamp desc"),
			Limit:            jsii.Number(200),
		}},
		{"DeploymentOutcomesQuery", "ecr-autodeploy/deployment-outcomes", one(watcher), awslogs.QueryStringProps{
			Fields:           jsii.Strings("@timestamp", "outcome", "rule", "repository", "tag", "cluster", "service", "deployment_id", "push_to_completion_ms", "reason"),
			FilterStatements: jsii.Strings(`msg = "deployment"`),
			Sort:             jsii.String("@timestamp desc"),
			Limit:            jsii.Number(100),
		}},
	} {
		refs := make([]interfacesawslogs.ILogGroupRef, len(q.logs))
		for i, lg := range q.logs {
			refs[i] = lg
		}
		awslogs.NewQueryDefinition(s, jsii.String(q.id), &awslogs.QueryDefinitionProps{
			QueryDefinitionName: jsii.String(q.name),
			QueryString:         awslogs.NewQueryString(&q.props),
			LogGroups:           &refs,
		})
	}
}
