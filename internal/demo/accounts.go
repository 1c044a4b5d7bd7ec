package demo

import (
	"cmp"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecsarn"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/emulator"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/watch"
)

// AccountsRules is the two-account demo's embedded rules file.
//
//go:embed accounts.yaml
var AccountsRules []byte

// The two-account demo's places; the central account is moto's default.
var (
	central      = rules.Place{Account: emulator.Account, Region: emulator.Region}
	registryAt   = rules.Place{Account: "333333333333", Region: emulator.Region}
	targetAt     = rules.Place{Account: "222222222222", Region: "us-east-1"}
	registryHost = registryAt.Account + ".dkr.ecr." + registryAt.Region + ".amazonaws.com"
)

// accountsDemo runs both functions in the central account against a
// registry account and a target account of one moto server (moto is
// multi-account through sts:AssumeRole, standing in for the roles the
// registry and target stacks make).
type accountsDemo struct {
	p        printer
	o        Options
	cfg      *rules.Config
	registry *ecr.Client
	target   *ecs.Client
	deployer *emulator.RIE
	watcher  *emulator.RIE
}

// RunAccounts runs the two-account demo, writing the narration to out.
func RunAccounts(ctx context.Context, out io.Writer, o Options) error {
	d := &accountsDemo{p: printer{w: out, json: o.JSON}, o: o}
	var err error
	if d.cfg, err = rules.Parse("accounts.yaml (embedded)", AccountsRules); err != nil {
		return err
	}
	d.topology()

	d.p.head("Starting moto (three accounts on 127.0.0.1): a registry in 333333333333, a service in 222222222222/us-east-1")
	moto, err := emulator.StartMoto(ctx, o.MotoServer)
	if err != nil {
		return err
	}
	defer moto.Stop()
	const table = "autodeploy-demo"
	if err := moto.CreateTable(ctx, table); err != nil {
		return err
	}
	if err := d.seed(ctx, moto); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "autodeploy-accounts-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	env := append(moto.Env(), "AUTODEPLOY_TABLE="+table, "AUTODEPLOY_ACCOUNT="+central.Account)
	if d.deployer, err = startWithRules(ctx, o.RIE, o.Deployer, filepath.Join(dir, "deployer"), AccountsRules, env); err != nil {
		return err
	}
	defer d.deployer.Stop()
	if d.watcher, err = startWithRules(ctx, o.RIE, o.Watcher, filepath.Join(dir, "watcher"), AccountsRules, env); err != nil {
		return err
	}
	defer d.watcher.Stop()
	d.p.line("  the deployer and the watcher run in the central account %s under aws-lambda-rie", central)

	d.p.head("Step 1: main-1 is pushed in the registry account; its stack forwards the event; prod rolls in the other account")
	digest, deployment, err := d.push(ctx)
	if err != nil {
		return err
	}
	d.p.head("Step 2: ECS in the target account reports the deployment; its stack forwards it; the watcher promotes in the registry")
	if err := d.report(ctx, digest, deployment); err != nil {
		return err
	}
	d.p.head("Step 3: main-2's event is lost; the sweep lists the registry account's images and rolls the target account")
	if err := d.sweep(ctx); err != nil {
		return err
	}
	d.p.head("Done: one rules file, three accounts: pushed in one, deployed in another, reported and promoted from the central one")
	return nil
}

// seed makes the registry's repository and the target account's service.
func (d *accountsDemo) seed(ctx context.Context, moto *emulator.Moto) error {
	// The roles the registry and target stacks would make; moto acts in any
	// role's account.
	clients := awsenv.NewClients(moto.AWSConfig())
	d.registry = clients.ECR(registryAt.Region, rules.RegistryRole(registryAt, central))
	d.target = clients.ECS(targetAt.Region, d.cfg.Rules[0].Targets[0].RoleFor(central))
	if _, err := d.registry.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("web")}); err != nil {
		return fmt.Errorf("create repository: %w", err)
	}
	arn, err := emulator.SeedService(ctx, d.target, emulator.Service{Cluster: "prod", Name: "web", Family: "web-prod",
		Containers: []emulator.Container{{Name: "app", Image: registryHost + "/web:main-0000000"}}})
	if err != nil {
		return err
	}
	d.p.line("  %s: repository web", registryAt)
	d.p.line("  %s: prod/web runs %s (app=web:main-0000000)", targetAt, ecsarn.Revision(arn))
	return nil
}

