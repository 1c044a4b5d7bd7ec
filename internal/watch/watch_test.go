package watch

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/logging"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/notify"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/promote"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work"
)

const rulesYAML = `version: 1
rules:
  - name: web-staging
    repository: web
    tags: ["main-*"]
    targets:
      - {cluster: staging, service: web}
      - {cluster: staging, service: web-worker}
    promote: {tag: "verified-{tag}"}
  - name: web-prod
    repository: web
    semver: ">= 1.0.0"
    targets: [{cluster: prod, service: web}]
`

var (
	t0      = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	central = rules.Place{Account: testenv.Account, Region: testenv.Region}
)

type recorder struct {
	mu       sync.Mutex
	invokes  [][]byte
	messages []string
}

func (r *recorder) Invoke(_ context.Context, in *lambda.InvokeInput, _ ...func(*lambda.Options)) (*lambda.InvokeOutput, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.invokes = append(r.invokes, in.Payload)
	return &lambda.InvokeOutput{StatusCode: 202}, nil
}

func (r *recorder) Notify(_ context.Context, n notify.Notice) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.messages = append(r.messages, n.Email())
	return nil
}

type fixture struct {
	w     *Watcher
	store *history.Store
	ecr   *ecr.Client
	rec   *recorder
	logs  *bytes.Buffer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	m := testenv.StartMoto(t)
	cfg, err := rules.Parse("autodeploy.yaml", []byte(rulesYAML))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{
		store: history.NewStore(dynamodb.NewFromConfig(m.AWSConfig()), m.CreateTable(t, "autodeploy")),
		ecr:   ecr.NewFromConfig(m.AWSConfig()),
		rec:   &recorder{},
		logs:  &bytes.Buffer{},
	}
	f.w = &Watcher{
		Rules: cfg, Store: f.store, Notifier: f.rec, Log: logging.New(f.logs, slog.LevelDebug),
		Central: central,
		Promoter: &promote.Promoter{
			ECR: func(string, string) promote.ECR { return f.ecr }, Central: central,
			Lambda: f.rec, DeployerFunction: "autodeploy-deployer", Now: func() time.Time { return t0.Add(time.Hour) },
		},
	}
	if _, err := f.ecr.CreateRepository(context.Background(), &ecr.CreateRepositoryInput{RepositoryName: aws.String("web")}); err != nil {
		t.Fatal(err)
	}
	return f
}

