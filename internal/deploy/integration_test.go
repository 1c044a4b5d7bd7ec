package deploy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/bluegreen"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/emulator"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/lock"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/logging"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rollout"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

type motoFixture struct {
	moto  *testenv.Moto
	proxy *testenv.Proxy // the deployers reach moto through it
	ecs   *ecs.Client
	table string
	cfg   *rules.Config
}

func newMotoFixture(t *testing.T) *motoFixture {
	t.Helper()
	m := testenv.StartMoto(t)
	cfg, err := rules.Load("testdata/moto.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f := &motoFixture{moto: m, proxy: testenv.StartProxy(t, m.Endpoint), ecs: ecs.NewFromConfig(m.AWSConfig()),
		table: m.CreateTable(t, "autodeploy"), cfg: cfg}
	_, err = emulator.SeedService(context.Background(), f.ecs, emulator.Service{
		Cluster: "staging", Name: "web", Family: "web",
		Containers: []emulator.Container{
			{Name: "app", Image: registry + "/web:main-0000001", Env: map[string]string{"DB_PASSWORD": secret}},
			{Name: "api", Image: registry + "/api:build-1"},
			{Name: "envoy", Image: "public.ecr.aws/envoyproxy/envoy:v1.31"},
		},
		Tags: map[string]string{"team": "web", "cost-center": "42"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// deployer builds a Deployer as the function's main does, on its own
// clients, so two of them behave like two Lambda instances.
func (f *motoFixture) deployer(logs io.Writer) *Deployer {
	return f.deployerWithLease(logs, 0, 0)
}

// deployerWithLease is a deployer whose lock leases last lease and whose
// waits for a held lock end after maxWait (zero: the defaults). Time shrinks
// for all of it alike: the SDK's backoff (1 s doubling to 20 s beside a 20 s
// lease) by the same factor as the lease.
func (f *motoFixture) deployerWithLease(logs io.Writer, lease, maxWait time.Duration) *Deployer {
	awsCfg := f.moto.AWSConfig()
	awsCfg.BaseEndpoint = aws.String(f.proxy.URL)
	ecsRetry, stateRetry := awsenv.NewRetryer, awsenv.NewStateRetryer
	if lease > 0 {
		ecsRetry = awsenv.Retry{Adaptive: true, Base: lease / 20, Max: lease}.New
		stateRetry = awsenv.Retry{Base: lease / 20, Max: lease}.New
	}
	awsCfg.Retryer = ecsRetry
	clients := awsenv.NewClients(awsCfg)
	db := dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) { o.Retryer = stateRetry() })
	locks := lock.New(db, f.table)
	if lease > 0 {
		locks.Lease, locks.MaxWait = lease, maxWait
	}
	return &Deployer{
		Central:     rules.Place{Account: testenv.Account, Region: testenv.Region},
		Rules:       f.cfg,
		ECS:         func(region, role string) ECS { return clients.ECS(region, role) },
		Services:    history.NewServices(locks, history.NewStore(db, f.table)),
		Log:         logging.New(logs, slog.LevelInfo),
		Concurrency: 4,
		Now:         time.Now,
	}
}

func (f *motoFixture) running(t *testing.T) (*types.Service, *ecs.DescribeTaskDefinitionOutput) {
	t.Helper()
	ctx := context.Background()
	svcs, err := f.ecs.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("staging"), Services: []string{"web"}})
	if err != nil {
		t.Fatal(err)
	}
	td, err := f.ecs.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{
		TaskDefinition: svcs.Services[0].TaskDefinition, Include: []types.TaskDefinitionField{types.TaskDefinitionFieldTags}})
	if err != nil {
		t.Fatal(err)
	}
	return &svcs.Services[0], td
}

