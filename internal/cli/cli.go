// Package cli is the operator's `autodeploy` command: validate a rules
// file, plan what an event would do, read a service's history, roll back.
package cli

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/deploy"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecrevent"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecsarn"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/lock"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/taskdef"
)

const usage = `autodeploy: operate ecr-autodeploy

Usage:
  autodeploy validate [FILE]                                 check a rules file (default autodeploy.yaml)
  autodeploy plan --event FILE [--config FILE]               what an ECR event would deploy (read-only AWS calls)
  autodeploy history --cluster C --service S [--limit N]     recent deploys of a service, newest first
  autodeploy rollback --cluster C --service S [--to REV]     redeploy the previous (or named) revision

AWS access uses the standard SDK environment (AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL…);
history and rollback read the state table from --table or AUTODEPLOY_TABLE.
Run 'autodeploy COMMAND -h' for a command's flags.
`

// Env is what the commands get from outside.
type Env struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	// AWS loads the SDK config; tests aim it at an emulator.
	AWS func(ctx context.Context) (aws.Config, error)
	Now func() time.Time
}

// Run runs one command and returns the process exit code.
func Run(ctx context.Context, args []string, env Env) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(env.Stderr, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	commands := map[string]func(context.Context, []string, Env) error{
		"validate": validate, "plan": plan, "history": showHistory, "rollback": rollback,
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(env.Stderr, "autodeploy: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	err := cmd(ctx, args[1:], env)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, new(usageError)):
		fmt.Fprintf(env.Stderr, "autodeploy %s: %v\n", args[0], err)
		return 2
	}
	fmt.Fprintf(env.Stderr, "autodeploy %s: %v\n", args[0], err)
	return 1
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func flags(name string, env Env) *flag.FlagSet {
	fs := flag.NewFlagSet("autodeploy "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	return nil
}

func validate(_ context.Context, args []string, env Env) error {
	fs := flags("validate", env)
	if err := parse(fs, args); err != nil {
		return err
	}
	file := cmp.Or(fs.Arg(0), "autodeploy.yaml")
	cfg, err := rules.Load(file)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "RULE\tREPOSITORY\tSELECTS\tORDER\tPIN\tTARGET\tPROMOTE")
	for _, r := range cfg.Rules {
		for i, t := range r.Targets {
			target := t.Cluster + "/" + t.Service
			if len(t.Containers) > 0 {
				target += " [" + strings.Join(t.Containers, ",") + "]"
			}
			if t.Account != "" || t.Region != "" {
				target += " in " + strings.Trim(t.Account+" "+t.Region, " ")
			}
			if i == 0 {
				promote := "-"
				if r.Promote != nil {
					promote = r.Promote.Tag
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Repository, r.Selector(), r.EffectiveOrder(), r.Pin, target, promote)
			} else {
				fmt.Fprintf(w, "\t\t\t\t\t%s\t\n", target)
			}
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "%s: %d rules, valid\n", file, len(cfg.Rules))
	return nil
}

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
	jobs, why := deploy.Match(cfg, push)
	if len(jobs) == 0 {
		fmt.Fprintf(env.Stdout, "ignored: %s\n", why)
		return nil
	}
	awsCfg, err := env.AWS(ctx)
	if err != nil {
		return err
	}
	clients := awsenv.NewECSClients(awsCfg)
	for _, j := range jobs {
		fmt.Fprintf(env.Stdout, "\nrule %s → %s/%s\n", j.Rule.Name, j.Target.Cluster, j.Target.Service)
		_, region := j.Target.In(push.Account, push.Region)
		p, err := deploy.PlanTarget(ctx, clients.For(region, j.Target.Role), push, j.Rule, j.Target)
		switch {
		case err != nil:
			fmt.Fprintf(env.Stdout, "  would fail: %v\n", err)
		case p.Register == nil:
			fmt.Fprintf(env.Stdout, "  skip: %s\n", p.Skip)
		default:
			printRegister(env.Stdout, p)
		}
	}
	return nil
}

// printRegister shows the revision a deploy would register, as a diff of
// the image lines and the tags it would set.
func printRegister(w io.Writer, p deploy.Plan) {
	fmt.Fprintf(w, "  would register a new revision of %s (running %s) and point the service at it:\n",
		aws.ToString(p.Running.Family), ecsarn.Revision(p.From))
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

// serviceFlags are the flags history and rollback share.
type serviceFlags struct {
	cluster, service, account, region, table *string
}

func addServiceFlags(fs *flag.FlagSet, env Env) serviceFlags {
	return serviceFlags{
		cluster: fs.String("cluster", "", "ECS cluster name (required)"),
		service: fs.String("service", "", "ECS service name (required)"),
		account: fs.String("account", "", "the service's account (default: the caller's)"),
		region:  fs.String("region", "", "the service's region (default: the SDK's)"),
		table:   fs.String("table", env.Getenv("AUTODEPLOY_TABLE"), "state table (default $AUTODEPLOY_TABLE)"),
	}
}

// resolve checks the flags and fills account and region from AWS.
func (f serviceFlags) resolve(ctx context.Context, env Env) (aws.Config, string, error) {
	if *f.cluster == "" || *f.service == "" {
		return aws.Config{}, "", usageError{"--cluster and --service are required"}
	}
	if *f.table == "" {
		return aws.Config{}, "", usageError{"--table or AUTODEPLOY_TABLE is required"}
	}
	// An ARN names the same service as its name (the deployer's lock and
	// history use names), and gives the account and region.
	for _, flag := range []*string{f.cluster, f.service} {
		if a, err := ecsarn.Parse(*flag); err == nil {
			*flag = a.Name
			*f.account = cmp.Or(*f.account, a.Account)
			*f.region = cmp.Or(*f.region, a.Region)
		}
	}
	cfg, err := env.AWS(ctx)
	if err != nil {
		return aws.Config{}, "", err
	}
	if *f.region != "" {
		cfg.Region = *f.region
	}
	if *f.account == "" {
		id, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil {
			return aws.Config{}, "", fmt.Errorf("find the account (or pass --account): %w", err)
		}
		*f.account = aws.ToString(id.Account)
	}
	return cfg, history.ServiceKey(*f.account, cfg.Region, *f.cluster, *f.service), nil
}

func showHistory(ctx context.Context, args []string, env Env) error {
	fs := flags("history", env)
	sf := addServiceFlags(fs, env)
	limit := fs.Int("limit", 20, "how many deploys")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, key, err := sf.resolve(ctx, env)
	if err != nil {
		return err
	}
	recs, err := history.NewStore(dynamodb.NewFromConfig(cfg), *sf.table).Recent(ctx, key, int32(*limit))
	if err != nil {
		return err
	}
	if len(recs) == 0 {
		fmt.Fprintf(env.Stdout, "no deploys recorded for %s\n", key)
		return nil
	}
	w := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "DEPLOYED\tRULE\tIMAGE\tOUTCOME\tDEPLOYMENT\tREVISION\tREASON")
	for _, r := range recs {
		image := r.Repository + ":" + r.Tag
		if r.Repository == "" {
			image = "-"
		}
		outcome := r.Outcome
		if r.DeploymentOutcome != "" {
			outcome += ", " + r.DeploymentOutcome
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s → %s\t%s\n", r.DeployedAt.UTC().Format(time.RFC3339), r.Rule, image,
			outcome, cmp.Or(r.DeploymentID, "-"), ecsarn.Revision(r.FromTaskDefinition), ecsarn.Revision(r.ToTaskDefinition),
			cmp.Or(r.DeploymentReason, r.Reason))
	}
	return w.Flush()
}

func rollback(ctx context.Context, args []string, env Env) error {
	fs := flags("rollback", env)
	sf := addServiceFlags(fs, env)
	to := fs.String("to", "", "revision number of the service's family to return to (default: the one before the latest autodeploy deploy)")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg, key, err := sf.resolve(ctx, env)
	if err != nil {
		return err
	}
	db := dynamodb.NewFromConfig(cfg)
	store := history.NewStore(db, *sf.table)
	client := ecs.NewFromConfig(cfg)

	// The deployer's own lock on the service, so no deploy runs meanwhile.
	held, err := history.NewServices(lock.New(db, *sf.table), store).Take(ctx, key, "autodeploy rollback")
	if err != nil {
		return err
	}
	finished := false
	defer func() {
		if finished {
			return
		}
		if err := held.Release(context.WithoutCancel(ctx)); err != nil {
			fmt.Fprintf(env.Stderr, "warning: %v\n", err)
		}
	}()
	svcs, err := client.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: sf.cluster, Services: []string{*sf.service}})
	if err != nil {
		return fmt.Errorf("describe service %s/%s: %w", *sf.cluster, *sf.service, err)
	}
	if len(svcs.Services) == 0 {
		return fmt.Errorf("service %s not found in cluster %s", *sf.service, *sf.cluster)
	}
	current := aws.ToString(svcs.Services[0].TaskDefinition)
	target, err := rollbackTarget(ctx, client, store, key, current, *to)
	if err != nil {
		return err
	}
	if target == current {
		return fmt.Errorf("the service already runs %s", ecsarn.Revision(current))
	}
	upd, err := client.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: sf.cluster, Service: sf.service, TaskDefinition: aws.String(target)})
	if err != nil {
		return fmt.Errorf("update service %s/%s to %s: %w", *sf.cluster, *sf.service, target, err)
	}
	var deployment string
	for _, d := range upd.Service.Deployments {
		if aws.ToString(d.Status) == "PRIMARY" {
			deployment = aws.ToString(d.Id)
		}
	}
	now := env.Now()
	finished = true
	if err := held.Finish(context.WithoutCancel(ctx), history.Record{
		Rule: rollbackRule, Account: *sf.account, Region: cfg.Region, Cluster: *sf.cluster, Service: *sf.service,
		FromTaskDefinition: current, ToTaskDefinition: target, DeploymentID: deployment,
		EventID: fmt.Sprintf("rollback-%d", now.UnixNano()), Outcome: string(deploy.Deployed),
		Reason: "rollback by the autodeploy CLI", PushedAt: now, DeployedAt: now,
	}); err != nil {
		return fmt.Errorf("rolled back, but history not written: %w", err)
	}
	fmt.Fprintf(env.Stdout, "rolled %s/%s back: %s → %s (deployment %s)\n", *sf.cluster, *sf.service, ecsarn.Revision(current), ecsarn.Revision(target), cmp.Or(deployment, "-"))
	return nil
}

