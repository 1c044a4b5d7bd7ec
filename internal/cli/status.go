package cli

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/gate"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/reconcile"
)

func status(ctx context.Context, args []string, env Env) error {
	fs := flags("status", env)
	config := fs.String("config", "autodeploy.yaml", "rules file")
	table := fs.String("table", env.Getenv("AUTODEPLOY_TABLE"), "state table (default $AUTODEPLOY_TABLE)")
	env = deployedRules(fs, env, config, "this status is not what they see")
	output := outputFlag(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	asJSON, err := checkOutput(*output)
	if err != nil {
		return err
	}
	seen := newKinds()
	sw, store, o, err := sweeper(ctx, env, *config, *table, seen)
	if err != nil {
		return err
	}
	o.DryRun = true
	rep, sweepErr := sw.Sweep(ctx, o)
	out := StatusOutput{Targets: []StatusTarget{}, Approvals: []OpenGate{}, Gates: []OpenGate{}, Cleanups: []StatusClean{}}
	stages := map[string]string{} // a service of several rules is read once
	for _, l := range rep.Lines {
		key := history.ServiceKey(l.Account, l.Region, l.Cluster, l.Service)
		ro, ok := stages[key]
		if !ok {
			ro = rolloutOf(ctx, env, seen, key, l)
			stages[key] = ro
		}
		st := StatusTarget{Rule: l.Rule, Account: l.Account, Region: l.Region, Cluster: l.Cluster, Service: l.Service,
			Rollout: ro, Running: running(l), Newest: image(l.NewestTag, l.NewestDigest), State: stateOf(l),
			InSync: l.State.Hold == nil && l.Outcome == reconcile.InSync, Held: l.State.Hold != nil, Published: l.Published}
		recs, err := store.Recent(ctx, key, 1)
		if err != nil {
			return err
		}
		if len(recs) > 0 {
			r := recs[0]
			st.LastDeploy = &LastDeploy{At: r.DeployedAt.UTC(), Outcome: r.Outcome, Deployment: r.DeploymentOutcome, Tag: r.Tag}
		}
		out.Targets = append(out.Targets, st)
	}
	if out.Approvals, out.Gates, err = openGates(ctx, env, *table); err != nil {
		return err
	}
	if out.Cleanups, err = statusCleanups(ctx, env, sw, store, seen); err != nil {
		return err
	}
	if asJSON {
		if sweepErr != nil {
			out.Error = explain(sweepErr, scope{})
		}
		if err := writeJSON(env.Stdout, out); err != nil {
			return err
		}
		return sweepErr
	}
	w := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "RULE\tTARGET\tROLLOUT\tRUNNING\tNEWEST\tSTATE\tPUBLISHED\tLAST DEPLOY")
	for _, t := range out.Targets {
		last := "-"
		if r := t.LastDeploy; r != nil {
			last = r.Outcome
			if r.Deployment != "" {
				last += ", " + r.Deployment
			}
			last += " " + r.At.Format(time.RFC3339)
			if r.Tag != "" {
				last += " (" + r.Tag + ")"
			}
		}
		fmt.Fprintf(w, "%s\t%s/%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.Rule, t.Cluster, t.Service, dash(t.Rollout), dash(t.Running),
			dash(t.Newest), cut(t.State, 80), dash(t.Published), last)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := printGates(env, out.Approvals, out.Gates); err != nil {
		return err
	}
	if len(out.Cleanups) > 0 {
		fmt.Fprintln(env.Stdout, "\nCLEAN-UP (what the next one would do, per family)")
		for _, c := range out.Cleanups {
			fmt.Fprintf(env.Stdout, "%s in %s %s (%s; rules %s): %s\n", c.Family, c.Account, c.Region,
				strings.Join(c.Services, ", "), strings.Join(c.Rules, ", "), c.Plan)
		}
	}
	return sweepErr
}

// openGates reads the gates that are open: approvals that wait for a
// person (with the command that approves each), and scans that wait for
// their result and bakes under way.
func openGates(ctx context.Context, env Env, table string) (approvals, others []OpenGate, err error) {
	awsCfg, err := env.AWS(ctx)
	if err != nil {
		return nil, nil, err
	}
	store := gate.NewStore(awsenv.StateTable(awsCfg), table)
	open, err := store.Open(ctx, "", "")
	if err != nil {
		return nil, nil, fmt.Errorf("read the open gates from table %s: %w", table, err)
	}
	approvals, others = []OpenGate{}, []OpenGate{}
	for _, o := range open {
		g := OpenGate{Rule: o.Rule, Kind: string(o.Kind), Tag: o.Tag, Digest: o.Digest, Due: o.Due.UTC()}
		if o.Kind != gate.KindApproval {
			others = append(others, g)
			continue
		}
		// The index holds no ask time; the approval does.
		a, found, err := store.GetApproval(ctx, o.Rule, o.Digest)
		if err != nil {
			return nil, nil, err
		}
		if found {
			asked := a.RequestedAt.UTC()
			g.AskedAt = &asked
		}
		g.Command = "autodeploy approve --rule " + o.Rule + " --digest " + o.Digest
		approvals = append(approvals, g)
	}
	return approvals, others, nil
}

// printGates lists the open gates; nothing when none is.
func printGates(env Env, approvals, others []OpenGate) error {
	if len(approvals) > 0 {
		fmt.Fprintln(env.Stdout, "\nWAITING FOR APPROVAL")
		w := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "RULE\tIMAGE\tASKED\tEXPIRES\tAPPROVE WITH")
		for _, o := range approvals {
			asked := "-"
			if o.AskedAt != nil {
				asked = o.AskedAt.Format(time.RFC3339)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", o.Rule, image(o.Tag, o.Digest), asked, o.Due.Format(time.RFC3339), o.Command)
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	if len(others) > 0 {
		fmt.Fprintln(env.Stdout, "\nGATES UNDER WAY")
		w := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "RULE\tIMAGE\tGATE")
		for _, o := range others {
			what := "waits for its scan (until " + o.Due.Format(time.RFC3339) + ")"
			if o.Kind == string(gate.KindBake) {
				what = "bakes until " + o.Due.Format(time.RFC3339) + ", then is promoted unless an alarm fires"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\n", o.Rule, image(o.Tag, o.Digest), what)
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// statusCleanups says, for every family a rule with cleanup: runs, what
// its next clean-up would deregister (read-only: the services the sweep
// described, one listing per family, history's rollback candidates and
// the published parameters).
func statusCleanups(ctx context.Context, env Env, sw *reconcile.Sweeper, store *history.Store, seen *kinds) ([]StatusClean, error) {
	cleans := []StatusClean{}
	if len(sw.Rules.CleanupRules()) == 0 {
		return cleans, nil
	}
	awsCfg, err := env.AWS(ctx)
	if err != nil {
		return nil, err
	}
	planner := &cleanupPlanner{rules: sw.Rules, central: sw.Deployer.Central, clients: awsenv.NewClients(awsCfg), env: env, store: store, seen: seen}
	previews, err := planner.plan(ctx, nil)
	if err != nil {
		return nil, err
	}
	for _, p := range previews {
		cleans = append(cleans, StatusClean{Family: p.cmd.Family, Account: p.cmd.Account, Region: p.cmd.Region,
			Services: p.services, Rules: p.cmd.Rules, Plan: p.line()})
	}
	return cleans, nil
}

// rolloutOf is a target's rollout kind and, for an ECS-native service
// with a deployment in flight, its stage ("-" for a service the sweep did
// not describe). A stage that cannot be read is said, and the table goes on.
func rolloutOf(ctx context.Context, env Env, seen *kinds, key string, l reconcile.Line) string {
	s, ok := seen.get(key)
	if !ok {
		return "-"
	}
	stage, err := nativeStage(ctx, s.client, s.kind, l.Cluster, l.Service, env.Now())
	if err != nil {
		fmt.Fprintf(env.Stderr, "warning: where the deployment of %s/%s stands was not read: %s\n", l.Cluster, l.Service,
			explain(err, scope{cluster: l.Cluster, service: l.Service, account: l.Account, region: l.Region}))
		stage = "stage not read"
	}
	return rolloutLabel(s.kind, stage)
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