// push pushes main-1 in the registry account and delivers its event, as
// the registry stack's rule forwards it (keeping the registry's account).
func (d *accountsDemo) push(ctx context.Context) (digest, deployment string, err error) {
	if digest, err = emulator.PushImage(ctx, d.registry, "web", "main-1"); err != nil {
		return "", "", err
	}
	d.p.line("  pushed %s/web:main-1 → %s", registryAt.Account, digest)
	push, err := d.event("ecr-push-main.json", "demo-accounts-main-1")
	if err != nil {
		return "", "", err
	}
	push["account"] = registryAt.Account
	detail := push["detail"].(map[string]any)
	detail["repository-name"], detail["image-tag"], detail["image-digest"] = "web", "main-1", digest
	before := lineCount(d.deployer.Logs())
	body, err := invokeJSON(ctx, d.deployer, push)
	if err != nil {
		return "", "", err
	}
	var sum struct {
		Results []struct {
			Outcome      string `json:"outcome"`
			Account      string `json:"account"`
			Region       string `json:"region"`
			DeploymentID string `json:"deployment_id"`
		} `json:"results"`
	}
	if err := json.Unmarshal(body, &sum); err != nil || len(sum.Results) != 1 {
		return "", "", fmt.Errorf("deployer answered %s", body)
	}
	r := sum.Results[0]
	d.p.line("  deployer: %s prod/web in %s/%s through %s", r.Outcome, r.Account, r.Region, d.cfg.Rules[0].Targets[0].RoleFor(central))
	d.p.logs("deployer", newJSONLines(d.deployer.LogsAfter(before), before))
	return digest, r.DeploymentID, d.running(ctx)
}

// report sends the watcher the target account's ECS event, as its stack
// forwards it, and shows the promotion in the registry account.
func (d *accountsDemo) report(ctx context.Context, digest, deployment string) error {
	ev, err := d.event("ecs-deployment-completed.json", "demo-accounts-ecs-1")
	if err != nil {
		return err
	}
	ev["account"], ev["region"] = targetAt.Account, targetAt.Region
	ev["resources"] = []string{"arn:aws:ecs:" + targetAt.Region + ":" + targetAt.Account + ":service/prod/web"}
	detail := ev["detail"].(map[string]any)
	detail["deploymentId"], detail["updatedAt"], detail["reason"] = deployment, ev["time"], "ECS deployment "+deployment+" completed."
	before := lineCount(d.watcher.Logs())
	body, err := invokeJSON(ctx, d.watcher, ev)
	if err != nil {
		return err
	}
	var res watch.Result
	if err := json.Unmarshal(body, &res); err != nil {
		return fmt.Errorf("watcher answered %s: %w", body, err)
	}
	d.p.line("  watcher: deployment %s %s; promoted %s", res.DeploymentID, res.Outcome, cmp.Or(res.Promoted, "nothing"))
	d.p.logs("watcher", newJSONLines(d.watcher.LogsAfter(before), before))
	tags, err := d.tags(ctx, digest)
	if err != nil {
		return err
	}
	d.p.line("  %s/web@%s… tags now: %s (through %s)", registryAt.Account, digest[7:19], strings.Join(tags, ", "), rules.PromoteRole(registryAt, central))
	return nil
}

// sweep pushes main-2 without an event and runs a scheduled sweep.
func (d *accountsDemo) sweep(ctx context.Context) error {
	next, err := emulator.PushImage(ctx, d.registry, "web", "main-2")
	if err != nil {
		return err
	}
	d.p.line("  pushed %s/web:main-2 → %s (no event is delivered)", registryAt.Account, next)
	sched, err := d.event("scheduled-reconcile.json", "demo-accounts-sweep")
	if err != nil {
		return err
	}
	before := lineCount(d.deployer.Logs())
	if _, err := invokeJSON(ctx, d.deployer, sched); err != nil {
		return err
	}
	d.p.logs("deployer", newJSONLines(d.deployer.LogsAfter(before), before))
	return d.running(ctx)
}

