package reconcile

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/bluegreen"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/deploy"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/emulator"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/lock"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/logging"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

// fixture is moto behind the counting proxy, a rules file, and a Sweeper
// built as the deployer's main builds it.
type fixture struct {
	moto    *testenv.Moto
	proxy   *testenv.Proxy
	ecs     *ecs.Client // straight to moto, for setup and checks
	ecr     *ecr.Client
	store   *history.Store
	sweeper *Sweeper
	logs    *bytes.Buffer
}

func newFixture(t *testing.T, rulesYAML string) *fixture {
	t.Helper()
	m := testenv.StartMoto(t)
	cfg, err := rules.Parse("autodeploy.yaml", []byte(rulesYAML))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{moto: m, proxy: testenv.StartProxy(t, m.Endpoint), ecs: ecs.NewFromConfig(m.AWSConfig()),
		ecr: ecr.NewFromConfig(m.AWSConfig()), logs: &bytes.Buffer{}}
	table := m.CreateTable(t, "autodeploy")
	proxied := f.proxy.Config(m.AWSConfig())
	proxied.Retryer = awsenv.NewRetryer
	clients := awsenv.NewClients(proxied)
	db := dynamodb.NewFromConfig(proxied)
	f.store = history.NewStore(db, table)
	log := logging.New(f.logs, slog.LevelInfo)
	d := &deploy.Deployer{Rules: cfg, Central: rules.Place{Account: testenv.Account, Region: testenv.Region}, ECS: func(region, role string) deploy.ECS { return clients.ECS(region, role) },
		Services: history.NewServices(lock.New(db, table), f.store), Log: log, Concurrency: 4, Now: time.Now,
		SSM:        func(region, role string) deploy.SSM { return clients.SSM(region, role) },
		CodeDeploy: func(region, role string) bluegreen.CodeDeploy { return clients.CodeDeploy(region, role) }}
	registry := ecr.NewFromConfig(proxied)
	f.sweeper = &Sweeper{Rules: cfg, ECR: func(string, string) ECR { return registry }, ECS: d.ECS,
		States: f.store, Deployer: d, Log: log,
		SSM: func(region, role string) ParameterStore { return clients.SSM(region, role) }}
	return f
}

// repo creates a repository with images under tags. moto's imagePushedAt
// has whole seconds: pushes in one second tie, and ties go to the greater
// tag, which the tests push last.
func (f *fixture) repo(t *testing.T, name string, tags ...string) map[string]string {
	t.Helper()
	return f.moto.Repository(t, name, tags...)
}

func (f *fixture) service(t *testing.T, cluster, name, image string) string {
	t.Helper()
	arn, err := emulator.SeedService(context.Background(), f.ecs, emulator.Service{Cluster: cluster, Name: name, Family: cluster + "-" + name,
		Containers: []emulator.Container{{Name: "app", Image: image}}})
	if err != nil {
		t.Fatal(err)
	}
	return arn
}

func (f *fixture) running(t *testing.T, cluster, name string) (arn, image string) {
	t.Helper()
	ctx := context.Background()
	svc, err := f.ecs.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(cluster), Services: []string{name}})
	if err != nil {
		t.Fatal(err)
	}
	arn = aws.ToString(svc.Services[0].TaskDefinition)
	td, err := f.ecs.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	return arn, aws.ToString(td.TaskDefinition.ContainerDefinitions[0].Image)
}

func (f *fixture) sweep(t *testing.T, id string) (Report, map[string]string) {
	t.Helper()
	rep, err := f.sweeper.Sweep(context.Background(), Options{EventID: id})
	if err != nil {
		t.Fatalf("sweep %s: %v\n%s", id, err, f.logs)
	}
	outcomes := map[string]string{}
	for _, l := range rep.Lines {
		outcomes[l.Cluster+"/"+l.Service] = l.Outcome
	}
	return rep, outcomes
}

func reason(rep Report, cluster, service string) string {
	for _, l := range rep.Lines {
		if l.Cluster == cluster && l.Service == service {
			return l.Reason
		}
	}
	return ""
}

const sweepRules = `version: 1
rules:
  - name: web-staging
    repository: web
    tags: ["main-*"]
    targets: [{cluster: staging, service: web}]
  - name: web-prod
    repository: web
    semver: ">= 1.0.0"
    targets: [{cluster: prod, service: web}]
  - name: gone
    repository: gone
    tags: ["*"]
    targets: [{cluster: staging, service: gone}]
  - name: none-yet
    repository: web
    semver: ">= 9.0.0"
    targets: [{cluster: prod, service: web-next}]
`

