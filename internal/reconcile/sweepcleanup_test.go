package reconcile

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/cleanup"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecsarn"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/emulator"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/taskdef"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work"
)

// cleanupRules: prod/web cleans up (keep 2); staging/web does not.
const cleanupRules = `version: 1
rules:
  - name: web-prod
    repository: web
    semver: ">= 1.0.0"
    cleanup: {keep: 2}
    targets: [{cluster: prod, service: web}]
  - name: web-staging
    repository: web
    tags: ["main-*"]
    targets: [{cluster: staging, service: web}]
`

// sentCleanups is a work queue's side of clean-up: it keeps what a sweep
// sends.
type sentCleanups struct {
	mu   sync.Mutex
	cmds []work.Cleanup
}

func (s *sentCleanups) SendCleanups(_ context.Context, cmds []work.Cleanup) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cmds = append(s.cmds, cmds...)
	return nil
}

func (s *sentCleanups) take() []work.Cleanup {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.cmds
	s.cmds = nil
	return out
}

// cleanupFixture seeds prod/web with revisions 1..8 of prod-web (the
// product's, tagged) before the one it runs (9, the newest v1.1.0), and
// staging/web in sync on main-2; both in sync. The sweeper cleans up
// through the proxied clients; its marks are in the state table.
func cleanupFixture(t *testing.T) (*fixture, *CleanupRunner) {
	t.Helper()
	f := newFixture(t, cleanupRules)
	images := f.repo(t, "web", "main-1", "v1.0.0", "main-2", "v1.1.0")
	ctx := context.Background()
	for i := 1; i <= 8; i++ {
		if _, err := f.ecs.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("prod-web"),
			ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String(fmt.Sprintf("web:%d", i)), Memory: aws.Int32(128)}},
			Tags:                 []types.Tag{{Key: aws.String(taskdef.TagRule), Value: aws.String("web-prod")}, {Key: aws.String(taskdef.TagEvent), Value: aws.String(strconv.Itoa(i))}},
		}); err != nil {
			t.Fatal(err)
		}
	}
	f.service(t, "prod", "web", emulator.Registry+"/web@"+images["v1.1.0"])
	f.service(t, "staging", "web", emulator.Registry+"/web@"+images["main-2"])
	proxied := f.proxy.Config(f.moto.AWSConfig())
	proxied.Retryer = awsenv.NewRetryer
	clients := awsenv.NewClients(proxied)
	marks := &TableMarks{DB: dynamodb.NewFromConfig(proxied), Table: "autodeploy"}
	runner := &CleanupRunner{ECS: func(region, role string) CleanupECS { return clients.ECS(region, role) }, History: f.store, Marks: marks, Log: f.sweeper.Log}
	f.sweeper.Marks = marks
	return f, runner
}

func activeRevisions(t testing.TB, client *ecs.Client, family string) []int {
	t.Helper()
	out, err := client.ListTaskDefinitions(context.Background(), &ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String(family), Status: types.TaskDefinitionStatusActive})
	if err != nil {
		t.Fatal(err)
	}
	var revs []int
	for _, a := range out.TaskDefinitionArns {
		if fam, n := ecsarn.FamilyRevision(ecsarn.Revision(a)); fam == family {
			revs = append(revs, n)
		}
	}
	slices.Sort(revs)
	return revs
}

// cleanupCalls are the calls only a clean-up makes.
func cleanupCalls(calls map[string]int) map[string]int {
	out := map[string]int{}
	for _, op := range []string{"ListTaskDefinitions", "DeregisterTaskDefinition", "DeleteTaskDefinitions", "BatchGetItem", "UpdateItem", "Query", "SendMessageBatch"} {
		if calls[op] > 0 {
			out[op] = calls[op]
		}
	}
	return out
}

