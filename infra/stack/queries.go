package stack

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/interfaces/interfacesawslogs"
	"github.com/aws/jsii-runtime-go"
)

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
		{"SweepsQuery", "ecr-autodeploy/sweeps", deployer, awslogs.QueryStringProps{
			Fields:           jsii.Strings("@timestamp", "outcome", "rule", "repository", "cluster", "service", "newest_tag", "reason", "event_id"),
			FilterStatements: jsii.Strings(`msg = "reconcile"`),
			Sort:             jsii.String("@timestamp desc"),
			Limit:            jsii.Number(200),
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
