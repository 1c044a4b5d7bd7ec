package deploy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecrevent"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/logging"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/notify"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/taskdef"
)

const (
	registry = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
	secret   = "hunter2-do-not-log"
)

var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func digestOf(seed string) string {
	sum := sha256.Sum256([]byte(seed))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// pushEvent is the sample push event with repository, tag and time replaced;
// the digest follows the tag so equal tags mean equal images.
func pushEvent(t testing.TB, repo, tag string, at time.Time) json.RawMessage {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "events", "ecr-push-main.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ev map[string]any
	if err := json.Unmarshal(data, &ev); err != nil {
		t.Fatal(err)
	}
	ev["id"] = fmt.Sprintf("evt-%s-%s-%d", repo, tag, at.Unix())
	ev["time"] = at.Format(time.RFC3339)
	detail := ev["detail"].(map[string]any)
	detail["repository-name"], detail["image-tag"], detail["image-digest"] = repo, tag, digestOf(repo+":"+tag)
	out, _ := json.Marshal(ev)
	return out
}

type fixture struct {
	ecs      *fakeECS
	services *memServices
	logs     *bytes.Buffer
	d        *Deployer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	cfg, err := rules.Load("testdata/autodeploy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{ecs: newFakeECS(), services: newMemServices(), logs: &bytes.Buffer{}}
	webTD := types.TaskDefinition{
		Family:      aws.String("web"),
		NetworkMode: types.NetworkModeAwsvpc, IpcMode: types.IpcModeTask, PidMode: types.PidModeTask,
		Cpu: aws.String("512"), Memory: aws.String("1024"),
		TaskRoleArn:      aws.String("arn:aws:iam::123456789012:role/web-task"),
		ExecutionRoleArn: aws.String("arn:aws:iam::123456789012:role/web-exec"),
		ContainerDefinitions: []types.ContainerDefinition{
			{Name: aws.String("app"), Image: aws.String(registry + "/web:main-0000001"), Essential: aws.Bool(true),
				Environment: []types.KeyValuePair{{Name: aws.String("DB_PASSWORD"), Value: aws.String(secret)}},
				Secrets:     []types.Secret{{Name: aws.String("API_KEY"), ValueFrom: aws.String("arn:aws:secretsmanager:eu-west-1:123456789012:secret:" + secret)}}},
			{Name: aws.String("worker"), Image: aws.String(registry + "/web:main-0000001")},
			{Name: aws.String("api"), Image: aws.String(registry + "/api:build-1")},
			{Name: aws.String("envoy"), Image: aws.String("public.ecr.aws/envoyproxy/envoy:v1.31")},
		},
	}
	userTags := []types.Tag{{Key: aws.String("team"), Value: aws.String("web")}, {Key: aws.String("aws:cloudformation:stack-name"), Value: aws.String("web")}}
	for _, svc := range []struct{ cluster, name string }{{"staging", "web"}, {"staging", "web-worker"}, {"prod", "web"}, {"dev", "web"}} {
		td := webTD
		if svc.name == "web" && svc.cluster == "dev" {
			td.ContainerDefinitions = []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String(registry + "/web:latest")}}
		}
		f.ecs.addService(svc.cluster, svc.name, f.ecs.addTaskDef(td, userTags))
	}
	f.d = &Deployer{
		Central:     rules.Place{Account: "123456789012", Region: "eu-west-1"},
		Rules:       cfg,
		ECS:         func(string, string) ECS { return f.ecs },
		Services:    f.services,
		Log:         logging.New(f.logs, slog.LevelDebug),
		Concurrency: 4,
		Now:         time.Now,
	}
	return f
}

// deployLines returns the msg=deploy log lines, by cluster/service.
func (f *fixture) deployLines(t *testing.T) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, line := range strings.Split(strings.TrimSpace(f.logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if m["msg"] == "deploy" {
			key := fmt.Sprintf("%s/%s", m["cluster"], m["service"])
			if _, dup := out[key]; dup {
				t.Errorf("two deploy lines for %s in one event", key)
			}
			out[key] = m
		}
	}
	return out
}

