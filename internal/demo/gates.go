package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwschemas "github.com/aws/aws-sdk-go-v2/service/cloudwatch/schemas"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/smithy-go/transport/http/protocol/awsquery"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/deploy"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecsarn"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/emulator"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// gateServices are the gated rules' services: billing waits for a
// person's approval, reports for its scan, and search's promotion for a
// bake its alarm may stop.
func gateServices() []emulator.Service {
	return []emulator.Service{
		{Cluster: "prod", Name: "billing", Family: "billing", Containers: []emulator.Container{{Name: "app", Image: emulator.Registry + "/billing:v1.0.0"}}},
		{Cluster: "prod", Name: "reports", Family: "reports", Containers: []emulator.Container{{Name: "app", Image: emulator.Registry + "/reports:main-0000000"}}},
		{Cluster: "staging", Name: "search", Family: "search", Containers: []emulator.Container{{Name: "app", Image: emulator.Registry + "/search:main-0000000"}}},
	}
}

// bakeAlarm is the alarm search-staging's bake watches.
const bakeAlarm = "search-5xx"

// seedGates creates the gated services' repositories and services, and
// the bake's alarm (moto's CloudWatch), OK for now.
func (d *demo) seedGates(ctx context.Context) error {
	for _, s := range gateServices() {
		if _, err := d.ecr.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String(s.Name)}); err != nil {
			return fmt.Errorf("create repository %s: %w", s.Name, err)
		}
		arn, err := emulator.SeedService(ctx, d.ecs, s)
		if err != nil {
			return err
		}
		d.p.line("  %s/%s runs %s with containers %s", s.Cluster, s.Name, ecsarn.Revision(arn), containerNames(s))
	}
	cw := d.cloudWatch()
	if _, err := cw.PutMetricAlarm(ctx, &cloudwatch.PutMetricAlarmInput{
		AlarmName: aws.String(bakeAlarm), Namespace: aws.String("AWS/ApplicationELB"), MetricName: aws.String("HTTPCode_Target_5XX_Count"),
		Statistic: cwtypes.StatisticSum, Period: aws.Int32(60), EvaluationPeriods: aws.Int32(1), Threshold: aws.Float64(10),
		ComparisonOperator: cwtypes.ComparisonOperatorGreaterThanThreshold,
	}); err != nil {
		return fmt.Errorf("create alarm %s: %w", bakeAlarm, err)
	}
	d.p.line("  alarm %s (CloudWatch, in moto) watches staging/search's 5xx", bakeAlarm)
	return nil
}

// cloudWatch is moto's CloudWatch in the query protocol: the SDK's
// default (CBOR) is one moto does not speak.
func (d *demo) cloudWatch() *cloudwatch.Client {
	return cloudwatch.NewFromConfig(d.motoCfg, func(o *cloudwatch.Options) {
		o.Protocol = awsquery.New(cwschemas.GraniteServiceVersion20100801)
	})
}

// gateScenes are the three gates, numbered from n: an approval and its
// approve, a scan that blocks, a bake an alarm stops.
func (d *demo) gateScenes(ctx context.Context, n int) error {
	d.p.head(fmt.Sprintf("Step %d: billing v2.0.0 waits for a person: nothing registers until `autodeploy approve`", n))
	if err := d.approval(ctx); err != nil {
		return fmt.Errorf("approval: %w", err)
	}
	d.p.head(fmt.Sprintf("Step %d: reports main-3c4d5e6 waits for its scan; the scan finds a CRITICAL: not deployed, and told", n+1))
	if err := d.blockedScan(ctx); err != nil {
		return fmt.Errorf("scan: %w", err)
	}
	d.p.head(fmt.Sprintf("Step %d: search main-6f7a8b9 completes on staging, bakes 15 minutes before its promotion; its alarm fires: not promoted", n+2))
	if err := d.bakeStoppedByAlarm(ctx); err != nil {
		return fmt.Errorf("bake: %w", err)
	}
	return nil
}

// gatePush pushes repository:tag into moto's ECR, hands the deployer its
// event, prints what the deployer said per target, and returns its summary
// and the digest.
func (d *demo) gatePush(ctx context.Context, repository, tag string) (deploy.Summary, string, error) {
	digest, err := emulator.PushImage(ctx, d.ecr, repository, tag)
	if err != nil {
		return deploy.Summary{}, "", err
	}
	at := time.Now().UTC()
	d.p.line("  pushed %s:%s  →  %s", repository, tag, digest)
	d.ruleLines(repository, tag)
	event, err := d.pushEvent(tag, digest, "", at)
	if err != nil {
		return deploy.Summary{}, "", err
	}
	var ev map[string]any
	if err := json.Unmarshal(event, &ev); err != nil {
		return deploy.Summary{}, "", err
	}
	ev["id"] = "demo-push-" + repository + "-" + tag
	ev["detail"].(map[string]any)["repository-name"] = repository
	if event, err = json.Marshal(ev); err != nil {
		return deploy.Summary{}, "", err
	}
	before := lineCount(d.deployer.Logs())
	body, err := d.deployer.Invoke(ctx, event)
	if err != nil {
		return deploy.Summary{}, "", err
	}
	sum, err := d.summary(body)
	if err != nil {
		return deploy.Summary{}, "", err
	}
	d.gateLines("deployer", newJSONLines(d.deployer.LogsAfter(before), before))
	return sum, digest, nil
}

