package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/deploy"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/emulator"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/reconcile"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/redrive"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work"
)

// chatTopic creates the notices topic with a queue subscribed where Chatbot's
// endpoint would be: it gets the same "default" message Chatbot renders.
func (d *demo) chatTopic(ctx context.Context, cfg aws.Config) (string, error) {
	snsc := sns.NewFromConfig(cfg)
	d.sqs = sqs.NewFromConfig(cfg)
	topic, err := snsc.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("autodeploy-notices")})
	if err != nil {
		return "", fmt.Errorf("create topic: %w", err)
	}
	q, err := d.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("chat")})
	if err != nil {
		return "", fmt.Errorf("create queue: %w", err)
	}
	d.chat = aws.ToString(q.QueueUrl)
	if _, err := snsc.Subscribe(ctx, &sns.SubscribeInput{TopicArn: topic.TopicArn, Protocol: aws.String("sqs"),
		Endpoint:   aws.String("arn:aws:sqs:" + emulator.Region + ":" + emulator.Account + ":chat"),
		Attributes: map[string]string{"RawMessageDelivery": "true"}}); err != nil {
		return "", fmt.Errorf("subscribe: %w", err)
	}
	return aws.ToString(topic.TopicArn), nil
}

// chatMessages prints the notices published since the last call, as a chat
// channel would show them: title, then next steps.
func (d *demo) chatMessages(ctx context.Context) error { return d.chatNotices(ctx, false) }

// chatNotices is chatMessages, with each notice's description too when
// described.
func (d *demo) chatNotices(ctx context.Context, described bool) error {
	for {
		out, err := d.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(d.chat), MaxNumberOfMessages: 10})
		if err != nil {
			return fmt.Errorf("read chat queue: %w", err)
		}
		if len(out.Messages) == 0 {
			return nil
		}
		for _, m := range out.Messages {
			var msg struct {
				Content struct {
					Title       string   `json:"title"`
					Description string   `json:"description"`
					NextSteps   []string `json:"nextSteps"`
				} `json:"content"`
				Metadata struct {
					ThreadID string `json:"threadId"`
				} `json:"metadata"`
			}
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &msg); err != nil {
				return fmt.Errorf("chat message %s: %w", aws.ToString(m.Body), err)
			}
			d.p.line("  chat (thread %s): %s", msg.Metadata.ThreadID, msg.Content.Title)
			if described {
				for _, l := range strings.Split(strings.TrimSpace(msg.Content.Description), "\n") {
					d.p.line("        %s", l)
				}
			}
			for _, step := range msg.Content.NextSteps {
				d.p.line("        next: %s", step)
			}
			if _, err := d.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(d.chat), ReceiptHandle: m.ReceiptHandle}); err != nil {
				return err
			}
		}
	}
}

// redrive parks a push the way Lambda does after its retries (a failure
// record wrapping the event), then runs what `autodeploy redrive` runs.
func (d *demo) redrive(ctx context.Context, cfg aws.Config) error {
	s := step{tag: "main-7c1d2e3"}
	tag, digest, at, err := d.push(ctx, s)
	if err != nil {
		return err
	}
	event, err := d.pushEvent(tag, digest, "", at)
	if err != nil {
		return err
	}
	q, err := d.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("DeployerFailedEvents")})
	if err != nil {
		return err
	}
	record, err := json.Marshal(map[string]any{
		"version":         "1.0",
		"requestContext":  map[string]any{"condition": "RetriesExhausted", "approximateInvokeCount": 3},
		"requestPayload":  json.RawMessage(event),
		"responsePayload": map[string]string{"errorMessage": "1 target(s) failed and will be retried: staging/web: ThrottlingException", "errorType": "errorString"},
	})
	if err != nil {
		return err
	}
	if _, err := d.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: q.QueueUrl, MessageBody: aws.String(string(record))}); err != nil {
		return err
	}
	d.p.line("  pushed web:%s → %s; the deployer was throttled three times and Lambda parked the event", tag, digest)
	d.p.line("  $ autodeploy redrive --queue deployer")
	r := &redrive.Redriver{SQS: d.sqs, Function: "function",
		Lambda: lambda.NewFromConfig(cfg, func(o *lambda.Options) { o.BaseEndpoint = aws.String(d.deployer.Endpoint) })}
	rep, err := r.Run(ctx, aws.ToString(q.QueueUrl))
	if err != nil {
		return err
	}
	for _, it := range rep.Moved {
		d.p.line("  moved  %s\n         parked: %s\n         %s", it.Event, it.Parked, it.Result)
	}
	for _, it := range rep.Left {
		d.p.line("  left   %s: %s", it.Event, it.Result)
	}
	d.p.line("  %d moved, %d left", len(rep.Moved), len(rep.Left))
	if _, err := d.work(ctx); err != nil {
		return err
	}
	return d.running(ctx)
}