func images(td *types.TaskDefinition) map[string]string {
	out := map[string]string{}
	for _, c := range td.ContainerDefinitions {
		out[aws.ToString(c.Name)] = aws.ToString(c.Image)
	}
	return out
}

func tagMap(tags []types.Tag) map[string]string {
	out := map[string]string{}
	for _, t := range tags {
		out[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return out
}

func outcomes(s Summary) map[string]string {
	out := map[string]string{}
	for _, r := range s.Results {
		out[r.Cluster+"/"+r.Service+"/"+r.Rule] = string(r.Outcome)
	}
	return out
}

func TestDeployByDigest(t *testing.T) {
	f := newFixture(t)
	ev := pushEvent(t, "web", "main-4f2a9c1", t0)
	sum, err := f.d.Handle(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"staging/web/web-staging": "deployed", "staging/web-worker/web-staging": "deployed"}, outcomes(sum)); diff != "" {
		t.Fatalf("outcomes (-want +got):\n%s", diff)
	}
	pinned := registry + "/web@" + digestOf("web:main-4f2a9c1")

	web := f.ecs.current("staging", "web")
	want := map[string]string{"app": pinned, "worker": pinned, "api": registry + "/api:build-1", "envoy": "public.ecr.aws/envoyproxy/envoy:v1.31"}
	if diff := cmp.Diff(want, images(web.TaskDefinition)); diff != "" {
		t.Errorf("staging/web images (-want +got):\n%s", diff)
	}
	wantTags := map[string]string{
		"team": "web", "autodeploy:rule": "web-staging", "autodeploy:event": "evt-web-main-4f2a9c1-" + fmt.Sprint(t0.Unix()),
		"autodeploy:app:tag": "main-4f2a9c1", "autodeploy:app:pushed-at": "2026-11-25T10:00:00.000Z",
		"autodeploy:worker:tag": "main-4f2a9c1", "autodeploy:worker:pushed-at": "2026-11-25T10:00:00.000Z",
		"autodeploy:from": "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:1",
	}
	if diff := cmp.Diff(wantTags, tagMap(web.Tags)); diff != "" {
		t.Errorf("staging/web tags (-want +got):\n%s", diff)
	}
	if got := aws.ToString(web.TaskDefinition.TaskRoleArn); got != "arn:aws:iam::123456789012:role/web-task" {
		t.Errorf("task role not carried over: %q", got)
	}
	if web.TaskDefinition.IpcMode != types.IpcModeTask || web.TaskDefinition.PidMode != types.PidModeTask {
		t.Error("ipcMode/pidMode not carried over")
	}

	// Named containers: only worker changes on web-worker.
	worker := f.ecs.current("staging", "web-worker")
	if got := images(worker.TaskDefinition); got["worker"] != pinned || got["app"] != registry+"/web:main-0000001" {
		t.Errorf("web-worker images = %v; want only worker changed", got)
	}

	lines := f.deployLines(t)
	line := lines["staging/web"]
	for k, want := range map[string]any{
		"level": "INFO", "rule": "web-staging", "repository": "web", "tag": "main-4f2a9c1", "digest": digestOf("web:main-4f2a9c1"),
		"outcome": "deployed", "from_task_definition": "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:1",
		"to_task_definition": aws.ToString(web.TaskDefinition.TaskDefinitionArn), "deployment_id": sum.Results[0].DeploymentID,
		"event_id": "evt-web-main-4f2a9c1-" + fmt.Sprint(t0.Unix()), "reason": "",
	} {
		if line[k] != want {
			t.Errorf("deploy line %s = %v, want %v", k, line[k], want)
		}
	}
	if _, ok := line["duration_ms"]; !ok {
		t.Error("deploy line has no duration_ms")
	}
	if diff := cmp.Diff([]any{"app", "worker"}, line["containers"]); diff != "" {
		t.Errorf("containers (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(sum.Results[0].DeploymentID, "ecs-svc/") {
		t.Errorf("deployment id %q not taken from UpdateService", sum.Results[0].DeploymentID)
	}
	if len(f.services.recorded()) != 2 || f.services.recorded()[0].Outcome != "deployed" {
		t.Errorf("history = %+v, want two deployed records", f.services.recorded())
	}
	if strings.Contains(f.logs.String(), secret) {
		t.Error("a container environment value or secret reached the log")
	}
}

func TestDuplicateDeliveryIsIdempotent(t *testing.T) {
	f := newFixture(t)
	ev := pushEvent(t, "web", "main-4f2a9c1", t0)
	if _, err := f.d.Handle(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	registered := f.ecs.calls["RegisterTaskDefinition"]
	sum, err := f.d.Handle(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range sum.Results {
		if r.Outcome != Skipped || !strings.HasPrefix(r.Reason, "already running ") {
			t.Errorf("%s/%s: %s (%s), want skipped as already running", r.Cluster, r.Service, r.Outcome, r.Reason)
		}
	}
	if f.ecs.calls["RegisterTaskDefinition"] != registered || f.ecs.calls["UpdateService"] != 2 {
		t.Errorf("a duplicate delivery registered or updated again: %v", f.ecs.calls)
	}
}

func TestNeverDowngrade(t *testing.T) {
	tests := []struct {
		name  string
		first [3]any // repo, tag, time offset
		then  [3]any
		want  Outcome
		why   string
	}{
		{"older release delivered later", [3]any{"web", "v1.4.0", 0}, [3]any{"web", "v1.3.2", 1}, Skipped, "never downgrade: app: v1.3.2 is older than the running v1.4.0"},
		{"newer release", [3]any{"web", "v1.3.2", 0}, [3]any{"web", "v1.4.0", 1}, Deployed, ""},
		{"older build pushed first, delivered last", [3]any{"web", "main-bbb", 5}, [3]any{"web", "main-aaa", 1}, Skipped, "pushed at 2026-11-25T10:01:00Z, before the running image (pushed at 2026-11-25T10:05:00Z)"},
		{"version group", [3]any{"api", "build-10", 0}, [3]any{"api", "build-9", 1}, Skipped, "never downgrade: api: build-9 is older than the running build-10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			at := func(x [3]any) time.Time { return t0.Add(time.Duration(x[2].(int)) * time.Minute) }
			if _, err := f.d.Handle(context.Background(), pushEvent(t, tt.first[0].(string), tt.first[1].(string), at(tt.first))); err != nil {
				t.Fatal(err)
			}
			sum, err := f.d.Handle(context.Background(), pushEvent(t, tt.then[0].(string), tt.then[1].(string), at(tt.then)))
			if err != nil {
				t.Fatal(err)
			}
			r := sum.Results[0]
			if r.Outcome != tt.want || !strings.Contains(r.Reason, tt.why) {
				t.Errorf("%s/%s = %s (%q), want %s containing %q", r.Cluster, r.Service, r.Outcome, r.Reason, tt.want, tt.why)
			}
		})
	}
}

func TestPinByTagRedeploysAMovedTag(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	first, err := f.d.Handle(ctx, pushEvent(t, "web", "latest", t0))
	if err != nil {
		t.Fatal(err)
	}
	if first.Results[0].Outcome != Deployed {
		t.Fatalf("first push of latest: %+v", first.Results[0])
	}
	if got := images(f.ecs.current("dev", "web").TaskDefinition)["app"]; got != registry+"/web:latest" {
		t.Errorf("pin: tag image = %s", got)
	}
	again, _ := f.d.Handle(ctx, pushEvent(t, "web", "latest", t0))
	if again.Results[0].Outcome != Skipped {
		t.Errorf("duplicate delivery of the same latest push: %+v", again.Results[0])
	}
	// The same tag pushed again as another image (the digest moved).
	var ev map[string]any
	_ = json.Unmarshal(pushEvent(t, "web", "latest", t0.Add(time.Hour)), &ev)
	ev["detail"].(map[string]any)["image-digest"] = digestOf("web:latest, rebuilt")
	raw, _ := json.Marshal(ev)
	moved, _ := f.d.Handle(ctx, raw)
	if moved.Results[0].Outcome != Deployed {
		t.Errorf("latest pushed again an hour later was not rolled: %+v", moved.Results[0])
	}
}

func TestPermanentFailures(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(*fakeECS)
		reason string
	}{
		{"missing service", func(f *fakeECS) { delete(f.services, "prod/web") }, "service web not found in cluster prod (MISSING)"},
		{"inactive service", func(f *fakeECS) { f.services["prod/web"].Status = aws.String("INACTIVE") }, "service web in cluster prod is INACTIVE, not ACTIVE"},
		{"code deploy", func(f *fakeECS) {
			f.services["prod/web"].DeploymentController = &types.DeploymentController{Type: types.DeploymentControllerTypeCodeDeploy}
		}, "is blue/green (CODE_DEPLOY controller): give its target codedeploy: {}"},
		{"external controller", func(f *fakeECS) {
			f.services["prod/web"].DeploymentController = &types.DeploymentController{Type: types.DeploymentControllerTypeExternal}
		}, "uses the EXTERNAL deployment controller"},
		{"no container from repository", func(f *fakeECS) {
			td := f.taskDefs[aws.ToString(f.services["prod/web"].TaskDefinition)].TaskDefinition
			td.ContainerDefinitions = td.ContainerDefinitions[2:]
		}, "service web: task definition web has no container from repository " + registry + "/web"},
		{"access denied", func(f *fakeECS) {
			f.failures["UpdateService"] = []error{&smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized", Fault: smithy.FaultClient}}
		}, "AccessDeniedException"},
		{"too many tags", func(f *fakeECS) {
			out := f.taskDefs[aws.ToString(f.services["prod/web"].TaskDefinition)]
			for i := range 49 {
				out.Tags = append(out.Tags, types.Tag{Key: aws.String(fmt.Sprintf("k%d", i)), Value: aws.String("v")})
			}
		}, "over ECS's limit of 50"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			// prod/web gets its own task definition so setups do not leak.
			td := *f.ecs.current("prod", "web").TaskDefinition
			td.ContainerDefinitions = append([]types.ContainerDefinition(nil), td.ContainerDefinitions...)
			f.ecs.services["prod/web"].TaskDefinition = aws.String(f.ecs.addTaskDef(td, nil))
			tt.setup(f.ecs)
			notices := &memNotifier{}
			f.d.Notifier = notices
			sum, err := f.d.Handle(context.Background(), pushEvent(t, "web", "v1.0.0", t0))
			if err != nil {
				t.Fatalf("a permanent failure must not fail the invocation (no retry): %v", err)
			}
			r := sum.Results[0]
			if r.Outcome != Failed || r.Retryable || !strings.Contains(r.Reason, tt.reason) {
				t.Errorf("result = %s retryable=%v %q, want permanent failure containing %q", r.Outcome, r.Retryable, r.Reason, tt.reason)
			}
			if line := f.deployLines(t)["prod/web"]; line["outcome"] != "failed" || line["level"] != "ERROR" {
				t.Errorf("deploy line = %v", line)
			}
			if len(f.services.recorded()) != 1 || f.services.recorded()[0].Outcome != "failed" {
				t.Errorf("history = %+v, want the failure recorded", f.services.recorded())
			}
			if len(notices.messages) != 1 || !strings.Contains(notices.messages[0], "prod/web NOT deployed web:v1.0.0") ||
				!strings.Contains(notices.messages[0], tt.reason) {
				t.Errorf("notices = %q, want one naming the failure", notices.messages)
			}
		})
	}
}

func TestTransientFailureRetriesOnlyWhatFailed(t *testing.T) {
	f := newFixture(t)
	throttled := &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded", Fault: smithy.FaultClient}
	f.ecs.failures["UpdateService"] = []error{throttled}
	f.d.Concurrency = 1 // the first target in order takes the throttle
	notices := &memNotifier{}
	f.d.Notifier = notices
	ev := pushEvent(t, "web", "main-4f2a9c1", t0)
	sum, err := f.d.Handle(context.Background(), ev)
	if err == nil || !strings.Contains(err.Error(), "1 of 2 targets failed transiently") {
		t.Fatalf("err = %v, want the invocation to fail for Lambda to retry", err)
	}
	if diff := cmp.Diff(map[string]string{"staging/web/web-staging": "failed", "staging/web-worker/web-staging": "deployed"}, outcomes(sum)); diff != "" {
		t.Errorf("one failing target must not stop the others (-want +got):\n%s", diff)
	}
	if !sum.Results[0].Retryable || !strings.HasSuffix(sum.Results[0].Reason, "(will retry)") {
		t.Errorf("throttled result = %+v", sum.Results[0])
	}
	if len(notices.messages) != 0 {
		t.Errorf("a transient failure, which Lambda retries, was notified: %q", notices.messages)
	}
	retry, err := f.d.Handle(context.Background(), ev)
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	if diff := cmp.Diff(map[string]string{"staging/web/web-staging": "deployed", "staging/web-worker/web-staging": "skipped"}, outcomes(retry)); diff != "" {
		t.Errorf("retry (-want +got):\n%s", diff)
	}
}

type memNotifier struct{ messages []string }

func (n *memNotifier) Notify(_ context.Context, notice notify.Notice) error {
	n.messages = append(n.messages, notice.Email())
	return nil
}

func TestLockTimeoutIsTransient(t *testing.T) {
	f := newFixture(t)
	f.services.fail = errors.New("lock staging/web still held")
	_, err := f.d.Handle(context.Background(), pushEvent(t, "web", "main-1", t0))
	if err == nil {
		t.Fatal("a lock that cannot be taken must make the invocation fail for a retry")
	}
}

func TestIgnoredAndInvalidEvents(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, name := range []string{"ecr-push-signature.json", "ecr-push-by-digest.json", "ecr-delete.json"} {
		data, err := os.ReadFile(filepath.Join("..", "..", "events", name))
		if err != nil {
			t.Fatal(err)
		}
		sum, err := f.d.Handle(ctx, data)
		if err != nil || sum.Ignored == "" || len(sum.Results) != 0 {
			t.Errorf("%s: summary %+v, err %v; want ignored", name, sum, err)
		}
	}
	sum, err := f.d.Handle(ctx, pushEvent(t, "web", "feature-x", t0))
	if err != nil || !strings.Contains(sum.Ignored, "no rule matches (web-staging: tag feature-x matches none of main-*;") {
		t.Errorf("unmatched tag: %+v, %v", sum, err)
	}
	sum, err = f.d.Handle(ctx, pushEvent(t, "other", "main-1", t0))
	if err != nil || sum.Ignored != "no rule matches (no rule for repository other)" {
		t.Errorf("unknown repository: %+v, %v", sum, err)
	}
	if _, err := f.d.Handle(ctx, json.RawMessage(`{"source":`)); err == nil {
		t.Error("malformed event accepted")
	}
	if n := len(f.ecs.calls); n != 0 {
		t.Errorf("ignored events called ECS: %v", f.ecs.calls)
	}
	if !strings.Contains(f.logs.String(), `"msg":"ignored","reason":"tag sha256-`) {
		t.Errorf("ignored events are not logged with their reason:\n%s", f.logs)
	}
}

func TestConcurrentPushesToOneServiceLoseNothing(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	done := make(chan error, 2)
	go func() { _, err := f.d.Handle(ctx, pushEvent(t, "web", "main-4f2a9c1", t0)); done <- err }()
	go func() { _, err := f.d.Handle(ctx, pushEvent(t, "api", "build-2", t0)); done <- err }()
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	got := images(f.ecs.current("staging", "web").TaskDefinition)
	if got["app"] != registry+"/web@"+digestOf("web:main-4f2a9c1") || got["api"] != registry+"/api@"+digestOf("api:build-2") {
		t.Errorf("an update was lost: %v", got)
	}
	tags := tagMap(f.ecs.current("staging", "web").Tags)
	if tags[taskdef.ContainerTagKey("app")] != "main-4f2a9c1" || tags[taskdef.ContainerTagKey("api")] != "build-2" {
		t.Errorf("a container's record was lost: %v", tags)
	}
}

// TestRetryNeverRedeploysARolledBackDigest: ECS rolled the service back
// (the watcher noted the digest on the service's state); the same event
// delivered again, by Lambda's retry or a redrive, must leave it alone.
func TestRetryNeverRedeploysARolledBackDigest(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ev := pushEvent(t, "web", "main-4f2a9c1", t0)
	before := aws.ToString(f.ecs.services["staging/web"].TaskDefinition)
	if _, err := f.d.Handle(ctx, ev); err != nil {
		t.Fatal(err)
	}
	// The circuit breaker rolls staging/web back; the watcher records it.
	f.ecs.services["staging/web"].TaskDefinition = aws.String(before)
	f.services.fixState(history.ServiceKey("123456789012", "eu-west-1", "staging", "web"), func(s *history.ServiceState) {
		s.FailedDigests = append(s.FailedDigests, digestOf("web:main-4f2a9c1"))
	})
	registered := f.ecs.calls["RegisterTaskDefinition"]

	sum, err := f.d.Handle(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	web := sum.Results[0]
	if web.Outcome != Skipped || !strings.Contains(web.Reason, "failed or was rolled back") {
		t.Errorf("retry on the rolled-back service = %s %q, want skipped because it was rolled back", web.Outcome, web.Reason)
	}
	if f.ecs.calls["RegisterTaskDefinition"] != registered || aws.ToString(f.ecs.services["staging/web"].TaskDefinition) != before {
		t.Error("the rolled-back image was deployed again")
	}
	// A newer image moves the service again.
	newer, err := f.d.Handle(ctx, pushEvent(t, "web", "main-5b3c0d2", t0.Add(time.Minute)))
	if err != nil || newer.Results[0].Outcome != Deployed {
		t.Errorf("a newer push = %+v, %v; want deployed", newer.Results, err)
	}
}

// TestPermanentFailureReportedOnce: an event with one permanent and one
// transient failure is retried; the permanent one is recorded and notified
// on the first attempt only.
func TestPermanentFailureReportedOnce(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	notices := &memNotifier{}
	f.d.Notifier = notices
	f.d.Concurrency = 1
	delete(f.ecs.services, "staging/web-worker") // permanent: the service is gone
	throttled := &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded", Fault: smithy.FaultClient}
	f.ecs.failures["UpdateService"] = []error{throttled} // transient on staging/web
	ev := pushEvent(t, "web", "main-4f2a9c1", t0)
	for attempt := range 3 {
		sum, err := f.d.Handle(ctx, ev)
		if attempt == 0 && err == nil {
			t.Fatal("the transient failure must fail the first attempt")
		}
		if got := outcomes(sum)["staging/web-worker/web-staging"]; got != "failed" {
			t.Errorf("attempt %d: worker %s, want failed", attempt, got)
		}
	}
	var failures int
	for _, r := range f.services.recorded() {
		if r.Outcome == "failed" {
			failures++
		}
	}
	if failures != 1 || len(notices.messages) != 1 {
		t.Errorf("%d failure records and %d notices over three attempts, want one of each", failures, len(notices.messages))
	}
}

// TestLostLeaseStopsBeforeUpdateService: a holder whose lease was taken over
// must not move the service; it fails transiently and Lambda retries.
func TestLostLeaseStopsBeforeUpdateService(t *testing.T) {
	f := newFixture(t)
	f.services.lost = true
	sum, err := f.d.Handle(context.Background(), pushEvent(t, "web", "v1.0.0", t0))
	if err == nil {
		t.Fatal("a lost lease must fail the invocation for a retry")
	}
	if r := sum.Results[0]; r.Outcome != Failed || !r.Retryable || !strings.Contains(r.Reason, "lease lost") {
		t.Errorf("result = %+v", r)
	}
	if f.ecs.calls["UpdateService"] != 0 {
		t.Error("UpdateService was called after the lease was lost")
	}
}

// A held service is skipped by pushes (and, through the same path, by
// promotions' hand-offs and sweeps) with a reason naming who, when and why.
func TestHeldServiceIsSkipped(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	key := history.ServiceKey("123456789012", "eu-west-1", "staging", "web")
	f.services.fixState(key, func(s *history.ServiceState) {
		s.Hold = &history.Hold{By: "alice", At: t0, Reason: "incident 4711"}
	})
	before := aws.ToString(f.ecs.services["staging/web"].TaskDefinition)
	sum, err := f.d.Handle(ctx, pushEvent(t, "web", "main-4f2a9c1", t0))
	if err != nil {
		t.Fatal(err)
	}
	want := "held by alice since " + t0.UTC().Format(time.RFC3339) + ": incident 4711"
	if r := sum.Results[0]; r.Outcome != Skipped || r.Reason != want {
		t.Errorf("held service: %s %q, want skipped %q", r.Outcome, r.Reason, want)
	}
	if aws.ToString(f.ecs.services["staging/web"].TaskDefinition) != before {
		t.Error("a held service was moved")
	}
	if r := sum.Results[1]; r.Service != "web-worker" || r.Outcome != Deployed {
		t.Errorf("the rule's other, unheld target: %+v; want deployed", r)
	}
	f.services.fixState(key, func(s *history.ServiceState) { s.Hold = nil })
	if sum, err := f.d.Handle(ctx, pushEvent(t, "web", "main-4f2a9c1", t0)); err != nil || sum.Results[0].Outcome != Deployed {
		t.Errorf("after resume: %+v, %v; want deployed", sum.Results, err)
	}
}

// Real ECR reports imagePushedAt with milliseconds (moto rounds to whole
// seconds); a sweep deploys with that time. A pin: tag target deployed from
// such a push must count as running it on the next delivery or sweep, and a
// revision an older version tagged with whole seconds must too.
func TestPinByTagAtECRPrecision(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	rule := f.d.Rules.Rules[2] // web-latest, pin: tag
	job := []Job{{Rule: rule, Target: rule.Targets[0]}}
	push := ecrevent.Push{EventID: "reconcile-abc", Account: "123456789012", Region: "eu-west-1", Repository: "web",
		Tag: "latest", Digest: digestOf("web:latest"), Time: t0.Add(777 * time.Millisecond)}
	first, err := f.d.DeployJobs(ctx, push, job)
	if err != nil || first.Results[0].Outcome != Deployed {
		t.Fatalf("first sweep of latest: %+v, %v", first.Results, err)
	}
	tags := tagMap(f.ecs.current("dev", "web").Tags)
	if tags["autodeploy:app:pushed-at"] != "2026-11-25T10:00:00.777Z" || tags["autodeploy:app:digest"] != push.Digest {
		t.Errorf("recorded pushed-at %q, digest %q: want ECR's milliseconds and the digest", tags["autodeploy:app:pushed-at"], tags["autodeploy:app:digest"])
	}
	again, err := f.d.DeployJobs(ctx, push, job)
	if err != nil || again.Results[0].Outcome != Skipped {
		t.Errorf("next sweep of the same image: %+v, %v; want skipped (already running)", again.Results, err)
	}
	moved := push
	moved.Digest, moved.Time = digestOf("web:latest moved"), push.Time.Add(10*time.Millisecond)
	if res, _ := f.d.DeployJobs(ctx, moved, job); res.Results[0].Outcome != Deployed {
		t.Errorf("latest re-pushed 10 ms later (another digest): %+v; want deployed", res.Results[0])
	}

	// A revision tagged by an older version: whole seconds, no digest.
	legacy := f.ecs.current("dev", "web")
	var kept []types.Tag
	for _, tg := range legacy.Tags {
		switch aws.ToString(tg.Key) {
		case "autodeploy:app:digest":
		case "autodeploy:app:pushed-at":
			kept = append(kept, types.Tag{Key: tg.Key, Value: aws.String("2026-11-25T10:00:00Z")})
		default:
			kept = append(kept, tg)
		}
	}
	f.ecs.addService("dev", "web", f.ecs.addTaskDef(*legacy.TaskDefinition, kept))
	if res, _ := f.d.DeployJobs(ctx, push, job); res.Results[0].Outcome != Skipped {
		t.Errorf("revision recorded in whole seconds, swept with ECR's milliseconds: %+v; want skipped", res.Results[0])
	}
}
