package reconcile

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/cleanup"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/deploy"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/emulator"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/lock"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/logging"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work"
)

// workerNow plays the worker for a sweep's cleanup items: each runs at once
// with its own budget, as the worker runs an item.
type workerNow struct {
	runner *CleanupRunner
}

func (w workerNow) SendCleanups(ctx context.Context, cmds []work.Cleanup) error {
	for _, c := range cmds {
		if _, err := w.runner.Run(ctx, c, cleanup.NewBudget(CleanupBudget)); err != nil {
			return err
		}
	}
	return nil
}

// BenchmarkSweepCleanFamilies50: a sweep over 50 in-sync targets (50
// families, each with an old revision beyond keep: 2) whose rule cleans
// up, in-process and queued (the worker played at once). Sweeps run until
// every family is clean (one family of the place per sweep); then a sweep with clean-up on makes no more AWS
// calls than the same sweep without: calls/sweep (clean-up on) and
// calls/sweep-without are reported, and the benchmark fails if they differ.
func BenchmarkSweepCleanFamilies50(b *testing.B) {
	for _, mode := range []string{"in-process", "queued"} {
		b.Run(mode, func(b *testing.B) {
			const n = 50
			m := testenv.StartMoto(b)
			proxy := testenv.StartProxy(b, m.Endpoint)
			var y strings.Builder
			y.WriteString("version: 1\nrules:\n  - name: fleet\n    repository: web\n    tags: [\"main-*\"]\n    cleanup: {keep: 2}\n    targets:\n")
			for i := range n {
				fmt.Fprintf(&y, "      - {cluster: fleet, service: svc-%02d}\n", i)
			}
			cfg, err := rules.Parse("autodeploy.yaml", []byte(y.String()))
			if err != nil {
				b.Fatal(err)
			}
			images := m.Repository(b, "web", "main-1")
			direct := ecs.NewFromConfig(m.AWSConfig())
			for i := range n {
				svc := emulator.Service{Cluster: "fleet", Name: fmt.Sprintf("svc-%02d", i), Family: fmt.Sprintf("svc-%02d", i),
					Containers: []emulator.Container{{Name: "app", Image: emulator.Registry + "/web@" + images["main-1"]}}}
				for range 2 { // revisions 1 and 2 (1 is beyond keep), then the running 3
					if _, err := emulator.SeedService(context.Background(), direct, emulator.Service{Cluster: "old", Name: svc.Name, Family: svc.Family,
						Containers: svc.Containers, Tags: map[string]string{"autodeploy:rule": "fleet"}}); err != nil {
						b.Fatal(err)
					}
					if _, err := direct.DeleteService(context.Background(), &ecs.DeleteServiceInput{Cluster: aws.String("old"), Service: aws.String(svc.Name), Force: aws.Bool(true)}); err != nil {
						b.Fatal(err)
					}
				}
				if _, err := emulator.SeedService(context.Background(), direct, svc); err != nil {
					b.Fatal(err)
				}
			}
			table := m.CreateTable(b, "autodeploy")
			proxied := proxy.Config(m.AWSConfig())
			proxied.Retryer = awsenv.NewRetryer
			clients := awsenv.NewClients(proxied)
			db := dynamodb.NewFromConfig(proxied)
			store := history.NewStore(db, table)
			log := logging.New(&strings.Builder{}, slog.LevelWarn)
			d := &deploy.Deployer{Rules: cfg, Central: rules.Place{Account: testenv.Account, Region: testenv.Region},
				ECS:      func(region, role string) deploy.ECS { return clients.ECS(region, role) },
				Services: history.NewServices(lock.New(db, table), store), Log: log, Concurrency: 8, Now: time.Now}
			registry := ecr.NewFromConfig(proxied)
			marks := &TableMarks{DB: db, Table: table}
			runner := &CleanupRunner{ECS: func(region, role string) CleanupECS { return clients.ECS(region, role) }, History: store, Marks: marks, Log: log}
			s := &Sweeper{Rules: cfg, ECR: func(string, string) ECR { return registry }, ECS: d.ECS, States: store, Deployer: d, Log: log, Marks: marks}
			if mode == "queued" {
				d.Dispatcher = &queueStub{}
				s.CleanupQueue = workerNow{runner}
			} else {
				s.Cleanup = runner
			}
			sweep := func() int {
				proxy.Calls()
				if _, err := s.Sweep(context.Background(), Options{EventID: "bench"}); err != nil {
					b.Fatal(err)
				}
				total := 0
				for _, c := range proxy.Calls() {
					total += c
				}
				return total
			}
			// Until clean: one family of the place per sweep, so 50 sweeps
			// (and one more, queued, to read the last mark).
			for i := 0; i < n+5; i++ {
				sweep()
				s.mu.Lock()
				clean := len(s.clean)
				s.mu.Unlock()
				if clean == n {
					break
				}
			}
			for i := range n {
				if revs := activeRevisions(b, direct, fmt.Sprintf("svc-%02d", i)); len(revs) != 2 {
					b.Fatalf("svc-%02d: ACTIVE %v after the sweeps, want 2 and 3", i, revs)
				}
			}
			b.ResetTimer()
			var with, without int
			for b.Loop() {
				with = sweep()
			}
			b.StopTimer()
			s.Cleanup, s.CleanupQueue, s.Marks = nil, nil, nil
			without = sweep()
			b.ReportMetric(float64(with), "calls/sweep")
			b.ReportMetric(float64(without), "calls/sweep-without")
			if with > without {
				b.Errorf("a sweep of clean families made %d calls with clean-up on, %d without", with, without)
			}
		})
	}
}
