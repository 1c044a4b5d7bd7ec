package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"golang.org/x/sync/errgroup"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/emulator"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/lock"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/taskdef"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

// callLatency is what the proxy adds to every AWS call: a round trip to a
// regional endpoint from Lambda in the same region is of this order.
const callLatency = 20 * time.Millisecond

// fleet is how many services one push rolls in the fan-out case.
const fleet = 20

// BenchmarkSideBySide runs the built bootstrap under aws-lambda-rie behind a
// proxy adding callLatency per AWS call, and the same AWS calls made bare
// (the lock write, the four ECS calls, the history+unlock transaction), for
// one target and for twenty. It reports the ratio to the bare calls — the
// physical limit — and the calls per target, init duration, peak RSS and
// binary size. `make bench` runs it; the README keeps its table.
//
// Two AWS stand-ins: moto, which does the real work of each call but spends
// milliseconds of CPU on it (on a small machine that CPU, not the network,
// bounds twenty targets), and testenv.FakeAWS, which answers at once, so that
// only latency counts, as against AWS itself: there the fan-out shows what
// the deployer's concurrency buys.
func BenchmarkSideBySide(b *testing.B) {
	for _, backend := range []string{"moto", "latency-only"} {
		b.Run("aws="+backend, func(b *testing.B) { sideBySide(b, backend) })
	}
}

