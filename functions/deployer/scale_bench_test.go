package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/deploy"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/fnenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/wiring"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work/queue"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/worker"
)

// timeScale is how much faster than real time the queued benchmarks play
// ECS, SQS and the SDK's retry backoff: at 50, ECS's 1 registration per
// second is one per 20 ms, a 3-minute worker timeout 3.6 s. Every figure
// they report in seconds is converted back to ECS's time ("s(ECS)").
const timeScale = 50

// workerTimeout is the worker function's timeout in the stack
// (infra/stack/work.go); an invocation must stay under a third of it.
const workerTimeout = 3 * time.Minute

// secondPlace is the other target place of the queued benchmarks: the same
// account in another region (ECS's buckets are per account and region).
const secondPlace = "us-east-1"

// fanOut is one push to many targets in two places, through the queued
// path: the intake (the deployer with queue.Dispatcher) sends them to the
// place's work queue (testenv.MemSQS), a mapping per place
// (testenv.Mapping: queue.MaximumConcurrency invocations of batches of
// queue.BatchSize, each under the worker's timeout) runs worker.Handler,
// and every AWS call goes to testenv.FakeAWS with ECS's buckets per place,
// time-scaled.
type fanOut struct {
	fake    *testenv.FakeAWS
	sqs     *testenv.MemSQS
	intake  *deploy.Deployer
	handler *worker.Handler
	queues  map[string]testenv.WorkQueue // by region
	rules   *rules.Config
	central rules.Place
	// limits are the buckets each push starts with, full.
	limits testenv.ECSLimits
}

// scaledConfig is an SDK config aimed at FakeAWS whose retries are
// awsenv's (eight attempts, full jitter from 1 s doubling to 20 s)
// time-scaled, without adaptive mode: its client-side rate limiter recovers
// on the wall clock (CUBIC over real seconds, sdk.NowTime, which nothing
// outside the SDK can scale), so at timeScale 50 it holds a place's client
// to a fiftieth of the rate it would allow in ECS's time and the drain takes
// 1.4–1.6× its floor, a figure of the scaling, not of the product. Unscaled
// (45 targets in each of two places, burst 20, 1 per second), adaptive mode
// drained in 1.02–1.07× the floor with 53 throttled calls and standard
// mode in 1.12× with 194: production keeps awsenv.NewRetryer's adaptive
// mode.
func scaledConfig(endpoint string) aws.Config {
	return aws.Config{Region: testenv.Region, BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
		Retryer: func() aws.Retryer {
			return awsenv.Retry{Base: time.Second / timeScale, Max: 20 * time.Second / timeScale}.New()
		}}
}

// newFanOut lays out perPlace services in each of the two places, in
// clusters of 20, all taking repository "base" by one rule.
func newFanOut(tb testing.TB, perPlace int) *fanOut {
	tb.Helper()
	var targets []string
	for _, region := range []string{testenv.Region, secondPlace} {
		for i := range perPlace {
			targets = append(targets, fmt.Sprintf("{cluster: c%02d, service: s%04d, containers: [app], region: %s}", i/20, i, region))
		}
	}
	file := filepath.Join(tb.TempDir(), "autodeploy.yaml")
	if err := os.WriteFile(file, []byte("version: 1\nrules:\n  - {name: base, repository: base, tags: [\"*\"], targets: [\n    "+
		strings.Join(targets, ",\n    ")+"]}\n"), 0o644); err != nil {
		tb.Fatal(err)
	}
	cfg, err := rules.Load(file)
	if err != nil {
		tb.Fatal(err)
	}
	f := &fanOut{fake: testenv.StartFakeAWS(tb), sqs: testenv.NewMemSQS(timeScale), rules: cfg,
		central: rules.Place{Account: testenv.Account, Region: testenv.Region}, queues: map[string]testenv.WorkQueue{},
		limits: testenv.ECSRates(timeScale)}
	const base = "autodeploy-work"
	places := map[rules.Place]string{}
	for _, region := range []string{testenv.Region, secondPlace} {
		p := rules.Place{Account: testenv.Account, Region: region}
		q := f.sqs.CreateQueue(queue.NameFor(base, f.central, p), 6*workerTimeout, queue.MaxReceiveCount)
		f.queues[region], places[p] = q, q.URL
	}
	rt := fnenv.Runtime{Env: fnenv.Env{Table: "autodeploy-state", Concurrency: fnenv.DefaultConcurrency, WorkQueueURL: places[f.central]},
		Log: slog.New(slog.DiscardHandler), Rules: cfg, AWS: scaledConfig(f.fake.URL), Central: f.central, WorkQueues: places}
	fns := wiring.New(rt)
	f.intake, _ = fns.Intake()
	f.intake.Dispatcher = &queue.Dispatcher{SQS: f.sqs, Queues: places, Central: f.central}
	if f.handler, err = fns.Worker(); err != nil {
		tb.Fatal(err)
	}
	f.handler.SQS = f.sqs
	return f
}

