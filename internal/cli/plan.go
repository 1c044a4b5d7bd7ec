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
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/redrive"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rollout"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/taskdef"
)

func plan(ctx context.Context, args []string, env Env) error {
	fs := flags("plan", env)
	eventFile := fs.String("event", "", "ECR \"ECR Image Action\" event (a JSON file, - for stdin), or a Lambda failure record around one (copied from a dead-letter queue)")
	ruleName := fs.String("rule", "", "instead of --event: the rule, with --tag (the image its registry holds under the tag, as if just pushed)")
	tag := fs.String("tag", "", "with --rule: the tag")
	config := fs.String("config", "autodeploy.yaml", "rules file")
	table := fs.String("table", env.Getenv("AUTODEPLOY_TABLE"), "state table, for holds, failed digests and gates (default $AUTODEPLOY_TABLE)")
	env = deployedRules(fs, env, config, "this plan is not what they do")
	output := outputFlag(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	asJSON, err := checkOutput(*output)
	if err != nil {
		return err
	}
	// The text goes to stdout; with --output json the same run fills out.
	stdout := env.Stdout
	if asJSON {
		stdout = io.Discard
	}
	out := PlanOutput{Targets: []PlanTarget{}, NotMatched: []RuleMiss{}, StateChecked: *table != ""}
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
		data, err := readEvent(*eventFile, env)
		if err != nil {
			return err
		}
		push, err = ecrevent.Parse(data)
		if ig, ok := ecrevent.IsIgnored(err); ok {
			fmt.Fprintf(stdout, "ignored: %s\n", ig.Reason)
			out.Ignored = ig.Reason
			return planDone(env, asJSON, out)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", *eventFile, err)
		}
		out.Push = &PlanPush{Repository: push.Repository, Tag: push.Tag, Digest: push.Digest, At: push.Time.UTC(), EventID: push.EventID,
			Account: push.Account, Region: push.Region}
		fmt.Fprintf(stdout, "push %s:%s (%s) at %s, event %s\n", push.Repository, push.Tag, push.Digest, push.Time.UTC().Format(time.RFC3339), push.EventID)
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
		out.Push = &PlanPush{Repository: push.Repository, Tag: push.Tag, Digest: push.Digest, At: push.Time.UTC(),
			Account: push.Account, Region: push.Region}
		fmt.Fprintf(stdout, "image %s:%s (%s) pushed at %s, planned for rule %s\n", push.Repository, push.Tag, push.Digest,
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
		fmt.Fprintf(stdout, "ignored: %s\n", why)
		out.Ignored = why
		return planDone(env, asJSON, out)
	}
	if only == nil {
		// The repository's rules that do not take it, though another does:
		// a rule the operator expected to match is named, with why.
		for _, r := range cfg.RulesFor(push.Repository) {
			if ok, reason := deploy.Accepts(r, central, push); !ok {
				out.NotMatched = append(out.NotMatched, RuleMiss{Rule: r.Name, Reason: reason})
				fmt.Fprintf(stdout, "not matched: rule %s: %s\n", r.Name, reason)
			}
		}
	}
	states, err := planStates(ctx, awsCfg, *table, central, jobs)
	if err != nil {
		return err
	}
	if states == nil {
		fmt.Fprintln(stdout, "not checked: holds and failed digests (give --table or set AUTODEPLOY_TABLE to decide as the deployer does)")
	}
	var groups bluegreen.Groups
	cleanups, err := planCleanups(ctx, env, cfg, central, clients, awsCfg, *table, jobs)
	if err != nil {
		return err
	}
	gates := planGates(awsCfg, *table, cfg, central, clients, env, push)
	for _, j := range jobs {
		at, role := j.Target.Where(central), j.Target.RoleFor(central)
		region := at.Region
		pt := PlanTarget{Rule: j.Rule.Name, Cluster: j.Target.Cluster, Service: j.Target.Service, Account: at.Account, Region: region}
		planTarget(ctx, env, stdout, &pt, j, push, gates, states, clients, &groups, role)
		for _, c := range cleanups {
			if c.runs(at, j.Target) {
				pt.Cleanup = c.line()
				fmt.Fprintf(stdout, "  clean-up of %s: %s\n", c.cmd.Family, c.line())
			}
		}
		out.Targets = append(out.Targets, pt)
	}
	return planDone(env, asJSON, out)
}

// planTarget plans one target, printing to stdout and filling pt.
func planTarget(ctx context.Context, env Env, stdout io.Writer, pt *PlanTarget, j deploy.Job, push ecrevent.Push, gates *plannedGates,
	states map[string]history.ServiceState, clients *awsenv.Clients, groups *bluegreen.Groups, role string) {
	fmt.Fprintf(stdout, "\nrule %s → %s/%s\n", j.Rule.Name, j.Target.Cluster, j.Target.Service)
	// The deployer's order: the rule's gates first, then the service.
	if line, stop := gates.line(ctx, j.Rule); line != "" {
		fmt.Fprintf(stdout, "  %s\n", line)
		pt.Gates = line
		if stop {
			pt.Action, pt.Reason = gateAction(line), line
			return
		}
	}
	// Then the service's state, then the plan.
	if why := deploy.Blocked(states[history.ServiceKey(pt.Account, pt.Region, j.Target.Cluster, j.Target.Service)], push.Digest); why != "" {
		fmt.Fprintf(stdout, "  skip: %s\n", why)
		pt.Action, pt.Reason = "skip", why
		return
	}
	client := env.ecsClient(clients.ECS(pt.Region, role))
	p, err := deploy.PlanTarget(ctx, client, push, j.Rule, j.Target)
	if p.Service != nil {
		pt.Rollout = printRollout(ctx, env, stdout, client, rollout.KindOf(*p.Service), j.Target)
	}
	switch {
	case err != nil:
		fmt.Fprintf(stdout, "  would fail: %s\n", explain(err, scope{cluster: j.Target.Cluster, service: j.Target.Service, account: pt.Account, region: pt.Region}))
		pt.Action, pt.Reason = "fail", explain(err, scope{cluster: j.Target.Cluster, service: j.Target.Service, account: pt.Account, region: pt.Region})
	case p.Register == nil:
		fmt.Fprintf(stdout, "  skip: %s\n", p.Skip)
		pt.Action, pt.Reason = "skip", p.Skip
	default:
		pt.Action = "deploy"
		pt.Register = printRegister(stdout, p)
		if p.Kind.IsCodeDeployControlled() {
			grp, err := printAppSpec(ctx, stdout, clients.CodeDeploy(pt.Region, role), groups, pt.Region+"|"+role, p, j.Target)
			if err != nil {
				// The deployer would fail here too: JSON must say so, not
				// "deploy" (the text said it on a stdout JSON discards).
				why := explain(err, scope{cluster: j.Target.Cluster, service: j.Target.Service, account: pt.Account, region: pt.Region})
				fmt.Fprintf(stdout, "  would fail: %s\n", why)
				pt.Action, pt.Reason = "fail", why
			}
			pt.CodeDeploy = grp
		}
	}
}

// gateAction is the JSON action of a gate's line that stops the push.
func gateAction(line string) string {
	switch {
	case strings.HasPrefix(line, "waits:"):
		return "wait"
	case strings.HasPrefix(line, "not deployed:"):
		return "refused"
	}
	return "fail"
}

// planDone prints the JSON document, when asked for.
func planDone(env Env, asJSON bool, out PlanOutput) error {
	if !asJSON {
		return nil
	}
	return writeJSON(env.Stdout, out)
}

// readEvent reads --event: a file, or stdin for "-". A Lambda failure
// record (what a dead-letter queue holds, and the Troubleshoot table
// sends operators to) is unwrapped to its request payload, and said so
// on stderr.
func readEvent(file string, env Env) ([]byte, error) {
	var data []byte
	var err error
	if file == "-" {
		if env.Stdin == nil {
			return nil, usageError{"--event -: no standard input"}
		}
		data, err = io.ReadAll(env.Stdin)
	} else {
		data, err = os.ReadFile(file)
	}
	if err != nil {
		return nil, fmt.Errorf("read event: %w", err)
	}
	if p, err := redrive.Unwrap(string(data), nil); err == nil && string(p.Event) != string(data) {
		fmt.Fprintf(env.Stderr, "a Lambda failure record (%s): planning its request payload\n", p.Why)
		return p.Event, nil
	}
	return data, nil
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
	if !gate.GatedBeforeDeploy(r) {
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
		return gateLine{line: "would fail (and be retried): gates not read: " + explain(err, scope{}), stop: true}
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
func printRollout(ctx context.Context, env Env, w io.Writer, client rollout.ServiceDeploymentReader, kind rollout.Kind, t rules.Target) string {
	stage, err := nativeStage(ctx, client, kind, t.Cluster, t.Service, env.Now())
	if err != nil {
		stage = "stage not read: " + explain(err, scope{cluster: t.Cluster, service: t.Service})
	}
	if stage != "" {
		stage = " · in flight: " + stage
	}
	said := fmt.Sprintf("%s%s", kind, stage)
	fmt.Fprintf(w, "  rollout: %s\n", said)
	return said
}

// printRegister shows the revision a deploy would register, as a diff of
// the image lines and the tags it would set.
func printRegister(w io.Writer, p deploy.Plan) *PlanRegister {
	reg := &PlanRegister{Family: aws.ToString(p.Running.Family), From: ecsarn.Revision(p.From), LeftAlone: p.Skip}
	then := "point the service at it"
	if p.Kind.IsCodeDeployControlled() {
		then = "deploy it through CodeDeploy"
	}
	fmt.Fprintf(w, "  would register a new revision of %s (running %s) and %s:\n",
		aws.ToString(p.Running.Family), ecsarn.Revision(p.From), then)
	for _, c := range p.Containers {
		reg.Containers = append(reg.Containers, PlanContainer{Name: c, From: taskdef.Image(p.Running, c), To: p.Updates[c]})
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
	reg.Tags = append([]string{}, tags...)
	return reg
}

// printAppSpec shows the CodeDeploy deployment a blue/green deploy would
// create: its group (found as the deployer finds it) and AppSpec, naming
// the revision still to be registered by its family. It returns the group,
// or why the deployer would fail to create the deployment (the caller says
// it, in text and JSON alike).
func printAppSpec(ctx context.Context, w io.Writer, client bluegreen.CodeDeploy, groups *bluegreen.Groups, where string, p deploy.Plan, t rules.Target) (string, error) {
	grp, err := groups.Find(ctx, client, where, t.Cluster, t.Service, t.CodeDeploy)
	if err != nil {
		return "", err
	}
	next := aws.ToString(p.Running.TaskDefinitionArn)
	if i := strings.LastIndex(next, ":"); i >= 0 {
		next = next[:i] + ":<new revision>"
	}
	spec, err := bluegreen.BuildAppSpec(next, p.Service, t.CodeDeploy.Hooks)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(w, "  CodeDeploy deployment in %s with AppSpec:\n", grp)
	for _, line := range strings.Split(spec.Content, "\n") {
		fmt.Fprintf(w, "    %s\n", line)
	}
	return fmt.Sprint(grp), nil
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