func TestDeployAgainstMoto(t *testing.T) {
	t.Parallel()
	f := newMotoFixture(t)
	ctx := context.Background()
	_, before := f.running(t)
	var logs bytes.Buffer
	d := f.deployer(&logs)

	sum, err := d.Handle(ctx, pushEvent(t, "web", "main-4f2a9c1", t0))
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Results) != 1 || sum.Results[0].Outcome != Deployed {
		t.Fatalf("results = %+v", sum.Results)
	}
	svc, after := f.running(t)
	if got, want := aws.ToString(svc.TaskDefinition), "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:2"; got != want {
		t.Errorf("service runs %s, want %s", got, want)
	}
	if svc.DesiredCount != 2 {
		t.Errorf("desired count changed to %d", svc.DesiredCount)
	}
	wantImages := map[string]string{
		"app": registry + "/web@" + digestOf("web:main-4f2a9c1"), "api": registry + "/api:build-1", "envoy": "public.ecr.aws/envoyproxy/envoy:v1.31",
	}
	if diff := cmp.Diff(wantImages, images(after.TaskDefinition)); diff != "" {
		t.Errorf("images (-want +got):\n%s", diff)
	}
	// Everything but the image is what ran before, as moto keeps it.
	b, a := *before.TaskDefinition, *after.TaskDefinition
	b.ContainerDefinitions, a.ContainerDefinitions = nil, nil
	ignore := cmp.FilterPath(func(p cmp.Path) bool {
		switch p.Last().String() {
		case ".TaskDefinitionArn", ".Revision", ".RegisteredAt", ".RegisteredBy":
			return true
		}
		return false
	}, cmp.Ignore())
	if diff := cmp.Diff(b, a, ignore, cmp.Exporter(func(reflect.Type) bool { return true })); diff != "" {
		t.Errorf("task definition fields changed (-before +after):\n%s", diff)
	}
	if env := after.TaskDefinition.ContainerDefinitions[0].Environment; len(env) != 1 || aws.ToString(env[0].Value) != secret {
		t.Errorf("container environment not carried over: %+v", env)
	}
	wantTags := map[string]string{"team": "web", "cost-center": "42", "autodeploy:rule": "web-staging",
		"autodeploy:event":   fmt.Sprintf("evt-web-main-4f2a9c1-%d", t0.Unix()),
		"autodeploy:from":    "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:1",
		"autodeploy:app:tag": "main-4f2a9c1", "autodeploy:app:pushed-at": "2026-11-25T10:00:00.000Z"}
	if diff := cmp.Diff(wantTags, tagMap(after.Tags)); diff != "" {
		t.Errorf("tags (-want +got):\n%s", diff)
	}

	// History in DynamoDB, newest first, findable by deployment id.
	store := history.NewStore(dynamodb.NewFromConfig(f.moto.AWSConfig()), f.table)
	recs, err := store.Recent(ctx, history.ServiceKey(testenv.Account, testenv.Region, "staging", "web"), 10)
	if err != nil || len(recs) != 1 || recs[0].ToTaskDefinition != aws.ToString(svc.TaskDefinition) {
		t.Fatalf("history = %+v, %v", recs, err)
	}
	if recs[0].DeploymentID == "" {
		t.Error("history has no deployment id")
	} else if _, found, _ := store.ByDeployment(ctx, recs[0].DeploymentID); !found {
		t.Error("history not findable by deployment id")
	}

	// A duplicate delivery changes nothing.
	again, err := d.Handle(ctx, pushEvent(t, "web", "main-4f2a9c1", t0))
	if err != nil || again.Results[0].Outcome != Skipped {
		t.Fatalf("duplicate delivery: %+v, %v", again.Results, err)
	}
	if svc, _ := f.running(t); aws.ToString(svc.TaskDefinition) != "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:2" {
		t.Errorf("duplicate delivery registered a revision: %s", aws.ToString(svc.TaskDefinition))
	}
	if strings.Contains(logs.String(), secret) {
		t.Error("a container environment value reached the log")
	}
}