// gateLines prints a function's gate decisions (msg="gate") in words.
func (d *demo) gateLines(fn string, lines []string) {
	for _, l := range lines {
		var g struct{ Msg, Rule, Digest, Gate, Outcome, Reason string }
		if json.Unmarshal([]byte(l), &g) == nil && g.Msg == "gate" {
			d.p.line("  %s: gate %s of rule %s: %s — %s", fn, g.Gate, g.Rule, strings.ReplaceAll(g.Outcome, "_", " "), g.Reason)
		}
	}
}

// approval: the push registers nothing and asks; the chat notice names
// the commands; `autodeploy approve` records who and hands the push to
// the deployer, which queues it; the worker deploys it.
func (d *demo) approval(ctx context.Context) error {
	sum, digest, err := d.gatePush(ctx, "billing", "v2.0.0")
	if err != nil {
		return err
	}
	if len(sum.Results) != 1 || sum.Results[0].Outcome != deploy.Skipped {
		return fmt.Errorf("the deployer's answer for billing:v2.0.0: %+v, want prod/billing skipped by its approval", sum.Results)
	}
	if err := d.chatNotices(ctx, true); err != nil {
		return err
	}
	if err := d.runningOf(ctx, gateServices()[:1]); err != nil {
		return err
	}
	if err := d.approve(ctx, "billing", "v2.0.0", digest); err != nil {
		return err
	}
	results, err := d.work(ctx)
	if err != nil {
		return err
	}
	if len(results) != 1 || results[0].Outcome != deploy.Deployed {
		return fmt.Errorf("after the approval the worker did %+v, want prod/billing deployed", results)
	}
	return d.runningOf(ctx, gateServices()[:1])
}

// blockedScan: the push waits for its scan; ECR's scan event (played)
// reports a CRITICAL; the watcher ends the gate blocked and tells it.
func (d *demo) blockedScan(ctx context.Context) error {
	sum, digest, err := d.gatePush(ctx, "reports", "main-3c4d5e6")
	if err != nil {
		return err
	}
	if len(sum.Results) != 1 || sum.Results[0].Outcome != deploy.Skipped {
		return fmt.Errorf("the deployer's answer for reports:main-3c4d5e6: %+v, want prod/reports waiting for its scan", sum.Results)
	}
	var ev map[string]any
	if err := readJSON(filepath.Join(d.o.EventsDir, "ecr-image-scan-blocked.json"), &ev); err != nil {
		return err
	}
	ev["id"], ev["time"] = "demo-scan-reports", time.Now().UTC().Format(time.RFC3339)
	ev["account"], ev["region"] = emulator.Account, emulator.Region
	detail := ev["detail"].(map[string]any)
	detail["repository-name"], detail["image-digest"], detail["image-tags"] = "reports", digest, []string{"main-3c4d5e6"}
	data, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	var counts []string
	for _, sev := range rules.Severities {
		if n, ok := detail["finding-severity-counts"].(map[string]any)[sev]; ok {
			counts = append(counts, fmt.Sprintf("%v %s", n, sev))
		}
	}
	d.p.line("  (playing ECR's basic scanning) ECR Image Scan COMPLETE with %s goes to the watcher", strings.Join(counts, ", "))
	if err := d.toWatcher(ctx, data); err != nil {
		return err
	}
	if err := d.chatNotices(ctx, false); err != nil {
		return err
	}
	return d.runningOf(ctx, gateServices()[1:2])
}