// event is a sample event with its own id, timed now.
func (d *accountsDemo) event(sample, id string) (map[string]any, error) {
	var ev map[string]any
	if err := readJSON(filepath.Join(d.o.EventsDir, sample), &ev); err != nil {
		return nil, err
	}
	ev["id"], ev["time"] = id, time.Now().UTC().Format(time.RFC3339)
	return ev, nil
}

// topology prints the stacks `make synth` would write for the rules, and
// the roles the central functions assume.
func (d *accountsDemo) topology() {
	d.p.head("The rules (internal/demo/accounts.yaml) and the stacks `make synth ACCOUNT=" + central.Account + " REGION=" + central.Region + "` writes for them")
	d.p.line(topologyPicture, "registry account "+registryAt.Account, "central account "+central.Account, "target account "+targetAt.Account,
		"("+registryAt.Region+")", "("+central.Region+")", "("+targetAt.Region+")",
		"role "+rules.PromoteRoleName(registryAt.Region), "role "+rules.TargetRoleName(targetAt.Region))
	d.p.line("  each function has its own role there: the worker deploys through %s; the deployer's sweeps read through %s",
		rules.TargetRoleName(targetAt.Region), rules.SweepRoleName(targetAt.Region))
	d.p.line("  (nothing that deploys) and list images through %s (this demo's deployer has no work queue: it deploys itself, through %s);",
		rules.RegistryRoleName(registryAt.Region), rules.TargetRoleName(targetAt.Region))
	d.p.line("  the watcher tags through %s and reads CodeDeploy (blue/green targets) through %s",
		rules.PromoteRoleName(registryAt.Region), rules.WatcherRoleName(targetAt.Region))
	for _, r := range d.cfg.Rules {
		for _, t := range r.Targets {
			d.p.line("  rule %s: %s/%s %s  →  %s/%s in %s (role %s)", r.Name, r.RegistryOf(central).Account, r.Repository, r.Selector(),
				t.Cluster, t.Service, t.Where(central), t.RoleFor(central))
		}
	}
}

// topologyPicture is README's picture of the stacks: accounts, regions,
// then the derived role names of the two arrows (the watcher's promote
// role, the deployer's target role).
const topologyPicture = `
   %-35s%-37s%s
   %-35s%-37s%s
   ┌─────────────────────────┐        ┌───────────────────────────┐        ┌──────────────────────────┐
   │ ECR repository web      │ pushes │ default bus               │ deploy │ ECS service prod/web     │
   │ rule: pushes of web ────┼───────▶│  ECR rule ──▶ deployer ───┼───────▶│ role (target stack)      │
   │ role (registry stack) ◀─┼────────┼── watcher ◀── ECS rule ◀──┼────────┼─ rule: ECS deployments   │
   └─────────────────────────┘  tags  └───────────────────────────┘ events └──────────────────────────┘
   %-72s%s`

func (d *accountsDemo) running(ctx context.Context) error {
	svc, err := d.target.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("prod"), Services: []string{"web"}})
	if err != nil {
		return err
	}
	td, err := d.target.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: svc.Services[0].TaskDefinition})
	if err != nil {
		return err
	}
	d.p.line("  now running in %s: prod/web %s app=%s", targetAt, ecsarn.Revision(aws.ToString(svc.Services[0].TaskDefinition)),
		shortImage(aws.ToString(td.TaskDefinition.ContainerDefinitions[0].Image)))
	return nil
}

func (d *accountsDemo) tags(ctx context.Context, digest string) ([]string, error) {
	out, err := d.registry.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String("web"),
		ImageIds: []ecrtypes.ImageIdentifier{{ImageDigest: aws.String(digest)}}})
	if err != nil {
		return nil, err
	}
	return out.ImageDetails[0].ImageTags, nil
}

func invokeJSON(ctx context.Context, fn *emulator.RIE, event map[string]any) ([]byte, error) {
	data, err := json.Marshal(event)
	if err != nil {
		return nil, err
	}
	return fn.Invoke(ctx, data)
}
