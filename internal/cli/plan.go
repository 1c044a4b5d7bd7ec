package cli

import (
	"cmp"
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
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/gate"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rollout"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/taskdef"
)

func plan(ctx context.Context, args []string, env Env) error {
	fs := flags("plan", env)
	eventFile := fs.String("event", "", "ECR \"ECR Image Action\" event (JSON file)")
	ruleName := fs.String("rule", "", "instead of --event: the rule, with --tag (the image its registry holds under the tag, as if just pushed)")
	tag := fs.String("tag", "", "with --rule: the tag")
	config := fs.String("config", "autodeploy.yaml", "rules file")
	table := fs.String("table", env.Getenv("AUTODEPLOY_TABLE"), "state table, for holds, failed digests and gates (default $AUTODEPLOY_TABLE)")
	env = deployedRules(fs, env, config, "this plan is not what they do")
	if err := parse(fs, args); err != nil {
		return err
	}
	switch {
	case *eventFile != "" && (*ruleName != "" || *tag != ""):
		return usageError{"give --event, or --rule and --tag, not both"}
	case *eventFile == "" && *ruleName == "" && *tag == "":
		return usageError{"--event is required (or --rule R --tag T)"}
	case *eventFile == "" && (*ruleName == "" || *tag == ""):
		return usageError{"--rule and --tag go together"}
	}
	cfg, err := rules.Load(*config)
	if err != nil {
		return err
	}
	var push ecrevent.Push
	var only *rules.Rule
	if *eventFile != "" {
		data, err := os.ReadFile(*eventFile)
		if err != nil {
			return fmt.Errorf("read event: %w", err)
		}
		push, err = ecrevent.Parse(data)
		if ig, ok := ecrevent.IsIgnored(err); ok {
			fmt.Fprintf(env.Stdout, "ignored: %s\n", ig.Reason)
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", *eventFile, err)
		}
		fmt.Fprintf(env.Stdout, "push %s:%s (%s) at %s, event %s\n", push.Repository, push.Tag, push.Digest, push.Time.UTC().Format(time.RFC3339), push.EventID)
	} else {
		for _, r := range cfg.Rules {
			if r.Name == *ruleName {
				only = r
			}
		}
		if only == nil {
			return fmt.Errorf("no rule %q in %s", *ruleName, *config)
		}
	}
	awsCfg, err := env.AWS(ctx)
	if err != nil {
		return err
	}
	account, err := awsenv.Account(ctx, awsCfg)
	if err != nil {
		return fmt.Errorf("find the central account: %w", err)
	}
	central := rules.Place{Account: account, Region: awsCfg.Region}
	if err := cfg.CheckOwners(central); err != nil {
		return err
	}
	clients := awsenv.NewClients(awsCfg)
	if only != nil {
		// The image as the rule's registry holds it, as its push would
		// bring it (what an approval's notice asks about).
		registry := only.RegistryOf(central)
		img, err := tagImage(ctx, clients.ECR(registry.Region, only.RegistryRole(central)), registry, only.Repository, *tag)
		if err != nil {
			return err
		}
		push = ecrevent.Push{EventID: "plan", Account: registry.Account, Region: registry.Region, Time: aws.ToTime(img.ImagePushedAt),
			Repository: only.Repository, Tag: *tag, Digest: aws.ToString(img.ImageDigest)}
		fmt.Fprintf(env.Stdout, "image %s:%s (%s) pushed at %s, planned for rule %s\n", push.Repository, push.Tag, push.Digest,
			push.Time.UTC().Format(time.RFC3339), only.Name)
	}
	jobs, why := deploy.Match(cfg, central, push)
	if only != nil {
		jobs = slices.DeleteFunc(jobs, func(j deploy.Job) bool { return j.Rule != only })
		if ok, reason := only.Matches(push.Tag); !ok {
			why = fmt.Sprintf("rule %s does not take it: %s", only.Name, reason)
		} else if len(jobs) == 0 {
			why = fmt.Sprintf("rule %s does not deploy it: %s", only.Name, cmp.Or(why, "no target"))
		}
	}
	if len(jobs) == 0 {
		fmt.Fprintf(env.Stdout, "ignored: %s\n", why)
		return nil
	}
	states, err := planStates(ctx, awsCfg, *table, central, jobs)
	if err != nil {
		return err
	}
	if states == nil {
		fmt.Fprintln(env.Stdout, "not checked: holds and failed digests (give --table or set AUTODEPLOY_TABLE to decide as the deployer does)")
	}
	var groups bluegreen.Groups
	cleanups, err := planCleanups(ctx, env, cfg, central, clients, awsCfg, *table, jobs)
	if err != nil {
		return err
	}
	gates := planGates(awsCfg, *table, cfg, central, clients, env, push)
	for _, j := range jobs {
		fmt.Fprintf(env.Stdout, "\nrule %s → %s/%s\n", j.Rule.Name, j.Target.Cluster, j.Target.Service)
		// The deployer's order: the rule's gates first, then the service.
		if line, stop := gates.line(ctx, j.Rule); line != "" {
			fmt.Fprintf(env.Stdout, "  %s\n", line)
			if stop {
				continue
			}
		}
		at, role := j.Target.Where(central), j.Target.RoleFor(central)
		region := at.Region
		// Then the service's state, then the plan.
		if why := deploy.Blocked(states[history.ServiceKey(at.Account, at.Region, j.Target.Cluster, j.Target.Service)], push.Digest); why != "" {
			fmt.Fprintf(env.Stdout, "  skip: %s\n", why)
			continue
		}
		client := env.ecsClient(clients.ECS(region, role))
		p, err := deploy.PlanTarget(ctx, client, push, j.Rule, j.Target)
		if p.Service != nil {
			printRollout(ctx, env, client, rollout.KindOf(*p.Service), j.Target)
		}
		switch {
		case err != nil:
			fmt.Fprintf(env.Stdout, "  would fail: %v\n", err)
		case p.Register == nil:
			fmt.Fprintf(env.Stdout, "  skip: %s\n", p.Skip)
		default:
			printRegister(env.Stdout, p)
			if p.Kind.IsCodeDeployControlled() {
				printAppSpec(ctx, env.Stdout, clients.CodeDeploy(region, role), &groups, region+"|"+role, p, j.Target)
			}
		}
		for _, c := range cleanups {
			if c.runs(at, j.Target) {
				fmt.Fprintf(env.Stdout, "  clean-up of %s: %s\n", c.cmd.Family, c.line())
			}
		}
	}
	return nil
}

