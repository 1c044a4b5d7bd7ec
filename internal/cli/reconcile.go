package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/deploy"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/lock"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/reconcile"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

func reconcileCmd(ctx context.Context, args []string, env Env) error {
	fs := flags("reconcile", env)
	config := fs.String("config", "autodeploy.yaml", "rules file")
	table := fs.String("table", env.Getenv("AUTODEPLOY_TABLE"), "state table (default $AUTODEPLOY_TABLE)")
	dryRun := fs.Bool("dry-run", false, "only say what is behind; deploy nothing")
	if err := parse(fs, args); err != nil {
		return err
	}
	sw, o, err := sweeper(ctx, env, *config, *table)
	if err != nil {
		return err
	}
	o.DryRun = *dryRun
	rep, sweepErr := sw.Sweep(ctx, o)
	w := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "RULE\tTARGET\tNEWEST\tOUTCOME\tREASON")
	for _, l := range rep.Lines {
		fmt.Fprintf(w, "%s\t%s/%s\t%s\t%s\t%s\n", l.Rule, l.Cluster, l.Service, dash(image(l.NewestTag, l.NewestDigest)), l.Outcome, l.Reason)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	verb := "deployed"
	if *dryRun {
		verb = "would deploy (dry run)"
	}
	fmt.Fprintf(env.Stdout, "%d of %d targets behind; %s\n", rep.Drift, len(rep.Lines), map[bool]string{true: verb + " them", false: "nothing to do"}[rep.Drift > 0])
	return sweepErr
}

// sweeper builds, for the operator's machine, the sweep the deployer runs:
// same rules, same table, same deploy path, the caller's credentials.
func sweeper(ctx context.Context, env Env, config, table string) (*reconcile.Sweeper, reconcile.Options, error) {
	if table == "" {
		return nil, reconcile.Options{}, usageError{"--table or AUTODEPLOY_TABLE is required"}
	}
	cfg, err := rules.Load(config)
	if err != nil {
		return nil, reconcile.Options{}, err
	}
	awsCfg, err := env.AWS(ctx)
	if err != nil {
		return nil, reconcile.Options{}, err
	}
	id, err := sts.NewFromConfig(awsCfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return nil, reconcile.Options{}, fmt.Errorf("find the account: %w", err)
	}
	clients := awsenv.NewClients(awsCfg)
	db := awsenv.StateTable(awsCfg)
	store := history.NewStore(db, table)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil)) // the table printed is the report
	d := &deploy.Deployer{Rules: cfg, ECS: func(region, role string) deploy.ECS { return clients.ECS(region, role) },
		Services: history.NewServices(lock.New(db, table), store), Log: quiet, Concurrency: 4, Now: env.Now,
		SSM: func(region, role string) deploy.SSM { return clients.SSM(region, role) }}
	registry := ecr.NewFromConfig(awsCfg)
	sw := &reconcile.Sweeper{Rules: cfg, ECR: func(string, string) reconcile.ECR { return registry }, ECS: d.ECS,
		States: store, Deployer: d, Log: quiet, Now: env.Now,
		SSM: func(region, role string) reconcile.ParameterStore { return clients.SSM(region, role) }}
	o := reconcile.Options{EventID: fmt.Sprintf("cli-%d", env.Now().UnixNano()), Account: aws.ToString(id.Account), Region: awsCfg.Region}
	return sw, o, nil
}

func status(ctx context.Context, args []string, env Env) error {
	fs := flags("status", env)
	config := fs.String("config", "autodeploy.yaml", "rules file")
	table := fs.String("table", env.Getenv("AUTODEPLOY_TABLE"), "state table (default $AUTODEPLOY_TABLE)")
	if err := parse(fs, args); err != nil {
		return err
	}
	sw, o, err := sweeper(ctx, env, *config, *table)
	if err != nil {
		return err
	}
	o.DryRun = true
	rep, sweepErr := sw.Sweep(ctx, o)
	awsCfg, err := env.AWS(ctx)
	if err != nil {
		return err
	}
	store := history.NewStore(awsenv.StateTable(awsCfg), *table)
	w := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "RULE\tTARGET\tRUNNING\tNEWEST\tSTATE\tPUBLISHED\tLAST DEPLOY")
	for _, l := range rep.Lines {
		last := "-"
		recs, err := store.Recent(ctx, history.ServiceKey(l.Account, l.Region, l.Cluster, l.Service), 1)
		if err != nil {
			return err
		}
		if len(recs) > 0 {
			r := recs[0]
			last = r.Outcome
			if r.DeploymentOutcome != "" {
				last += ", " + r.DeploymentOutcome
			}
			last += " " + r.DeployedAt.UTC().Format(time.RFC3339)
			if r.Tag != "" {
				last += " (" + r.Tag + ")"
			}
		}
		fmt.Fprintf(w, "%s\t%s/%s\t%s\t%s\t%s\t%s\t%s\n", l.Rule, l.Cluster, l.Service, dash(running(l)),
			dash(image(l.NewestTag, l.NewestDigest)), stateOf(l), dash(l.Published), last)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return sweepErr
}

// stateOf says where a target stands, in the words of `autodeploy status`.
func stateOf(l reconcile.Line) string {
	switch {
	case l.State.Hold != nil:
		return l.State.Hold.String()
	case l.Outcome == reconcile.InSync:
		return "in sync"
	case l.Outcome == reconcile.Behind:
		return "behind"
	case l.NewestDigest != "" && l.State.DigestFailed(l.NewestDigest):
		return "last deployment failed (" + l.NewestTag + ")"
	}
	return l.Outcome + ": " + l.Reason
}

// running is the running image as tag and short digest, as far as known.
func running(l reconcile.Line) string {
	ref := l.Running
	if i := strings.LastIndex(ref, "@"); i >= 0 {
		return image(l.RunningTag, ref[i+1:])
	}
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref[i+1:]
	}
	return ref
}

// image is "tag sha256:0123456789ab", docker's short digest.
func image(tag, digest string) string {
	if len(digest) > 19 {
		digest = digest[:19]
	}
	return strings.TrimSpace(tag + " " + digest)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