// TestRacingDeployersLoseNoUpdate runs two deployers, as two Lambda
// instances would, on pushes to the two repositories of one service's two
// containers, round after round: each round must end with both new images.
func TestRacingDeployersLoseNoUpdate(t *testing.T) {
	t.Parallel()
	f := newMotoFixture(t)
	ctx := context.Background()
	var logs syncBuffer // both deployers log into it at once
	web, api := f.deployer(&logs), f.deployer(&logs)
	for round := range 4 {
		at := t0.Add(time.Duration(round+1) * time.Minute)
		webTag, apiTag := fmt.Sprintf("main-%07d", round+2), fmt.Sprintf("build-%d", round+2)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		wg.Add(2)
		go func() { defer wg.Done(); _, errs[0] = web.Handle(ctx, pushEvent(t, "web", webTag, at)) }()
		go func() { defer wg.Done(); _, errs[1] = api.Handle(ctx, pushEvent(t, "api", apiTag, at)) }()
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		_, td := f.running(t)
		got := images(td.TaskDefinition)
		if got["app"] != registry+"/web@"+digestOf("web:"+webTag) || got["api"] != registry+"/api@"+digestOf("api:"+apiTag) {
			t.Fatalf("round %d lost an update: %v\n%s", round, got, logs.String())
		}
		tags := tagMap(td.Tags)
		if tags["autodeploy:app:tag"] != webTag || tags["autodeploy:api:tag"] != apiTag {
			t.Fatalf("round %d lost a record: %v", round, tags)
		}
	}
}

// Two environments race pushes to one service (each to its own container)
// while 40% of all AWS calls fail — throttled, 5xx, dropped connections,
// answers lost after the write — for fifteen rounds. Each event gets
// Lambda's three attempts; every round both must be running by then. Leases
// are short (1 s here, as 20 s in Lambda) and renewed, so a release lost to
// a fault costs the other environment one lease, not minutes.
func TestRacingUnderFaultsConverges(t *testing.T) {
	t.Parallel() // a minute of backoff: let the package's other tests run beside it
	f := newMotoFixture(t)
	ctx := context.Background()
	var logs syncBuffer
	// Lambda's 20 s lease and 90 s wait, at 1/20 scale.
	web, api := f.deployerWithLease(&logs, time.Second, 4500*time.Millisecond), f.deployerWithLease(&logs, time.Second, 4500*time.Millisecond)
	f.proxy.Faults(0.4, 20261126)
	attempts := map[int]int{}
	for round := range 8 { // each round is seconds of backoff at 1/20 scale: eight cover the faults and keep make test short
		at := t0.Add(time.Duration(round+1) * time.Minute)
		webTag, apiTag := fmt.Sprintf("main-%07d", round+2), fmt.Sprintf("build-%d", round+2)
		var wg sync.WaitGroup
		used := make([]int, 2)
		for i, job := range []struct {
			d     *Deployer
			event []byte
		}{{web, pushEvent(t, "web", webTag, at)}, {api, pushEvent(t, "api", apiTag, at)}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Lambda's async invocation: the first attempt and two retries.
				for used[i] = 1; used[i] <= 3; used[i]++ {
					if _, err := job.d.Handle(ctx, job.event); err == nil {
						return
					}
				}
			}()
		}
		wg.Wait()
		for _, n := range used {
			attempts[n]++
		}
		_, td := f.running(t)
		got := images(td.TaskDefinition)
		if used[0] > 3 || used[1] > 3 || got["app"] != registry+"/web@"+digestOf("web:"+webTag) || got["api"] != registry+"/api@"+digestOf("api:"+apiTag) {
			t.Fatalf("round %d did not converge within three attempts (web %d, api %d): running %v\n%s", round, used[0], used[1], got, logs.String())
		}
	}
	t.Logf("events by attempts needed: %v; faults injected: %v", attempts, f.proxy.Injected())
}