// placeRun is what one place's drain did.
type placeRun struct {
	region string
	stats  testenv.MappingStats
	err    error
}

// push sends one push of digest n through the intake, then drains every
// place's queue, each with its own mapping, at once.
func (f *fanOut) push(ctx context.Context, tb testing.TB, n int) []placeRun {
	tb.Helper()
	f.fake.Limits(f.limits) // full buckets, as after a quiet spell
	event := fmt.Sprintf(`{"version":"0","id":"scale-%d","detail-type":"ECR Image Action","source":"aws.ecr","account":%q,`+
		`"time":%q,"region":%q,"resources":[],"detail":{"result":"SUCCESS","repository-name":"base","image-digest":"sha256:%064x",`+
		`"action-type":"PUSH","image-tag":"v%d","manifest-media-type":"application/vnd.oci.image.manifest.v1+json"}}`,
		n, testenv.Account, time.Now().UTC().Format(time.RFC3339), testenv.Region, n, n)
	sum, err := f.intake.Handle(ctx, []byte(event))
	if err != nil {
		tb.Fatalf("intake: %v", err)
	}
	for _, r := range sum.Results {
		if r.Outcome != deploy.Queued {
			tb.Fatalf("intake: %s/%s %s: %s", r.Cluster, r.Service, r.Outcome, r.Reason)
		}
	}
	var wg sync.WaitGroup
	runs := make([]placeRun, 0, len(f.queues))
	var mu sync.Mutex
	for region, q := range f.queues {
		wg.Go(func() {
			m := &testenv.Mapping{SQS: f.sqs, QueueURL: q.URL, Handler: f.handler.Handle,
				Concurrency: queue.MaximumConcurrency, BatchSize: queue.BatchSize, Timeout: workerTimeout}
			st, err := m.Drain(ctx)
			mu.Lock()
			defer mu.Unlock()
			runs = append(runs, placeRun{region, st, err})
		})
	}
	wg.Wait()
	return runs
}

// check says what went wrong with push n: each target must run its image,
// registered once, and nothing may be in a dead-letter queue.
func (f *fanOut) check(n int, wantRegistrations int) []string {
	var errs []string
	total, dups := f.fake.Registrations()
	if total != wantRegistrations || dups != 0 {
		errs = append(errs, fmt.Sprintf("%d registrations (want %d), %d duplicates (want 0)", total, wantRegistrations, dups))
	}
	for region, q := range f.queues {
		if d := f.sqs.Depth(q.DLQ); d != 0 {
			errs = append(errs, fmt.Sprintf("%d work items of %s in the dead-letter queue", d, region))
		}
	}
	suffix := fmt.Sprintf("@sha256:%064x", n)
	behind := 0
	for _, r := range f.rules.Rules {
		for _, t := range r.Targets {
			if !strings.HasSuffix(f.fake.Image(t.Where(f.central).Region, t.Cluster, t.Service), suffix) {
				behind++
			}
		}
	}
	if behind > 0 {
		errs = append(errs, fmt.Sprintf("%d targets do not run push %d's image", behind, n))
	}
	return errs
}