// bakeStoppedByAlarm: the push deploys staging/search; ECS's completion
// starts the bake (no promotion yet); the alarm enters ALARM (played in
// moto and as CloudWatch's event): not promoted, told with the alarm.
func (d *demo) bakeStoppedByAlarm(ctx context.Context) error {
	_, digest, err := d.gatePush(ctx, "search", "main-6f7a8b9")
	if err != nil {
		return err
	}
	results, err := d.work(ctx)
	if err != nil {
		return err
	}
	if len(results) != 1 || results[0].Outcome != deploy.Deployed {
		return fmt.Errorf("the worker's deploys of search:main-6f7a8b9: %+v, want staging/search deployed", results)
	}
	r := results[0]
	d.p.line("  (playing ECS) SERVICE_DEPLOYMENT_COMPLETED for %s goes to the watcher", r.DeploymentID)
	if err := d.ecsEvent(ctx, r, "SERVICE_DEPLOYMENT_COMPLETED", "ECS deployment "+r.DeploymentID+" completed."); err != nil {
		return err
	}
	// The completion's notice goes now, before the bake's end.
	if err := d.chatNotices(ctx, false); err != nil {
		return err
	}
	if err := d.runningOf(ctx, gateServices()[2:3]); err != nil {
		return err
	}
	cw := d.cloudWatch()
	if _, err := cw.SetAlarmState(ctx, &cloudwatch.SetAlarmStateInput{AlarmName: aws.String(bakeAlarm), StateValue: cwtypes.StateValueAlarm,
		StateReason: aws.String("Threshold Crossed: 1 datapoint [42.0] was greater than the threshold (10.0).")}); err != nil {
		return fmt.Errorf("set alarm %s: %w", bakeAlarm, err)
	}
	var ev map[string]any
	if err := readJSON(filepath.Join(d.o.EventsDir, "cloudwatch-alarm-state-change.json"), &ev); err != nil {
		return err
	}
	now := time.Now().UTC()
	ev["id"], ev["time"] = "demo-alarm-"+bakeAlarm, now.Format(time.RFC3339)
	ev["account"], ev["region"] = emulator.Account, emulator.Region
	ev["resources"] = []string{fmt.Sprintf("arn:aws:cloudwatch:%s:%s:alarm:%s", emulator.Region, emulator.Account, bakeAlarm)}
	detail := ev["detail"].(map[string]any)
	detail["alarmName"] = bakeAlarm
	if st, ok := detail["state"].(map[string]any); ok {
		st["value"], st["timestamp"] = "ALARM", now.Format("2006-01-02T15:04:05.000-0700")
	}
	data, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	d.p.line("  (playing CloudWatch) alarm %s enters ALARM during the bake; its state change goes to the watcher", bakeAlarm)
	if err := d.toWatcher(ctx, data); err != nil {
		return err
	}
	if err := d.chatNotices(ctx, false); err != nil {
		return err
	}
	tags, err := d.tagsOf(ctx, "search", digest)
	if err != nil {
		return err
	}
	d.p.line("  ECR tags of the digest: %s (no verified-main-6f7a8b9: it was not promoted)", strings.Join(tags, ", "))
	return nil
}

// toWatcher invokes the watcher with an event and prints its gate lines.
func (d *demo) toWatcher(ctx context.Context, event []byte) error {
	before := lineCount(d.watcher.Logs())
	body, err := d.watcher.Invoke(ctx, event)
	if err != nil {
		return err
	}
	var res struct {
		Error string `json:"errorMessage"`
	}
	if json.Unmarshal(body, &res) == nil && res.Error != "" {
		return fmt.Errorf("the watcher failed: %s", res.Error)
	}
	d.gateLines("watcher", newJSONLines(d.watcher.LogsAfter(before), before))
	return nil
}

// tagsOf lists the tags of digest in repository.
func (d *demo) tagsOf(ctx context.Context, repository, digest string) ([]string, error) {
	out, err := d.ecr.DescribeImages(ctx, &ecr.DescribeImagesInput{RepositoryName: aws.String(repository)})
	if err != nil {
		return nil, fmt.Errorf("describe images of %s: %w", repository, err)
	}
	for _, img := range out.ImageDetails {
		if aws.ToString(img.ImageDigest) == digest {
			return img.ImageTags, nil
		}
	}
	return nil, fmt.Errorf("%s has no image %s", repository, digest)
}

// approve runs `autodeploy approve` as an operator would, the CLI
// in-process: it records the approval and invokes the deployer (under
// aws-lambda-rie, whose only function is "function") with the push.
func (d *demo) approve(ctx context.Context, rule, tag, digest string) error {
	file, err := os.CreateTemp("", "autodeploy-demo-rules-*.yaml")
	if err != nil {
		return err
	}
	defer os.Remove(file.Name())
	if _, err := file.Write(Rules); err != nil {
		return err
	}
	if err := file.Close(); err != nil {
		return err
	}
	args := []string{"approve", "--rule", rule, "--tag", tag, "--by", "alice@example.com", "--function", "function", "--table", d.table}
	d.p.line("  $ autodeploy %s   (the CLI in-process; its Lambda call goes to the deployer under aws-lambda-rie)", strings.Join(args, " "))
	return d.autodeploy(ctx, append(args, "--config", file.Name()))
}

// toDeployer sends the CLI's Lambda calls to the deployer under RIE and
// everything else on to next (the ECS front): moto runs no functions.
type toDeployer struct {
	deployer *url.URL
	next     http.RoundTripper
}

func (t toDeployer) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasPrefix(r.URL.Path, "/2015-03-31/functions/") {
		r = r.Clone(r.Context())
		r.URL.Scheme, r.URL.Host, r.Host = t.deployer.Scheme, t.deployer.Host, t.deployer.Host
	}
	return t.next.RoundTrip(r)
}
