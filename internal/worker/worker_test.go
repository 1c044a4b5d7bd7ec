package worker

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/deploy"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecrevent"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/emulator"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/lock"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/logging"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work/queue"
)

var central = rules.Place{Account: testenv.Account, Region: testenv.Region}

// throttle fails the first RegisterTaskDefinition of the named families
// with ECS's throttling error, as an exhausted token bucket does once the
// SDK's own retries are spent. Every client the deployer builds shares it.
type throttle struct {
	mu       sync.Mutex
	families map[string]bool // family → still to throttle
}

func (t *throttle) with(client deploy.ECS) deploy.ECS { return &throttled{ECS: client, t: t} }

type throttled struct {
	deploy.ECS
	t *throttle
}

func (c *throttled) RegisterTaskDefinition(ctx context.Context, in *ecs.RegisterTaskDefinitionInput, o ...func(*ecs.Options)) (*ecs.RegisterTaskDefinitionOutput, error) {
	c.t.mu.Lock()
	now := c.t.families[aws.ToString(in.Family)]
	c.t.families[aws.ToString(in.Family)] = false
	c.t.mu.Unlock()
	if now {
		return nil, &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded", Fault: smithy.FaultClient}
	}
	return c.ECS.RegisterTaskDefinition(ctx, in, o...)
}

type fixture struct {
	moto    *testenv.Moto
	proxy   *testenv.Proxy
	ecs     *ecs.Client
	sqs     *sqs.Client
	queue   testenv.WorkQueue
	d       *deploy.Deployer
	handler *Handler
	notices *notices
	logs    *emulator.Buffer
	from    int // lines before it are a previous step's
	push    ecrevent.Push
	yaml    string // the rules file the deployer runs

	mu       sync.Mutex
	failures []string            // message ids the handler returned
	receives map[string][]string // the latest drain's: service → each receive's ApproximateReceiveCount, in order
}

// newFixture seeds n services (fleet/svc-NN, one container on web:seed),
// one rule that targets them all, a work queue (its visibility timeout
// longer than a batch takes, or a batch still in hand is delivered again)
// with a dead-letter queue after maxReceive receives, and a deployer whose
// dispatcher is that queue.
func newFixture(t *testing.T, n int, visibility time.Duration, maxReceive int, throttled ...string) *fixture {
	t.Helper()
	m := testenv.StartMoto(t)
	f := &fixture{moto: m, proxy: testenv.StartProxy(t, m.Endpoint), ecs: ecs.NewFromConfig(m.AWSConfig()),
		sqs: sqs.NewFromConfig(m.AWSConfig()), logs: &emulator.Buffer{}, notices: &notices{}}
	table := m.CreateTable(t, "autodeploy")
	var yaml strings.Builder
	yaml.WriteString("version: 1\nrules:\n  - name: fleet\n    repository: web\n    tags: [\"main-*\"]\n    targets:\n")
	for i := range n {
		name := fmt.Sprintf("svc-%02d", i)
		fmt.Fprintf(&yaml, "      - {cluster: fleet, service: %s}\n", name)
		if _, err := emulator.SeedService(context.Background(), f.ecs, emulator.Service{Cluster: "fleet", Name: name, Family: name,
			Containers: []emulator.Container{{Name: "app", Image: emulator.Registry + "/web:main-seed"}}}); err != nil {
			t.Fatal(err)
		}
	}
	f.yaml = yaml.String()
	cfg, err := rules.Parse("autodeploy.yaml", []byte(f.yaml))
	if err != nil {
		t.Fatal(err)
	}
	f.queue = m.CreateWorkQueue(t, f.sqs, "work", visibility, maxReceive)

	proxied := f.proxy.Config(m.AWSConfig())
	proxied.Retryer = awsenv.NewRetryer
	clients := awsenv.NewClients(proxied)
	db := dynamodb.NewFromConfig(proxied)
	th := &throttle{families: map[string]bool{}}
	for _, family := range throttled {
		th.families[family] = true
	}
	f.d = &deploy.Deployer{Rules: cfg, Central: central, Services: history.NewServices(lock.New(db, table), history.NewStore(db, table)),
		Outcomes: history.NewStore(db, table),
		ECS:      func(region, role string) deploy.ECS { return th.with(clients.ECS(region, role)) },
		Log:      logging.New(f.logs, slog.LevelInfo), Concurrency: 4, Now: time.Now, Notifier: f.notices,
		Dispatcher: &queue.Dispatcher{SQS: f.sqs, Queues: map[rules.Place]string{central: f.queue.URL}, Central: central}}
	f.handler = &Handler{Deployer: f.d}
	f.push = ecrevent.Push{EventID: "ev-fleet-1", Account: central.Account, Region: central.Region, Repository: "web", Tag: "main-4f2a9c1",
		Digest: "sha256:" + strings.Repeat("4f", 32), Time: time.Date(2026, 12, 1, 10, 0, 0, 250_000_000, time.UTC)}
	return f
}

