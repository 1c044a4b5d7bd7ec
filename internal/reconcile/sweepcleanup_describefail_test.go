package reconcile

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/cleanup"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/deploy"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/emulator"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/taskdef"
)

// describeThrottled is a fake in front of moto's ECS: it answers
// DescribeServices of one cluster with a throttle and passes every other
// call to moto.
type describeThrottled struct {
	deploy.ECS
	cluster string
}

func (e describeThrottled) DescribeServices(ctx context.Context, in *ecs.DescribeServicesInput, o ...func(*ecs.Options)) (*ecs.DescribeServicesOutput, error) {
	if aws.ToString(in.Cluster) == e.cluster {
		return nil, &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded"}
	}
	return e.ECS.DescribeServices(ctx, in, o...)
}

const sharedFamilyRules = `version: 1
rules:
  - name: web-prod
    repository: web
    semver: ">= 1.0.0"
    cleanup: {keep: 2}
    targets: [{cluster: prod, service: web}]
  - name: web-staging
    repository: web
    tags: ["main-*"]
    cleanup: {keep: 2}
    targets: [{cluster: staging, service: web}]
`

// staging/web and prod/web share the family "shared" (on moto: staging
// runs shared:1, prod shared:5, shared:2–4 are the product's stale
// revisions). When the sweep's DescribeServices of cluster staging is
// throttled (the fake), no clean-up runs in the place — in-process nor
// queued — and shared:1, which staging/web runs, stays ACTIVE; once
// staging is described again, the clean-up names both services and keeps
// what each runs.
func TestSweepCleansNoPlaceWithATargetNotDescribed(t *testing.T) {
	t.Parallel()
	f := newFixture(t, sharedFamilyRules)
	images := f.repo(t, "web", "main-1", "v1.0.0", "main-2", "v1.1.0")
	ctx := context.Background()
	tags := map[string]string{taskdef.TagRule: "web-staging"}
	if _, err := emulator.SeedService(ctx, f.ecs, emulator.Service{Cluster: "staging", Name: "web", Family: "shared", Tags: tags,
		Containers: []emulator.Container{{Name: "app", Image: emulator.Registry + "/web@" + images["main-2"]}}}); err != nil {
		t.Fatal(err)
	}
	for i := 2; i <= 4; i++ {
		if _, err := f.ecs.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("shared"),
			ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String("web:" + strconv.Itoa(i)), Memory: aws.Int32(128)}},
			Tags:                 []types.Tag{{Key: aws.String(taskdef.TagRule), Value: aws.String("web-prod")}},
		}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := emulator.SeedService(ctx, f.ecs, emulator.Service{Cluster: "prod", Name: "web", Family: "shared", Tags: map[string]string{taskdef.TagRule: "web-prod"},
		Containers: []emulator.Container{{Name: "app", Image: emulator.Registry + "/web@" + images["v1.1.0"]}}}); err != nil {
		t.Fatal(err)
	}
	proxied := f.proxy.Config(f.moto.AWSConfig())
	proxied.Retryer = awsenv.NewRetryer
	clients := awsenv.NewClients(proxied)
	marks := &TableMarks{DB: dynamodb.NewFromConfig(proxied), Table: "autodeploy"}
	f.sweeper.Cleanup = &CleanupRunner{ECS: func(region, role string) CleanupECS { return clients.ECS(region, role) }, History: f.store, Marks: marks, Log: f.sweeper.Log}
	f.sweeper.Marks = marks
	moto := f.sweeper.ECS
	f.sweeper.ECS = func(region, role string) deploy.ECS { return describeThrottled{moto(region, role), "staging"} }

	// In-process.
	rep, err := f.sweeper.Sweep(ctx, Options{EventID: "s1"})
	if err == nil {
		t.Fatalf("a sweep with staging/web not described returned no error\n%s", f.logs)
	}
	if rep.Cleanups != 0 || f.proxy.Calls()["DeregisterTaskDefinition"] != 0 {
		t.Errorf("%d clean-ups ran in a place where a target was not described\n%s", rep.Cleanups, f.logs)
	}
	if diff := cmp.Diff([]int{1, 2, 3, 4, 5}, activeRevisions(t, f.ecs, "shared")); diff != "" {
		t.Errorf("ACTIVE shared (-want +got):\n%s", diff)
	}
	if !strings.Contains(f.logs.String(), "no clean-up in this place this sweep") {
		t.Errorf("no log of the place left out:\n%s", f.logs)
	}

	// Queued: nothing is sent for the place.
	f.sweeper.Deployer.Dispatcher = &queueStub{}
	sent := &sentCleanups{}
	f.sweeper.CleanupQueue = sent
	if rep, _ := f.sweeper.Sweep(ctx, Options{EventID: "s2"}); rep.Cleanups != 0 {
		t.Errorf("queued: %d cleanups counted", rep.Cleanups)
	}
	if got := sent.take(); len(got) != 0 {
		t.Errorf("queued: sent %+v for a place where a target was not described", got)
	}

	// Described again: the cleanup names both services of the family.
	f.sweeper.ECS = moto
	f.sweep(t, "s3")
	got := sent.take()
	if len(got) != 1 || len(got[0].Services) != 2 {
		t.Fatalf("sent %+v, want one cleanup of shared naming staging/web and prod/web", got)
	}
	if _, err := f.sweeper.Cleanup.Run(ctx, got[0], cleanup.NewBudget(CleanupBudget)); err != nil {
		t.Fatal(err)
	}
	if active := activeRevisions(t, f.ecs, "shared"); !slices.Contains(active, 1) || !slices.Contains(active, 5) {
		t.Errorf("ACTIVE shared: %v, want 1 (staging runs it) and 5 (prod runs it)", active)
	}
}

// A rule without cleanup: whose service runs the family keeps it uncleaned:
// staging/web (web-staging, no cleanup:) and prod/web (web-prod, keep 2)
// share "shared", so the sweep sends no clean-up of it (moto).
func TestSweepLeavesAFamilyARuleWithoutCleanupRuns(t *testing.T) {
	t.Parallel()
	f := newFixture(t, strings.Replace(sharedFamilyRules, "    cleanup: {keep: 2}\n    targets: [{cluster: staging", "    targets: [{cluster: staging", 1))
	images := f.repo(t, "web", "main-1", "v1.0.0")
	ctx := context.Background()
	for _, s := range []emulator.Service{
		{Cluster: "staging", Name: "web", Family: "shared", Containers: []emulator.Container{{Name: "app", Image: emulator.Registry + "/web@" + images["main-1"]}}},
		{Cluster: "prod", Name: "web", Family: "shared", Containers: []emulator.Container{{Name: "app", Image: emulator.Registry + "/web@" + images["v1.0.0"]}}},
	} {
		if _, err := emulator.SeedService(ctx, f.ecs, s); err != nil {
			t.Fatal(err)
		}
	}
	f.sweeper.Deployer.Dispatcher = &queueStub{}
	sent := &sentCleanups{}
	f.sweeper.CleanupQueue = sent
	f.sweep(t, "s1")
	if got := sent.take(); len(got) != 0 {
		t.Errorf("sent %+v: web-staging, which runs the family, has no cleanup:", got)
	}
	if !strings.Contains(f.logs.String(), "family not cleaned up: a rule running it has no cleanup:") {
		t.Errorf("no line says why the family is left:\n%s", f.logs)
	}
}
