// Package demo shows ecr-autodeploy at work with no AWS account: moto
// stands in for AWS, the real deployer, worker and watcher bootstraps run
// under the Lambda Runtime Interface Emulator, and a sequence of pushes is
// narrated step by step. `make demo` runs the queued path: the deployer
// queues one work item per target on moto's SQS and the worker, fed by
// testenv.Poller playing Lambda's event source mapping, deploys them (the
// accounts demo keeps the deployer's in-process path). moto's ECS starts no tasks, so the demo plays ECS's part
// and sends the watcher the deployment events ECS would.
package demo

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/deploy"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecsarn"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/emulator"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/watch"
)

// Rules is the demo's embedded rules file.
//
//go:embed autodeploy.yaml
var Rules []byte

// Options says where the demo finds what it runs.
type Options struct {
	MotoServer string // moto_server binary
	RIE        string // aws-lambda-rie binary
	Deployer   string // the deployer bootstrap, built for this machine
	Watcher    string // the watcher bootstrap, built for this machine
	Worker     string // the worker bootstrap, built for this machine
	EventsDir  string // the repository's events/, used as templates
	// JSON prints the functions' log lines as the JSON they write (cmd/demo
	// -json); by default each is one short line of its msg, rule, target,
	// outcome and reason, and one JSON line is shown as ops read it.
	JSON bool
}

// ecsOutcome is what the demo, playing ECS, does with a deployment.
type ecsOutcome int

const (
	ecsCompletes ecsOutcome = iota
	ecsRollsBack
	codeDeployCompletes // a blue/green service: CodeDeploy shifts its traffic
)

// step is one push of the demo.
type step struct {
	title    string
	tag      string
	artifact string // artifact media type for non-image pushes
	ecs      ecsOutcome
}

func steps() []step {
	return []step{
		{title: "A main build is pushed: staging rolls to it, pinned by digest, and it is promoted", tag: "main-4f2a9c1"},
		{title: "Release v1.4.0 is pushed: prod rolls to it", tag: "v1.4.0"},
		{title: "v1.3.2 (a fix on an older line) is pushed after it: prod must not go back", tag: "v1.3.2"},
		{title: "cosign pushes the release's signature: not an image to run", tag: "sig", artifact: "application/vnd.dev.cosign.artifact.sig.v1+json"},
		{title: "EventBridge delivers v1.4.0 a second time: nothing changes", tag: "v1.4.0"},
		{title: "v1.5.0 cannot start: ECS's circuit breaker rolls it back, and the watcher says so", tag: "v1.5.0", ecs: ecsRollsBack},
		{title: "A canary build is pushed: the blue/green service goes through CodeDeploy, and the watcher reports its end", tag: "canary-7c1d2e3", ecs: codeDeployCompletes},
	}
}

// services are the demo's ECS services, as a platform team would have them.
func services() []emulator.Service {
	return []emulator.Service{
		{Cluster: "staging", Name: "web", Family: "web-staging", Containers: []emulator.Container{
			{Name: "app", Image: emulator.Registry + "/web:main-0000000", Env: map[string]string{"DATABASE_PASSWORD": "never-logged"}},
			{Name: "envoy", Image: "public.ecr.aws/envoyproxy/envoy:v1.31"},
		}, Tags: map[string]string{"team": "web"}},
		{Cluster: "prod", Name: "web", Family: "web-prod", Containers: []emulator.Container{
			{Name: "app", Image: emulator.Registry + "/web:v1.2.0", Env: map[string]string{"DATABASE_PASSWORD": "never-logged"}},
			{Name: "envoy", Image: "public.ecr.aws/envoyproxy/envoy:v1.31"},
		}, Tags: map[string]string{"team": "web"}},
		{Cluster: "prod", Name: "web-canary", Family: "web-canary", Containers: []emulator.Container{
			{Name: "app", Image: emulator.Registry + "/web:canary-0000000"},
		}, BlueGreen: true},
	}
}