// edit changes the rules file the deployer (so the worker) runs, as a stack
// update does while items wait in the queue.
func (f *fixture) edit(t *testing.T, old, new string) {
	t.Helper()
	if !strings.Contains(f.yaml, old) {
		t.Fatalf("the rules file has no %q", old)
	}
	f.yaml = strings.Replace(f.yaml, old, new, 1)
	cfg, err := rules.Parse("autodeploy.yaml", []byte(f.yaml))
	if err != nil {
		t.Fatal(err)
	}
	f.d.Rules = cfg
}

// drain plays the event source mapping until the queue is empty, and
// notes each receive by the service its item targets (f.receives). Its
// deadline is generous: a loaded CI machine (go test -race of every package
// at once) is slow, and no test here asserts how long a drain takes.
func (f *fixture) drain(t *testing.T) testenv.PollStats {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	f.mu.Lock()
	f.receives = map[string][]string{}
	f.mu.Unlock()
	// Each batch under the stack's worker timeout, as Lambda runs it.
	p := &testenv.Poller{SQS: f.sqs, QueueURL: f.queue.URL, BatchSize: 10, Concurrency: 3, Timeout: 3 * time.Minute,
		Handler: func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
			f.mu.Lock()
			for _, r := range ev.Records {
				service := "(not a work item)"
				if it, err := work.Decode([]byte(r.Body)); err == nil {
					_, _, _, service = it.Target()
				}
				f.receives[service] = append(f.receives[service], r.Attributes["ApproximateReceiveCount"])
			}
			f.mu.Unlock()
			resp, err := f.handler.Handle(ctx, ev)
			f.mu.Lock()
			for _, fail := range resp.BatchItemFailures {
				f.failures = append(f.failures, fail.ItemIdentifier)
			}
			f.mu.Unlock()
			return resp, err
		}}
	stats, err := p.Drain(ctx)
	if err != nil {
		t.Fatalf("drain: %v\n%s", err, f.logs)
	}
	return stats
}

// lines returns the log lines of msg, in order.
func (f *fixture) lines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(f.logs.String()[f.from:]))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l map[string]any
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		if l["msg"] == msg {
			out = append(out, l)
		}
	}
	return out
}

// outcomes counts the deploy lines by service and outcome.
func (f *fixture) outcomes(t *testing.T) map[string]int {
	out := map[string]int{}
	for _, l := range f.lines(t, "deploy") {
		out[fmt.Sprintf("%s %s", l["service"], l["outcome"])]++
	}
	return out
}

func (f *fixture) image(t *testing.T, service string) string {
	t.Helper()
	ctx := context.Background()
	svc, err := f.ecs.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("fleet"), Services: []string{service}})
	if err != nil {
		t.Fatal(err)
	}
	td, err := f.ecs.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: svc.Services[0].TaskDefinition})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(td.TaskDefinition.ContainerDefinitions[0].Image)
}