// pushImage stores an image in moto's ECR and returns its digest (moto
// derives it from the layers, so each tag gets its own layer).
func (f *fixture) pushImage(t *testing.T, tag string) string {
	t.Helper()
	manifest := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
"config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":7023,"digest":"sha256:%064x"},
"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":32654,"digest":"sha256:%064x"}]}`, len(tag), len(tag)*7919+int(tag[len(tag)-1]))
	out, err := f.ecr.PutImage(context.Background(), &ecr.PutImageInput{
		RepositoryName: aws.String("web"), ImageManifest: aws.String(manifest), ImageTag: aws.String(tag),
		ImageManifestMediaType: aws.String("application/vnd.docker.distribution.manifest.v2+json"),
	})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.Image.ImageId.ImageDigest)
}

func (f *fixture) deployed(t *testing.T, rule, cluster, service, tag, digest, deployment string) history.Record {
	t.Helper()
	r := history.Record{Rule: rule, Repository: "web", RegistryAccount: testenv.Account, RegistryRegion: testenv.Region,
		Tag: tag, Digest: digest, Account: testenv.Account, Region: testenv.Region, Cluster: cluster, Service: service,
		ToTaskDefinition: "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:9", DeploymentID: deployment,
		EventID: "push-" + tag, Outcome: "deployed", PushedAt: t0, DeployedAt: t0.Add(2 * time.Second)}
	if err := f.store.Put(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return r
}

// ecsEvent is a sample event aimed at a service and deployment.
func ecsEvent(t *testing.T, sample, cluster, service, deployment string) json.RawMessage {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "events", sample))
	if err != nil {
		t.Fatal(err)
	}
	var ev map[string]any
	if err := json.Unmarshal(data, &ev); err != nil {
		t.Fatal(err)
	}
	ev["resources"] = []string{fmt.Sprintf("arn:aws:ecs:eu-west-1:123456789012:service/%s/%s", cluster, service)}
	ev["detail"].(map[string]any)["deploymentId"] = deployment
	out, _ := json.Marshal(ev)
	return out
}

func (f *fixture) tagsOf(t *testing.T, digest string) []string {
	t.Helper()
	out, err := f.ecr.DescribeImages(context.Background(), &ecr.DescribeImagesInput{
		RepositoryName: aws.String("web"), ImageIds: []ecrtypes.ImageIdentifier{{ImageDigest: aws.String(digest)}}})
	if err != nil {
		t.Fatal(err)
	}
	return out.ImageDetails[0].ImageTags
}

func TestPromotionWaitsForEveryTarget(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	digest := f.pushImage(t, "main-abc")
	f.deployed(t, "web-staging", "staging", "web", "main-abc", digest, "ecs-svc/1")
	f.deployed(t, "web-staging", "staging", "web-worker", "main-abc", digest, "ecs-svc/2")

	res, err := f.w.Handle(ctx, ecsEvent(t, "ecs-deployment-completed.json", "staging", "web", "ecs-svc/1"))
	if err != nil || res.Outcome != history.Completed || res.Promoted != "" {
		t.Fatalf("first completion: %+v, %v", res, err)
	}
	rec, _, _ := f.store.ByDeployment(ctx, "ecs-svc/1")
	if rec.DeploymentOutcome != history.Completed {
		t.Errorf("history by deployment id: outcome %q", rec.DeploymentOutcome)
	}
	if tags := f.tagsOf(t, digest); len(tags) != 1 {
		t.Errorf("promoted before every target completed: %v", tags)
	}
	if !strings.Contains(f.logs.String(), `"completed":1,"targets":2,"waiting_count":1}`) {
		t.Errorf("the wait is not logged:\n%s", f.logs)
	}

	dup, err := f.w.Handle(ctx, ecsEvent(t, "ecs-deployment-completed.json", "staging", "web", "ecs-svc/1"))
	if err != nil || dup.Ignored != "outcome already recorded" {
		t.Errorf("duplicate delivery: %+v, %v", dup, err)
	}

	res, err = f.w.Handle(ctx, ecsEvent(t, "ecs-deployment-completed.json", "staging", "web-worker", "ecs-svc/2"))
	if err != nil || res.Promoted != "verified-main-abc" {
		t.Fatalf("second completion: %+v, %v", res, err)
	}
	tags := f.tagsOf(t, digest)
	if !strings.Contains(strings.Join(tags, ","), "verified-main-abc") {
		t.Errorf("digest tags = %v, want verified-main-abc", tags)
	}
	if len(f.rec.invokes) != 1 {
		t.Fatalf("hand-offs to the deployer = %d, want 1", len(f.rec.invokes))
	}
	handed, err := work.DecodeCommand(f.rec.invokes[0])
	if push, ok := handed.(work.DeployPush); err != nil || !ok || push.Push.Tag != "verified-main-abc" || push.Push.Digest != digest {
		t.Errorf("hand-off = %s, %v; want a push command of verified-main-abc", f.rec.invokes[0], err)
	}
	if len(f.rec.messages) != 2 || !strings.Contains(f.rec.messages[0], "staging/web is running web:main-abc") {
		t.Errorf("notifications = %q", f.rec.messages)
	}
}

func TestFailureAndRollbackNeverPromoteNorPassAsSuccess(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	digest := f.pushImage(t, "main-bad")
	f.deployed(t, "web-staging", "staging", "web", "main-bad", digest, "ecs-svc/10")
	f.deployed(t, "web-staging", "staging", "web-worker", "main-bad", digest, "ecs-svc/11")

	res, err := f.w.Handle(ctx, ecsEvent(t, "ecs-deployment-completed.json", "staging", "web-worker", "ecs-svc/11"))
	if err != nil || res.Outcome != history.Completed {
		t.Fatal(res, err)
	}
	// The circuit breaker's rollback may be delivered before the failure.
	res, err = f.w.Handle(ctx, ecsEvent(t, "ecs-deployment-rollback.json", "staging", "web", "ecs-svc/99"))
	if err != nil || res.Outcome != history.RolledBack || res.DeploymentID != "ecs-svc/10" {
		t.Fatalf("rollback: %+v, %v", res, err)
	}
	res, err = f.w.Handle(ctx, ecsEvent(t, "ecs-deployment-failed.json", "staging", "web", "ecs-svc/10"))
	if err != nil || res.Ignored != "outcome already recorded" {
		t.Errorf("failure after rollback: %+v, %v", res, err)
	}
	rec, _, _ := f.store.ByDeployment(ctx, "ecs-svc/10")
	if rec.DeploymentOutcome != history.RolledBack {
		t.Errorf("outcome = %q, want rolled_back", rec.DeploymentOutcome)
	}
	if tags := f.tagsOf(t, digest); len(tags) != 1 || len(f.rec.invokes) != 0 {
		t.Errorf("a rolled-back digest was promoted: %v, %d hand-offs", tags, len(f.rec.invokes))
	}
	var line map[string]any
	for _, l := range strings.Split(f.logs.String(), "\n") {
		if strings.Contains(l, `"msg":"deployment"`) && strings.Contains(l, "ecs-svc/10") {
			_ = json.Unmarshal([]byte(l), &line)
		}
	}
	for k, want := range map[string]any{"outcome": "rolled_back", "level": "ERROR", "rule": "web-staging", "repository": "web",
		"tag": "main-bad", "digest": digest, "cluster": "staging", "service": "web", "deployment_id": "ecs-svc/10"} {
		if line[k] != want {
			t.Errorf("deployment line %s = %v, want %v", k, line[k], want)
		}
	}
	if line["push_to_completion_ms"] == nil {
		t.Error("no push_to_completion_ms")
	}
	if !strings.Contains(f.logs.String(), `"DeploymentsRolledBack":1`) {
		t.Error("no rolled-back metric")
	}

	// A failure without rollback is reported as failed, and never promotes.
	digest2 := f.pushImage(t, "main-worse")
	f.deployed(t, "web-staging", "staging", "web", "main-worse", digest2, "ecs-svc/12")
	f.deployed(t, "web-staging", "staging", "web-worker", "main-worse", digest2, "ecs-svc/13")
	if res, err := f.w.Handle(ctx, ecsEvent(t, "ecs-deployment-failed.json", "staging", "web", "ecs-svc/12")); err != nil || res.Outcome != history.Failed {
		t.Errorf("failure: %+v, %v", res, err)
	}
	if res, _ := f.w.Handle(ctx, ecsEvent(t, "ecs-deployment-completed.json", "staging", "web-worker", "ecs-svc/13")); res.Promoted != "" {
		t.Errorf("promoted although staging/web failed: %+v", res)
	}
}

func TestIgnoresWhatItDidNotStart(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	for _, tt := range []struct{ sample, want string }{
		{"ecs-deployment-completed.json", "deployment not started by autodeploy"},
		{"ecs-deployment-in-progress.json", "deployment still in progress"},
		{"ecs-deployment-rollback.json", "rollback of a deployment autodeploy did not start"},
	} {
		res, err := f.w.Handle(ctx, ecsEvent(t, tt.sample, "staging", "web", "ecs-svc/777"))
		if err != nil || res.Ignored != tt.want {
			t.Errorf("%s: %+v, %v; want ignored %q", tt.sample, res, err, tt.want)
		}
	}
	if _, err := f.w.Handle(ctx, json.RawMessage(`{"source":"aws.ecs"}`)); err == nil {
		t.Error("a malformed event was accepted")
	}
	if strings.Contains(f.logs.String(), `"msg":"deployment"`) {
		t.Error("a deployment line was written for a deployment autodeploy did not start")
	}
}

// The watcher's notice carries what the record knows; notify's golden
// files show how it reads.
func TestNotice(t *testing.T) {
	t.Parallel()
	rec := history.Record{Account: "123456789012", Region: "eu-west-1", Cluster: "prod", Service: "web", Repository: "web",
		Tag: "v1.4.0", Digest: "sha256:abc", Rule: "web-prod", DeploymentID: "ecs-svc/1", EventID: "e1", PushedAt: t0,
		ToTaskDefinition: "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:7"}
	got := Notice(rec, history.RolledBack, "ECS deployment circuit breaker: rolling back", t0.Add(3*time.Minute))
	want := notify.Notice{Outcome: notify.RolledBack, Account: "123456789012", Region: "eu-west-1", Cluster: "prod", Service: "web",
		Rule: "web-prod", Repository: "web", Tag: "v1.4.0", Digest: "sha256:abc", TaskDefinition: rec.ToTaskDefinition,
		DeploymentID: "ecs-svc/1", EventID: "e1", Reason: "ECS deployment circuit breaker: rolling back", PushedAt: t0,
		EndedAt: t0.Add(3 * time.Minute), ServiceARN: "arn:aws:ecs:eu-west-1:123456789012:service/prod/web"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("notice (-want +got):\n%s", diff)
	}
	if got.Title() != "prod/web was ROLLED BACK from web:v1.4.0" {
		t.Errorf("title = %q", got.Title())
	}
}

func TestPromotionNeverFeedsItsOwnRule(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	cfg, err := rules.Parse("loop.yaml", []byte("version: 1\nrules:\n  - name: any\n    repository: web\n    tags: [\"*\"]\n    pin: tag\n"+
		"    targets: [{cluster: staging, service: web}]\n    promote: {tag: \"ok-{tag}\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	f.w.Rules = cfg
	digest := f.pushImage(t, "main-loop")
	f.deployed(t, "any", "staging", "web", "main-loop", digest, "ecs-svc/50")
	res, err := f.w.Handle(ctx, ecsEvent(t, "ecs-deployment-completed.json", "staging", "web", "ecs-svc/50"))
	if err != nil || res.Outcome != history.Completed || res.Promoted != "" || len(f.rec.invokes) != 0 {
		t.Fatalf("a self-feeding promotion went ahead: %+v, %v", res, err)
	}
	if !strings.Contains(f.logs.String(), `"outcome":"refused"`) {
		t.Errorf("the refusal is not logged:\n%s", f.logs)
	}
}

func TestRollbackSkipsFailedDeploysWithoutDeployment(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	digest := f.pushImage(t, "main-x")
	f.deployed(t, "web-staging", "staging", "web", "main-x", digest, "ecs-svc/60")
	// A later push failed permanently: recorded, but it started no deployment.
	failed := history.Record{Rule: "web-staging", Repository: "web", Tag: "main-y", Account: testenv.Account, Region: testenv.Region,
		Cluster: "staging", Service: "web", EventID: "push-main-y", Outcome: "failed", PushedAt: t0.Add(time.Minute), DeployedAt: t0.Add(time.Hour)}
	if err := f.store.Put(ctx, failed); err != nil {
		t.Fatal(err)
	}
	res, err := f.w.Handle(ctx, ecsEvent(t, "ecs-deployment-rollback.json", "staging", "web", "ecs-svc/61"))
	if err != nil || res.Outcome != history.RolledBack || res.DeploymentID != "ecs-svc/60" {
		t.Errorf("rollback: %+v, %v; want ecs-svc/60 rolled back", res, err)
	}
}

// rollbackEvent is the sample rollback, as deployment id, rolling back to
// deployment to, at the given time.
func rollbackEvent(t *testing.T, service, id, to string, at time.Time) json.RawMessage {
	t.Helper()
	var ev map[string]any
	if err := json.Unmarshal(ecsEvent(t, "ecs-deployment-rollback.json", "staging", service, id), &ev); err != nil {
		t.Fatal(err)
	}
	detail := ev["detail"].(map[string]any)
	detail["reason"] = "ECS deployment circuit breaker: rolling back to deploymentId " + to + "."
	detail["updatedAt"] = at.Format(time.RFC3339Nano)
	out, _ := json.Marshal(ev)
	return out
}

// TestRollbackBlamesTheRightDeployment: a rollback names the deployment it
// returns to and when it happened; only the deployment it undoes is ours
// to mark rolled back.
func TestRollbackBlamesTheRightDeployment(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("another deployment failed and ECS rolls back to ours", func(t *testing.T) {
		f := newFixture(t)
		digest := f.pushImage(t, "main-good")
		f.deployed(t, "web-staging", "staging", "web", "main-good", digest, "ecs-svc/20")
		// Someone else's deployment (a CloudFormation update) fails; ECS returns to ours.
		res, err := f.w.Handle(ctx, rollbackEvent(t, "web", "ecs-svc/22", "ecs-svc/20", t0.Add(10*time.Minute)))
		if err != nil || res.Outcome != "" || !strings.Contains(res.Ignored, "the deployment that failed was not ours") {
			t.Fatalf("rollback to ours = %+v, %v; want ignored", res, err)
		}
		res, err = f.w.Handle(ctx, ecsEvent(t, "ecs-deployment-completed.json", "staging", "web", "ecs-svc/20"))
		if err != nil || res.Outcome != history.Completed || res.Ignored != "" {
			t.Errorf("our late completion = %+v, %v; want completed", res, err)
		}
		if strings.Contains(f.logs.String(), `"rolled_back"`) {
			t.Error("a rollback was reported for a deployment that was not rolled back")
		}
	})

	t.Run("a newer push recorded before a delayed rollback event", func(t *testing.T) {
		f := newFixture(t)
		bad := f.pushImage(t, "main-bad")
		f.deployed(t, "web-staging", "staging", "web", "main-bad", bad, "ecs-svc/30") // at t0+2s
		newer := f.pushImage(t, "main-newer")
		r := history.Record{Rule: "web-staging", Repository: "web", Tag: "main-newer", Digest: newer, Account: testenv.Account,
			Region: testenv.Region, Cluster: "staging", Service: "web", DeploymentID: "ecs-svc/31", EventID: "push-main-newer",
			Outcome: "deployed", PushedAt: t0.Add(9 * time.Minute), DeployedAt: t0.Add(9 * time.Minute)}
		if err := f.store.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
		// The rollback of ecs-svc/30 happened at t0+5m; its event arrives late.
		res, err := f.w.Handle(ctx, rollbackEvent(t, "web", "ecs-svc/32", "ecs-svc/0", t0.Add(5*time.Minute)))
		if err != nil || res.Outcome != history.RolledBack || res.DeploymentID != "ecs-svc/30" {
			t.Fatalf("delayed rollback = %+v, %v; want ecs-svc/30 rolled back", res, err)
		}
		if got, _, _ := f.store.ByDeployment(ctx, "ecs-svc/31"); got.DeploymentOutcome != "" {
			t.Errorf("the newer deployment was marked %q", got.DeploymentOutcome)
		}
	})
}

// failingPromoter fails its first n promotions, then promotes.
type failingPromoter struct {
	Promoter
	n int
}

func (p *failingPromoter) Promote(ctx context.Context, rec history.Record, tag string) error {
	if p.n > 0 {
		p.n--
		return fmt.Errorf("ThrottlingException: rate exceeded")
	}
	return p.Promoter.Promote(ctx, rec, tag)
}

// TestPromotionSurvivesRetries: promotion is exactly once even when the
// tagging fails after the outcome was recorded, or the watcher dies after
// claiming; Lambda's retry or a redrive of the same event finishes it.
func TestPromotionSurvivesRetries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	single := "version: 1\nrules:\n  - name: web-staging\n    repository: web\n    tags: [\"main-*\"]\n" +
		"    targets: [{cluster: staging, service: web}]\n    promote: {tag: \"verified-{tag}\"}\n"
	setup := func(t *testing.T) (*fixture, string, json.RawMessage) {
		f := newFixture(t)
		cfg, err := rules.Parse("autodeploy.yaml", []byte(single))
		if err != nil {
			t.Fatal(err)
		}
		f.w.Rules = cfg
		digest := f.pushImage(t, "main-abc")
		f.deployed(t, "web-staging", "staging", "web", "main-abc", digest, "ecs-svc/40")
		return f, digest, ecsEvent(t, "ecs-deployment-completed.json", "staging", "web", "ecs-svc/40")
	}
	promoted := func(t *testing.T, f *fixture, digest string) {
		t.Helper()
		if !strings.Contains(strings.Join(f.tagsOf(t, digest), ","), "verified-main-abc") || len(f.rec.invokes) != 1 {
			t.Errorf("tags %v, %d hand-offs; want verified-main-abc handed off once", f.tagsOf(t, digest), len(f.rec.invokes))
		}
	}

	t.Run("tagging failed after the outcome was recorded", func(t *testing.T) {
		f, digest, ev := setup(t)
		f.w.Promoter = &failingPromoter{Promoter: f.w.Promoter, n: 1}
		if _, err := f.w.Handle(ctx, ev); err == nil {
			t.Fatal("a failed promotion must fail the invocation for Lambda to retry it")
		}
		res, err := f.w.Handle(ctx, ev) // Lambda's retry
		if err != nil || res.Promoted != "verified-main-abc" {
			t.Fatalf("retry = %+v, %v; want the promotion finished", res, err)
		}
		promoted(t, f, digest)
		if n := strings.Count(f.logs.String(), `"msg":"deployment"`); n != 1 {
			t.Errorf("%d deployment lines, want the outcome reported once", n)
		}
		again, err := f.w.Handle(ctx, ev) // a redrive later: nothing more
		if err != nil || again.Promoted != "" || len(f.rec.invokes) != 1 {
			t.Errorf("redrive = %+v, %v, %d hand-offs", again, err, len(f.rec.invokes))
		}
	})

	t.Run("the watcher died after claiming", func(t *testing.T) {
		f, digest, ev := setup(t)
		var id struct{ ID string }
		_ = json.Unmarshal(ev, &id)
		// The first attempt recorded the outcome, claimed, and died.
		rec, _, _ := f.store.ByDeployment(ctx, "ecs-svc/40")
		if _, err := f.store.SetOutcome(ctx, rec, history.Completed, "", t0); err != nil {
			t.Fatal(err)
		}
		if _, err := f.store.MarkTargetCompleted(ctx, "web-staging", digest, history.ServiceKey(testenv.Account, testenv.Region, "staging", "web"), 2, t0); err != nil {
			t.Fatal(err)
		}
		if c, _, err := f.store.ClaimPromotion(ctx, "web-staging", digest, id.ID, time.Now()); c != history.Claimed || err != nil {
			t.Fatal(c, err)
		}
		res, err := f.w.Handle(ctx, ev) // Lambda's retry of that event
		if err != nil || res.Promoted != "verified-main-abc" {
			t.Fatalf("retry = %+v, %v; want the promotion finished", res, err)
		}
		promoted(t, f, digest)
	})

	t.Run("a stale claim of another event is taken over", func(t *testing.T) {
		f, digest, ev := setup(t)
		if c, _, err := f.store.ClaimPromotion(ctx, "web-staging", digest, "some-dead-event", time.Now()); c != history.Claimed || err != nil {
			t.Fatal(c, err)
		}
		res, err := f.w.Handle(ctx, ev)
		if err != nil || res.Promoted != "" || !strings.Contains(f.logs.String(), `"outcome":"in_progress"`) {
			t.Fatalf("with a live claim = %+v, %v; want it left to its owner", res, err)
		}
		f.w.Now = func() time.Time { return time.Now().Add(history.ClaimStale + time.Minute) }
		res, err = f.w.Handle(ctx, ev) // a redrive, after the claim went stale
		if err != nil || res.Promoted != "verified-main-abc" {
			t.Fatalf("after the claim went stale = %+v, %v; want promoted", res, err)
		}
		promoted(t, f, digest)
	})
}

// TestPromotedTagTooLong: a tag that renders past 128 characters is a
// permanent failure, logged and notified once (not on every delivery),
// never a retry loop.
func TestPromotedTagTooLong(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	long := "main-" + strings.Repeat("a", 118) // 123 characters, a valid tag
	digest := f.pushImage(t, long)
	f.deployed(t, "web-staging", "staging", "web", long, digest, "ecs-svc/70")
	f.deployed(t, "web-staging", "staging", "web-worker", long, digest, "ecs-svc/71")
	_, _ = f.w.Handle(ctx, ecsEvent(t, "ecs-deployment-completed.json", "staging", "web", "ecs-svc/70"))
	res, err := f.w.Handle(ctx, ecsEvent(t, "ecs-deployment-completed.json", "staging", "web-worker", "ecs-svc/71"))
	if err != nil || res.Promoted != "" || len(f.rec.invokes) != 0 {
		t.Fatalf("promotion of an over-long tag = %+v, %v; want a permanent failure, no error", res, err)
	}
	if !strings.Contains(f.logs.String(), "over the 128 an image tag may have") {
		t.Errorf("the failure is not logged:\n%s", f.logs)
	}
	// A duplicate delivery of the last completion says nothing again.
	if _, err := f.w.Handle(ctx, ecsEvent(t, "ecs-deployment-completed.json", "staging", "web-worker", "ecs-svc/71")); err != nil {
		t.Fatal(err)
	}
	var notices int
	for _, m := range f.rec.messages {
		if strings.Contains(m, "NOT promoted") {
			notices++
		}
	}
	if notices != 1 || strings.Count(f.logs.String(), "over the 128 an image tag may have") != 1 {
		t.Errorf("%d notices of the failed promotion, want one:\n%s", notices, f.logs)
	}
}

// ECS rolled back a deploy of a rule that publishes: the watcher asks the
// deployer for a sweep at once (the parameter names the image rolled back
// from until one runs), once, however often the event comes.
func TestRollbackOfAPublishingRuleRequestsASweep(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	cfg, err := rules.Parse("autodeploy.yaml", []byte(rulesYAML+"    publish: {ssm-prefix: /ecr-autodeploy}\n"))
	if err != nil {
		t.Fatal(err)
	}
	f.w.Rules = cfg
	digest := f.pushImage(t, "v1.5.0")
	f.deployed(t, "web-prod", "prod", "web", "v1.5.0", digest, "ecs-svc/20")
	for i := range 2 {
		res, err := f.w.Handle(ctx, ecsEvent(t, "ecs-deployment-rollback.json", "prod", "web", "ecs-svc/99"))
		if err != nil || (i == 0 && res.Outcome != history.RolledBack) {
			t.Fatalf("rollback, delivery %d: %+v, %v", i+1, res, err)
		}
	}
	if len(f.rec.invokes) != 1 {
		t.Fatalf("%d invocations of the deployer, want one sweep", len(f.rec.invokes))
	}
	c, err := work.DecodeCommand(f.rec.invokes[0])
	if sweep, ok := c.(work.Sweep); err != nil || !ok || sweep.ID != "after-rollback-ecs-svc-20" || sweep.DryRun {
		t.Errorf("the deployer was sent %s (%v), want a sweep command", f.rec.invokes[0], err)
	}
}

// untouchable is a store that fails the test on any call: an event the
// watcher drops must cost no lookup.
type untouchable struct{ t *testing.T }

func (u untouchable) fail(call string) {
	u.t.Helper()
	u.t.Errorf("store called for a dropped event: %s", call)
}
func (u untouchable) ByDeployment(context.Context, string) (history.Record, bool, error) {
	u.fail("ByDeployment")
	return history.Record{}, false, nil
}
func (u untouchable) Recent(context.Context, string, int32) ([]history.Record, error) {
	u.fail("Recent")
	return nil, nil
}
func (u untouchable) SetOutcome(context.Context, history.Record, string, string, time.Time) (bool, error) {
	u.fail("SetOutcome")
	return false, nil
}
func (u untouchable) MarkTargetCompleted(context.Context, string, string, string, int, time.Time) (history.Progress, error) {
	u.fail("MarkTargetCompleted")
	return history.Progress{}, nil
}
func (u untouchable) EndRollout(context.Context, string, string, history.RolloutEnd, time.Time) (history.RolloutEnding, error) {
	u.fail("EndRollout")
	return history.RolloutEnding{}, nil
}
func (u untouchable) Supersede(context.Context, string, string, string, string, time.Time, time.Time) ([]history.Record, error) {
	u.fail("Supersede")
	return nil, nil
}
func (u untouchable) RolloutNoticeSent(context.Context, string, string, string, time.Time) error {
	u.fail("RolloutNoticeSent")
	return nil
}
func (u untouchable) ClaimPromotion(context.Context, string, string, string, time.Time) (history.Claim, string, error) {
	u.fail("ClaimPromotion")
	return 0, "", nil
}
func (u untouchable) PromotionDone(context.Context, string, string) error {
	u.fail("PromotionDone")
	return nil
}
func (u untouchable) ReleasePromotion(context.Context, string, string, string) error {
	u.fail("ReleasePromotion")
	return nil
}
func (u untouchable) NoteServiceDeployment(context.Context, history.Record, string) error {
	u.fail("NoteServiceDeployment")
	return nil
}
func (u untouchable) ClaimHookNotice(context.Context, string, string, time.Time) (bool, error) {
	u.fail("ClaimHookNotice")
	return false, nil
}
func (u untouchable) HookNoticeSent(context.Context, string, string, time.Time) error {
	u.fail("HookNoticeSent")
	return nil
}

// At scale the stack hears whole clusters: an event of a service in a named
// cluster that no rule targets (or of a named service in another account)
// is dropped, logged as ignored, with no error and no history lookup.
func TestEventsOfServicesNoRuleNamesAreDropped(t *testing.T) {
	t.Parallel()
	cfg, err := rules.Parse("autodeploy.yaml", []byte(rulesYAML))
	if err != nil {
		t.Fatal(err)
	}
	logs := &bytes.Buffer{}
	w := &Watcher{Rules: cfg, Central: central, Store: untouchable{t}, Log: logging.New(logs, slog.LevelDebug)}
	otherAccount := func(raw json.RawMessage) json.RawMessage {
		return json.RawMessage(strings.ReplaceAll(string(raw), ":123456789012:service/", ":999999999999:service/"))
	}
	for name, raw := range map[string]json.RawMessage{
		"completed":          ecsEvent(t, "ecs-deployment-completed.json", "staging", "api", "ecs-svc/1"),
		"failed":             ecsEvent(t, "ecs-deployment-failed.json", "prod", "worker", "ecs-svc/2"),
		"rollback":           ecsEvent(t, "ecs-deployment-rollback.json", "staging", "api", "ecs-svc/3"),
		"in another account": otherAccount(ecsEvent(t, "ecs-deployment-completed.json", "staging", "web", "ecs-svc/4")),
	} {
		t.Run(name, func(t *testing.T) {
			logs.Reset()
			res, err := w.Handle(context.Background(), raw)
			if err != nil || res.Ignored != "service not in the rules" || res.Outcome != "" {
				t.Errorf("Handle = %+v, %v; want ignored, service not in the rules", res, err)
			}
			if !strings.Contains(logs.String(), `"msg":"ignored"`) || !strings.Contains(logs.String(), `"reason":"service not in the rules"`) {
				t.Errorf("not logged as ignored:\n%s", logs)
			}
		})
	}
}

// One incident, one notice: the failure is told; ECS's rollback after it
// (the circuit breaker) records rolled_back and logs it, without a second
// notice with the same next steps.
func TestFailureThenRollbackIsOneNotice(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	digest := f.pushImage(t, "v1.5.0")
	f.deployed(t, "web-prod", "prod", "web", "v1.5.0", digest, "ecs-svc/30")
	res, err := f.w.Handle(ctx, ecsEvent(t, "ecs-deployment-failed.json", "prod", "web", "ecs-svc/30"))
	if err != nil || res.Outcome != history.Failed {
		t.Fatalf("failure: %+v, %v", res, err)
	}
	res, err = f.w.Handle(ctx, ecsEvent(t, "ecs-deployment-rollback.json", "prod", "web", "ecs-svc/99"))
	if err != nil || res.Outcome != history.RolledBack || res.DeploymentID != "ecs-svc/30" {
		t.Fatalf("rollback: %+v, %v", res, err)
	}
	if len(f.rec.messages) != 1 || !strings.Contains(f.rec.messages[0], "prod/web deployment of web:v1.5.0 FAILED") {
		t.Errorf("notices %q, want the failure's alone", f.rec.messages)
	}
	if rec, _, _ := f.store.ByDeployment(ctx, "ecs-svc/30"); rec.DeploymentOutcome != history.RolledBack {
		t.Errorf("outcome %q, want rolled_back", rec.DeploymentOutcome)
	}
	if !strings.Contains(f.logs.String(), `"outcome":"rolled_back"`) {
		t.Errorf("the rollback is not logged:\n%s", f.logs)
	}
}