type demo struct {
	p        printer
	o        Options
	cfg      *rules.Config
	ecs      *ecs.Client
	ecr      *ecr.Client
	deployer *emulator.RIE
	watcher  *emulator.RIE
	worker   *emulator.RIE
	workURL  string // the work queue the deployer writes and the worker reads
	digests  map[string]string
	sqs      *sqs.Client
	ssm      *ssm.Client
	chat     string // the queue standing in for Chatbot, subscribed to the notices topic

	codeDeploy *codedeploy.Client
	// front is the ECS endpoint of the functions and the CLI: moto, with
	// the ECS-native services' service deployments played by a fake.
	front   *testenv.ECSNativeFront
	motoCfg aws.Config
	// table is the state table the functions and the CLI share.
	table string

	// pushedAt is when each web tag was pushed: its event says so, as
	// ECR's does (a redelivery carries the first delivery's time).
	pushedAt map[string]time.Time
	// deployments is the deployment id ECS last reported per service, to
	// say where moto's differ from ECS's (one id across updates).
	deployments map[string]string
	// jsonShown is set once one JSON log line was shown as it is.
	jsonShown bool
}

// Run runs the whole demo, writing the narration to out, and stops all it
// started before returning.
func Run(ctx context.Context, out io.Writer, o Options) error {
	d := &demo{p: printer{w: out, json: o.JSON}, o: o, digests: map[string]string{}, pushedAt: map[string]time.Time{}, deployments: map[string]string{}}
	var err error
	if d.cfg, err = rules.Parse("autodeploy.yaml (embedded)", Rules); err != nil {
		return err
	}
	d.p.head("The rules (internal/demo/autodeploy.yaml)")
	width := 0
	for _, r := range d.cfg.Rules {
		width = max(width, len(r.Name))
	}
	for _, r := range d.cfg.Rules {
		for _, t := range r.Targets {
			d.p.line("  %-*s %s %s  →  %s/%s", width, r.Name, r.Repository, r.Selector(), t.Cluster, t.Service)
		}
	}

	d.p.head("Starting moto (AWS on 127.0.0.1) and seeding ECR and ECS")
	moto, err := emulator.StartMoto(ctx, o.MotoServer)
	if err != nil {
		return err
	}
	defer moto.Stop()
	d.p.line("  moto at %s", moto.Endpoint)
	const table = "autodeploy-demo"
	d.table = table
	if err := moto.CreateTable(ctx, table); err != nil {
		return err
	}
	d.ecs, d.ecr, d.ssm = ecs.NewFromConfig(moto.AWSConfig()), ecr.NewFromConfig(moto.AWSConfig()), ssm.NewFromConfig(moto.AWSConfig())
	d.codeDeploy = codedeploy.NewFromConfig(moto.AWSConfig())
	d.motoCfg = moto.AWSConfig()
	if d.front, err = startFront(moto.Endpoint); err != nil {
		return err
	}
	defer d.front.Close()
	if _, err := d.ecr.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("web")}); err != nil {
		return fmt.Errorf("create repository: %w", err)
	}
	for _, s := range services() {
		arn, err := emulator.SeedService(ctx, d.ecs, s)
		if err != nil {
			return err
		}
		d.p.line("  %s/%s runs %s with containers %s", s.Cluster, s.Name, ecsarn.Revision(arn), containerNames(s))
		if s.BlueGreen {
			if err := emulator.SeedDeploymentGroup(ctx, d.codeDeploy, "web", s.Name, s.Cluster, s.Name); err != nil {
				return err
			}
			d.p.line("    blue/green: CodeDeploy application web, deployment group %s shifts its traffic", s.Name)
		}
	}
	if err := d.seedNative(ctx); err != nil {
		return err
	}
	if err := d.seedGates(ctx); err != nil {
		return err
	}

	topic, err := d.chatTopic(ctx, moto.AWSConfig())
	if err != nil {
		return err
	}

	if d.workURL, err = d.workQueue(ctx); err != nil {
		return err
	}

	d.p.head("Starting the deployer, the worker and the watcher under aws-lambda-rie (the queued path)")
	env := append(moto.Env(), "AUTODEPLOY_TABLE="+table, "AUTODEPLOY_NOTIFY_TOPIC_ARN="+topic, "AUTODEPLOY_WORK_QUEUE_URL="+d.workURL,
		"AWS_ENDPOINT_URL_ECS="+d.front.URL)
	dir, err := os.MkdirTemp("", "autodeploy-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if d.worker, err = startFunction(ctx, o.RIE, o.Worker, filepath.Join(dir, "worker"), env); err != nil {
		return err
	}
	defer d.worker.Stop()
	if d.deployer, err = startFunction(ctx, o.RIE, o.Deployer, filepath.Join(dir, "deployer"), env); err != nil {
		return err
	}
	defer d.deployer.Stop()
	if d.watcher, err = startFunction(ctx, o.RIE, o.Watcher, filepath.Join(dir, "watcher"), env); err != nil {
		return err
	}
	defer d.watcher.Stop()
	d.p.line("  the environment contract, and a notices topic: AUTODEPLOY_TABLE=%s, AWS_ENDPOINT_URL=%s,", table, moto.Endpoint)
	d.p.line("  AUTODEPLOY_NOTIFY_TOPIC_ARN=%s (a queue stands in for Slack's Chatbot subscription)", topic)
	d.p.line("  AUTODEPLOY_WORK_QUEUE_URL=%s: the deployer queues one work item per target (SQS),", d.workURL)
	d.p.line("  and the worker deploys them, fed by a poller that plays Lambda's event source mapping")
	d.p.line("  AWS_ENDPOINT_URL_ECS=%s: the ECS front passes every call to moto but the ECS-native services' strategy", d.front.URL)
	d.p.line("  and service deployments, which it plays (moto has none)")

	for i, s := range steps() {
		d.p.head(fmt.Sprintf("Step %d: %s", i+1, s.title))
		if err := d.step(ctx, s); err != nil {
			return fmt.Errorf("step %d: %w", i+1, err)
		}
	}
	d.p.head(fmt.Sprintf("Step %d: a push the deployer gave up on waits in its failure queue; autodeploy redrive sends it back", len(steps())+1))
	if err := d.redrive(ctx, moto.AWSConfig()); err != nil {
		return fmt.Errorf("redrive: %w", err)
	}
	if err := d.sweeps(ctx, history.NewStore(dynamodb.NewFromConfig(moto.AWSConfig()), table), len(steps())+2); err != nil {
		return fmt.Errorf("sweeps: %w", err)
	}
	if err := d.nativeScenes(ctx, len(steps())+4); err != nil {
		return err
	}
	if err := d.gateScenes(ctx, len(steps())+6); err != nil {
		return err
	}
	d.p.head("Done: every service ran what its rules allowed, and every deployment's end was told truthfully")
	return nil
}