func (f *fixture) depth(t *testing.T, url string) int {
	t.Helper()
	n, err := testenv.QueueDepth(context.Background(), f.sqs, url)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// queued has d take push and checks that every target was queued.
func queued(t *testing.T, d *deploy.Deployer, push ecrevent.Push) int {
	t.Helper()
	sum, err := d.Deploy(context.Background(), push)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range sum.Results {
		if r.Outcome != deploy.Queued {
			t.Errorf("%s/%s: %s (%s), want queued", r.Cluster, r.Service, r.Outcome, r.Reason)
		}
		n++
	}
	return n
}

// One push to 25 services through the queue deploys each exactly once; the
// same items delivered again find their image running. The visibility
// timeout is the stack's (18 min): no batch, however slow the machine,
// outlives it, so each item is received exactly once per drain.
func TestPushToManyTargetsThroughTheQueue(t *testing.T) {
	const n = 25
	f := newFixture(t, n, 18*time.Minute, 3)
	if got := queued(t, f.d, f.push); got != n {
		t.Fatalf("queued %d, want %d", got, n)
	}
	if calls := f.proxy.Calls(); calls["RegisterTaskDefinition"]+calls["UpdateService"]+calls["DescribeServices"] != 0 {
		t.Errorf("the intake called ECS: %v", calls)
	}
	stats := f.drain(t)
	if stats.Received != n || stats.Failures != 0 {
		t.Errorf("poll stats %+v, want %d received and no failure", stats, n)
	}
	once := map[string][]string{}
	want := map[string]int{}
	for i := range n {
		want[fmt.Sprintf("svc-%02d deployed", i)] = 1
		once[fmt.Sprintf("svc-%02d", i)] = []string{"1"}
	}
	if diff := cmp.Diff(once, f.receives); diff != "" {
		t.Errorf("receives by service (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, f.outcomes(t)); diff != "" {
		t.Errorf("deploys (-want +got):\n%s", diff)
	}
	calls := f.proxy.Calls()
	if calls["RegisterTaskDefinition"] != n || calls["UpdateService"] != n {
		t.Errorf("%d registrations and %d updates, want %d each", calls["RegisterTaskDefinition"], calls["UpdateService"], n)
	}
	for i := range n {
		if img := f.image(t, fmt.Sprintf("svc-%02d", i)); img != emulator.Registry+"/web@"+f.push.Digest {
			t.Errorf("svc-%02d runs %s", i, img)
		}
	}

	// Lambda retries the push (or SQS delivers twice): the items come again.
	f.from = len(f.logs.String())
	queued(t, f.d, f.push)
	f.drain(t)
	if diff := cmp.Diff(once, f.receives); diff != "" {
		t.Errorf("receives by service on redelivery (-want +got):\n%s", diff)
	}
	skipped := f.lines(t, "deploy")
	if len(skipped) != n {
		t.Fatalf("%d deploy lines on redelivery, want %d", len(skipped), n)
	}
	for _, l := range skipped {
		if l["outcome"] != "skipped" || !strings.HasPrefix(l["reason"].(string), "already running ") {
			t.Errorf("%s: %s (%s), want skipped as already running", l["service"], l["outcome"], l["reason"])
		}
	}
	if calls := f.proxy.Calls(); calls["RegisterTaskDefinition"] != 0 || calls["UpdateService"] != 0 {
		t.Errorf("a redelivery registered or updated: %v", calls)
	}
	if d := f.depth(t, f.queue.DLQ); d != 0 {
		t.Errorf("%d messages in the dead-letter queue", d)
	}
}

// A throttled target is returned as a batch item failure, comes back after
// the visibility timeout, and is deployed then; the others are not held up.
func TestThrottledTargetReturnsToTheQueue(t *testing.T) {
	f := newFixture(t, 4, 3*time.Second, 3, "svc-02")
	queued(t, f.d, f.push)
	stats := f.drain(t)
	if len(f.failures) != 1 || stats.Received != 5 {
		t.Errorf("returned %v, received %d; want one message returned and received again", f.failures, stats.Received)
	}
	want := map[string]int{"svc-00 deployed": 1, "svc-01 deployed": 1, "svc-02 failed": 1, "svc-02 deployed": 1, "svc-03 deployed": 1}
	if diff := cmp.Diff(want, f.outcomes(t)); diff != "" {
		t.Errorf("deploys (-want +got):\n%s", diff)
	}
	if img := f.image(t, "svc-02"); img != emulator.Registry+"/web@"+f.push.Digest {
		t.Errorf("svc-02 runs %s", img)
	}
	for _, l := range f.lines(t, "deploy") {
		if l["service"] == "svc-02" && l["outcome"] == "failed" && !strings.Contains(l["reason"].(string), "(will retry)") {
			t.Errorf("throttled: %v", l["reason"])
		}
	}
	if d := f.depth(t, f.queue.DLQ); d != 0 {
		t.Errorf("%d messages in the dead-letter queue", d)
	}
}

// A message the worker cannot read ends in the dead-letter queue after the
// queue's receives; an item the rules file no longer describes is refused
// once (logged) and not received again; a good item beside them deploys.
func TestPoisonMessageEndsInTheDeadLetterQueue(t *testing.T) {
	f := newFixture(t, 1, 2*time.Second, 2)
	ctx := context.Background()
	gone := work.NewDeployTarget(f.push, f.d.Rules.Rules[0], 0, central)
	gone.Rule = "retired"
	goneBody, err := work.Encode(gone)
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{`{"kind":"approve","v":1}`, string(goneBody)} {
		if _, err := f.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(f.queue.URL), MessageBody: aws.String(body)}); err != nil {
			t.Fatal(err)
		}
	}
	queued(t, f.d, f.push)
	f.drain(t)

	if diff := cmp.Diff(map[string]int{"svc-00 deployed": 1}, f.outcomes(t)); diff != "" {
		t.Errorf("deploys (-want +got):\n%s", diff)
	}
	if n := len(f.lines(t, "work item refused")); n != 1 {
		t.Errorf("%d refusals logged, want 1", n)
	}
	if n := len(f.lines(t, "work item unreadable")); n != 2 {
		t.Errorf("the poison message was read %d times, want 2 (maxReceiveCount)", n)
	}
	out, err := f.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(f.queue.DLQ), MaxNumberOfMessages: 10})
	if err != nil {
		t.Fatal(err)
	}
	var parked []string
	for _, m := range out.Messages {
		parked = append(parked, aws.ToString(m.Body))
	}
	if !slices.Equal(parked, []string{`{"kind":"approve","v":1}`}) {
		t.Errorf("dead-letter queue holds %q, want only the poison message", parked)
	}
}