// Against moto: images pushed with no event reach their services by a sweep,
// through the deployer's path; what is in sync is left alone; a service
// reverted by hand is rolled forward; a rolled-back digest is not deployed
// again; a hold blocks it and resume releases it; a missing repository and a
// rule that selects nothing are said, and the other rules still reconciled.
func TestSweep(t *testing.T) {
	t.Parallel()
	f := newFixture(t, sweepRules)
	ctx := context.Background()
	images := f.repo(t, "web", "main-1", "v1.0.0", "main-2", "v1.1.0")
	old := emulator.Registry + "/web:seed"
	f.service(t, "staging", "web", old)
	prodFirst := f.service(t, "prod", "web", old)
	f.service(t, "prod", "web-next", old)
	f.service(t, "staging", "gone", emulator.Registry+"/gone:1")

	rep, got := f.sweep(t, "sweep-1")
	want := map[string]string{"staging/web": Deployed, "prod/web": Deployed, "staging/gone": Failed, "prod/web-next": Skipped}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("first sweep (-want +got):\n%s\n%s", diff, f.logs)
	}
	if _, img := f.running(t, "staging", "web"); img != emulator.Registry+"/web@"+images["main-2"] {
		t.Errorf("staging runs %s, want main-2 by digest", img)
	}
	_, img := f.running(t, "prod", "web")
	if img != emulator.Registry+"/web@"+images["v1.1.0"] {
		t.Errorf("prod runs %s, want v1.1.0 by digest", img)
	}
	if r := reason(rep, "staging", "gone"); r != "repository gone does not exist in 123456789012/eu-west-1" {
		t.Errorf("missing repository: %q", r)
	}
	if r := reason(rep, "prod", "web-next"); !strings.HasPrefix(r, "rule none-yet selects no image in repository web") {
		t.Errorf("rule selecting nothing: %q", r)
	}
	if rep.Drift != 2 {
		t.Errorf("drift = %d, want 2", rep.Drift)
	}
	for _, want := range []string{`"msg":"reconcile"`, `"msg":"deploy"`, `"event_id":"` + EventID(images["v1.1.0"]) + `"`} {
		if !strings.Contains(f.logs.String(), want) {
			t.Errorf("logs lack %s", want)
		}
	}

	// A second sweep registers nothing.
	_ = f.proxy.Calls()
	_, got = f.sweep(t, "sweep-2")
	if got["staging/web"] != InSync || got["prod/web"] != InSync {
		t.Errorf("second sweep: %v", got)
	}
	if calls := f.proxy.Calls(); calls["RegisterTaskDefinition"] != 0 || calls["UpdateService"] != 0 || calls["UpdateItem"] != 0 {
		t.Errorf("an in-sync sweep wrote: %v", calls)
	}

	// Put back by hand (or by CloudFormation): rolled forward again.
	if _, err := f.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("prod"), Service: aws.String("web"), TaskDefinition: aws.String(prodFirst)}); err != nil {
		t.Fatal(err)
	}
	if _, got = f.sweep(t, "sweep-3"); got["prod/web"] != Deployed {
		t.Errorf("reverted service: %v\n%s", got, f.logs)
	}

	// ECS rolled v1.1.0 back on prod (the watcher records it): sweeps leave it.
	recs, err := f.store.Recent(ctx, history.ServiceKey(testenv.Account, testenv.Region, "prod", "web"), 1)
	if err != nil || len(recs) != 1 {
		t.Fatalf("history: %v, %v", recs, err)
	}
	if _, err := f.store.SetOutcome(ctx, recs[0], history.RolledBack, "circuit breaker", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ecs.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("prod"), Service: aws.String("web"), TaskDefinition: aws.String(prodFirst)}); err != nil {
		t.Fatal(err)
	}
	rep, got = f.sweep(t, "sweep-4")
	if got["prod/web"] != Skipped || !strings.Contains(reason(rep, "prod", "web"), "failed or was rolled back; only a newer image moves it") {
		t.Errorf("rolled-back digest: %s %q", got["prod/web"], reason(rep, "prod", "web"))
	}
	if arn, _ := f.running(t, "prod", "web"); arn != prodFirst {
		t.Errorf("prod moved to %s after its rollback", arn)
	}

	// Held: skipped with who, when, why; resumed: rolled forward.
	staging := history.ServiceKey(testenv.Account, testenv.Region, "staging", "web")
	if _, err := f.store.PlaceHold(ctx, staging, history.Hold{By: "alice", At: time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC), Reason: "incident"}, false); err != nil {
		t.Fatal(err)
	}
	newer := f.repo2(t, "web", "main-3")
	rep, got = f.sweep(t, "sweep-5")
	if got["staging/web"] != Skipped || reason(rep, "staging", "web") != "held by alice since 2026-11-26T09:00:00Z: incident" {
		t.Errorf("held: %s %q", got["staging/web"], reason(rep, "staging", "web"))
	}
	if _, err := f.store.LiftHold(ctx, staging, "alice", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, got = f.sweep(t, "sweep-6"); got["staging/web"] != Deployed {
		t.Errorf("resumed: %v", got)
	}
	if _, img := f.running(t, "staging", "web"); img != emulator.Registry+"/web@"+newer {
		t.Errorf("staging runs %s, want main-3", img)
	}
}

