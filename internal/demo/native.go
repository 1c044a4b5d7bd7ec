package demo

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/cli"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/deploy"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecsarn"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/emulator"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rollout"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work"
)

// nativeService is an ECS-native service of the demo: seeded in moto, and
// marked native on the ECS front (testenv.ECSNativeFront) with the
// deployment configuration its infrastructure code would give it, because
// moto ignores deploymentConfiguration.strategy and has no service
// deployments.
type nativeService struct {
	emulator.Service
	Config types.DeploymentConfiguration
}

// nativeServices are the two ECS-native services: checkout, a CANARY with
// a PAUSE hook before production traffic shifts past the canary, and
// payments, a BLUE_GREEN whose alarm rolls it back.
func nativeServices() []nativeService {
	return []nativeService{
		{Service: emulator.Service{Cluster: "prod", Name: "checkout", Family: "checkout", Containers: []emulator.Container{
			{Name: "app", Image: emulator.Registry + "/checkout:main-0000000"}}},
			Config: types.DeploymentConfiguration{Strategy: types.DeploymentStrategyCanary, BakeTimeInMinutes: aws.Int32(10),
				CanaryConfiguration: &types.CanaryConfiguration{CanaryPercent: aws.Float64(10), CanaryBakeTimeInMinutes: aws.Int32(5)},
				LifecycleHooks: []types.DeploymentLifecycleHook{{TargetType: types.DeploymentLifecycleHookTargetTypePause,
					LifecycleStages: []types.DeploymentLifecycleHookStage{"PRE_PRODUCTION_TRAFFIC_SHIFT"}}}}},
		{Service: emulator.Service{Cluster: "prod", Name: "payments", Family: "payments", Containers: []emulator.Container{
			{Name: "app", Image: emulator.Registry + "/payments:main-0000000"}}},
			Config: types.DeploymentConfiguration{Strategy: types.DeploymentStrategyBlueGreen, BakeTimeInMinutes: aws.Int32(15),
				Alarms: &types.DeploymentAlarms{AlarmNames: []string{"payments-5xx"}, Enable: true, Rollback: true}}},
	}
}

// seedNative creates the native services' repositories and services in
// moto and marks them native on the front.
func (d *demo) seedNative(ctx context.Context) error {
	for _, s := range nativeServices() {
		if _, err := d.ecr.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String(s.Name)}); err != nil {
			return fmt.Errorf("create repository %s: %w", s.Name, err)
		}
		arn, err := emulator.SeedService(ctx, d.ecs, s.Service)
		if err != nil {
			return err
		}
		d.front.MarkNative(s.Cluster, s.Name, s.Config, arn)
		d.p.line("  %s/%s runs %s with containers %s", s.Cluster, s.Name, ecsarn.Revision(arn), containerNames(s.Service))
		d.p.line("    ECS-native %s (%s): moto ignores the strategy, so the ECS front plays it (testenv.ECSNativeFront)", s.Config.Strategy, configSummary(s.Config))
	}
	return nil
}

func configSummary(c types.DeploymentConfiguration) string {
	var parts []string
	if cc := c.CanaryConfiguration; cc != nil {
		parts = append(parts, fmt.Sprintf("canary %g%%, canary bake %d min", aws.ToFloat64(cc.CanaryPercent), aws.ToInt32(cc.CanaryBakeTimeInMinutes)))
	}
	parts = append(parts, fmt.Sprintf("bake %d min", aws.ToInt32(c.BakeTimeInMinutes)))
	for _, h := range c.LifecycleHooks {
		for _, st := range h.LifecycleStages {
			parts = append(parts, fmt.Sprintf("%s hook at %s", h.TargetType, st))
		}
	}
	if a := c.Alarms; a != nil && a.Rollback {
		parts = append(parts, "rolls back on alarm "+strings.Join(a.AlarmNames, ", "))
	}
	return strings.Join(parts, ", ")
}

// nativeScenes are the two ECS-native scenes, numbered from n.
func (d *demo) nativeScenes(ctx context.Context, n int) error {
	d.p.head(fmt.Sprintf("Step %d: checkout is ECS-native CANARY: a push, the canary, a pause for a person, autodeploy continue, and completed only after the bake", n))
	if err := d.canary(ctx); err != nil {
		return fmt.Errorf("canary: %w", err)
	}
	d.p.head(fmt.Sprintf("Step %d: payments is ECS-native BLUE_GREEN: its alarm fires during the bake, ECS rolls back, and the watcher says so", n+1))
	if err := d.blueGreenByAlarm(ctx); err != nil {
		return fmt.Errorf("blue/green: %w", err)
	}
	return nil
}