// setParking has the handler back items off at once and end them in their
// rollouts on their last receive (receives, the queue's maxReceiveCount).
func setParking(f *fixture, receives int) {
	f.handler.MaxReceiveCount, f.handler.SQS, f.handler.QueueURL = receives, f.sqs, f.queue.URL
	f.handler.Backoff = func(int) time.Duration { return 0 }
}

// Items queued before the rule stopped taking their tag (an ignore-tags
// added while they wait) deploy nothing: the worker decides by the rules
// file it runs, as the intake did by its own. The items name the file they
// were sent with, not the worker's: the refusal could be a worker behind
// the intake (TestRulesFileOutOfStepWithTheIntake), so each returns until
// its last receive, where the refusal is final (every worker runs the
// stack's file by then): refused, told, and not parked.
func TestRuleNoLongerTakesTheTag(t *testing.T) {
	for _, tc := range []struct{ name, old, new, want string }{
		{"ignore-tags added", `tags: ["main-*"]`, `tags: ["main-*"]` + "\n    ignore-tags: [\"main-4f*\"]", `tag main-4f2a9c1 is ignored by "main-4f*"`},
		{"tags changed", `tags: ["main-*"]`, `tags: ["release-*"]`, "tag main-4f2a9c1 matches none of release-*"},
		{"registry changed", `tags: ["main-*"]`, `tags: ["main-*"]` + "\n    registry: {account: \"333333333333\"}", "its registry is 333333333333/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, 2, 30*time.Second, 3)
			setParking(f, 3)
			queued(t, f.d, f.push)
			f.edit(t, tc.old, tc.new)
			stats := f.drain(t)
			if stats.Received != 6 || stats.Failures != 4 || f.depth(t, f.queue.DLQ) != 0 {
				t.Errorf("poll stats %+v, want 6 received, 4 returned, none parked", stats)
			}
			if got := f.outcomes(t); len(got) != 0 {
				t.Errorf("deployed %v", got)
			}
			if calls := f.proxy.Calls(); calls["RegisterTaskDefinition"]+calls["UpdateService"] != 0 {
				t.Errorf("the worker deployed: %v", calls)
			}
			returned := f.lines(t, "work item refused: rules file differs from the intake's; it returns to the queue")
			refused := f.lines(t, "work item refused")
			if len(returned) != 4 || len(refused) != 2 {
				t.Fatalf("%d refusals returned, %d final; want 4 and 2\n%s", len(returned), len(refused), f.logs)
			}
			for _, l := range append(returned, refused...) {
				if !strings.Contains(l["error"].(string), tc.want) {
					t.Errorf("refused: %v, want it to say %q", l["error"], tc.want)
				}
			}
			if len(f.notices.all) != 2 {
				t.Fatalf("notices %v, want both refused items", f.notices.list())
			}
			for _, n := range f.notices.all {
				if !strings.HasPrefix(n.Reason, "work item refused: ") || !strings.Contains(n.Reason, tc.want) {
					t.Errorf("notice %q, want it refused, saying %q", n.Reason, tc.want)
				}
			}
			for i := range 2 {
				if img := f.image(t, fmt.Sprintf("svc-%02d", i)); img != emulator.Registry+"/web:main-seed" {
					t.Errorf("svc-%02d runs %s", i, img)
				}
			}
		})
	}
}

