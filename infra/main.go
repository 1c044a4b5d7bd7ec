// Command infra is the CDK app of ecr-autodeploy: the central stack, and a
// registry or target stack per other account and region the rules file
// names. Context: config (rules file, default ../autodeploy.yaml), dist
// (built functions, default ../dist), account and region (the central
// stack's; default the CLI's credentials), alarmEmail, notifyEmail,
// logRetentionDays, stackName, slackWorkspaceId + slackChannelId (both or
// neither), workConcurrency (each target place's worker invocations at
// once, 2..1000, default queue.MaximumConcurrency).
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/ecr-autodeploy/ecr-autodeploy/infra/stack"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

func main() {
	defer jsii.Close()
	app := awscdk.NewApp(nil)
	if err := build(app); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	app.Synth(nil)
}

func build(app awscdk.App) error {
	configPath := contextString(app, "config", "../autodeploy.yaml")
	cfg, err := rules.Load(configPath)
	if err != nil {
		return err
	}
	slack, err := slackContext(contextString(app, "slackWorkspaceId", ""), contextString(app, "slackChannelId", ""))
	if err != nil {
		return err
	}
	workConcurrency, err := contextInt(app, "workConcurrency")
	if err != nil {
		return err
	}
	outdir := *app.Outdir()
	_, err = stack.NewAll(app, contextString(app, "stackName", "EcrAutodeploy"), stack.Props{
		StackProps: awscdk.StackProps{
			Description: jsii.String("ecr-autodeploy: ECS services roll to images pushed to ECR"),
			Env:         environment(contextString(app, "account", os.Getenv("CDK_DEFAULT_ACCOUNT")), contextString(app, "region", os.Getenv("CDK_DEFAULT_REGION"))),
		},
		Rules:        cfg,
		RulesFile:    configPath,
		DistDir:      contextString(app, "dist", "../dist"),
		BundleDir:    filepath.Join(outdir, ".bundles"),
		AlarmEmail:   contextString(app, "alarmEmail", ""),
		NotifyEmail:  contextString(app, "notifyEmail", ""),
		Slack:        slack,
		LogRetention: retention(contextString(app, "logRetentionDays", "30")),
		// Bounded by stack.New, which says why.
		WorkConcurrency: workConcurrency,
	})
	if err != nil {
		return err
	}
	awscdk.Aspects_Of(app).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
	return nil
}

// slackContext is the Slack channel to wire, if both ids are given.
func slackContext(workspace, channel string) (*stack.Slack, error) {
	switch {
	case workspace == "" && channel == "":
		return nil, nil
	case workspace == "" || channel == "":
		return nil, fmt.Errorf("context slackWorkspaceId and slackChannelId go together: got workspace %q, channel %q", workspace, channel)
	}
	return &stack.Slack{WorkspaceID: workspace, ChannelID: channel}, nil
}

// environment pins the central stack to an account and region when known
// (context, else the CLI's credentials); without them it stays
// environment-agnostic (pseudo parameters), which only a rules file naming
// no other account or region allows.
func environment(account, region string) *awscdk.Environment {
	env := &awscdk.Environment{}
	if account != "" {
		env.Account = jsii.String(account)
	}
	if region != "" {
		env.Region = jsii.String(region)
	}
	return env
}

func contextString(app awscdk.App, key, def string) string {
	if v, ok := app.Node().TryGetContext(jsii.String(key)).(string); ok && v != "" {
		return v
	}
	return def
}

// contextInt is an integer context value (from -c key=N or cdk.json), 0
// when not given.
func contextInt(app awscdk.App, key string) (int, error) {
	switch v := app.Node().TryGetContext(jsii.String(key)).(type) {
	case nil:
		return 0, nil
	case float64:
		if v != float64(int(v)) {
			return 0, fmt.Errorf("context %s: %v is not a whole number", key, v)
		}
		return int(v), nil
	case string:
		if v == "" {
			return 0, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return 0, fmt.Errorf("context %s: %q is not a whole number", key, v)
		}
		return n, nil
	default:
		return 0, fmt.Errorf("context %s: %v is not a whole number", key, v)
	}
}

// retention maps a day count to CloudWatch's allowed retention values.
func retention(days string) awslogs.RetentionDays {
	switch days {
	case "7":
		return awslogs.RetentionDays_ONE_WEEK
	case "14":
		return awslogs.RetentionDays_TWO_WEEKS
	case "90":
		return awslogs.RetentionDays_THREE_MONTHS
	case "180":
		return awslogs.RetentionDays_SIX_MONTHS
	case "365":
		return awslogs.RetentionDays_ONE_YEAR
	}
	return awslogs.RetentionDays_ONE_MONTH
}