// canary: the push, the worker's deploy through the seam, ECS's stages (the
// fake), the pause and its notice, `autodeploy continue`, the
// SERVICE_DEPLOYMENT_COMPLETED event while ECS still bakes (in_progress),
// and the recheck after the bake (completed).
func (d *demo) canary(ctx context.Context) error {
	r, err := d.nativePush(ctx, "checkout", "main-5d6e7f8")
	if err != nil {
		return err
	}
	fake, arn := d.front.Fake, r.ServiceDeploymentARN
	d.p.line("  (playing ECS: moto has no service deployments; the ECS front's fake moves %s through ECS's stages)", arn)
	fake.Advance(arn, types.ServiceDeploymentLifecycleStageTestTrafficShift, 0)
	d.stage(arn, "new tasks up, test traffic on them")
	// ECS runs a canary's PRE_PRODUCTION_TRAFFIC_SHIFT hooks before every
	// traffic shift step: before the canary, and before the rest.
	if err := d.pauseAndContinue(ctx, r, arn, "the PAUSE hook holds production traffic for a person, before the canary", true); err != nil {
		return err
	}
	fake.Advance(arn, types.ServiceDeploymentLifecycleStageProductionTrafficShift, 10)
	d.stage(arn, "the canary: 10% of production traffic")
	if err := d.pauseAndContinue(ctx, r, arn, "the canary baked; the PAUSE hook holds the rest of the traffic (a new hook id: --hook continues only this step)", false); err != nil {
		return err
	}
	fake.Advance(arn, types.ServiceDeploymentLifecycleStageProductionTrafficShift, 100)
	d.stage(arn, "ECS continues: the rest of production traffic shifts")
	fake.Advance(arn, types.ServiceDeploymentLifecycleStageBakeTime, 100)
	d.stage(arn, "all traffic on the new revision; the 10-minute bake begins")
	d.p.line("  (playing ECS) SERVICE_DEPLOYMENT_COMPLETED for %s, while its service deployment still says %s (baking)", r.DeploymentID, fake.Deployment(arn).Status)
	if err := d.ecsEvent(ctx, r, "SERVICE_DEPLOYMENT_COMPLETED", "ECS deployment "+r.DeploymentID+" completed."); err != nil {
		return err
	}
	fake.End(arn, types.ServiceDeploymentStatusSuccessful, "", "")
	d.p.line("  (playing ECS) the bake ends (the demo does not wait 10 minutes): service deployment SUCCESSFUL")
	d.p.line("  (so the push_to_completion below counts the demo's seconds, where ECS's would include the canary's 5-minute and the 10-minute bakes)")
	cmd, err := work.EncodeCommand(work.Recheck{DeploymentID: r.DeploymentID})
	if err != nil {
		return err
	}
	d.p.line("  (playing the watcher's timer: the demo configures no EventBridge Scheduler) %s goes to the watcher", cmd)
	if _, err := d.tellWatcherLines(ctx, cmd, r, ""); err != nil {
		return err
	}
	if err := d.chatNotices(ctx, false); err != nil {
		return err
	}
	return d.runningNative(ctx, r.Service)
}

// pauseAndContinue plays a PAUSE hook at PRE_PRODUCTION_TRAFFIC_SHIFT
// (the fake), sends the watcher its HOOK_AWAITING_ACTION event, shows the
// chat notice (in full when full) and runs the command it names,
// `autodeploy continue … --hook <id>`.
func (d *demo) pauseAndContinue(ctx context.Context, r deploy.Result, arn, why string, full bool) error {
	fake := d.front.Fake
	hook := fake.Pause(arn, "PRE_PRODUCTION_TRAFFIC_SHIFT", 30*time.Minute)
	d.stage(arn, why)
	ev, err := d.hookEvent(r, arn, hook, "HOOK_AWAITING_ACTION", "PRE_PRODUCTION_TRAFFIC_SHIFT")
	if err != nil {
		return err
	}
	d.p.line("  (playing ECS) ECS Hook State Change HOOK_AWAITING_ACTION, hook %s, goes to the watcher", hook)
	if _, err := d.tellWatcherLines(ctx, ev, r, ""); err != nil {
		return err
	}
	if err := d.chatNotices(ctx, full); err != nil {
		return err
	}
	args := []string{"continue", "--cluster", r.Cluster, "--service", r.Service, "--account", cmp.Or(r.Account, emulator.Account),
		"--region", cmp.Or(r.Region, emulator.Region), "--hook", hook}
	d.p.line("  $ autodeploy %s   (the CLI in-process, its ECS endpoint the front)", strings.Join(args, " "))
	if err := d.autodeploy(ctx, args); err != nil {
		return err
	}
	if got := fake.HookStatus(arn, hook); got != types.DeploymentLifecycleHookStatusSucceeded {
		return fmt.Errorf("after autodeploy continue, hook %s is %s", hook, got)
	}
	return nil
}