// startFunction runs a bootstrap under RIE from a directory of its own,
// with the demo's rules beside it, as Lambda lays out a function.
func startFunction(ctx context.Context, rie, bootstrap, dir string, env []string) (*emulator.RIE, error) {
	return startWithRules(ctx, rie, bootstrap, dir, Rules, env)
}

// startWithRules is startFunction with another rules file.
func startWithRules(ctx context.Context, rie, bootstrap, dir string, rulesFile []byte, env []string) (*emulator.RIE, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := copyFile(bootstrap, filepath.Join(dir, "bootstrap")); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "autodeploy.yaml"), rulesFile, 0o644); err != nil {
		return nil, err
	}
	return emulator.StartRIE(ctx, rie, filepath.Join(dir, "bootstrap"), env)
}

// step pushes one image (into moto's ECR, so the digest is real), delivers
// the push event to the deployer and plays ECS for what it deployed.
func (d *demo) step(ctx context.Context, s step) error {
	tag, digest, at, err := d.push(ctx, s)
	if err != nil {
		return err
	}
	d.p.line("  pushed web:%s  →  %s", tag, digest)
	if s.artifact == "" {
		d.ruleLines("web", tag)
	}
	event, err := d.pushEvent(tag, digest, s.artifact, at)
	if err != nil {
		return err
	}
	before := lineCount(d.deployer.Logs())
	body, err := d.deployer.Invoke(ctx, event)
	if err != nil {
		return err
	}
	sum, err := d.summary(body)
	if err != nil {
		return err
	}
	for _, r := range sum.Results {
		if r.To != "" {
			if err := d.diff(ctx, r.From, r.To); err != nil {
				return err
			}
		}
	}
	d.p.logs("deployer", newJSONLines(d.deployer.LogsAfter(before), before))
	if queued(sum) {
		if sum.Results, err = d.work(ctx); err != nil {
			return err
		}
		for _, r := range sum.Results {
			if r.To != "" {
				if err := d.diff(ctx, r.From, r.To); err != nil {
					return err
				}
			}
		}
	}
	if err := d.published(ctx, sum); err != nil {
		return err
	}
	for _, r := range sum.Results {
		if r.Outcome == deploy.Deployed {
			if err := d.playECS(ctx, s, r, digest); err != nil {
				return err
			}
		}
	}
	return d.running(ctx)
}