func sideBySide(b *testing.B, backend string) {
	ctx := context.Background()
	m := testenv.StartMoto(b) // the deployer's environment points at it; with FakeAWS its calls go there instead
	table := m.CreateTable(b, "autodeploy-state")
	endpoint := m.Endpoint
	if backend == "moto" {
		direct := ecs.NewFromConfig(m.AWSConfig())
		for _, name := range services("solo", "bare-solo") {
			repo := "fleet"
			if strings.HasSuffix(name, "solo") {
				repo = "solo"
			}
			if _, err := emulator.SeedService(ctx, direct, emulator.Service{Cluster: "bench", Name: name, Family: name,
				Containers: []emulator.Container{{Name: "app", Image: emulator.Registry + "/" + repo + ":v0"}}}); err != nil {
				b.Fatal(err)
			}
		}
	} else {
		fake := testenv.StartFakeAWS(b)
		// Latency only: ECS's registration rate is a test of its own
		// (TestThrottledRegistrationsAllDeploy); here it would measure the
		// bucket, not the deployer.
		fake.RegisterRate(1<<20, 1<<20)
		endpoint = fake.URL
	}
	clock := startBackendClock(b, endpoint)
	proxy := testenv.StartProxy(b, clock.URL)
	proxy.Parallel() // no two writes here race on one item
	var targets []string
	for _, name := range services() {
		targets = append(targets, fmt.Sprintf("{cluster: bench, service: %s, containers: [app]}", name))
	}
	rulesFile := filepath.Join(b.TempDir(), "autodeploy.yaml")
	if err := os.WriteFile(rulesFile, []byte("version: 1\nrules:\n"+
		"  - {name: solo, repository: solo, tags: [\"*\"], targets: [{cluster: bench, service: solo, containers: [app]}]}\n"+
		"  - {name: fleet, repository: fleet, tags: [\"*\"], targets: ["+strings.Join(targets, ", ")+"]}\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	proxied := proxy.Config(m.AWSConfig())
	proxied.Retryer = awsenv.NewRetryer
	db := awsenv.StateTable(proxied)
	direct := dynamodb.NewFromConfig(m.AWSConfig())
	bare := bareClients{ecs: ecs.NewFromConfig(proxied), services: history.NewServices(lock.New(db, table), history.NewStore(db, table)),
		db: db, table: table}
	proxy.Latency(callLatency)

	lambdaSize := lambdaBootstrapSize(b)
	var pushes atomic.Int64
	var oneTarget time.Duration
	scenario := func(name, repo string, services []string, concurrency int) {
		b.Run(name, func(b *testing.B) {
			rie := testenv.StartFunction(b, "deployer", rulesFile, append(m.Env(),
				"AWS_ENDPOINT_URL="+proxy.URL, "AUTODEPLOY_TABLE="+table, "AUTODEPLOY_ACCOUNT="+testenv.Account, fmt.Sprintf("AUTODEPLOY_CONCURRENCY=%d", concurrency)))
			// The first invocation starts the function (its init); it is
			// reported apart, as Lambda reports a cold start.
			invoke(b, rie, repo, pushes.Add(1), len(services))
			_ = proxy.Calls()
			var handler, limit time.Duration
			handlerBackend, bareBackend := map[string]time.Duration{}, map[string]time.Duration{}
			n := 0
			// Each side starts from an empty table (clearTable), and they
			// take turns going first, so neither inherits the other's load.
			runHandler := func() {
				start := time.Now()
				invoke(b, rie, repo, pushes.Add(1), len(services))
				handler += time.Since(start)
				clock.take(handlerBackend)
			}
			runBare := func() {
				start := time.Now()
				bare.deploy(b, ctx, services, repo, pushes.Add(1), concurrency)
				limit += time.Since(start)
				clock.take(bareBackend)
			}
			for b.Loop() {
				sides := []func(){runHandler, runBare}
				if n%2 == 1 {
					sides[0], sides[1] = runBare, runHandler
				}
				for _, side := range sides {
					b.StopTimer()
					clearTable(b, direct, table)
					clock.take(nil)
					b.StartTimer()
					side()
				}
				n++
			}
			handlerCalls := -n * len(services) * 6 // the bare calls
			if len(services) > 1 {
				handlerCalls -= n // and their rollout's open
			}
			for _, c := range proxy.Calls() {
				handlerCalls += c
			}
			mean := handler / time.Duration(n)
			b.ReportMetric(float64(mean.Milliseconds()), "handler-ms")
			b.ReportMetric(float64((limit / time.Duration(n)).Milliseconds()), "bare-ms")
			b.ReportMetric(float64(handler)/float64(limit), "ratio")
			b.ReportMetric(float64(handlerCalls)/float64(n*len(services)), "calls/target")
			// The stand-in's own time answering, per target, summed over
			// calls: where it exceeds the bare calls', the stand-in did more
			// work for the handler's calls.
			perTarget := func(by map[string]time.Duration) float64 {
				var total time.Duration
				for _, d := range by {
					total += d
				}
				return float64(total.Microseconds()) / 1000 / float64(n*len(services))
			}
			b.ReportMetric(perTarget(handlerBackend), "backend-ms/target")
			b.ReportMetric(perTarget(bareBackend), "bare-backend-ms/target")
			var ops []string
			for op, d := range handlerBackend {
				ops = append(ops, fmt.Sprintf("%s %.1f/%.1f", op, perTarget(map[string]time.Duration{op: d}), perTarget(map[string]time.Duration{op: bareBackend[op]})))
			}
			slices.Sort(ops)
			b.Logf("stand-in ms per target, handler/bare: %s", strings.Join(ops, ", "))
			if len(services) == 1 {
				oneTarget = mean
			} else if oneTarget > 0 {
				b.ReportMetric(float64(mean)/float64(oneTarget), "x-one-target")
			}
			initDuration, err := rie.InitDuration()
			if err != nil {
				b.Fatal(err)
			}
			rss, err := rie.PeakRSS()
			if err != nil {
				b.Fatal(err)
			}
			info, err := os.Stat(rie.Bootstrap)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(initDuration.Microseconds())/1000, "init-ms")
			b.ReportMetric(float64(rss)/(1<<20), "rss-MB")
			b.ReportMetric(float64(info.Size())/(1<<20), "bootstrap-MB")
			b.ReportMetric(float64(lambdaSize)/(1<<20), "arm64-bootstrap-MB")
			// The budget the issue set; over it, the benchmark says so. The
			// size is the arm64 binary's, the one Lambda runs (make build):
			// this machine's amd64 build is ~0.9 MiB larger.
			if initDuration > 50*time.Millisecond || rss > 64<<20 || lambdaSize > 15<<20 {
				b.Errorf("over budget: init %s (≤ 50ms), peak RSS %.1f MiB (≤ 64), arm64 bootstrap %.2f MiB (≤ 15)",
					initDuration, float64(rss)/(1<<20), float64(lambdaSize)/(1<<20))
			}
		})
	}
	scenario("targets=1", "solo", []string{"solo"}, 10)
	for _, c := range []int{4, 10, 20} {
		scenario(fmt.Sprintf("targets=%d/concurrency=%d", fleet, c), "fleet", services(), c)
	}
}

// clearTable deletes every item of the state table before each side's run,
// so that both start from the same empty table and its size does not grow
// with the iterations: moto's TransactWriteItems deep-copies the whole table
// once per item of the transaction (moto/dynamodb/models), a cost AWS does
// not have, which after a few hundred records made a round of twenty
// transactions take seconds and outlast the deployer's 10 s release.
func clearTable(b *testing.B, db *dynamodb.Client, table string) {
	ctx := context.Background()
	var keys []map[string]ddbtypes.AttributeValue
	p := dynamodb.NewScanPaginator(db, &dynamodb.ScanInput{TableName: aws.String(table), ProjectionExpression: aws.String("pk, sk")})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			b.Fatal(err)
		}
		keys = append(keys, page.Items...)
	}
	for chunk := range slices.Chunk(keys, 25) {
		var reqs []ddbtypes.WriteRequest
		for _, k := range chunk {
			reqs = append(reqs, ddbtypes.WriteRequest{DeleteRequest: &ddbtypes.DeleteRequest{Key: k}})
		}
		if _, err := db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]ddbtypes.WriteRequest{table: reqs}}); err != nil {
			b.Fatal(err)
		}
	}
}