// syncBuffer is a log buffer two deployers write at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestLostHistoryIsRepairedByTheRetry: the history write after UpdateService
// fails (moto never sees it); the invocation fails so Lambda retries, and
// the retry, finding the image running, records the deploy it made.
func TestLostHistoryIsRepairedByTheRetry(t *testing.T) {
	t.Parallel()
	f := newMotoFixture(t)
	ctx := context.Background()
	var logs bytes.Buffer
	d := f.deployer(&logs)
	event := pushEvent(t, "web", "main-4f2a9c1", t0)

	f.proxy.Fail("TransactWriteItems", 1)
	sum, err := d.Handle(ctx, event)
	if err == nil || sum.Results[0].Outcome != Deployed || !sum.Results[0].Retryable {
		t.Fatalf("first attempt = %+v, %v; want deployed, and an error so Lambda retries", sum.Results, err)
	}
	if !strings.Contains(logs.String(), `"msg":"history not written"`) {
		t.Errorf("no history-not-written line (it is alarmed on):\n%s", logs.String())
	}
	store := history.NewStore(dynamodb.NewFromConfig(f.moto.AWSConfig()), f.table)
	key := history.ServiceKey(testenv.Account, testenv.Region, "staging", "web")
	if recs, _ := store.Recent(ctx, key, 10); len(recs) != 0 {
		t.Fatalf("history after the failed write = %+v, want none", recs)
	}

	sum, err = d.Handle(ctx, event) // Lambda's retry of the same event
	if err != nil || sum.Results[0].Outcome != Skipped {
		t.Fatalf("retry = %+v, %v; want skipped (already running)", sum.Results, err)
	}
	recs, err := store.Recent(ctx, key, 10)
	if err != nil || len(recs) != 1 {
		t.Fatalf("history after the retry = %+v, %v; want the deploy recorded", recs, err)
	}
	got := recs[0]
	svc, _ := f.running(t)
	if got.Outcome != "deployed" || got.Tag != "main-4f2a9c1" || got.ToTaskDefinition != aws.ToString(svc.TaskDefinition) ||
		!strings.HasSuffix(got.FromTaskDefinition, "task-definition/web:1") || got.DeploymentID == "" {
		t.Errorf("repaired record = %+v", got)
	}
	if _, found, _ := store.ByDeployment(ctx, got.DeploymentID); !found {
		t.Errorf("the watcher cannot find deployment %s", got.DeploymentID)
	}
	// Recorded at the deployment's start, not the repair's: the item may
	// come back long after, and the watcher looks for the rollout from then.
	if dep := rollout.Primary(svc, got.ToTaskDefinition); dep == nil || dep.CreatedAt == nil || !got.DeployedAt.Equal(*dep.CreatedAt) {
		t.Errorf("repaired record deployed at %s, want its deployment's start %v", got.DeployedAt, dep)
	}

	sum, err = d.Handle(ctx, event) // and a redrive later: nothing more
	if err != nil || sum.Results[0].Outcome != Skipped {
		t.Fatalf("redrive = %+v, %v", sum.Results, err)
	}
	if recs, _ := store.Recent(ctx, key, 10); len(recs) != 1 {
		t.Errorf("a second retry recorded again: %d records", len(recs))
	}
}

// TestCallsPerTarget holds the deploy path to the AWS calls the design
// promises, counted at the proxy in front of moto: a deploy is the lock,
// four ECS calls and one transaction (history and release); a duplicate
// delivery stops after the two reads.
func TestCallsPerTarget(t *testing.T) {
	t.Parallel()
	f := newMotoFixture(t)
	ctx := context.Background()
	var logs bytes.Buffer
	d := f.deployer(&logs)
	event := pushEvent(t, "web", "main-4f2a9c1", t0)
	f.proxy.Calls()
	steps := []struct {
		name string
		want map[string]int
	}{
		{"deploy", map[string]int{"UpdateItem": 1, "DescribeServices": 1, "DescribeTaskDefinition": 1,
			"RegisterTaskDefinition": 1, "UpdateService": 1, "TransactWriteItems": 1}},
		{"duplicate delivery", map[string]int{"UpdateItem": 2, "DescribeServices": 1, "DescribeTaskDefinition": 1}},
	}
	for _, st := range steps {
		if _, err := d.Handle(ctx, event); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(st.want, f.proxy.Calls()); diff != "" {
			t.Errorf("%s: AWS calls (-want +got):\n%s", st.name, diff)
		}
	}
}