// rollbackRule is the rule name history records a CLI rollback under.
const rollbackRule = "rollback"

// rollbackTarget is the named revision, or the revision the latest
// autodeploy deploy of the running one replaced. Rollbacks themselves are
// passed over: after a rollback, the next one goes further back (to what the
// deploy that put the restored revision in place replaced), never forward.
func rollbackTarget(ctx context.Context, client *ecs.Client, store *history.Store, key, current, to string) (string, error) {
	if to != "" {
		if _, err := strconv.Atoi(to); err != nil {
			return "", usageError{fmt.Sprintf("--to %q: want a revision number", to)}
		}
		family := ecsarn.Revision(current)
		if i := strings.LastIndex(family, ":"); i >= 0 {
			family = family[:i]
		}
		out, err := client.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(family + ":" + to)})
		if err != nil {
			return "", fmt.Errorf("revision %s:%s: %w", family, to, err)
		}
		return aws.ToString(out.TaskDefinition.TaskDefinitionArn), nil
	}
	recs, err := store.Recent(ctx, key, 50)
	if err != nil {
		return "", err
	}
	for _, r := range recs {
		if r.Rule != rollbackRule && r.Outcome == string(deploy.Deployed) && r.ToTaskDefinition == current && r.FromTaskDefinition != "" {
			return r.FromTaskDefinition, nil
		}
	}
	return "", fmt.Errorf("no recorded deploy put the running %s in place (a rollback restored it, or it was deployed outside autodeploy), so there is nothing earlier to go back to; name a revision with --to", ecsarn.Revision(current))
}
