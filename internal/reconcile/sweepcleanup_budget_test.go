package reconcile

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/cleanup"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/emulator"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/taskdef"
)

// On moto: five services in one place, each with its own family of 7
// stale product revisions besides the one it runs, rules with cleanup:
// {keep: 2}; the work queue is a fake (sentCleanups) and the worker's part
// is the runner on moto. Each queued sweep sends one cleanup for the place
// — so one sweep spends at most CleanupBudget calls of the place's
// register bucket, as in-process — and the families take turns: five
// sweeps send the five families, in the order of their names, once each.
// In-process, one sweep runs one clean-up in the place.
func TestSweepCleansOneFamilyPerPlace(t *testing.T) {
	t.Parallel()
	var y strings.Builder
	y.WriteString("version: 1\nrules:\n")
	for i := 1; i <= 5; i++ {
		fmt.Fprintf(&y, "  - name: r%d\n    repository: web\n    semver: \">= 1.0.0\"\n    cleanup: {keep: 2}\n    targets: [{cluster: c%d, service: web}]\n", i, i)
	}
	f := newFixture(t, y.String())
	images := f.repo(t, "web", "v1.0.0", "v1.1.0")
	ctx := context.Background()
	for i := 1; i <= 5; i++ {
		fam := fmt.Sprintf("c%d-web", i)
		for n := 1; n <= 7; n++ {
			if _, err := f.ecs.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String(fam),
				ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String("web:old"), Memory: aws.Int32(128)}},
				Tags:                 []types.Tag{{Key: aws.String(taskdef.TagRule), Value: aws.String("r")}},
			}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := emulator.SeedService(ctx, f.ecs, emulator.Service{Cluster: fmt.Sprintf("c%d", i), Name: "web", Family: fam,
			Tags:       map[string]string{taskdef.TagRule: "r"},
			Containers: []emulator.Container{{Name: "app", Image: emulator.Registry + "/web@" + images["v1.1.0"]}}}); err != nil {
			t.Fatal(err)
		}
	}
	proxied := f.proxy.Config(f.moto.AWSConfig())
	proxied.Retryer = awsenv.NewRetryer
	clients := awsenv.NewClients(proxied)
	marks := &TableMarks{DB: dynamodb.NewFromConfig(proxied), Table: "autodeploy"}
	runner := &CleanupRunner{ECS: func(region, role string) CleanupECS { return clients.ECS(region, role) }, History: f.store, Marks: marks, Log: f.sweeper.Log}
	f.sweeper.Marks = marks

	// In-process: one clean-up, one budget.
	f.sweeper.Cleanup = runner
	f.proxy.Calls()
	if rep, _ := f.sweep(t, "in-process"); rep.Cleanups != 1 {
		t.Errorf("in-process: %d clean-ups in one place, want 1", rep.Cleanups)
	}
	if got := f.proxy.Calls()["DeregisterTaskDefinition"]; got == 0 || got > CleanupBudget {
		t.Errorf("in-process: %d deregistrations, want 1 to %d", got, CleanupBudget)
	}

	// Queued: one item per sweep, each family in turn.
	f.sweeper.Cleanup = nil
	f.sweeper.Deployer.Dispatcher = &queueStub{}
	sent := &sentCleanups{}
	f.sweeper.CleanupQueue = sent
	var order []string
	for s := range 5 {
		f.sweep(t, fmt.Sprintf("s%d", s))
		f.proxy.Calls()
		cmds := sent.take()
		if len(cmds) != 1 {
			t.Fatalf("sweep %d sent %d cleanups in one place, want 1: %+v", s, len(cmds), cmds)
		}
		order = append(order, cmds[0].Family)
		if _, err := runner.Run(ctx, cmds[0], cleanup.NewBudget(CleanupBudget)); err != nil { // the worker's part
			t.Fatal(err)
		}
		if got := f.proxy.Calls()["DeregisterTaskDefinition"]; got > CleanupBudget {
			t.Errorf("sweep %d: its cleanup spent %d register-bucket calls, more than %d", s, got, CleanupBudget)
		}
	}
	sorted := slices.Clone(order)
	slices.Sort(sorted)
	if diff := cmp.Diff([]string{"c1-web", "c2-web", "c3-web", "c4-web", "c5-web"}, slices.Compact(sorted)); diff != "" {
		t.Errorf("five sweeps sent %v: every family once (-want +got):\n%s", order, diff)
	}
	for i := 1; i < len(order); i++ {
		if order[i] <= order[i-1] && order[i] != "c1-web" {
			t.Errorf("sweeps sent %v: want the families by name, wrapping round", order)
			break
		}
	}
}