// sweeps shows the schedule's sweep healing a push whose event never came,
// and a hold keeping a sweep away from a service until it is resumed.
func (d *demo) sweeps(ctx context.Context, store *history.Store, n int) error {
	d.p.head(fmt.Sprintf("Step %d: ECR's event for main-8e9f0a1 never arrives; the scheduled sweep finds staging behind and rolls it", n))
	tag, digest, _, err := d.push(ctx, step{tag: "main-8e9f0a1"})
	if err != nil {
		return err
	}
	d.p.line("  pushed web:%s → %s (no event is delivered)", tag, digest)
	if err := d.sweep(ctx); err != nil {
		return err
	}

	d.p.head(fmt.Sprintf("Step %d: an operator holds prod; v1.6.0 is pushed with no event; sweeps leave prod alone until it is resumed", n+1))
	key := history.ServiceKey(emulator.Account, emulator.Region, "prod", "web")
	hold := history.Hold{By: "ops@example.com", At: time.Now().UTC().Truncate(time.Second), Reason: "database migration in progress"}
	if _, err := store.PlaceHold(ctx, key, hold, false); err != nil {
		return err
	}
	d.p.line("  $ autodeploy hold --cluster prod --service web --reason %q", hold.Reason)
	if _, _, _, err := d.push(ctx, step{tag: "v1.6.0"}); err != nil {
		return err
	}
	d.p.line("  pushed web:v1.6.0 (no event is delivered)")
	if err := d.sweep(ctx); err != nil {
		return err
	}
	if _, err := store.LiftHold(ctx, key, hold.By, time.Now().UTC()); err != nil {
		return err
	}
	d.p.line("  $ autodeploy resume --cluster prod --service web")
	return d.sweep(ctx)
}

// sweep sends the deployer the schedule's event and prints its lines.
func (d *demo) sweep(ctx context.Context) error {
	var ev map[string]any
	if err := readJSON(filepath.Join(d.o.EventsDir, "scheduled-reconcile.json"), &ev); err != nil {
		return err
	}
	ev["id"] = fmt.Sprintf("demo-sweep-%d", time.Now().UnixNano())
	data, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	if err := d.runSweep(ctx, data, "(EventBridge's schedule) ", nil); err != nil {
		return err
	}
	results, err := d.work(ctx)
	if err != nil {
		return err
	}
	if err := d.published(ctx, deploy.Summary{Results: results}); err != nil {
		return err
	}
	return d.running(ctx)
}