// lambdaBootstrapSize builds the deployer as `make build` does for Lambda
// (linux/arm64, stripped) and returns its size in bytes.
func lambdaBootstrapSize(b *testing.B) int64 {
	out := filepath.Join(b.TempDir(), "bootstrap")
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w", "-o", out, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64")
	if msg, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("build the arm64 bootstrap: %v\n%s", err, msg)
	}
	info, err := os.Stat(out)
	if err != nil {
		b.Fatal(err)
	}
	return info.Size()
}

// services are the fleet's service names, and any extra names given, with
// the bare twin of each (the bare calls roll their own services).
func services(extra ...string) []string {
	var out []string
	for i := range fleet {
		out = append(out, fmt.Sprintf("svc%02d", i+1))
	}
	if len(extra) == 0 {
		return out
	}
	for _, name := range out {
		extra = append(extra, "bare-"+name)
	}
	return append(out, extra...)
}

// invoke sends a push of a new digest of repo and checks every target deployed.
func invoke(b *testing.B, rie *emulator.RIE, repo string, n int64, targets int) {
	b.Helper()
	event := fmt.Sprintf(`{"version":"0","id":"bench-%d","detail-type":"ECR Image Action","source":"aws.ecr","account":%q,`+
		`"time":%q,"region":%q,"resources":[],"detail":{"result":"SUCCESS","repository-name":%q,"image-digest":"sha256:%064x",`+
		`"action-type":"PUSH","image-tag":"v%d","manifest-media-type":"application/vnd.oci.image.manifest.v1+json"}}`,
		n, testenv.Account, time.Now().UTC().Format(time.RFC3339), testenv.Region, repo, n, n)
	body, err := rie.Invoke(context.Background(), []byte(event))
	if err != nil {
		b.Fatal(err)
	}
	if got := strings.Count(string(body), `"outcome":"deployed"`); got != targets {
		b.Fatalf("%d of %d targets deployed: %s", got, targets, body)
	}
}

