package cli

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"
	"time"

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
	output := fs.String("output", "text", "text (a table and a summary) or json (the sweep's report, one object)")
	wf := addWaitFlags(fs)
	env = deployedRules(fs, env, config, "this sweep is not the one they run")
	if err := parse(fs, args); err != nil {
		return err
	}
	asJSON, err := outputMode(*output)
	if err != nil {
		return err
	}
	if err := wf.check(); err != nil {
		return err
	}
	if *wf.wait && *dryRun {
		return usageError{"--wait follows deploys; a --dry-run makes none"}
	}
	seen := newKinds() // the client that described each service, for --wait
	sw, store, o, err := sweeper(ctx, env, *config, *table, seen)
	if err != nil {
		return err
	}
	o.DryRun = *dryRun
	started := env.Now()
	rep, sweepErr := sw.Sweep(ctx, o)
	sum := summarize(rep, *dryRun)
	out := reconcileOutput{EventID: rep.EventID, DryRun: *dryRun, Targets: []reconcileTarget{}, Behind: rep.Drift,
		Deployed: sum.deployed, Queued: sum.queued, Failed: sum.failed, Cleanups: rep.Cleanups, Summary: sum.line}
	for _, l := range rep.Lines {
		out.Targets = append(out.Targets, reconcileTarget{Rule: l.Rule, Account: l.Account, Region: l.Region, Cluster: l.Cluster,
			Service: l.Service, Repository: l.Repository, Running: l.Running, RunningTag: l.RunningTag, NewestTag: l.NewestTag,
			NewestDigest: l.NewestDigest, Outcome: l.Outcome, Reason: l.Reason, Retryable: l.Retryable, Published: l.Published})
	}
	if !asJSON {
		w := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "RULE\tTARGET\tNEWEST\tOUTCOME\tREASON")
		for _, l := range rep.Lines {
			fmt.Fprintf(w, "%s\t%s/%s\t%s\t%s\t%s\n", l.Rule, l.Cluster, l.Service, dash(image(l.NewestTag, l.NewestDigest)), l.Outcome, l.Reason)
		}
		if err := w.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(env.Stdout, sum.line)
		if rep.Cleanups > 0 {
			fmt.Fprintf(env.Stdout, "clean-up: %d %s cleaned within the sweep's budget (each action a msg=\"cleanup\" line on stderr)\n",
				rep.Cleanups, map[bool]string{true: "family", false: "families"}[rep.Cleanups == 1])
		}
	}
	var waitErr error
	if *wf.wait {
		progress := env.Stdout
		if asJSON {
			progress = env.Stderr
		}
		ws := sweepWaits(rep, seen, started)
		var results []waitResult
		results, waitErr = waitAll(ctx, wf.follower(store, nil, env, progress), ws, started.Add(*wf.timeout))
		waits := []reconcileWait{} // "waits": [] with --wait, even with nothing to wait for
		for i, res := range results {
			waits = append(waits, reconcileWait{Cluster: ws[i].cluster, Service: ws[i].service, waitResult: res})
		}
		out.Waits = &waits
		if len(ws) == 0 {
			fmt.Fprintln(progress, "nothing to wait for: the sweep deployed and queued nothing")
		}
	}
	if asJSON {
		if err := writeJSON(env.Stdout, out); err != nil {
			return err
		}
	}
	return cmp.Or(sweepErr, waitErr)
}

// reconcileOutput is `reconcile --output json`: the sweep's report, its
// counts and, with --wait, how each deploy ended. Documented in the
// README; keep its shape stable.
type reconcileOutput struct {
	EventID  string            `json:"event_id"`
	DryRun   bool              `json:"dry_run"`
	Targets  []reconcileTarget `json:"targets"`
	Behind   int               `json:"behind"`
	Deployed int               `json:"deployed"`
	Queued   int               `json:"queued"`
	Failed   int               `json:"failed"`
	Cleanups int               `json:"cleanups"`
	Summary  string            `json:"summary"`
	// Waits is set with --wait only (a pointer: [] then, not left out).
	Waits *[]reconcileWait `json:"waits,omitempty"`
}

// reconcileTarget is one report line (reconcile.Line, field by field: its
// own tags may change with the sweep, this shape does not).
type reconcileTarget struct {
	Rule         string `json:"rule"`
	Account      string `json:"account"`
	Region       string `json:"region"`
	Cluster      string `json:"cluster"`
	Service      string `json:"service"`
	Repository   string `json:"repository"`
	Running      string `json:"running,omitempty"`
	RunningTag   string `json:"running_tag,omitempty"`
	NewestTag    string `json:"newest_tag,omitempty"`
	NewestDigest string `json:"newest_digest,omitempty"`
	Outcome      string `json:"outcome"`
	Reason       string `json:"reason,omitempty"`
	Retryable    bool   `json:"retryable,omitempty"`
	Published    string `json:"published,omitempty"`
}

// reconcileWait is how one target's deploy ended, with --wait.
type reconcileWait struct {
	Cluster string `json:"cluster"`
	Service string `json:"service"`
	waitResult
}

// sweepSummary counts what the sweep did, line by line: what it says is
// what happened, not what it meant to do.
type sweepSummary struct {
	deployed, queued, failed int
	line                     string
}

// summarize is the sweep's summary line: "2 of 3 targets behind; deployed
// 1, queued 1, failed 0" (failed counts every target that failed, behind
// or not), or for a dry run "1 of 3 targets behind; would deploy 1 (dry
// run)".
func summarize(rep reconcile.Report, dryRun bool) sweepSummary {
	var s sweepSummary
	for _, l := range rep.Lines {
		switch l.Outcome {
		case reconcile.Deployed:
			s.deployed++
		case reconcile.Queued:
			s.queued++
		case reconcile.Failed:
			s.failed++
		}
	}
	head := fmt.Sprintf("%d of %d %s behind", rep.Drift, len(rep.Lines), sweepPlural(len(rep.Lines), "target", "targets"))
	switch {
	case dryRun && rep.Drift > 0:
		s.line = fmt.Sprintf("%s; would deploy %d (dry run)", head, rep.Drift)
	case rep.Drift == 0 && s.failed == 0:
		s.line = head + "; nothing to do"
	default:
		s.line = fmt.Sprintf("%s; deployed %d, queued %d, failed %d", head, s.deployed, s.queued, s.failed)
	}
	return s
}

func sweepPlural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// sweepWaits are the deploys a sweep made or queued, each to follow by its
// digest from the sweep's start, through the client that described its
// service (its account, region and role): one the sweep did not describe
// has no deploy to follow.
func sweepWaits(rep reconcile.Report, seen *kinds, started time.Time) []waitFor {
	var ws []waitFor
	for _, l := range rep.Lines {
		if l.Outcome != reconcile.Deployed && l.Outcome != reconcile.Queued {
			continue
		}
		key := history.ServiceKey(l.Account, l.Region, l.Cluster, l.Service)
		s, ok := seen.get(key)
		if !ok {
			continue
		}
		ws = append(ws, waitFor{cluster: l.Cluster, service: l.Service, key: key, digest: l.NewestDigest, after: started, client: s.client})
	}
	return ws
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