// In-process, a sweep cleans up after its deploys within its budget (5 per
// place), the next sweep finishes, and once the family is clean a sweep
// makes exactly the calls of a sweep without clean-up. The family of the
// rule without cleanup: is left alone; a dry run cleans nothing.
func TestSweepCleansUpInProcess(t *testing.T) {
	t.Parallel()
	f, runner := cleanupFixture(t)
	f.sweeper.Cleanup = runner

	f.proxy.Calls()
	if _, err := f.sweeper.Sweep(context.Background(), Options{EventID: "dry", DryRun: true}); err != nil {
		t.Fatal(err)
	}
	if got := cleanupCalls(f.proxy.Calls()); got["DeregisterTaskDefinition"] > 0 || got["ListTaskDefinitions"] > 0 {
		t.Errorf("a dry run cleaned up: %v", got)
	}
	for _, step := range []struct {
		active []int
		deregs int
	}{
		{[]int{1, 2, 8, 9}, 5}, // 7, 6, 5, 4, 3: the budget
		{[]int{8, 9}, 2},       // the rest
		{[]int{8, 9}, 0},       // clean: nothing asked
	} {
		rep, got := f.sweep(t, "sweep")
		if diff := cmp.Diff(map[string]string{"prod/web": InSync, "staging/web": InSync}, got); diff != "" {
			t.Fatalf("sweep (-want +got):\n%s\n%s", diff, f.logs)
		}
		calls := f.proxy.Calls()
		if diff := cmp.Diff(step.active, activeRevisions(t, f.ecs, "prod-web")); diff != "" {
			t.Errorf("ACTIVE prod-web (-want +got):\n%s", diff)
		}
		if got := calls["DeregisterTaskDefinition"]; got != step.deregs {
			t.Errorf("%d deregistrations, want %d", got, step.deregs)
		}
		if step.deregs == 0 && (rep.Cleanups != 0 || calls["ListTaskDefinitions"] != 0) {
			t.Errorf("a sweep of a clean family cleaned up: %d cleanups, calls %v", rep.Cleanups, calls)
		}
	}
	if diff := cmp.Diff([]int{1}, activeRevisions(t, f.ecs, "staging-web")); diff != "" {
		t.Errorf("staging-web, whose rule does not clean up (-want +got):\n%s", diff)
	}
	// Clean: the same calls as a sweeper without clean-up.
	f.sweep(t, "with")
	with := f.proxy.Calls()
	f.sweeper.Cleanup, f.sweeper.Marks = nil, nil
	f.sweep(t, "without")
	without := f.proxy.Calls()
	if diff := cmp.Diff(without, with); diff != "" {
		t.Errorf("a clean sweep's calls, with clean-up (+) and without (-):\n%s", diff)
	}
}

// With a work queue, a sweep sends one cleanup per family and place of a
// rule with cleanup:, naming the services that run it; once the worker left
// the family clean, the next sweep reads the mark once and sends nothing,
// and the one after reads no mark either (no call beyond a sweep without
// clean-up); a newer running revision sends the family again.
func TestSweepQueuesCleanupUntilClean(t *testing.T) {
	t.Parallel()
	f, runner := cleanupFixture(t)
	f.sweeper.Deployer.Dispatcher = &queueStub{}
	sent := &sentCleanups{}
	f.sweeper.CleanupQueue = sent

	f.sweep(t, "s1")
	cmds := sent.take()
	want := []work.Cleanup{{Account: testenv.Account, Region: testenv.Region, Family: "prod-web", Keep: 2,
		Services: []work.CleanupService{{Cluster: "prod", Service: "web"}}, Rules: []string{"web-prod"}, Origin: "sweep s1"}}
	if diff := cmp.Diff(want, cmds); diff != "" {
		t.Fatalf("cleanup items (-want +got):\n%s", diff)
	}
	// The worker's part: the budget takes two items.
	for _, c := range append(cmds, cmds...) {
		if _, err := runner.Run(context.Background(), c, cleanup.NewBudget(CleanupBudget)); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff([]int{8, 9}, activeRevisions(t, f.ecs, "prod-web")); diff != "" {
		t.Fatalf("ACTIVE prod-web (-want +got):\n%s", diff)
	}
	f.proxy.Calls()
	f.sweep(t, "s2")
	if got := sent.take(); len(got) != 0 {
		t.Errorf("a clean family was sent again: %+v", got)
	}
	if got := f.proxy.Calls()["BatchGetItem"]; got != 2 {
		t.Errorf("%d BatchGetItem, want 2 (the states, and the marks once)", got)
	}
	f.sweep(t, "s3")
	with := f.proxy.Calls()
	f.sweeper.CleanupQueue, f.sweeper.Marks = nil, nil
	f.sweep(t, "s4")
	without := f.proxy.Calls()
	if diff := cmp.Diff(without, with); diff != "" {
		t.Errorf("a clean sweep's calls, with clean-up (+) and without (-):\n%s", diff)
	}
	f.sweeper.CleanupQueue, f.sweeper.Marks = sent, runner.Marks

	// A deploy moves prod/web to a newer revision: its family is sent.
	td, err := f.ecs.DescribeTaskDefinition(context.Background(), &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("prod-web:9")})
	if err != nil {
		t.Fatal(err)
	}
	def := td.TaskDefinition
	reg, err := f.ecs.RegisterTaskDefinition(context.Background(), &ecs.RegisterTaskDefinitionInput{Family: def.Family, ContainerDefinitions: def.ContainerDefinitions})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.ecs.UpdateService(context.Background(), &ecs.UpdateServiceInput{Cluster: aws.String("prod"), Service: aws.String("web"),
		TaskDefinition: reg.TaskDefinition.TaskDefinitionArn}); err != nil {
		t.Fatal(err)
	}
	f.sweep(t, "s5")
	if got := sent.take(); len(got) != 1 || got[0].Family != "prod-web" {
		t.Errorf("after a newer revision runs, sent %+v, want prod-web once", got)
	}
}