// Against moto: a deploy of a publishing rule writes the running image to
// Parameter Store in the target's account — here another account, reached
// through the target's role (moto is multi-account through sts:AssumeRole).
func TestPublishAgainstMoto(t *testing.T) {
	t.Parallel()
	m := testenv.StartMoto(t)
	ctx := context.Background()
	const role = "arn:aws:iam::222222222222:role/autodeploy-target"
	cfg, err := rules.Parse("p.yaml", []byte("version: 1\ndefaults:\n  publish: {ssm-prefix: /ecr-autodeploy}\nrules:\n"+
		"  - {name: web, repository: web, tags: [\"main-*\"], targets: [{cluster: staging, service: web}, "+
		"{cluster: prod, service: web, account: \"222222222222\", role: \""+role+"\"}]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	clients := awsenv.NewClients(m.AWSConfig())
	for _, where := range []*ecs.Client{clients.ECS("", ""), clients.ECS("", role)} {
		cluster := "staging"
		if where == clients.ECS("", role) {
			cluster = "prod"
		}
		if _, err := emulator.SeedService(ctx, where, emulator.Service{Cluster: cluster, Name: "web", Family: "web",
			Containers: []emulator.Container{{Name: "app", Image: registry + "/web:main-0000001"}}}); err != nil {
			t.Fatal(err)
		}
	}
	db := dynamodb.NewFromConfig(m.AWSConfig())
	table := m.CreateTable(t, "autodeploy")
	var logs bytes.Buffer
	d := &Deployer{Rules: cfg, Central: rules.Place{Account: testenv.Account, Region: testenv.Region}, ECS: func(region, role string) ECS { return clients.ECS(region, role) },
		SSM:      func(region, role string) SSM { return clients.SSM(region, role) },
		Services: history.NewServices(lock.New(db, table), history.NewStore(db, table)), Log: logging.New(&logs, slog.LevelInfo),
		Concurrency: 2, Now: time.Now}
	sum, err := d.Handle(ctx, pushEvent(t, "web", "main-4f2a9c1", t0))
	if err != nil || len(sum.Results) != 2 || sum.Results[0].Outcome != Deployed || sum.Results[1].Outcome != Deployed {
		t.Fatalf("%+v, %v\n%s", sum.Results, err, logs.String())
	}
	want := registry + "/web@" + digestOf("web:main-4f2a9c1")
	for _, c := range []struct {
		role, name string
	}{{"", "/ecr-autodeploy/staging/web/app"}, {role, "/ecr-autodeploy/prod/web/app"}} {
		out, err := clients.SSM("", c.role).GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(c.name)})
		if err != nil || aws.ToString(out.Parameter.Value) != want {
			t.Errorf("%s (role %q): %v, %v; want %s", c.name, c.role, out, err, want)
		}
	}
	// The other account's parameter is not in this account.
	if _, err := clients.SSM("", "").GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/ecr-autodeploy/prod/web/app")}); err == nil {
		t.Error("the prod parameter was written in the registry's account")
	}
}