// ruleLines prints each rule of repository and whether tag matches it;
// a rule that matches names the targets it deploys.
func (d *demo) ruleLines(repository, tag string) {
	for _, r := range d.cfg.RulesFor(repository) {
		if ok, why := r.Matches(tag); ok {
			var targets []string
			for _, t := range r.Targets {
				targets = append(targets, t.Cluster+"/"+t.Service)
			}
			d.p.line("  rule %-12s matches  →  %s", r.Name, strings.Join(targets, ", "))
		} else {
			d.p.line("  rule %-12s does not match: %s", r.Name, why)
		}
	}
}

// push puts an image into moto's ECR; each tag gets its own layer, so its
// own digest (moto derives digests from layers). It returns when the tag
// was pushed, which its event says: the first push's time for a tag pushed
// before (the demo's redelivery).
func (d *demo) push(ctx context.Context, s step) (string, string, time.Time, error) {
	if s.artifact != "" {
		release := d.digests["v1.4.0"]
		return "sha256-" + strings.TrimPrefix(release, "sha256:") + ".sig", digestOf("signature of " + release), time.Now().UTC(), nil
	}
	if digest, ok := d.digests[s.tag]; ok {
		return s.tag, digest, d.pushedAt[s.tag], nil
	}
	manifest := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":1470,"digest":"%s"},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":3623807,"digest":"%s"}]}`,
		digestOf("config "+s.tag), digestOf("layer "+s.tag))
	out, err := d.ecr.PutImage(ctx, &ecr.PutImageInput{
		RepositoryName: aws.String("web"), ImageTag: aws.String(s.tag), ImageManifest: aws.String(manifest),
		ImageManifestMediaType: aws.String("application/vnd.oci.image.manifest.v1+json"),
	})
	if err != nil {
		return "", "", time.Time{}, fmt.Errorf("push web:%s: %w", s.tag, err)
	}
	digest := aws.ToString(out.Image.ImageId.ImageDigest)
	d.digests[s.tag], d.pushedAt[s.tag] = digest, time.Now().UTC()
	return s.tag, digest, d.pushedAt[s.tag], nil
}

// pushEvent is the event ECR sends for a push at at, from the sample in
// events/ (whose own time is a fixed day: the watcher's
// push_to_completion_ms counts from the event's time).
func (d *demo) pushEvent(tag, digest, artifact string, at time.Time) ([]byte, error) {
	var ev map[string]any
	if err := readJSON(filepath.Join(d.o.EventsDir, "ecr-push-main.json"), &ev); err != nil {
		return nil, err
	}
	ev["id"] = fmt.Sprintf("demo-push-%s", tag)
	ev["time"] = at.UTC().Format(time.RFC3339) // EventBridge's whole seconds
	detail := ev["detail"].(map[string]any)
	detail["image-tag"], detail["image-digest"] = tag, digest
	if artifact != "" {
		detail["artifact-media-type"] = artifact
	}
	return json.Marshal(ev)
}

// ecsTime is an ECS event's updatedAt: milliseconds, as ECS writes it.
func ecsTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

// playECS sends the watcher what ECS would send for a deployment.
func (d *demo) playECS(ctx context.Context, s step, r deploy.Result, digest string) error {
	svcARN := fmt.Sprintf("arn:aws:ecs:%s:%s:service/%s/%s", emulator.Region, emulator.Account, r.Cluster, r.Service)
	// ECS reports on the real clock, after the deploy the deployer recorded
	// on it: the watcher places a rollback in time among the deploys.
	at := time.Now().UTC()
	type change struct{ name, deployment, reason string }
	var changes []change
	switch s.ecs {
	case codeDeployCompletes:
		return d.playCodeDeploy(ctx, r, digest)
	case ecsCompletes:
		d.p.line("  (playing ECS) the new tasks are healthy: deployment %s completed", r.DeploymentID)
		d.sameDeployment(r)
		changes = []change{{"SERVICE_DEPLOYMENT_COMPLETED", r.DeploymentID, "ECS deployment " + r.DeploymentID + " completed."}}
	case ecsRollsBack:
		d.p.line("  (playing ECS) the new tasks never become healthy: the circuit breaker fails %s and rolls back to %s", r.DeploymentID, ecsarn.Revision(r.From))
		if d.sameDeployment(r) {
			// The rollback names the deployment it goes back to: with moto's one id that
			// would be the failed one, which the watcher rightly takes for not ours.
			d.p.line("  (ECS's rollback event names the deployment it restores, which moto's one id cannot tell from the failed one: the demo's names made-up ids, ecs-svc/999… rolling back to ecs-svc/000…)")
		}
		d.p.line("  (ECS sends two events for one circuit-breaker rollback: the deployment FAILED, then the rollback IN_PROGRESS;")
		d.p.line("   the watcher records failed, then rolled_back, and tells the incident once: the failure's notice)")
		changes = []change{
			{"SERVICE_DEPLOYMENT_FAILED", r.DeploymentID, "ECS deployment circuit breaker: task failed to start."},
			{"SERVICE_DEPLOYMENT_IN_PROGRESS", "ecs-svc/9999999999999999999", "ECS deployment circuit breaker: rolling back to deploymentId ecs-svc/0000000000000000000."},
		}
		// ECS puts the last good revision back; moto needs telling.
		if _, err := d.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String(r.Cluster), Service: aws.String(r.Service), TaskDefinition: aws.String(r.From)}); err != nil {
			return fmt.Errorf("roll back %s/%s: %w", r.Cluster, r.Service, err)
		}
	}
	for i, c := range changes {
		var ev map[string]any
		if err := readJSON(filepath.Join(d.o.EventsDir, "ecs-deployment-completed.json"), &ev); err != nil {
			return err
		}
		ev["id"] = fmt.Sprintf("demo-ecs-%s-%d", c.deployment, i)
		ev["resources"] = []string{svcARN}
		when := at.Add(time.Duration(i) * time.Second)
		ev["time"] = when.Format(time.RFC3339)
		detail := ev["detail"].(map[string]any)
		detail["eventName"], detail["deploymentId"], detail["reason"] = c.name, c.deployment, c.reason
		detail["updatedAt"] = ecsTime(when)
		data, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		if err := d.tellWatcher(ctx, data, r, digest); err != nil {
			return err
		}
	}
	if err := d.chatMessages(ctx); err != nil {
		return err
	}
	if s.ecs == ecsRollsBack {
		return d.sweepAfterRollback(ctx, r)
	}
	return nil
}

// sameDeployment notes where moto shows what ECS does not: every
// UpdateService of a service keeps the deployment id of its first (ECS
// gives each its own ecs-svc/… id). It reports whether r's id is one ECS
// already reported for the service.
func (d *demo) sameDeployment(r deploy.Result) bool {
	key := r.Cluster + "/" + r.Service
	before, seen := d.deployments[key]
	d.deployments[key] = r.DeploymentID
	if !seen || before != r.DeploymentID {
		return false
	}
	d.p.line("  (moto keeps one deployment id per service across updates: %s is the id of %s's previous deployment too; ECS would give this one a new id)", r.DeploymentID, key)
	return true
}

// tellWatcher invokes the watcher with one deployment event and narrates
// its answer.
func (d *demo) tellWatcher(ctx context.Context, event []byte, r deploy.Result, digest string) error {
	_, err := d.tellWatcherLines(ctx, event, r, digest)
	return err
}

// tellWatcherLines is tellWatcher, returning the watcher's new log lines.
func (d *demo) tellWatcherLines(ctx context.Context, event []byte, r deploy.Result, digest string) ([]string, error) {
	before := lineCount(d.watcher.Logs())
	body, err := d.watcher.Invoke(ctx, event)
	if err != nil {
		return nil, err
	}
	var res struct {
		watch.Result
		Error string `json:"errorMessage"` // Lambda's answer for a function error
	}
	if err := json.Unmarshal(body, &res); err != nil {
		return nil, fmt.Errorf("watcher answered %s: %w", body, err)
	}
	switch {
	case res.Error != "":
		d.p.line("  watcher: the invocation failed (Lambda would retry): %s", res.Error)
	case res.Outcome != "" && res.Stage != "":
		d.p.line("  watcher: deployment %s %s (stage: %s)", r.DeploymentID, res.Outcome, res.Stage)
	case res.Outcome != "":
		d.p.line("  watcher: deployment %s %s", r.DeploymentID, res.Outcome)
	}
	if res.Promoted != "" {
		tags, err := d.tags(ctx, digest)
		if err != nil {
			return nil, err
		}
		d.p.line("  watcher: every target of %s completed, so the digest is promoted: ECR tags now %s", r.Rule, strings.Join(tags, ", "))
	}
	lines := newJSONLines(d.watcher.LogsAfter(before), before)
	d.p.logs("watcher", lines)
	return lines, nil
}

// playCodeDeploy shows the deployment the deployer created, plays
// CodeDeploy shifting the traffic (moto's deployments never move), and
// sends the watcher CodeDeploy's SUCCESS.
func (d *demo) playCodeDeploy(ctx context.Context, r deploy.Result, digest string) error {
	dep, err := d.codeDeploy.GetDeployment(ctx, &codedeploy.GetDeploymentInput{DeploymentId: aws.String(r.DeploymentID)})
	if err != nil {
		return fmt.Errorf("get deployment %s: %w", r.DeploymentID, err)
	}
	info := dep.DeploymentInfo
	d.p.line("  CodeDeploy deployment %s in %s/%s, AppSpec:", r.DeploymentID, aws.ToString(info.ApplicationName), aws.ToString(info.DeploymentGroupName))
	for _, line := range strings.Split(aws.ToString(info.Revision.AppSpecContent.Content), "\n") {
		d.p.line("    %s", line)
	}
	d.p.line("  (playing CodeDeploy) green tasks healthy, traffic shifted: %s now runs %s", r.Service, ecsarn.Revision(r.To))
	if _, err := d.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String(r.Cluster), Service: aws.String(r.Service), TaskDefinition: aws.String(r.To)}); err != nil {
		return fmt.Errorf("shift %s/%s: %w", r.Cluster, r.Service, err)
	}
	var ev map[string]any
	if err := readJSON(filepath.Join(d.o.EventsDir, "codedeploy-success.json"), &ev); err != nil {
		return err
	}
	ev["id"] = "demo-codedeploy-" + r.DeploymentID
	ev["time"] = time.Now().UTC().Format(time.RFC3339)
	detail := ev["detail"].(map[string]any)
	detail["deploymentId"], detail["application"], detail["deploymentGroup"] = r.DeploymentID, aws.ToString(info.ApplicationName), aws.ToString(info.DeploymentGroupName)
	data, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	if err := d.tellWatcher(ctx, data, r, digest); err != nil {
		return err
	}
	return d.chatMessages(ctx)
}

func (d *demo) tags(ctx context.Context, digest string) ([]string, error) {
	out, err := d.ecr.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String("web"),
		ImageIds: []ecrtypes.ImageIdentifier{{ImageDigest: aws.String(digest)}}})
	if err != nil {
		return nil, fmt.Errorf("describe web@%s: %w", digest, err)
	}
	if len(out.ImageDetails) == 0 {
		return nil, nil
	}
	return out.ImageDetails[0].ImageTags, nil
}

func digestOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// summary prints the deployer's answer, target by target.
func (d *demo) summary(body []byte) (deploy.Summary, error) {
	var sum struct {
		deploy.Summary
		Error string `json:"errorMessage"` // Lambda's answer for a function error
	}
	if err := json.Unmarshal(body, &sum); err != nil {
		return sum.Summary, fmt.Errorf("deployer answered %s: %w", body, err)
	}
	switch {
	case sum.Error != "":
		d.p.line("  the invocation failed (Lambda would retry): %s", sum.Error)
	case sum.Ignored != "":
		d.p.line("  deployer: ignored: %s", sum.Ignored)
	}
	for _, r := range sum.Results {
		d.p.line("  deployer: %s %s/%s (rule %s)", r.Outcome, r.Cluster, r.Service, r.Rule)
		if r.Reason != "" {
			d.p.line("            %s", r.Reason)
		}
	}
	return sum.Summary, nil
}

// diff prints the image lines that differ between two revisions.
func (d *demo) diff(ctx context.Context, from, to string) error {
	images := func(arn string) (map[string]string, []string, error) {
		out, err := d.ecs.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(arn)})
		if err != nil {
			return nil, nil, err
		}
		m := map[string]string{}
		var names []string
		for _, c := range out.TaskDefinition.ContainerDefinitions {
			m[aws.ToString(c.Name)] = aws.ToString(c.Image)
			names = append(names, aws.ToString(c.Name))
		}
		return m, names, nil
	}
	a, names, err := images(from)
	if err != nil {
		return err
	}
	b, _, err := images(to)
	if err != nil {
		return err
	}
	d.p.line("  task definition %s → %s:", ecsarn.Revision(from), ecsarn.Revision(to))
	for _, n := range names {
		if a[n] != b[n] {
			d.p.line("    - %-6s %s", n, a[n])
			d.p.line("    + %-6s %s", n, b[n])
		} else {
			d.p.line("      %-6s %s (unchanged)", n, a[n])
		}
	}
	return nil
}

// running prints what each service runs now.
func (d *demo) running(ctx context.Context) error { return d.runningOf(ctx, services()) }

// runningOf prints what the given services run now (moto's view).
func (d *demo) runningOf(ctx context.Context, list []emulator.Service) error {
	var parts []string
	for _, s := range list {
		svc, err := d.ecs.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(s.Cluster), Services: []string{s.Name}})
		if err != nil {
			return err
		}
		td, err := d.ecs.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: svc.Services[0].TaskDefinition})
		if err != nil {
			return err
		}
		app := aws.ToString(td.TaskDefinition.ContainerDefinitions[0].Image)
		parts = append(parts, fmt.Sprintf("%s/%s %s app=%s", s.Cluster, s.Name, ecsarn.Revision(aws.ToString(svc.Services[0].TaskDefinition)), shortImage(app)))
	}
	d.p.line("  now running: %s", strings.Join(parts, "  |  "))
	return nil
}

type printer struct {
	w    io.Writer
	json bool // the functions' log lines as the JSON they are (Options.JSON)
}

func (p printer) head(s string) { fmt.Fprintf(p.w, "\n== %s\n", s) }
func (p printer) line(format string, args ...any) {
	fmt.Fprintf(p.w, format+"\n", args...)
}

// logs prints the JSON lines a function wrote: each as one short line of
// what it says (readable), or as it is with Options.JSON.
func (p printer) logs(fn string, lines []string) {
	for _, l := range lines {
		if strings.Contains(l, `"msg":"metrics"`) {
			continue // EMF records: CloudWatch turns them into metrics
		}
		if !p.json {
			l = readable(l)
		}
		p.line("    %s log: %s", fn, l)
	}
}

// readable is a JSON log line in short: its level when not INFO, its msg,
// then rule, tag, target, the gate or hook, the rollout when not rolling,
// outcome, stage, push_to_completion and reason, as key=value (quoted when
// they hold spaces). A line that is not JSON is returned as it is.
func readable(line string) string {
	var f map[string]any
	if json.Unmarshal([]byte(line), &f) != nil {
		return line
	}
	str := func(k string) string { s, _ := f[k].(string); return s }
	var b strings.Builder
	if level := str("level"); level != "" && level != "INFO" {
		b.WriteString(level + " ")
	}
	b.WriteString(str("msg"))
	kv := func(k, v string) {
		if v == "" {
			return
		}
		if strings.ContainsAny(v, " \"=") {
			v = strconv.Quote(v)
		}
		fmt.Fprintf(&b, " %s=%s", k, v)
	}
	kv("rule", str("rule"))
	kv("tag", str("tag"))
	if c, s := str("cluster"), str("service"); c != "" && s != "" {
		kv("target", c+"/"+s)
	}
	kv("gate", str("gate"))
	kv("event", str("event"))
	kv("hook", str("hook_id"))
	if r := str("rollout"); r != "rolling" {
		kv("rollout", r)
	}
	kv("outcome", str("outcome"))
	kv("stage", str("stage"))
	if ms, ok := f["push_to_completion_ms"].(float64); ok {
		kv("push_to_completion", (time.Duration(ms) * time.Millisecond).String())
	}
	kv("reason", str("reason"))
	kv("error", str("error"))
	return b.String()
}

// showJSON prints one JSON log line as it is, the first time it is
// called: the line ops read in CloudWatch, once (with Options.JSON every
// line is already shown so).
func (d *demo) showJSON(line string) {
	if d.jsonShown || d.p.json {
		return
	}
	d.jsonShown = true
	d.p.line("    (the JSON line ops read in CloudWatch:)")
	d.p.line("    %s", line)
}

func containerNames(s emulator.Service) string {
	var names []string
	for _, c := range s.Containers {
		names = append(names, c.Name)
	}
	return strings.Join(names, "+")
}

// shortImage drops the registry host and shortens a digest for the summary line.
func shortImage(image string) string {
	if i := strings.Index(image, "/"); i >= 0 {
		image = image[i+1:]
	}
	if i := strings.Index(image, "@sha256:"); i >= 0 && len(image) > i+20 {
		image = image[:i+20] + "…"
	}
	return image
}

func lineCount(s string) int { return strings.Count(s, "\n") }

// newJSONLines returns the JSON log lines after the first skip lines (the
// caller waits for them with RIE.LogsAfter).
func newJSONLines(logs string, skip int) []string {
	var out []string
	for i, l := range strings.Split(logs, "\n") {
		if i >= skip && strings.HasPrefix(l, "{") {
			out = append(out, l)
		}
	}
	return out
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}

func copyFile(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return fmt.Errorf("read %s (make demo builds it): %w", from, err)
	}
	return os.WriteFile(to, data, 0o755)
}