// blueGreenByAlarm: the push, the worker's deploy, the traffic shift and
// the bake, an alarm that rolls it back (the fake), ECS's FAILED event and
// the watcher's rolled_back with the alarm's name.
func (d *demo) blueGreenByAlarm(ctx context.Context) error {
	r, err := d.nativePush(ctx, "payments", "main-9a8b7c6")
	if err != nil {
		return err
	}
	fake, arn := d.front.Fake, r.ServiceDeploymentARN
	d.p.line("  (playing ECS: moto has no service deployments; the ECS front's fake moves %s through ECS's stages)", arn)
	fake.Advance(arn, types.ServiceDeploymentLifecycleStageTestTrafficShift, 0)
	d.stage(arn, "green tasks up, test traffic on them")
	fake.Advance(arn, types.ServiceDeploymentLifecycleStageBakeTime, 100)
	d.stage(arn, "production traffic shifted to green; the 15-minute bake begins")
	fake.TriggerAlarms(arn, "payments-5xx")
	fake.End(arn, types.ServiceDeploymentStatusRollbackSuccessful, "", "")
	d.p.line("  (playing ECS) alarm payments-5xx enters ALARM during the bake: ECS shifts traffic back to %s, service deployment %s", ecsarn.Revision(r.From), fake.Deployment(arn).Status)
	d.p.line("  (at once: the demo waits for no bake, so the push_to_completion below counts its seconds)")
	// ECS puts the last good revision back; moto (reached directly, not
	// through the front) needs telling.
	if _, err := d.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String(r.Cluster), Service: aws.String(r.Service), TaskDefinition: aws.String(r.From)}); err != nil {
		return fmt.Errorf("roll back %s/%s: %w", r.Cluster, r.Service, err)
	}
	d.p.line("  (playing ECS) SERVICE_DEPLOYMENT_FAILED for %s goes to the watcher", r.DeploymentID)
	lines, err := d.ecsEventLines(ctx, r, "SERVICE_DEPLOYMENT_FAILED", "ECS deployment "+r.DeploymentID+" rolled back.")
	if err != nil {
		return err
	}
	for _, l := range lines {
		var line struct{ Msg, Outcome, Reason string }
		if json.Unmarshal([]byte(l), &line) == nil && line.Msg == "deployment" && line.Reason != "" {
			d.p.line("  watcher: %s because: %s", line.Outcome, line.Reason)
		}
	}
	if err := d.chatNotices(ctx, false); err != nil {
		return err
	}
	return d.runningNative(ctx, r.Service)
}

// nativePush pushes repository:tag into moto's ECR, hands the deployer its
// event and the worker its work item, and returns the worker's deploy.
func (d *demo) nativePush(ctx context.Context, repository, tag string) (deploy.Result, error) {
	digest, err := emulator.PushImage(ctx, d.ecr, repository, tag)
	if err != nil {
		return deploy.Result{}, err
	}
	at := time.Now().UTC()
	d.p.line("  pushed %s:%s  →  %s", repository, tag, digest)
	d.ruleLines(repository, tag)
	event, err := d.pushEvent(tag, digest, "", at)
	if err != nil {
		return deploy.Result{}, err
	}
	var ev map[string]any
	if err := json.Unmarshal(event, &ev); err != nil {
		return deploy.Result{}, err
	}
	ev["id"] = "demo-push-" + repository + "-" + tag
	detail := ev["detail"].(map[string]any)
	detail["repository-name"] = repository
	if event, err = json.Marshal(ev); err != nil {
		return deploy.Result{}, err
	}
	before := lineCount(d.deployer.Logs())
	body, err := d.deployer.Invoke(ctx, event)
	if err != nil {
		return deploy.Result{}, err
	}
	if _, err := d.summary(body); err != nil {
		return deploy.Result{}, err
	}
	d.p.logs("deployer", newJSONLines(d.deployer.LogsAfter(before), before))
	results, err := d.work(ctx)
	if err != nil {
		return deploy.Result{}, err
	}
	if len(results) != 1 || results[0].Outcome != deploy.Deployed || results[0].ServiceDeploymentARN == "" {
		return deploy.Result{}, fmt.Errorf("the worker's deploys of %s:%s: %+v, want one deployed naming its service deployment", repository, tag, results)
	}
	r := results[0]
	d.p.line("  worker: rollout=%s, service deployment %s (UpdateService's currentServiceDeployment)", r.Rollout, r.ServiceDeploymentARN)
	if err := d.diff(ctx, r.From, r.To); err != nil {
		return deploy.Result{}, err
	}
	return r, nil
}

// stage narrates what ECS (the fake) does, with the stage in the
// product's words (rollout.Stage, as autodeploy status shows it).
func (d *demo) stage(arn, what string) {
	d.p.line("  (playing ECS) %s  →  %s", what, rollout.Stage(d.front.Fake.Deployment(arn), time.Now()))
}