// bareClients make a deploy's six calls with nothing around them: what the
// handler would cost if it did no work of its own. They are the handler's
// very requests: the ECS calls as taskdef builds them, and the lock's take
// and the history + release transaction through the deployer's own
// history.Services (its state item, a three-item transaction), because
// moto's cost is not AWS's: its TransactWriteItems deep-copies the whole
// table once per item, so a lighter stand-in for the deployer's
// transaction (two small items) made the bare side cheaper for moto and the
// fan-out's ratio 1.3-1.6 (README: Benchmarks). A push to two targets or
// more of one rule first opens its rollout, as the deployer does: one
// PutItem before the fan-out (a plain one here, so the benchmark does not
// follow every change of the rollout item's shape).
type bareClients struct {
	ecs      *ecs.Client
	services *history.Services
	db       *dynamodb.Client
	table    string
}

func (c bareClients) deploy(b *testing.B, ctx context.Context, services []string, repo string, n int64, concurrency int) {
	if len(services) > 1 {
		s := func(v string) ddbtypes.AttributeValue { return &ddbtypes.AttributeValueMemberS{Value: v} }
		if _, err := c.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(c.table), Item: map[string]ddbtypes.AttributeValue{
			"pk": s(fmt.Sprintf("rollout#bare#bare-%d", n)), "sk": s("rollout"), "rule": s("bare"), "event_id": s(fmt.Sprintf("bare-%d", n)),
			"repository": s(repo), "tag": s(fmt.Sprintf("v%d", n)), "digest": s(fmt.Sprintf("sha256:%064x", n)),
			"pushed_at": s(time.Now().UTC().Format(time.RFC3339Nano)), "opened_at": s(time.Now().UTC().Format(time.RFC3339Nano)),
			"expected": &ddbtypes.AttributeValueMemberN{Value: fmt.Sprint(len(services))}, "ended": &ddbtypes.AttributeValueMemberN{Value: "0"},
		}}); err != nil {
			b.Fatal(err)
		}
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(concurrency)
	for _, svc := range services {
		g.Go(func() error { return c.one(ctx, "bare-"+svc, repo, n) })
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
}

func (c bareClients) one(ctx context.Context, service, repo string, n int64) error {
	event := fmt.Sprintf("bare-%d", n)
	held, err := c.services.Take(ctx, history.ServiceKey(testenv.Account, testenv.Region, "bench", service), event+"/bare")
	if err != nil {
		return err
	}
	svc, err := c.ecs.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("bench"), Services: []string{service}})
	if err != nil {
		return err
	}
	td, err := c.ecs.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: svc.Services[0].TaskDefinition,
		Include: []ecstypes.TaskDefinitionField{ecstypes.TaskDefinitionFieldTags}})
	if err != nil {
		return err
	}
	digest := fmt.Sprintf("sha256:%064x", n)
	image := fmt.Sprintf("%s/%s@%s", emulator.Registry, repo, digest)
	// The tags the deployer writes, so moto does the same work for both.
	pushed := time.Now().UTC()
	tags, err := taskdef.MergeTags(td.Tags, map[string]string{taskdef.TagRule: "bare", taskdef.TagEvent: event,
		taskdef.ContainerTagKey("app"): fmt.Sprint(n), taskdef.ContainerPushedAtKey("app"): pushed.Format(time.RFC3339)})
	if err != nil {
		return err
	}
	reg, err := c.ecs.RegisterTaskDefinition(ctx, taskdef.RegisterInput(taskdef.WithImages(td.TaskDefinition, map[string]string{"app": image}), tags))
	if err != nil {
		return err
	}
	up, err := c.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("bench"), Service: aws.String(service),
		TaskDefinition: reg.TaskDefinition.TaskDefinitionArn})
	if err != nil {
		return err
	}
	var deployment string
	for _, d := range up.Service.Deployments {
		if aws.ToString(d.Status) == "PRIMARY" {
			deployment = aws.ToString(d.Id)
		}
	}
	return held.Finish(ctx, history.Record{Rule: "bare", Repository: repo, Tag: fmt.Sprintf("v%d", n), Digest: digest,
		RegistryAccount: testenv.Account, RegistryRegion: testenv.Region, Account: testenv.Account, Region: testenv.Region,
		Cluster: "bench", Service: service, Containers: []string{"app"}, FromTaskDefinition: aws.ToString(svc.Services[0].TaskDefinition),
		ToTaskDefinition: aws.ToString(reg.TaskDefinition.TaskDefinitionArn), DeploymentID: deployment, EventID: event,
		Outcome: "deployed", PushedAt: pushed, DeployedAt: time.Now()})
}

