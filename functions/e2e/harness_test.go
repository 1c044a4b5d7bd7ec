package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/emulator"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

// calls is the AWS calls the functions made so far, by operation
// (cumulative: testenv.Proxy's Calls counts anew after each read), and the
// registrations that reached moto by family. The proxy between the functions
// and moto is testenv.Proxy: it also serialises DynamoDB requests, which
// moto does not apply atomically (concurrent writes can undo each other's,
// two deploys then both hold one lock).
func (f *fleet) calls() (ops, families map[string]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for op, n := range f.proxy.Calls() {
		f.ops[op] += n
	}
	return maps.Clone(f.ops), f.proxy.Registrations()
}

// fleet is a moto server with n services fleet/svc-NN (family svc-NN, one
// container on web:main-seed), one rule that targets them all, the state
// table and a work queue with its dead-letter queue, as the stack makes them.
type fleet struct {
	moto   *testenv.Moto
	proxy  *testenv.Proxy
	mu     sync.Mutex
	ops    map[string]int // calls() so far
	ecs    *ecs.Client
	sqs    *sqs.Client
	store  *history.Store
	table  string
	queue  testenv.WorkQueue
	rules  string // the rules file's path
	digest func(tag string) string
}

func newFleet(t *testing.T, n int, visibility time.Duration, maxReceive int) *fleet {
	t.Helper()
	m := testenv.StartMoto(t)
	f := &fleet{moto: m, proxy: testenv.StartProxy(t, m.Endpoint), ops: map[string]int{}, ecs: ecs.NewFromConfig(m.AWSConfig()), sqs: sqs.NewFromConfig(m.AWSConfig())}
	f.table = m.CreateTable(t, "autodeploy")
	f.store = history.NewStore(dynamodb.NewFromConfig(m.AWSConfig()), f.table)
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
	f.rules = filepath.Join(t.TempDir(), "autodeploy.yaml")
	if err := os.WriteFile(f.rules, []byte(yaml.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	f.queue = m.CreateWorkQueue(t, f.sqs, "autodeploy-work", visibility, maxReceive)
	f.digest = fleetDigest
	return f
}

// env is the functions' environment: moto through the proxy, the table, the
// work queue (AUTODEPLOY_WORK_QUEUE_URL) and the central account.
func (f *fleet) env() []string {
	return append(f.moto.Env(), "AWS_ENDPOINT_URL="+f.proxy.URL, "AUTODEPLOY_TABLE="+f.table,
		"AUTODEPLOY_WORK_QUEUE_URL="+f.queue.URL, "AUTODEPLOY_ACCOUNT="+testenv.Account)
}

// pushEvent is ECR's push of web:<tag>, as EventBridge delivers it.
func (f *fleet) pushEvent(t *testing.T, tag string, at time.Time) map[string]any {
	t.Helper()
	var ev map[string]any
	if err := json.Unmarshal(testenv.Event(t, "ecr-push-main.json"), &ev); err != nil {
		t.Fatal(err)
	}
	ev["id"], ev["time"] = "ev-"+tag, at.UTC().Format(time.RFC3339)
	detail := ev["detail"].(map[string]any)
	detail["image-tag"], detail["image-digest"] = tag, f.digest(tag)
	return ev
}

// image is what service runs.
func (f *fleet) image(t *testing.T, service string) string {
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

// records is the service's deploy history, newest first.
func (f *fleet) records(t *testing.T, service string) []history.Record {
	t.Helper()
	recs, err := f.store.Recent(context.Background(), history.ServiceKey(testenv.Account, testenv.Region, "fleet", service), 50)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func (f *fleet) depth(t *testing.T, url string) int {
	t.Helper()
	n, err := testenv.QueueDepth(context.Background(), f.sqs, url)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// lambdaWorker is the worker function under aws-lambda-rie as the event
// source mapping invokes it; when an invocation dies with its process, the
// next batch goes to a fresh one, as Lambda starts a new execution
// environment.
type lambdaWorker struct {
	t         *testing.T
	bootstrap string
	env       []string

	mu       sync.Mutex
	rie      *emulator.RIE
	logs     []string // of environments that ended
	restarts int
}

func startWorker(t *testing.T, rulesFile string, env []string) *lambdaWorker {
	t.Helper()
	dir := t.TempDir()
	w := &lambdaWorker{t: t, bootstrap: testenv.BuildFunction(t, "worker", dir), env: env}
	data, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "autodeploy.yaml"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	w.rie = testenv.StartRIE(t, w.bootstrap, env)
	return w
}

// Kill ends the worker's execution environment at once (a crash or a
// timeout mid-deploy): nothing after this point of its invocation runs.
func (w *lambdaWorker) Kill() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.rie.Stop()
}

// Handle is the poller's handler: one invocation of the function.
func (w *lambdaWorker) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	data, err := json.Marshal(ev)
	if err != nil {
		return events.SQSEventResponse{}, err
	}
	w.mu.Lock()
	rie := w.rie
	w.mu.Unlock()
	body, err := rie.Invoke(ctx, data)
	if err != nil {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.logs = append(w.logs, w.rie.Logs())
		w.rie.Stop()
		w.rie, w.restarts = testenv.StartRIE(w.t, w.bootstrap, w.env), w.restarts+1
		return events.SQSEventResponse{}, fmt.Errorf("invocation died: %w", err)
	}
	var resp struct {
		events.SQSEventResponse
		ErrorMessage string `json:"errorMessage"`
	}
	if err := json.Unmarshal(body, &resp); err != nil || resp.ErrorMessage != "" {
		return events.SQSEventResponse{}, fmt.Errorf("function error: %s", body)
	}
	return resp.SQSEventResponse, nil
}

// Logs is every log line the worker's environments wrote, as JSON objects
// with the given msg.
func (w *lambdaWorker) Lines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	w.mu.Lock()
	all := strings.Join(append(append([]string(nil), w.logs...), w.rie.Logs()), "\n")
	w.mu.Unlock()
	return linesOf(t, all, msg)
}

func linesOf(t *testing.T, logs, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "{") {
			continue // the emulator's own lines
		}
		var l map[string]any
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			continue
		}
		if l["msg"] == msg {
			out = append(out, l)
		}
	}
	return out
}

// drain plays the event source mapping over the work queue until it is
// empty: batches of 10, one at a time (the emulator runs one invocation at
// once, as one execution environment does).
func drain(t *testing.T, f *fleet, handler testenv.SQSHandler, within time.Duration) testenv.PollStats {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), within)
	defer cancel()
	p := &testenv.Poller{SQS: f.sqs, QueueURL: f.queue.URL, BatchSize: 10, Concurrency: 1, Handler: handler}
	stats, err := p.Drain(ctx)
	if err != nil {
		t.Fatalf("drain: %v", err)
	}
	return stats
}
