package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/bluegreen"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/deploy"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecrevent"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecsarn"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/taskdef"
)

func plan(ctx context.Context, args []string, env Env) error {
	fs := flags("plan", env)
	eventFile := fs.String("event", "", "ECR \"ECR Image Action\" event (JSON file)")
	config := fs.String("config", "autodeploy.yaml", "rules file")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *eventFile == "" {
		return usageError{"--event is required"}
	}
	cfg, err := rules.Load(*config)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(*eventFile)
	if err != nil {
		return fmt.Errorf("read event: %w", err)
	}
	push, err := ecrevent.Parse(data)
	if ig, ok := ecrevent.IsIgnored(err); ok {
		fmt.Fprintf(env.Stdout, "ignored: %s\n", ig.Reason)
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", *eventFile, err)
	}
	fmt.Fprintf(env.Stdout, "push %s:%s (%s) at %s, event %s\n", push.Repository, push.Tag, push.Digest, push.Time.UTC().Format(time.RFC3339), push.EventID)
	awsCfg, err := env.AWS(ctx)
	if err != nil {
		return err
	}
	account, err := awsenv.Account(ctx, awsCfg)
	if err != nil {
		return fmt.Errorf("find the central account: %w", err)
	}
	central := rules.Place{Account: account, Region: awsCfg.Region}
	jobs, why := deploy.Match(cfg, central, push)
	if len(jobs) == 0 {
		fmt.Fprintf(env.Stdout, "ignored: %s\n", why)
		return nil
	}
	clients := awsenv.NewClients(awsCfg)
	var groups bluegreen.Groups
	for _, j := range jobs {
		fmt.Fprintf(env.Stdout, "\nrule %s → %s/%s\n", j.Rule.Name, j.Target.Cluster, j.Target.Service)
		region, role := j.Target.Where(central).Region, j.Target.RoleFor(central)
		p, err := deploy.PlanTarget(ctx, clients.ECS(region, role), push, j.Rule, j.Target)
		switch {
		case err != nil:
			fmt.Fprintf(env.Stdout, "  would fail: %v\n", err)
		case p.Register == nil:
			fmt.Fprintf(env.Stdout, "  skip: %s\n", p.Skip)
		default:
			printRegister(env.Stdout, p)
			if p.BlueGreen {
				printAppSpec(ctx, env.Stdout, clients.CodeDeploy(region, role), &groups, region+"|"+role, p, j.Target)
			}
		}
	}
	return nil
}

// printRegister shows the revision a deploy would register, as a diff of
// the image lines and the tags it would set.
func printRegister(w io.Writer, p deploy.Plan) {
	then := "point the service at it"
	if p.BlueGreen {
		then = "deploy it through CodeDeploy"
	}
	fmt.Fprintf(w, "  would register a new revision of %s (running %s) and %s:\n",
		aws.ToString(p.Running.Family), ecsarn.Revision(p.From), then)
	for _, c := range p.Containers {
		fmt.Fprintf(w, "  - %s: %s\n", c, taskdef.Image(p.Running, c))
		fmt.Fprintf(w, "  + %s: %s\n", c, p.Updates[c])
	}
	if p.Skip != "" {
		fmt.Fprintf(w, "  left alone: %s\n", p.Skip)
	}
	var tags []string
	for _, t := range p.Register.Tags {
		if strings.HasPrefix(aws.ToString(t.Key), "autodeploy:") {
			tags = append(tags, aws.ToString(t.Key)+"="+aws.ToString(t.Value))
		}
	}
	slices.Sort(tags)
	fmt.Fprintf(w, "  tags: %s\n", strings.Join(tags, " "))
}

// printAppSpec shows the CodeDeploy deployment a blue/green deploy would
// create: its group (found as the deployer finds it) and AppSpec, naming
// the revision still to be registered by its family.
func printAppSpec(ctx context.Context, w io.Writer, client bluegreen.CodeDeploy, groups *bluegreen.Groups, scope string, p deploy.Plan, t rules.Target) {
	grp, err := groups.Find(ctx, client, scope, t.Cluster, t.Service, t.CodeDeploy)
	if err != nil {
		fmt.Fprintf(w, "  would fail: %v\n", err)
		return
	}
	next := aws.ToString(p.Running.TaskDefinitionArn)
	if i := strings.LastIndex(next, ":"); i >= 0 {
		next = next[:i] + ":<new revision>"
	}
	spec, err := bluegreen.BuildAppSpec(next, p.Service, t.CodeDeploy.Hooks)
	if err != nil {
		fmt.Fprintf(w, "  would fail: %v\n", err)
		return
	}
	fmt.Fprintf(w, "  CodeDeploy deployment in %s with AppSpec:\n", grp)
	for _, line := range strings.Split(spec.Content, "\n") {
		fmt.Fprintf(w, "    %s\n", line)
	}
}
