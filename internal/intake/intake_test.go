package intake

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/deploy"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/emulator"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/lock"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/logging"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/promote"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/reconcile"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/redrive"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work"
)

// A rule that promotes, and the rule that takes what it promotes.
const promoting = `version: 1
rules:
  - name: web-staging
    repository: web
    tags: ["main-*"]
    targets: [{cluster: staging, service: web}]
    promote: {tag: "verified-{tag}"}
  - name: web-prod
    repository: web
    tags: ["verified-*"]
    targets: [{cluster: prod, service: web}]
`

// env is moto, the deployer and the sweeper built as the deployer's main
// builds them, and the intake's handler over them.
type env struct {
	moto    *testenv.Moto
	ecs     *ecs.Client
	handler Handler
	logs    *bytes.Buffer
	digests map[string]string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	m := testenv.StartMoto(t)
	cfg, err := rules.Parse("autodeploy.yaml", []byte(promoting))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{moto: m, ecs: ecs.NewFromConfig(m.AWSConfig()), logs: &bytes.Buffer{}}
	table := m.CreateTable(t, "autodeploy")
	e.digests = m.Repository(t, "web", "main-1")
	for _, cluster := range []string{"staging", "prod"} {
		if _, err := emulator.SeedService(context.Background(), e.ecs, emulator.Service{Cluster: cluster, Name: "web", Family: cluster + "-web",
			Containers: []emulator.Container{{Name: "app", Image: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/web:old"}}}); err != nil {
			t.Fatal(err)
		}
	}
	conf := m.AWSConfig()
	conf.Retryer = awsenv.NewRetryer
	clients := awsenv.NewClients(conf)
	db := dynamodb.NewFromConfig(conf)
	store := history.NewStore(db, table)
	log := logging.New(e.logs, slog.LevelInfo)
	d := &deploy.Deployer{Rules: cfg, Central: rules.Place{Account: testenv.Account, Region: testenv.Region},
		ECS: func(region, role string) deploy.ECS { return clients.ECS(region, role) }, Services: history.NewServices(lock.New(db, table), store),
		Log: log, Concurrency: 4, Now: time.Now}
	registry := ecr.NewFromConfig(conf)
	sweeper := &reconcile.Sweeper{Rules: cfg, ECR: func(string, string) reconcile.ECR { return registry }, ECS: d.ECS,
		States: store, Deployer: d, Log: log, Now: time.Now}
	e.handler = Handler{Deployer: d, Sweeper: sweeper, Log: log}
	return e
}

func (e *env) running(t *testing.T, cluster string) string {
	t.Helper()
	ctx := context.Background()
	svc, err := e.ecs.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(cluster), Services: []string{"web"}})
	if err != nil {
		t.Fatal(err)
	}
	td, err := e.ecs.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: svc.Services[0].TaskDefinition})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(td.TaskDefinition.ContainerDefinitions[0].Image)
}

func (e *env) revisions(t *testing.T, family string) int {
	t.Helper()
	out, err := e.ecs.ListTaskDefinitions(context.Background(), &ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String(family)})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.TaskDefinitionArns)
}

func outcomes(sum deploy.Summary) []string {
	var out []string
	for _, r := range sum.Results {
		out = append(out, r.Cluster+"/"+r.Service+" "+string(r.Outcome))
	}
	return out
}