// plannedGates says what each rule's gates would say of the push, asked
// once per rule through gate.Gates.Peek (which writes nothing).
type plannedGates struct {
	gates *gate.Gates // nil: no table to read them from
	push  ecrevent.Push
	said  map[*rules.Rule]gateLine
}

type gateLine struct {
	line string
	stop bool
}

func planGates(awsCfg aws.Config, table string, cfg *rules.Config, central rules.Place, clients *awsenv.Clients, env Env, push ecrevent.Push) *plannedGates {
	p := &plannedGates{push: push, said: map[*rules.Rule]gateLine{}}
	if table != "" {
		p.gates = cliGates(cfg, central, awsenv.StateTable(awsCfg), table, clients, env)
	}
	return p
}

// line is what rule r's gates say, and whether the push stops there (it
// waits, or is refused); "" for a rule without gates.
func (p *plannedGates) line(ctx context.Context, r *rules.Rule) (string, bool) {
	if !gate.Gated(r) {
		return "", false
	}
	if l, ok := p.said[r]; ok {
		return l.line, l.stop
	}
	l := p.decide(ctx, r)
	p.said[r] = l
	return l.line, l.stop
}

func (p *plannedGates) decide(ctx context.Context, r *rules.Rule) gateLine {
	if p.gates == nil {
		return gateLine{line: "gates not checked (give --table or set AUTODEPLOY_TABLE): what follows is once approval:/scan: let it through"}
	}
	v, err := p.gates.Peek(ctx, r, p.push)
	switch {
	case err != nil:
		return gateLine{line: "would fail (and be retried): gates not read: " + err.Error(), stop: true}
	case v.Pass:
		return gateLine{line: "gates: passed"}
	case v.Final:
		return gateLine{line: "not deployed: " + deploy.GateReason(v), stop: true}
	}
	line := "waits: " + deploy.GateReason(v)
	if v.Gate == gate.KindApproval {
		// Only an approval a push asked for can be approved.
		if a, found, err := p.gates.Store.GetApproval(ctx, r.Name, p.push.Digest); err == nil && found && a.State == gate.Pending {
			line += fmt.Sprintf("\n  approve: autodeploy approve --rule %s --digest %s", r.Name, p.push.Digest)
		}
	}
	return gateLine{line: line, stop: true}
}

// planCleanups previews the clean-up of the families the push's targets of
// rules with cleanup: run (nil when none has).
func planCleanups(ctx context.Context, env Env, cfg *rules.Config, central rules.Place, clients *awsenv.Clients, awsCfg aws.Config, table string, jobs []deploy.Job) ([]cleanupPreview, error) {
	var store *history.Store
	if table != "" {
		store = history.NewStore(awsenv.StateTable(awsCfg), table)
	}
	pushed := func(r *rules.Rule, t rules.Target) bool {
		key := func(t rules.Target) string {
			at := t.Where(central)
			return history.ServiceKey(at.Account, at.Region, t.Cluster, t.Service)
		}
		return slices.ContainsFunc(jobs, func(j deploy.Job) bool { return j.Rule == r && key(j.Target) == key(t) })
	}
	planner := &cleanupPlanner{rules: cfg, central: central, clients: clients, env: env, store: store}
	return planner.plan(ctx, pushed)
}

// printRollout names the target's kind of rollout and, for an ECS-native
// service with a deployment in flight, where it stands.
func printRollout(ctx context.Context, env Env, client rollout.ServiceDeploymentReader, kind rollout.Kind, t rules.Target) {
	stage, err := nativeStage(ctx, client, kind, t.Cluster, t.Service, env.Now())
	if err != nil {
		stage = "stage not read: " + err.Error()
	}
	if stage != "" {
		stage = " · in flight: " + stage
	}
	fmt.Fprintf(env.Stdout, "  rollout: %s%s\n", kind, stage)
}

// printRegister shows the revision a deploy would register, as a diff of
// the image lines and the tags it would set.
func printRegister(w io.Writer, p deploy.Plan) {
	then := "point the service at it"
	if p.Kind.IsCodeDeployControlled() {
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

// planStates reads the state of every target the push reaches (holds,
// failed digests), as the deployer reads it when it locks; nil without a
// table.
func planStates(ctx context.Context, cfg aws.Config, table string, central rules.Place, jobs []deploy.Job) (map[string]history.ServiceState, error) {
	if table == "" {
		return nil, nil
	}
	var keys []string
	for _, j := range jobs {
		at := j.Target.Where(central)
		keys = append(keys, history.ServiceKey(at.Account, at.Region, j.Target.Cluster, j.Target.Service))
	}
	states, err := history.NewStore(awsenv.StateTable(cfg), table).States(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("read the services' holds and failed digests from table %s: %w", table, err)
	}
	return states, nil
}
