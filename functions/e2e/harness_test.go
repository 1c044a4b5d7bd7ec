package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
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

// awsProxy stands between the functions and moto (a fake of the network and
// of ECS's throttling, which moto has not): it counts calls by operation,
// throttles RegisterTaskDefinition of chosen families a number of times, and
// runs a hook once moto has applied a call, before its answer goes back.
type awsProxy struct {
	URL string

	mu       sync.Mutex
	calls    map[string]int
	families map[string]int // family → registrations
	throttle map[string]int // family → throttles still to answer
	after    func(op string, body []byte)
}

func startProxy(t *testing.T, endpoint string) *awsProxy {
	t.Helper()
	target, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	p := &awsProxy{calls: map[string]int{}, families: map[string]int{}, throttle: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op := r.Header.Get("X-Amz-Target")
		op = op[strings.LastIndex(op, ".")+1:]
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		var in struct{ Family string }
		if op == "RegisterTaskDefinition" {
			_ = json.Unmarshal(body, &in)
		}
		p.mu.Lock()
		p.calls[op]++
		throttled := in.Family != "" && p.throttle[in.Family] > 0
		if throttled {
			p.throttle[in.Family]--
		} else if in.Family != "" {
			p.families[in.Family]++
		}
		after := p.after
		p.mu.Unlock()
		if throttled {
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"__type":"ThrottlingException","message":"Rate exceeded (test proxy)"}`)
			return
		}
		rec := httptest.NewRecorder()
		rp.ServeHTTP(rec, r)
		if after != nil {
			after(op, body)
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// Throttle answers the next n registrations of family with ECS's throttling.
func (p *awsProxy) Throttle(family string, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.throttle[family] = n
}

// After runs hook once moto applied each call (nil: none).
func (p *awsProxy) After(hook func(op string, body []byte)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.after = hook
}

// Calls is the calls so far by operation, and registrations by family.
func (p *awsProxy) Calls() (ops, families map[string]int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ops, families = map[string]int{}, map[string]int{}
	for k, v := range p.calls {
		ops[k] = v
	}
	for k, v := range p.families {
		families[k] = v
	}
	return ops, families
}

// fleet is a moto server with n services fleet/svc-NN (family svc-NN, one
// container on web:main-seed), one rule that targets them all, the state
// table and a work queue with its dead-letter queue, as the stack makes them.
type fleet struct {
	moto   *testenv.Moto
	proxy  *awsProxy
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
	f := &fleet{moto: m, proxy: startProxy(t, m.Endpoint), ecs: ecs.NewFromConfig(m.AWSConfig()), sqs: sqs.NewFromConfig(m.AWSConfig())}
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