// repo2 pushes one more image to an existing repository.
func (f *fixture) repo2(t *testing.T, repo, tag string) string {
	t.Helper()
	d, err := emulator.PushImage(context.Background(), f.ecr, repo, tag)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// A sweep writes a publishing target's parameter when it is missing or holds
// another image, and only then; a dry run says so and writes nothing.
func TestSweepPublishes(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "version: 1\nrules:\n  - {name: web, repository: web, tags: [\"*\"], publish: {ssm-prefix: /images}, targets: [{cluster: c, service: web}]}\n")
	ctx := context.Background()
	digest := f.repo(t, "web", "v1")["v1"]
	image := emulator.Registry + "/web@" + digest
	f.service(t, "c", "web", image) // in sync from the start, never published
	params := ssm.NewFromConfig(f.moto.AWSConfig())
	value := func() string {
		out, err := params.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/images/c/web/app")})
		if err != nil {
			return ""
		}
		return aws.ToString(out.Parameter.Value)
	}
	outcome := InSync
	published := func(o Options) string {
		rep, err := f.sweeper.Sweep(ctx, o)
		if err != nil || len(rep.Lines) != 1 || rep.Lines[0].Outcome != outcome {
			t.Fatalf("sweep: %+v, %v\n%s", rep, err, f.logs)
		}
		return rep.Lines[0].Published
	}
	if got := published(Options{EventID: "dry", DryRun: true}); got != "missing" || value() != "" {
		t.Errorf("dry run: %q, parameter %q", got, value())
	}
	if got := published(Options{EventID: "1"}); got != "written" || value() != image {
		t.Errorf("missing: %q, parameter %q", got, value())
	}
	_ = f.proxy.Calls()
	if got := published(Options{EventID: "2"}); got != "ok" {
		t.Errorf("in place: %q", got)
	}
	if calls := f.proxy.Calls(); calls["PutParameter"] != 0 || calls["GetParameter"] != 1 {
		t.Errorf("a sweep with the parameter in place: %v", calls)
	}
	if _, err := params.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String("/images/c/web/app"), Value: aws.String("web:old"),
		Type: "String", Overwrite: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	if got := published(Options{EventID: "3"}); got != "written" || value() != image {
		t.Errorf("stale: %q, parameter %q", got, value())
	}
	// Held (after an operator's rollback, say): nothing moves, but the
	// parameter is put back to what runs, or infrastructure code would
	// deploy the image rolled back from.
	if _, err := f.store.PlaceHold(ctx, history.ServiceKey(testenv.Account, testenv.Region, "c", "web"), history.Hold{By: "a", At: time.Now(), Reason: "r"}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := params.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String("/images/c/web/app"), Value: aws.String("web:bad"),
		Type: "String", Overwrite: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	outcome = Skipped
	if got := published(Options{EventID: "4"}); got != "written" || value() != image {
		t.Errorf("held and stale: %q, parameter %q", got, value())
	}
}

// throttledECR refuses to list one repository, as ECR does under load.
type throttledECR struct {
	ECR
	repository string
}

func (e throttledECR) DescribeImages(ctx context.Context, in *ecr.DescribeImagesInput, optFns ...func(*ecr.Options)) (*ecr.DescribeImagesOutput, error) {
	if aws.ToString(in.RepositoryName) == e.repository {
		return nil, &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded", Fault: smithy.FaultClient}
	}
	return e.ECR.DescribeImages(ctx, in, optFns...)
}

// A throttled ECR fails its rule's targets transiently and the sweep with
// them (Lambda or the next sweep catches up); the other rules go on.
func TestThrottledRegistry(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "version: 1\nrules:\n  - {name: web, repository: web, tags: [\"*\"], targets: [{cluster: c, service: web}]}\n"+
		"  - {name: api, repository: api, tags: [\"*\"], targets: [{cluster: c, service: api}]}\n")
	f.repo(t, "web", "v1")
	f.repo(t, "api", "v1")
	f.service(t, "c", "web", emulator.Registry+"/web:seed")
	f.service(t, "c", "api", emulator.Registry+"/api:seed")
	registry := f.sweeper.ECR("", "")
	f.sweeper.ECR = func(string, string) ECR { return throttledECR{registry, "api"} }
	rep, err := f.sweeper.Sweep(context.Background(), Options{EventID: "s"})
	if err == nil || !strings.Contains(err.Error(), "1 of 2 targets failed transiently") {
		t.Errorf("sweep error = %v", err)
	}
	got := map[string]string{}
	for _, l := range rep.Lines {
		got[l.Service] = l.Outcome + ": " + l.Reason
	}
	if !strings.HasPrefix(got["web"], "deployed") || !strings.HasSuffix(got["api"], "Rate exceeded (will retry)") {
		t.Errorf("lines: %v", got)
	}
}

