package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/emulator"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/fnenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/reconcile"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/wiring"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work/queue"
)

// sweepTargets is the size of the sweep benchmark's rules file: 1,000
// services in 50 clusters.
const sweepTargets = 1000

// BenchmarkSweep1000 times the scheduled sweep of 1,000 targets in 50
// clusters with a work queue (the stack's setup), every AWS call through a
// proxy adding callLatency, against testenv.FakeAWS with ECS's buckets at
// their real rates, the sweeper built as the deployer function builds it
// (wiring.Intake), in-process. Three cases: the cold sweep (a new execution
// environment: each running task definition described once), then warm
// sweeps of 1,000 targets in sync, and of 1,000 with 10 behind (the sweep
// enqueues exactly those 10). It reports calls per sweep, calls per 10
// targets, milliseconds per sweep and work items queued.
func BenchmarkSweep1000(b *testing.B) {
	for _, behind := range []int{0, 10} {
		b.Run(fmt.Sprintf("behind=%d", behind), func(b *testing.B) { sweep1000(b, behind) })
	}
}

func sweep1000(b *testing.B, behind int) {
	ctx := context.Background()
	fake := testenv.StartFakeAWS(b)
	proxy := testenv.StartProxy(b, fake.URL)
	proxy.Parallel()
	v1, v2 := fmt.Sprintf("sha256:%064x", 1), fmt.Sprintf("sha256:%064x", 2)
	fake.PushImage("fleet", "v1", v1, time.Now().Add(-time.Hour))
	newest := v1
	if behind > 0 {
		// An image pushed without its event reaching us: the last targets
		// still run v1.
		fake.PushImage("fleet", "v2", v2, time.Now())
		newest = v2
	}
	var targets []string
	for i := range sweepTargets {
		cluster, name := fmt.Sprintf("c%02d", i/20), fmt.Sprintf("s%04d", i)
		image := newest
		if i >= sweepTargets-behind {
			image = v1
		}
		fake.Seed(testenv.Region, cluster, name, emulator.Registry+"/fleet@"+image)
		targets = append(targets, fmt.Sprintf("{cluster: %s, service: %s}", cluster, name))
	}
	file := filepath.Join(b.TempDir(), "autodeploy.yaml")
	if err := os.WriteFile(file, []byte("version: 1\nrules:\n  - {name: fleet, repository: fleet, tags: [\"*\"], targets: [\n    "+
		strings.Join(targets, ",\n    ")+"]}\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	cfg, err := rules.Load(file)
	if err != nil {
		b.Fatal(err)
	}
	central := rules.Place{Account: testenv.Account, Region: testenv.Region}
	sqs := testenv.NewMemSQS(1)
	q := sqs.CreateQueue("autodeploy-work", 6*workerTimeout, queue.MaxReceiveCount)
	places := map[rules.Place]string{central: q.URL}
	rt := fnenv.Runtime{Env: fnenv.Env{Table: "autodeploy-state", Concurrency: fnenv.DefaultConcurrency, WorkQueueURL: q.URL},
		Log: slog.New(slog.DiscardHandler), Rules: cfg, Central: central, WorkQueues: places,
		AWS: aws.Config{Region: testenv.Region, BaseEndpoint: aws.String(proxy.URL), Retryer: awsenv.NewRetryer,
			Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")}}
	d, sweeper := wiring.New(rt).Intake()
	d.Dispatcher = &queue.Dispatcher{SQS: sqs, Queues: places, Central: central}
	proxy.Latency(callLatency)

	sweep := func() (reconcile.Report, time.Duration, int) {
		before := sqs.Depth(q.URL)
		start := time.Now()
		rep, err := sweeper.Sweep(ctx, reconcile.Options{EventID: "bench"})
		took := time.Since(start)
		if err != nil {
			b.Fatal(err)
		}
		return rep, took, sqs.Depth(q.URL) - before
	}
	calls := func() (n int, by map[string]int) {
		by = proxy.Calls()
		for _, c := range by {
			n += c
		}
		return n, by
	}
	// The cold sweep: a new execution environment describes each running
	// task definition once (ECS's DescribeTaskDefinition bucket: 50, 20/s).
	_, coldTook, _ := sweep()
	sqs.Purge(q.URL)
	coldCalls, coldBy := calls()
	b.Logf("cold sweep of %d targets: %d calls (%v), %s", sweepTargets, coldCalls, coldBy, coldTook.Round(time.Millisecond))
	n, queued, inSync := 0, 0, 0
	var took time.Duration
	for b.Loop() {
		b.StopTimer()
		fake.Limits(testenv.ECSRates(1)) // sweeps are minutes apart: ECS's buckets are full again
		b.StartTimer()
		rep, t, sent := sweep()
		took += t
		queued += sent
		n++
		for _, l := range rep.Lines {
			if l.Outcome == reconcile.InSync {
				inSync++
			}
		}
		b.StopTimer()
		sqs.Purge(q.URL)
		b.StartTimer()
	}
	total, by := calls()
	for _, op := range []string{"RegisterTaskDefinition", "UpdateService", "TransactWriteItems"} {
		if by[op] > 0 {
			b.Errorf("a sweep with a work queue called %s %d times: it deploys nothing itself", op, by[op])
		}
	}
	// Its one write per target it queues: the note on the target's state
	// item that an item waits for it (history.Store.NoteQueued), no lock.
	if by["UpdateItem"] != queued {
		b.Errorf("a sweep with a work queue called UpdateItem %d times for %d items queued: one note per item, no lock", by["UpdateItem"], queued)
	}
	if queued != n*behind || inSync != n*(sweepTargets-behind) {
		b.Errorf("per sweep: %d queued (want %d), %d in sync (want %d)", queued/n, behind, inSync/n, sweepTargets-behind)
	}
	b.Logf("warm sweep, %d behind: %v per %d sweeps", behind, by, n)
	b.ReportMetric(float64(total)/float64(n), "calls/sweep")
	b.ReportMetric(float64(total)/float64(n)/sweepTargets*10, "calls/10-targets")
	b.ReportMetric(float64((took / time.Duration(n)).Milliseconds()), "ms/sweep")
	b.ReportMetric(float64(queued)/float64(n), "queued/sweep")
	b.ReportMetric(float64(coldCalls), "cold-calls")
	b.ReportMetric(float64(coldTook.Milliseconds()), "cold-ms")
}