// hookEvent is ECS's "ECS Hook State Change" for a hook of the service
// deployment arn, from the sample in events/.
func (d *demo) hookEvent(r deploy.Result, arn, hook, name, stage string) ([]byte, error) {
	var ev map[string]any
	if err := readJSON(filepath.Join(d.o.EventsDir, "ecs-hook-state-change.json"), &ev); err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	var expires time.Time
	for _, h := range d.front.Fake.Deployment(arn).LifecycleHookDetails {
		if aws.ToString(h.HookId) == hook {
			expires = aws.ToTime(h.ExpiresAt)
		}
	}
	ev["id"] = "demo-hook-" + hook + "-" + name
	ev["time"], ev["region"] = now.Format(time.RFC3339), emulator.Region
	ev["resources"] = []string{arn}
	detail := ev["detail"].(map[string]any)
	detail["eventName"], detail["hookId"], detail["lifecycleStage"] = name, hook, stage
	detail["expiresAt"], detail["updatedAt"] = expires.UTC().Format(time.RFC3339), now.Format(time.RFC3339Nano)
	detail["clusterArn"] = fmt.Sprintf("arn:aws:ecs:%s:%s:cluster/%s", emulator.Region, emulator.Account, r.Cluster)
	detail["serviceArn"] = fmt.Sprintf("arn:aws:ecs:%s:%s:service/%s/%s", emulator.Region, emulator.Account, r.Cluster, r.Service)
	detail["serviceDeploymentArn"] = arn
	return json.Marshal(ev)
}

// ecsEvent sends the watcher an "ECS Deployment State Change" of r's
// deployment.
func (d *demo) ecsEvent(ctx context.Context, r deploy.Result, name, reason string) error {
	_, err := d.ecsEventLines(ctx, r, name, reason)
	return err
}

func (d *demo) ecsEventLines(ctx context.Context, r deploy.Result, name, reason string) ([]string, error) {
	var ev map[string]any
	if err := readJSON(filepath.Join(d.o.EventsDir, "ecs-deployment-completed.json"), &ev); err != nil {
		return nil, err
	}
	at := time.Now().UTC()
	ev["id"] = "demo-ecs-" + r.DeploymentID + "-" + name
	ev["resources"] = []string{fmt.Sprintf("arn:aws:ecs:%s:%s:service/%s/%s", emulator.Region, emulator.Account, r.Cluster, r.Service)}
	ev["time"] = at.Format(time.RFC3339)
	detail := ev["detail"].(map[string]any)
	detail["eventName"], detail["deploymentId"], detail["reason"], detail["updatedAt"] = name, r.DeploymentID, reason, ecsTime(at)
	if strings.HasSuffix(name, "FAILED") {
		detail["eventType"] = "ERROR"
	}
	data, err := json.Marshal(ev)
	if err != nil {
		return nil, err
	}
	return d.tellWatcherLines(ctx, data, r, "")
}

// autodeploy runs the operator's CLI in-process, as `autodeploy …` with
// the SDK aimed at the ECS front (which passes all but ECS's
// service-deployment calls to moto), and prints what it says.
func (d *demo) autodeploy(ctx context.Context, args []string) error {
	var out, errOut bytes.Buffer
	cfg := d.motoCfg
	cfg.BaseEndpoint = aws.String(d.front.URL)
	if d.deployer != nil {
		deployer, err := url.Parse(d.deployer.Endpoint)
		if err != nil {
			return fmt.Errorf("the deployer's endpoint %q: %w", d.deployer.Endpoint, err)
		}
		cfg.HTTPClient = &http.Client{Transport: toDeployer{deployer: deployer, next: http.DefaultTransport}}
	}
	code := cli.Run(ctx, args, cli.Env{Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" },
		AWS: func(context.Context) (aws.Config, error) { return cfg, nil }, Now: time.Now})
	for _, l := range strings.Split(strings.TrimRight(out.String()+errOut.String(), "\n"), "\n") {
		d.p.line("    %s", l)
	}
	if code != 0 {
		return fmt.Errorf("autodeploy %s exited %d", args[0], code)
	}
	return nil
}

// runningNative prints what the native service named service runs now
// (moto's view).
func (d *demo) runningNative(ctx context.Context, service string) error {
	var list []emulator.Service
	for _, s := range nativeServices() {
		if s.Name == service {
			list = append(list, s.Service)
		}
	}
	return d.runningOf(ctx, list)
}

// startFront starts the ECS front for moto at endpoint.
func startFront(endpoint string) (*testenv.ECSNativeFront, error) {
	return testenv.StartECSNativeFront(endpoint, testenv.NewFakeECSDeployments())
}