// The rules file changes while items wait: a target inserted before them
// moves their index, and each still deploys its own service; the item of a
// target removed is refused (returned, as the worker's file is not the
// intake's, until its last receive, then refused for good), and notified,
// not dropped in silence.
func TestTargetsMoveWhileItemsWait(t *testing.T) {
	f := newFixture(t, 3, 30*time.Second, 3)
	setParking(f, 3)
	if _, err := emulator.SeedService(context.Background(), f.ecs, emulator.Service{Cluster: "fleet", Name: "new", Family: "new",
		Containers: []emulator.Container{{Name: "app", Image: emulator.Registry + "/web:main-seed"}}}); err != nil {
		t.Fatal(err)
	}
	queued(t, f.d, f.push)
	f.edit(t, "    targets:\n", "    targets:\n      - {cluster: fleet, service: new}\n")
	f.edit(t, "      - {cluster: fleet, service: svc-01}\n", "")
	stats := f.drain(t)
	if stats.Received != 5 || stats.Failures != 2 || f.depth(t, f.queue.DLQ) != 0 {
		t.Errorf("poll stats %+v, want 5 received, svc-01's first 2 returned, none parked", stats)
	}
	if diff := cmp.Diff(map[string]int{"svc-00 deployed": 1, "svc-02 deployed": 1}, f.outcomes(t)); diff != "" {
		t.Errorf("deploys (-want +got):\n%s\n%s", diff, f.logs)
	}
	for service, want := range map[string]string{"svc-00": "/web@" + f.push.Digest, "svc-02": "/web@" + f.push.Digest,
		"svc-01": "/web:main-seed", "new": "/web:main-seed"} {
		if img := f.image(t, service); img != emulator.Registry+want {
			t.Errorf("%s runs %s, want %s", service, img, emulator.Registry+want)
		}
	}
	returned := f.lines(t, "work item refused: rules file differs from the intake's; it returns to the queue")
	refused := f.lines(t, "work item refused")
	if len(returned) != 2 || len(refused) != 1 || !strings.Contains(refused[0]["error"].(string), "rule fleet no longer targets "+central.String()+"/fleet/svc-01") {
		t.Errorf("returned %v, refused %v", returned, refused)
	}
	if diff := cmp.Diff([]string{"not_deployed fleet fleet/svc-01"}, f.notices.list()); diff != "" {
		t.Errorf("notices (-want +got):\n%s", diff)
	}
}

// A push whose targets' place has no work queue (a wrong stack) fails them
// permanently at the intake, and people hear of it once, as of any
// permanent failure; nothing is queued.
func TestNoQueueForThePlaceIsNotified(t *testing.T) {
	f := newFixture(t, 3, 30*time.Second, 3)
	f.d.Dispatcher.(*queue.Dispatcher).Queues = map[rules.Place]string{{Account: "210987654321", Region: "us-east-1"}: f.queue.URL}
	for range 2 { // Lambda's retry
		sum, err := f.d.Deploy(context.Background(), f.push)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range sum.Results {
			if r.Outcome != deploy.Failed || r.Retryable || !strings.Contains(r.Reason, "no work queue for place "+central.String()) {
				t.Errorf("%s: %s (%s)", r.Service, r.Outcome, r.Reason)
			}
		}
	}
	if diff := cmp.Diff([]string{"not_deployed fleet fleet/svc-00 and 2 more targets"}, f.notices.list()); diff != "" {
		t.Errorf("notices (-want +got):\n%s", diff)
	}
	if d := f.depth(t, f.queue.URL); d != 0 {
		t.Errorf("%d messages queued", d)
	}
}