// A sweep over 50 targets already in sync: one DescribeImages page, one
// DescribeServices per 10 services of a cluster, one BatchGetItem, and the
// task definitions described once per process; nothing written.
func TestSweepOfTargetsInSyncCalls(t *testing.T) {
	t.Parallel()
	var targets []string
	for i := range 50 {
		cluster := "a"
		if i >= 30 {
			cluster = "b"
		}
		targets = append(targets, fmt.Sprintf("{cluster: %s, service: s%02d}", cluster, i))
	}
	f := newFixture(t, "version: 1\nrules:\n  - name: fleet\n    repository: fleet\n    tags: [\"*\"]\n    targets: ["+strings.Join(targets, ", ")+"]\n")
	digest := f.repo(t, "fleet", "v1")["v1"]
	for i := range 50 {
		cluster := "a"
		if i >= 30 {
			cluster = "b"
		}
		f.service(t, cluster, fmt.Sprintf("s%02d", i), emulator.Registry+"/fleet@"+digest)
	}
	_ = f.proxy.Calls()
	_, got := f.sweep(t, "cold")
	for svc, outcome := range got {
		if outcome != InSync {
			t.Fatalf("%s: %s\n%s", svc, outcome, f.logs)
		}
	}
	cold := f.proxy.Calls()
	if diff := cmp.Diff(map[string]int{"DescribeImages": 1, "DescribeServices": 5, "BatchGetItem": 1, "DescribeTaskDefinition": 50}, cold); diff != "" {
		t.Errorf("first sweep's calls (-want +got):\n%s", diff)
	}
	f.sweep(t, "warm")
	if diff := cmp.Diff(map[string]int{"DescribeImages": 1, "DescribeServices": 5, "BatchGetItem": 1}, f.proxy.Calls()); diff != "" {
		t.Errorf("next sweep's calls (-want +got):\n%s", diff)
	}
}

// TestSweepRollsABlueGreenService: a blue/green service behind the newest
// image is caught up through CodeDeploy (moto's), never UpdateService.
func TestSweepRollsABlueGreenService(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, `version: 1
rules:
  - name: web-prod
    repository: web
    semver: ">= 1.0.0"
    targets:
      - {cluster: prod, service: web, codedeploy: {application: web, deployment-group: web-prod}}
`)
	digests := f.repo(t, "web", "v1.0.0", "v1.1.0")
	from, err := emulator.SeedService(ctx, f.ecs, emulator.Service{Cluster: "prod", Name: "web", Family: "prod-web",
		Containers: []emulator.Container{{Name: "app", Image: emulator.Registry + "/web:v1.0.0"}}, BlueGreen: true})
	if err != nil {
		t.Fatal(err)
	}
	cd := codedeploy.NewFromConfig(f.moto.AWSConfig())
	if err := emulator.SeedDeploymentGroup(ctx, cd, "web", "web-prod", "prod", "web"); err != nil {
		t.Fatal(err)
	}
	rep, outcomes := f.sweep(t, "sweep-bg")
	if outcomes["prod/web"] != Deployed {
		t.Fatalf("sweep: %+v", rep.Lines)
	}
	if arn, _ := f.running(t, "prod", "web"); arn != from {
		t.Errorf("the sweep moved a blue/green service's task definition itself: %s", arn)
	}
	deps, err := cd.ListDeployments(ctx, &codedeploy.ListDeploymentsInput{ApplicationName: aws.String("web"), DeploymentGroupName: aws.String("web-prod")})
	if err != nil || len(deps.Deployments) != 1 {
		t.Fatalf("deployments: %v, %v", deps, err)
	}
	dep, err := cd.GetDeployment(ctx, &codedeploy.GetDeploymentInput{DeploymentId: aws.String(deps.Deployments[0])})
	if err != nil {
		t.Fatal(err)
	}
	spec := bluegreen.AppSpec{Content: aws.ToString(dep.DeploymentInfo.Revision.AppSpecContent.Content)}
	td, err := f.ecs.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(spec.TaskDefinition())})
	if err != nil || aws.ToString(td.TaskDefinition.ContainerDefinitions[0].Image) != emulator.Registry+"/web@"+digests["v1.1.0"] {
		t.Errorf("the deployment's revision: %v", err)
	}
}