// runSweep hands the deployer a sweep (the schedule's event or a sweep
// command) and prints its report: every target's line, or only those
// only keeps; and the reconcile log lines of the targets it moved (the
// others say what their report line says).
func (d *demo) runSweep(ctx context.Context, payload []byte, who string, only func(reconcile.Line) bool) error {
	before := lineCount(d.deployer.Logs())
	body, err := d.deployer.Invoke(ctx, payload)
	if err != nil {
		return err
	}
	var rep reconcile.Report
	if err := json.Unmarshal(body, &rep); err != nil {
		return fmt.Errorf("deployer answered %s: %w", body, err)
	}
	d.p.line("  %ssweep: %d of %d targets behind", who, rep.Drift, len(rep.Lines))
	for _, l := range rep.Lines {
		if only != nil && !only(l) {
			continue
		}
		newest := ""
		if l.NewestTag != "" {
			newest = ", newest " + l.NewestTag
		}
		d.p.line("  sweep: %-9s %s/%s (rule %s%s) %s", l.Outcome, l.Cluster, l.Service, l.Rule, newest, l.Reason)
	}
	var moved []string
	for _, l := range newJSONLines(d.deployer.LogsAfter(before), before) {
		var line struct{ Msg, Outcome string }
		if json.Unmarshal([]byte(l), &line) == nil && line.Msg == "reconcile" && line.Outcome != "in_sync" && line.Outcome != "skipped" {
			moved = append(moved, l)
		}
	}
	d.p.logs("deployer", moved)
	return nil
}

// sweepAfterRollback plays the sweep the watcher asks for after ECS rolled
// back a deploy of a rule that publishes: the parameter still names the
// image rolled back from, and the sweep writes what runs. The demo's
// watcher has no deployer function to ask (AUTODEPLOY_DEPLOYER_FUNCTION is
// unset, so its "sweep requested" line went nowhere): the demo hands the
// deployer the sweep command the watcher would.
func (d *demo) sweepAfterRollback(ctx context.Context, r deploy.Result) error {
	if rule := d.ruleNamed(r.Rule); rule == nil || rule.Publish == nil {
		return nil
	}
	if err := d.publishedOf(ctx, r, " (still the image rolled back from)"); err != nil {
		return err
	}
	cmd, err := work.EncodeCommand(work.Sweep{ID: "after-rollback-" + strings.ReplaceAll(r.DeploymentID, "/", "-"),
		Origin: fmt.Sprintf("watcher, for rule %s on %s/%s (deployment %s)", r.Rule, r.Cluster, r.Service, r.DeploymentID)})
	if err != nil {
		return err
	}
	d.p.line("  (playing the watcher's request: the demo names the watcher no deployer function to send it to) a sweep command goes to the deployer")
	if err := d.runSweep(ctx, cmd, "(the watcher's request) ", func(l reconcile.Line) bool { return l.Cluster == r.Cluster && l.Service == r.Service }); err != nil {
		return err
	}
	return d.publishedOf(ctx, r, " (what runs again)")
}

// published prints the parameters of the rules that publish, for the
// targets this push deployed: what CDK or Terraform would read.
func (d *demo) published(ctx context.Context, sum deploy.Summary) error {
	for _, r := range sum.Results {
		if r.Outcome != deploy.Deployed {
			continue
		}
		if err := d.publishedOf(ctx, r, " (CDK, Terraform and CloudFormation read it instead of an image)"); err != nil {
			return err
		}
	}
	return nil
}

// publishedOf prints the parameters r's rule publishes for r's containers
// (none for a rule that does not publish), each followed by note.
func (d *demo) publishedOf(ctx context.Context, r deploy.Result, note string) error {
	rule := d.ruleNamed(r.Rule)
	if rule == nil || rule.Publish == nil {
		return nil
	}
	for _, c := range r.Containers {
		name := rule.Publish.Parameter(r.Cluster, r.Service, c)
		out, err := d.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
		if err != nil {
			return fmt.Errorf("read %s: %w", name, err)
		}
		d.p.line("  published: %s = %s%s", name, aws.ToString(out.Parameter.Value), note)
	}
	return nil
}

func (d *demo) ruleNamed(name string) *rules.Rule {
	for _, r := range d.cfg.Rules {
		if r.Name == name {
			return r
		}
	}
	return nil
}