// TestBlueGreenAgainstMoto: a push rolls a blue/green service through
// moto's CodeDeploy (applications, a named group with ecsServices,
// CreateDeployment); the service's task definition is left to CodeDeploy.
// moto's deployments never end, so endings are tested against the fake
// (bluegreen_test.go).
func TestBlueGreenAgainstMoto(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newMotoFixture(t)
	cfg, err := rules.Parse("bluegreen.yaml", []byte(`version: 1
rules:
  - name: web-prod
    repository: web
    semver: ">= 1.0.0"
    targets:
      - cluster: prod
        service: web
        codedeploy: {application: web, deployment-group: web-prod, hooks: {BeforeAllowTraffic: web-check}}
`))
	if err != nil {
		t.Fatal(err)
	}
	from, err := emulator.SeedService(ctx, f.ecs, emulator.Service{Cluster: "prod", Name: "web", Family: "web-prod",
		Containers: []emulator.Container{{Name: "app", Image: registry + "/web:1.0.0"}}, BlueGreen: true})
	if err != nil {
		t.Fatal(err)
	}
	cd := codedeploy.NewFromConfig(f.moto.AWSConfig())
	if err := emulator.SeedDeploymentGroup(ctx, cd, "web", "web-prod", "prod", "web"); err != nil {
		t.Fatal(err)
	}
	logs := &bytes.Buffer{}
	d := f.deployer(logs)
	d.Rules = cfg
	clients := awsenv.NewClients(f.proxy.Config(f.moto.AWSConfig()))
	d.CodeDeploy = func(region, role string) bluegreen.CodeDeploy { return clients.CodeDeploy(region, role) }

	f.proxy.Calls()
	sum, err := d.Handle(ctx, pushEvent(t, "web", "v1.1.0", t0))
	if err != nil {
		t.Fatal(err)
	}
	// The six calls of any deploy, CreateDeployment for UpdateService, the
	// group's one read, kept for the next deploys of this environment, and
	// its active deployments, read before registering anything.
	want := map[string]int{"UpdateItem": 1, "DescribeServices": 1, "DescribeTaskDefinition": 1, "RegisterTaskDefinition": 1,
		"GetDeploymentGroup": 1, "ListDeployments": 1, "CreateDeployment": 1, "TransactWriteItems": 1}
	if diff := cmp.Diff(want, f.proxy.Calls()); diff != "" {
		t.Errorf("first deploy: AWS calls (-want +got):\n%s", diff)
	}
	r := sum.Results[0]
	if r.Outcome != Deployed || r.DeploymentID == "" || r.From != from || r.To == from {
		t.Fatalf("result = %+v", r)
	}
	svcs, err := f.ecs.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("prod"), Services: []string{"web"}})
	if err != nil || aws.ToString(svcs.Services[0].TaskDefinition) != from {
		t.Errorf("the service's task definition moved without CodeDeploy: %v", err)
	}
	dep, err := cd.GetDeployment(ctx, &codedeploy.GetDeploymentInput{DeploymentId: aws.String(r.DeploymentID)})
	if err != nil {
		t.Fatal(err)
	}
	spec := bluegreen.AppSpec{Content: aws.ToString(dep.DeploymentInfo.Revision.AppSpecContent.Content)}
	if spec.TaskDefinition() != r.To || !strings.Contains(spec.Content, `"BeforeAllowTraffic": "web-check"`) ||
		!strings.Contains(spec.Content, `"ContainerName": "app"`) {
		t.Errorf("AppSpec = %s", spec.Content)
	}
	reg, err := f.ecs.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(r.To)})
	if err != nil || !strings.HasSuffix(aws.ToString(reg.TaskDefinition.ContainerDefinitions[0].Image), "@"+digestOf("web:v1.1.0")) {
		t.Errorf("registered revision: %v", err)
	}
	store := history.NewStore(dynamodb.NewFromConfig(f.moto.AWSConfig()), f.table)
	rec, found, err := store.ByDeployment(ctx, r.DeploymentID)
	if err != nil || !found || rec.ToTaskDefinition != r.To {
		t.Errorf("history by deployment id: %+v %v %v", rec, found, err)
	}
	// moto's deployments stay "Created", an active status (moto would take
	// a second one at once; CodeDeploy's refusal is the fake's, in
	// bluegreen_test.go), so they stand for a deployment that still runs.
	// Another image waits for it, transiently, with no revision registered.
	next, err := d.Handle(ctx, pushEvent(t, "web", "v1.2.0", t0.Add(time.Minute)))
	if err == nil || !next.Results[0].Retryable || !strings.Contains(next.Results[0].Reason, "already has an active deployment") {
		t.Fatalf("another image while deploying: %+v, %v", next.Results, err)
	}
	wantWaiting := map[string]int{"DescribeServices": 1, "DescribeTaskDefinition": 1,
		"ListDeployments": 1, "GetDeployment": 1, "UpdateItem": 2} // take and release the lock
	if diff := cmp.Diff(wantWaiting, f.proxy.Calls()); diff != "" {
		t.Errorf("another image while deploying: AWS calls (-want +got):\n%s", diff)
	}
	// A duplicate delivery of the push: its deployment runs and is
	// recorded, so nothing is registered or written (the deployment index
	// keeps naming the first record).
	dup, err := d.Handle(ctx, pushEvent(t, "web", "v1.1.0", t0))
	if err != nil || dup.Results[0].Outcome != Skipped || !strings.HasPrefix(dup.Results[0].Reason, "deploying") {
		t.Fatalf("duplicate delivery: %+v, %v", dup.Results, err)
	}
	if diff := cmp.Diff(wantWaiting, f.proxy.Calls()); diff != "" {
		t.Errorf("duplicate delivery: AWS calls (-want +got):\n%s", diff)
	}
	if again, _, err := store.ByDeployment(ctx, r.DeploymentID); err != nil || again.EventID != rec.EventID || !again.DeployedAt.Equal(rec.DeployedAt) {
		t.Errorf("history by deployment id after the duplicate: %+v %v", again, err)
	}
}