// Against moto behind a proxy that gives imagePushedAt ECR's milliseconds
// (moto has whole seconds): a pin: tag target a sweep deployed is in sync on
// the next sweep, not redeployed on every one.
func TestSweepPinByTagAtECRPrecision(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "version: 1\nrules:\n  - {name: dev, repository: web, tags: [latest], pin: tag, targets: [{cluster: dev, service: web}]}\n")
	f.proxy.SubSecondPushTimes(777 * time.Millisecond)
	f.repo(t, "web", "latest")
	f.service(t, "dev", "web", emulator.Registry+"/web:seed")
	if _, got := f.sweep(t, "sweep-1"); got["dev/web"] != Deployed {
		t.Fatalf("first sweep: %v\n%s", got, f.logs)
	}
	_ = f.proxy.Calls()
	rep, got := f.sweep(t, "sweep-2")
	if got["dev/web"] != InSync {
		t.Errorf("second sweep of the same image: %v (%q); want in_sync", got, reason(rep, "dev", "web"))
	}
	if calls := f.proxy.Calls(); calls["RegisterTaskDefinition"] != 0 || calls["UpdateService"] != 0 {
		t.Errorf("the second sweep wrote: %v", calls)
	}
	// The tag moved to another image: the next sweep rolls it.
	ctx := context.Background()
	f.repo2(t, "web", "rebuilt")
	got2, err := f.ecr.BatchGetImage(ctx, &ecr.BatchGetImageInput{RepositoryName: aws.String("web"), ImageIds: []ecrtypes.ImageIdentifier{{ImageTag: aws.String("rebuilt")}}})
	if err != nil || len(got2.Images) != 1 {
		t.Fatalf("get rebuilt: %v", err)
	}
	if _, err := f.ecr.PutImage(ctx, &ecr.PutImageInput{RepositoryName: aws.String("web"), ImageTag: aws.String("latest"),
		ImageManifest: got2.Images[0].ImageManifest, ImageManifestMediaType: got2.Images[0].ImageManifestMediaType}); err != nil {
		t.Fatal(err)
	}
	if _, got := f.sweep(t, "sweep-3"); got["dev/web"] != Deployed {
		t.Errorf("latest moved: %v\n%s", got, f.logs)
	}
}

// Against moto: a sweep whose snapshot of a service predates a concurrent
// deploy (the deploy moved it and published the new image) must not "repair"
// the parameter back to the snapshot's image: the repair reads what runs
// under the service's lock.
func TestSweepRepairsOnlyWhatRunsUnderTheLock(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "version: 1\nrules:\n  - {name: web, repository: web, tags: [\"*\"], publish: {ssm-prefix: /images}, targets: [{cluster: c, service: web}]}\n")
	ctx := context.Background()
	images := f.repo(t, "web", "v1")
	seed := f.service(t, "c", "web", emulator.Registry+"/web:seed")
	snapshot, err := f.ecs.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(seed)})
	if err != nil {
		t.Fatal(err)
	}
	if _, got := f.sweep(t, "sweep-1"); got["c/web"] != Deployed {
		t.Fatalf("first sweep: %v\n%s", got, f.logs)
	}
	params := ssm.NewFromConfig(f.moto.AWSConfig())
	value := func() string {
		out, err := params.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/images/c/web/app")})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.Parameter.Value)
	}
	running := emulator.Registry + "/web@" + images["v1"]
	if value() != running {
		t.Fatalf("parameter %q after the deploy, want %q", value(), running)
	}
	r := f.sweeper.Rules.Rules[0]
	line := Line{Region: testenv.Region}
	_ = f.proxy.Calls()
	if err := f.sweeper.checkPublished(ctx, Options{EventID: "late"}, r, r.Targets[0], snapshot, []string{"app"}, &line); err != nil {
		t.Fatal(err)
	}
	if value() != running || line.Published != "ok" {
		t.Errorf("a sweep with a stale snapshot set the parameter to %q (published %q); want it left at %q", value(), line.Published, running)
	}
	if calls := f.proxy.Calls(); calls["PutParameter"] != 0 {
		t.Errorf("it wrote: %v", calls)
	}
}