// BenchmarkSweepInSync times the scheduled sweep of 50 targets already in
// sync, under aws-lambda-rie against moto with callLatency per call: after
// the first sweep (which describes each task definition once), a sweep is a
// handful of calls whatever the number of targets.
func BenchmarkSweepInSync(b *testing.B) {
	ctx := context.Background()
	m := testenv.StartMoto(b)
	table := m.CreateTable(b, "autodeploy-state")
	digest := m.Repository(b, "fleet", "v1")["v1"]
	direct := ecs.NewFromConfig(m.AWSConfig())
	var targets []string
	for i := range 50 {
		name := fmt.Sprintf("s%02d", i)
		if _, err := emulator.SeedService(ctx, direct, emulator.Service{Cluster: "bench", Name: name, Family: name,
			Containers: []emulator.Container{{Name: "app", Image: emulator.Registry + "/fleet@" + digest}}}); err != nil {
			b.Fatal(err)
		}
		targets = append(targets, fmt.Sprintf("{cluster: bench, service: %s}", name))
	}
	rulesFile := filepath.Join(b.TempDir(), "autodeploy.yaml")
	if err := os.WriteFile(rulesFile, []byte("version: 1\nrules:\n  - {name: fleet, repository: fleet, tags: [\"*\"], targets: ["+
		strings.Join(targets, ", ")+"]}\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	proxy := testenv.StartProxy(b, m.Endpoint)
	proxy.Latency(callLatency)
	rie := testenv.StartFunction(b, "deployer", rulesFile, append(m.Env(), "AWS_ENDPOINT_URL="+proxy.URL, "AUTODEPLOY_TABLE="+table, "AUTODEPLOY_ACCOUNT="+testenv.Account))
	event := testenv.Event(b, "scheduled-reconcile.json")
	sweep := func() {
		body, err := rie.Invoke(ctx, event)
		if err != nil || strings.Count(string(body), `"outcome":"in_sync"`) != 50 {
			b.Fatalf("sweep: %s, %v", body, err)
		}
	}
	sweep() // the cold sweep: each task definition described once
	_ = proxy.Calls()
	n := 0
	for b.Loop() {
		sweep()
		n++
	}
	calls := 0
	for op, c := range proxy.Calls() {
		if op == "RegisterTaskDefinition" || op == "UpdateService" {
			b.Errorf("an in-sync sweep called %s", op)
		}
		calls += c
	}
	b.ReportMetric(float64(calls)/float64(n), "calls/sweep")
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(n), "ms/sweep")
}

// backendClock stands between the proxy and the AWS stand-in and sums the
// time the stand-in takes to answer, by operation, so the benchmark can say
// whether the handler's calls cost the stand-in more than the bare ones.
type backendClock struct {
	URL string
	mu  sync.Mutex
	by  map[string]time.Duration
}

func startBackendClock(b *testing.B, endpoint string) *backendClock {
	target, err := url.Parse(endpoint)
	if err != nil {
		b.Fatal(err)
	}
	c := &backendClock{by: map[string]time.Duration{}}
	rp := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rp.ServeHTTP(w, r)
		op := r.Header.Get("X-Amz-Target")
		op = op[strings.LastIndex(op, ".")+1:]
		c.mu.Lock()
		c.by[op] += time.Since(start)
		c.mu.Unlock()
	}))
	b.Cleanup(srv.Close)
	c.URL = srv.URL
	return c
}

// take adds the stand-in's time by operation since the last take to into
// (when not nil), and forgets it.
func (c *backendClock) take(into map[string]time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for op, d := range c.by {
		if into != nil {
			into[op] += d
		}
	}
	c.by = map[string]time.Duration{}
}