// The deployer takes a promotion's hand-off as a push command: the
// promoted tag deploys to the rule that takes it. The same hand-off again
// (the watcher retried, Lambda delivered twice) finds the image running and
// registers nothing: idempotent by the promotion's event id and the
// deployer's skip of what runs.
func TestAPromotionsHandOffDeploysOnce(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	rec := history.Record{Rule: "web-staging", Repository: "web", RegistryAccount: testenv.Account, RegistryRegion: testenv.Region,
		Tag: "main-1", Digest: e.digests["main-1"]}
	payload, err := work.EncodeCommand(promote.HandOff(rec, "verified-main-1", time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"prod/web deployed", "prod/web skipped"} {
		answer, err := e.handler.Handle(ctx, payload)
		if err != nil {
			t.Fatalf("delivery %d: %v\n%s", i+1, err, e.logs)
		}
		sum, ok := answer.(deploy.Summary)
		if !ok {
			t.Fatalf("delivery %d answered %T, want a deploy summary", i+1, answer)
		}
		if diff := cmp.Diff([]string{want}, outcomes(sum)); diff != "" {
			t.Errorf("delivery %d (-want +got):\n%s", i+1, diff)
		}
		if !strings.HasPrefix(sum.EventID, "autodeploy-promote-") {
			t.Errorf("event id %q", sum.EventID)
		}
	}
	if got, want := e.running(t, "prod"), "123456789012.dkr.ecr.eu-west-1.amazonaws.com/web@"+e.digests["main-1"]; got != want {
		t.Errorf("prod runs %s, want %s", got, want)
	}
	if n := e.revisions(t, "prod-web"); n != 2 {
		t.Errorf("%d revisions of prod-web, want 2 (the seed and one deploy)", n)
	}
	if got := e.running(t, "staging"); !strings.HasSuffix(got, "web:old") {
		t.Errorf("staging runs %s: the hand-off deployed to a rule that does not take verified-*", got)
	}
	if !strings.Contains(e.logs.String(), `"msg":"command","kind":"push","origin":"promotion of rule web-staging to tag verified-main-1"`) {
		t.Errorf("no command line:\n%s", e.logs)
	}
}

// Every route of Handle, on the same stack: the ECR event deploys, the
// schedule's event and a sweep command sweep (the latter under its own id),
// a dry-run sweep deploys nothing, and a payload of none of these is
// refused, logged, with a permanent error (Lambda's bounded retries then
// park it).
func TestHandleRoutes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	push := func() json.RawMessage {
		var ev map[string]any
		if err := json.Unmarshal(testenv.Event(t, "ecr-push-main.json"), &ev); err != nil {
			t.Fatal(err)
		}
		detail := ev["detail"].(map[string]any)
		detail["image-tag"], detail["image-digest"] = "main-1", e.digests["main-1"]
		b, _ := json.Marshal(ev)
		return b
	}
	sweepCommand := func(dryRun bool) json.RawMessage {
		b, err := work.EncodeCommand(work.Sweep{ID: "after-rollback-ecs-svc-20", Origin: "test", DryRun: dryRun})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	type sweepLine struct{ Target, Outcome string }
	sweepOf := func(rep reconcile.Report) (string, []sweepLine) {
		var lines []sweepLine
		for _, l := range rep.Lines {
			lines = append(lines, sweepLine{l.Cluster + "/" + l.Service, l.Outcome})
		}
		return rep.EventID, lines
	}
	for _, step := range []struct {
		name    string
		payload json.RawMessage
		check   func(t *testing.T, answer any, err error)
	}{
		{"a dry-run sweep command reports staging behind and deploys nothing", sweepCommand(true), func(t *testing.T, answer any, err error) {
			rep, ok := answer.(reconcile.Report)
			if err != nil || !ok {
				t.Fatalf("%T %v", answer, err)
			}
			id, lines := sweepOf(rep)
			if id != "after-rollback-ecs-svc-20" || len(lines) != 2 || lines[0] != (sweepLine{"staging/web", reconcile.Behind}) {
				t.Errorf("report %s %+v", id, lines)
			}
			if got := e.running(t, "staging"); !strings.HasSuffix(got, "web:old") {
				t.Errorf("a dry run deployed: staging runs %s", got)
			}
		}},
		{"the ECR event deploys", push(), func(t *testing.T, answer any, err error) {
			sum, ok := answer.(deploy.Summary)
			if err != nil || !ok {
				t.Fatalf("%T %v", answer, err)
			}
			if diff := cmp.Diff([]string{"staging/web deployed"}, outcomes(sum)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		}},
		{"the schedule's event sweeps", testenv.Event(t, "scheduled-reconcile.json"), func(t *testing.T, answer any, err error) {
			rep, ok := answer.(reconcile.Report)
			if err != nil || !ok {
				t.Fatalf("%T %v", answer, err)
			}
			if id, lines := sweepOf(rep); id != "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa" || len(lines) != 2 || lines[0] != (sweepLine{"staging/web", reconcile.InSync}) {
				t.Errorf("report %s %+v", id, lines)
			}
		}},
		{"a sweep command sweeps under its id", sweepCommand(false), func(t *testing.T, answer any, err error) {
			rep, ok := answer.(reconcile.Report)
			if err != nil || !ok {
				t.Fatalf("%T %v", answer, err)
			}
			if id, lines := sweepOf(rep); id != "after-rollback-ecs-svc-20" || len(lines) != 2 || lines[0] != (sweepLine{"staging/web", reconcile.InSync}) {
				t.Errorf("report %s %+v", id, lines)
			}
		}},
		{"an ECS event is refused", testenv.Event(t, "ecs-deployment-completed.json"), func(t *testing.T, answer any, err error) {
			var we *work.Error
			if answer != nil || !errors.As(err, &we) || !strings.Contains(err.Error(), `refused: an event (source "aws.ecs"`) {
				t.Errorf("answer %v, error %v; want a permanent refusal", answer, err)
			}
			if !strings.Contains(e.logs.String(), `"level":"ERROR","msg":"refused","reason":"an event (source \"aws.ecs\"`) {
				t.Errorf("the refusal is not logged:\n%s", e.logs)
			}
		}},
		{"a newer writer's command is refused", fixture(t, "command-push-v2.json"), func(t *testing.T, answer any, err error) {
			var we *work.Error
			if answer != nil || !errors.As(err, &we) || !strings.Contains(err.Error(), "command push version 2 is not known") {
				t.Errorf("answer %v, error %v; want a permanent refusal", answer, err)
			}
		}},
	} {
		t.Run(step.name, func(t *testing.T) {
			answer, err := e.handler.Handle(ctx, step.payload)
			step.check(t, answer, err)
			if t.Failed() {
				t.Logf("logs:\n%s", e.logs)
			}
		})
	}
}

// inProcess plays Lambda's synchronous Invoke of the deployer for a
// redrive: the handler's answer as the payload, or its error as Lambda's
// error payload and FunctionError.
type inProcess struct{ h Handler }

func (l inProcess) Invoke(ctx context.Context, in *lambda.InvokeInput, _ ...func(*lambda.Options)) (*lambda.InvokeOutput, error) {
	answer, err := l.h.Handle(ctx, in.Payload)
	if err != nil {
		b, _ := json.Marshal(map[string]string{"errorMessage": err.Error(), "errorType": "errorString"})
		return &lambda.InvokeOutput{StatusCode: 200, FunctionError: aws.String("Unhandled"), Payload: b}, nil
	}
	b, err := json.Marshal(answer)
	if err != nil {
		return nil, err
	}
	return &lambda.InvokeOutput{StatusCode: 200, Payload: b}, nil
}

// A hand-off whose asynchronous invocation failed is parked as a Lambda
// failure record in the deployer's failure queue; autodeploy redrive
// replays it to the deployer, which takes the command. Parked twice (the
// failure destination delivers at least once), it deploys once; a command
// the deployer refuses stays in the queue, saying why.
func TestARedrivenHandOffDeploysOnce(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	client := sqs.NewFromConfig(e.moto.AWSConfig())
	q, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("deployer-failures")})
	if err != nil {
		t.Fatal(err)
	}
	rec := history.Record{Rule: "web-staging", Repository: "web", RegistryAccount: testenv.Account, RegistryRegion: testenv.Region,
		Tag: "main-1", Digest: e.digests["main-1"]}
	handOff, err := work.EncodeCommand(promote.HandOff(rec, "verified-main-1", time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	failure := func(payload []byte) string {
		return `{"version":"1.0","requestContext":{"condition":"RetriesExhausted","approximateInvokeCount":3},` +
			`"requestPayload":` + string(payload) + `,"responsePayload":{"errorMessage":"ThrottlingException","errorType":"errorString"}}`
	}
	for _, body := range []string{failure(handOff), failure(handOff), failure(fixture(t, "command-push-v2.json"))} {
		if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: q.QueueUrl, MessageBody: aws.String(body)}); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := (&redrive.Redriver{SQS: client, Lambda: inProcess{e.handler}, Function: "deployer"}).Run(ctx, aws.ToString(q.QueueUrl))
	if err != nil {
		t.Fatal(err)
	}
	type line struct{ Event, Result string }
	var moved, left []line
	for _, it := range rep.Moved {
		moved = append(moved, line{it.Event, it.Result})
	}
	for _, it := range rep.Left {
		left = append(left, line{it.Event, it.Result})
	}
	described := "push command web:verified-main-1 " + e.digests["main-1"][:19] + " (promotion of rule web-staging to tag verified-main-1; event " +
		promote.HandOff(rec, "verified-main-1", time.Now()).Push.EventID + ")"
	wantMoved := []line{{described, "deployer: 1 deployed, 0 skipped, 0 failed"}, {described, "deployer: 0 deployed, 1 skipped, 0 failed"}}
	if diff := cmp.Diff(wantMoved, moved); diff != "" {
		t.Errorf("moved (-want +got):\n%s\n%s", diff, e.logs)
	}
	wantLeft := []line{{`command this build cannot read (command push version 2 is not known to this build (it reads 1))`,
		"left: the deployer failed again: refused: command push version 2 is not known to this build (it reads 1)"}}
	if diff := cmp.Diff(wantLeft, left); diff != "" {
		t.Errorf("left (-want +got):\n%s", diff)
	}
	if n := e.revisions(t, "prod-web"); n != 2 {
		t.Errorf("%d revisions of prod-web, want 2 (the seed and one deploy)", n)
	}
}
