package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/bluegreen"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/deploy"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/gate"
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
	sw, _, o, err := sweeper(ctx, env, *config, *table, nil)
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
	if rep.Cleanups > 0 {
		fmt.Fprintf(env.Stdout, "clean-up: %d %s cleaned within the sweep's budget (each action a msg=\"cleanup\" line on stderr)\n",
			rep.Cleanups, map[bool]string{true: "family", false: "families"}[rep.Cleanups == 1])
	}
	return sweepErr
}

// cliGates are the rules' gates as the CLI reads them: the state table,
// scan results through each registry's role, no notices or timers.
func cliGates(cfg *rules.Config, central rules.Place, db *dynamodb.Client, table string, clients *awsenv.Clients, env Env) *gate.Gates {
	return &gate.Gates{Rules: cfg, Central: central, Store: gate.NewStore(db, table), Now: env.Now,
		Log:   slog.New(slog.NewJSONHandler(env.Stderr, nil)),
		Scans: func(region, role string) gate.ScanReader { return clients.ECR(region, role) }}
}

// sweeper builds, for the operator's machine, the sweep the deployer runs:
// same rules, same table, same deploy path, the caller's credentials. It
// returns the history store too, for what a command reads besides. With
// seen, the services the sweep describes are noted there.
func sweeper(ctx context.Context, env Env, config, table string, seen *kinds) (*reconcile.Sweeper, *history.Store, reconcile.Options, error) {
	none := reconcile.Options{}
	if table == "" {
		return nil, nil, none, usageError{"--table or AUTODEPLOY_TABLE is required"}
	}
	cfg, err := rules.Load(config)
	if err != nil {
		return nil, nil, none, err
	}
	awsCfg, err := env.AWS(ctx)
	if err != nil {
		return nil, nil, none, err
	}
	account, err := awsenv.Account(ctx, awsCfg)
	if err != nil {
		return nil, nil, none, fmt.Errorf("find the central account: %w", err)
	}
	central := rules.Place{Account: account, Region: awsCfg.Region}
	if err := cfg.CheckOwners(central); err != nil {
		return nil, nil, none, err
	}
	clients := awsenv.NewClients(awsCfg)
	db := awsenv.StateTable(awsCfg)
	store := history.NewStore(db, table)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil)) // the table printed is the report
	client := func(region, role string) deploy.ECS {
		c := env.ecsClient(clients.ECS(region, role))
		if seen != nil {
			c = seen.observe(c)
		}
		return c
	}
	d := &deploy.Deployer{Rules: cfg, Central: central, ECS: client,
		Services: history.NewServices(lock.New(db, table), store), Log: quiet, Concurrency: 4, Now: env.Now,
		SSM:        func(region, role string) deploy.SSM { return clients.SSM(region, role) },
		CodeDeploy: func(region, role string) bluegreen.CodeDeploy { return clients.CodeDeploy(region, role) },
		// A dry run (status) only reads them; a sweep from here opens what
		// the deployer's would, though it notices nothing (status lists it).
		Gates: cliGates(cfg, central, db, table, clients, env)}
	sw := &reconcile.Sweeper{Rules: cfg, ECR: func(region, role string) reconcile.ECR { return clients.ECR(region, role) }, ECS: d.ECS,
		States: store, Deployer: d, Log: quiet, Now: env.Now,
		SSM: func(region, role string) reconcile.ParameterStore { return clients.SSM(region, role) }}
	// As the schedule's sweep does without a work queue: clean-up after the
	// deploys, within the sweep's budget per place, through each place's
	// deploy role; its msg="cleanup" lines go to stderr. A dry run (and so
	// status) cleans nothing.
	marks := &reconcile.TableMarks{DB: db, Table: table, Now: env.Now}
	sw.Marks = marks
	sw.Cleanup = &reconcile.CleanupRunner{
		ECS:     func(region, role string) reconcile.CleanupECS { return clients.ECS(region, role) },
		History: store,
		SSM:     func(region, role string) reconcile.ParameterReader { return clients.SSM(region, role) },
		Marks:   marks,
		Places:  lock.New(db, table),
		Log:     slog.New(slog.NewJSONHandler(env.Stderr, nil)),
		Rules:   cfg, Central: central,
	}
	// The CLI sends no notices: it reads the gates and leaves asking and
	// judging to the deployer's sweep, which tells people.
	o := reconcile.Options{EventID: fmt.Sprintf("cli-%d", env.Now().UnixNano()), ReadGates: true}
	return sw, store, o, nil
}