// TestQueuedPushDeploysEachTargetOnce: one push to 60 targets in two
// places, then the same push delivered again (EventBridge delivers at least
// once), through the queued path against ECS's buckets (time-scaled, the
// burst smaller than the targets of each place, so registrations are
// throttled and the worker's retries are exercised): every target runs the
// image, registered exactly once, none in a dead-letter queue, and the
// redelivered push registers nothing.
func TestQueuedPushDeploysEachTargetOnce(t *testing.T) {
	ctx := context.Background()
	f := newFanOut(t, 30)
	f.limits.Register.Burst = 5 // ECS's is 20: 30 targets would not be throttled
	for delivery := range 2 {
		for _, run := range f.push(ctx, t, 1) {
			if run.err != nil {
				t.Fatalf("delivery %d, %s: %v", delivery+1, run.region, run.err)
			}
			t.Logf("delivery %d, %s: %+v", delivery+1, run.region, run.stats)
		}
		for _, e := range f.check(1, 60) {
			t.Errorf("delivery %d: %s", delivery+1, e)
		}
	}
	if f.fake.Throttled() == 0 {
		t.Error("no registration was throttled: the test did not exercise ECS's bucket")
	}
	t.Logf("%d registrations throttled and retried; calls %v", f.fake.Throttled(), f.fake.Calls())
}

// BenchmarkQueuedFanOut is one push to 1,000 targets in two places (500
// each) through the queued path (see fanOut), time-scaled by timeScale. It
// reports, per push: registrations (must be 1,000), duplicates and items in
// the dead-letter queues (must be 0), each place's drain time against its
// registration bucket's floor (500 registrations: the burst of 20, then 480
// at 1 per second; goal ≤ 1.25×), and the longest worker invocation
// against a third of the worker's timeout (goal ≤ 1). Times are in ECS's
// seconds, s(ECS): the benchmark's, times timeScale.
func BenchmarkQueuedFanOut(b *testing.B) {
	const perPlace = 500
	ctx := context.Background()
	f := newFanOut(b, perPlace)
	floor := testenv.ECSRates(timeScale).Register.Floor(perPlace)
	ecsSeconds := func(d time.Duration) float64 { return d.Seconds() * timeScale }
	n := 0
	var worstRatio, longest float64
	var throttled int
	for b.Loop() {
		n++
		before, _ := f.fake.Registrations()
		throttledBefore := f.fake.Throttled()
		runs := f.push(ctx, b, n)
		for _, run := range runs {
			if run.err != nil {
				b.Fatalf("%s: %v", run.region, run.err)
			}
			ratio := run.stats.Elapsed.Seconds() / floor.Seconds()
			worstRatio = max(worstRatio, ratio)
			longest = max(longest, ecsSeconds(run.stats.Longest))
			b.Logf("push %d, place %s: %d targets in %.0f s(ECS), floor %.0f s(ECS), ratio %.2f; %d invocations, %d items received, %d returned, %d timed out, longest invocation %.1f s(ECS)",
				n, run.region, perPlace, ecsSeconds(run.stats.Elapsed), ecsSeconds(floor), ratio,
				run.stats.Invocations, run.stats.Received, run.stats.Failures, run.stats.TimedOut, ecsSeconds(run.stats.Longest))
		}
		after, _ := f.fake.Registrations()
		throttled += f.fake.Throttled() - throttledBefore
		if errs := f.check(n, after); len(errs) > 0 || after-before != 2*perPlace {
			b.Fatalf("push %d: %d registrations (want %d); %s", n, after-before, 2*perPlace, strings.Join(errs, "; "))
		}
	}
	total, dups := f.fake.Registrations()
	dlq := 0
	for _, q := range f.queues {
		dlq += f.sqs.Depth(q.DLQ)
	}
	b.ReportMetric(float64(total)/float64(n), "registrations/push")
	b.ReportMetric(float64(dups), "duplicates")
	b.ReportMetric(float64(dlq), "dlq")
	b.ReportMetric(worstRatio, "x-floor")
	b.ReportMetric(longest/workerTimeout.Seconds()*3, "longest/third-timeout")
	b.ReportMetric(float64(throttled)/float64(n), "throttled/push")
	b.ReportMetric(timeScale, "time-scale")
	if worstRatio > 1.25 || longest > workerTimeout.Seconds()/3 {
		b.Errorf("over the goal: a place drained in %.2f× its registration floor (≤ 1.25), the longest invocation took %.0f s(ECS) (≤ %.0f)",
			worstRatio, longest, workerTimeout.Seconds()/3)
	}
}
