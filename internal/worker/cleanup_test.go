package worker

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/deploy"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecsarn"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/logging"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/reconcile"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/taskdef"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work"
)

// deregisterThrottle answers the deregistrations numbered in at (1-based,
// counted over every client) with ECS's ThrottlingException, as the
// register bucket does once a deploy emptied it.
type deregisterThrottle struct {
	mu sync.Mutex
	n  int
	at []int
}

type throttledCleanup struct {
	reconcile.CleanupECS
	t *deregisterThrottle
}

func (c *throttledCleanup) DeregisterTaskDefinition(ctx context.Context, in *ecs.DeregisterTaskDefinitionInput, o ...func(*ecs.Options)) (*ecs.DeregisterTaskDefinitionOutput, error) {
	c.t.mu.Lock()
	c.t.n++
	now := slices.Contains(c.t.at, c.t.n)
	c.t.mu.Unlock()
	if now {
		return nil, &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded", Fault: smithy.FaultClient}
	}
	return c.CleanupECS.DeregisterTaskDefinition(ctx, in, o...)
}

// cleanupEnv is moto behind the counting proxy: a cluster, the state table
// (history and marks), and a worker whose only business is clean-up.
type cleanupEnv struct {
	t       *testing.T
	ecs     *ecs.Client
	proxy   *testenv.Proxy
	store   *history.Store
	marks   *reconcile.TableMarks
	handler *Handler
	logs    *bytes.Buffer
}

func newCleanupEnv(t *testing.T, throttle *deregisterThrottle) *cleanupEnv {
	t.Helper()
	m := testenv.StartMoto(t)
	p := testenv.StartProxy(t, m.Endpoint)
	cfg := p.Config(m.AWSConfig())
	cfg.RetryMaxAttempts = 1 // the worker's clients give a throttle up soon; here at once
	table := m.CreateTable(t, "autodeploy")
	db := dynamodb.NewFromConfig(cfg)
	e := &cleanupEnv{t: t, ecs: ecs.NewFromConfig(cfg), proxy: p, store: history.NewStore(db, table),
		marks: &reconcile.TableMarks{DB: db, Table: table}, logs: &bytes.Buffer{}}
	log := logging.New(e.logs, slog.LevelInfo)
	client := reconcile.CleanupECS(e.ecs)
	if throttle != nil {
		client = &throttledCleanup{CleanupECS: e.ecs, t: throttle}
	}
	e.handler = &Handler{Deployer: &deploy.Deployer{Log: log, Central: central},
		Cleanup: &reconcile.CleanupRunner{ECS: func(string, string) reconcile.CleanupECS { return client }, History: e.store, Marks: e.marks, Log: log}}
	if _, err := e.ecs.CreateCluster(context.Background(), &ecs.CreateClusterInput{ClusterName: aws.String("prod")}); err != nil {
		t.Fatal(err)
	}
	return e
}

// family registers revisions 1..n of family, tagged as the product tags
// what it registers.
func (e *cleanupEnv) family(family string, n int) {
	e.t.Helper()
	for i := 1; i <= n; i++ {
		if _, err := e.ecs.RegisterTaskDefinition(context.Background(), &ecs.RegisterTaskDefinitionInput{
			Family:               aws.String(family),
			ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String(fmt.Sprintf("web:%d", i)), Memory: aws.Int32(128)}},
			Tags:                 []types.Tag{{Key: aws.String(taskdef.TagRule), Value: aws.String("web-prod")}, {Key: aws.String(taskdef.TagEvent), Value: aws.String(strconv.Itoa(i))}},
		}); err != nil {
			e.t.Fatal(err)
		}
	}
}

func (e *cleanupEnv) service(name, family string, running int) {
	e.t.Helper()
	if _, err := e.ecs.CreateService(context.Background(), &ecs.CreateServiceInput{Cluster: aws.String("prod"), ServiceName: aws.String(name),
		DesiredCount: aws.Int32(0), TaskDefinition: aws.String(fmt.Sprintf("%s:%d", family, running))}); err != nil {
		e.t.Fatal(err)
	}
}

// deployed records a deploy of service from → to, as the deploy path does.
func (e *cleanupEnv) deployed(service, family string, from, to int, at time.Time) {
	e.t.Helper()
	if err := e.store.Put(context.Background(), history.Record{Rule: "web-prod", Repository: "web", Account: central.Account, Region: central.Region,
		Cluster: "prod", Service: service, FromTaskDefinition: fmt.Sprintf("%s:%d", family, from), ToTaskDefinition: fmt.Sprintf("%s:%d", family, to),
		DeploymentID: fmt.Sprintf("ecs-svc/%s-%d", service, to), EventID: fmt.Sprintf("ev-%d", to), Outcome: "deployed", DeployedAt: at, PushedAt: at,
		Digest: "sha256:" + fmt.Sprintf("%064d", to), Tag: fmt.Sprintf("v%d", to)}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *cleanupEnv) active(family string) []int {
	e.t.Helper()
	out, err := e.ecs.ListTaskDefinitions(context.Background(), &ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String(family), Status: types.TaskDefinitionStatusActive})
	if err != nil {
		e.t.Fatal(err)
	}
	var revs []int
	for _, a := range out.TaskDefinitionArns {
		_, n := splitRev(ecsarn.Revision(a))
		revs = append(revs, n)
	}
	slices.Sort(revs)
	return revs
}

func splitRev(s string) (string, int) {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == ':' {
			n, _ := strconv.Atoi(s[i+1:])
			return s[:i], n
		}
	}
	return s, 0
}

// deliver hands the handler one SQS batch of the items, as the event
// source mapping does, and returns the message ids it answered as failed.
func (e *cleanupEnv) deliver(items ...work.Cleanup) []string {
	e.t.Helper()
	var ev events.SQSEvent
	for i, c := range items {
		body, err := work.EncodeCommand(c)
		if err != nil {
			e.t.Fatal(err)
		}
		ev.Records = append(ev.Records, events.SQSMessage{MessageId: fmt.Sprintf("m-%d", i), Body: string(body),
			Attributes: map[string]string{"ApproximateReceiveCount": "1"}})
	}
	resp, err := e.handler.Handle(context.Background(), ev)
	if err != nil {
		e.t.Fatal(err)
	}
	var failed []string
	for _, f := range resp.BatchItemFailures {
		failed = append(failed, f.ItemIdentifier)
	}
	return failed
}

func webCleanup(keep int, services ...string) work.Cleanup {
	c := work.Cleanup{Account: central.Account, Region: central.Region, Family: "web", Keep: keep, Rules: []string{"web-prod"}, Origin: "test"}
	for _, s := range services {
		c.Services = append(c.Services, work.CleanupService{Cluster: "prod", Service: s})
	}
	return c
}

// TestWorkerCleansTwelveKeepThree: through a work item, a family of 12
// revisions with keep: 3 ends with the running one (6), its rollback
// candidates from history (the last 3 deploys' from and to: 1, 2, 5, 6)
// and the newest three ACTIVE; the same item delivered again deregisters
// nothing more, and the family is marked clean as of 12.
func TestWorkerCleansTwelveKeepThree(t *testing.T) {
	e := newCleanupEnv(t, nil)
	e.family("web", 12)
	e.service("web", "web", 6)
	t0 := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	e.deployed("web", "web", 1, 2, t0)
	e.deployed("web", "web", 2, 5, t0.Add(time.Hour))
	e.deployed("web", "web", 5, 6, t0.Add(2*time.Hour))
	e.proxy.Calls()
	item := webCleanup(3, "web")
	for delivery := 1; delivery <= 2; delivery++ {
		if failed := e.deliver(item); len(failed) > 0 {
			t.Fatalf("delivery %d: failed %v", delivery, failed)
		}
		if diff := cmp.Diff([]int{1, 2, 5, 6, 10, 11, 12}, e.active("web")); diff != "" {
			t.Errorf("delivery %d: ACTIVE revisions (-want +got):\n%s", delivery, diff)
		}
		calls := e.proxy.Calls()
		want := map[int]int{1: 5, 2: 0}[delivery] // 3, 4, 7, 8, 9 on the first, none again
		if got := calls["DeregisterTaskDefinition"]; got != want {
			t.Errorf("delivery %d: %d deregistrations, want %d (calls %v)", delivery, got, want, calls)
		}
		if got := calls["UpdateService"] + calls["RegisterTaskDefinition"] + calls["PutItem"] + calls["TransactWriteItems"]; got != 0 {
			t.Errorf("delivery %d: a cleanup item deployed or locked something: %v", delivery, calls)
		}
	}
	marks, err := e.marks.Clean(context.Background(), []reconcile.MarkKey{{Account: central.Account, Region: central.Region, Family: "web"}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[reconcile.MarkKey]reconcile.Mark{{Account: central.Account, Region: central.Region, Family: "web"}: {Revision: 12, Settings: reconcile.MarkSettings(3, false)}}, marks); diff != "" {
		t.Errorf("marks (-want +got):\n%s", diff)
	}
}

// TestWorkerCleanupStopsAtThrottle: a cleanup item whose third
// deregistration is throttled stops there (two done, the item not
// retried: what is left is the next one's) and marks nothing clean; the
// next item finishes, and a shared family's second service keeps what it
// runs.
func TestWorkerCleanupStopsAtThrottle(t *testing.T) {
	e := newCleanupEnv(t, &deregisterThrottle{at: []int{3}})
	e.family("web", 10)
	e.service("web", "web", 10)
	e.service("web-canary", "web", 2) // shares the family: 2 and 1 (before it) stay
	key := []reconcile.MarkKey{{Account: central.Account, Region: central.Region, Family: "web"}}
	item := webCleanup(3, "web", "web-canary")
	e.proxy.Calls()
	if failed := e.deliver(item); len(failed) > 0 {
		t.Fatalf("throttled item returned to the queue: %v", failed)
	}
	if diff := cmp.Diff([]int{1, 2, 3, 4, 5, 8, 9, 10}, e.active("web")); diff != "" {
		t.Errorf("after the throttled item, ACTIVE (-want +got):\n%s", diff)
	}
	if got := e.proxy.Calls()["DeregisterTaskDefinition"]; got != 2 {
		t.Errorf("%d deregistrations reached ECS, want 2 (7, 6; the throttled third stops the run)", got)
	}
	if m, _ := e.marks.Clean(context.Background(), key); len(m) != 0 {
		t.Errorf("a throttled run marked the family clean: %v", m)
	}
	if !bytes.Contains(e.logs.Bytes(), []byte(`"msg":"cleanup"`)) || !bytes.Contains(e.logs.Bytes(), []byte(`"outcome":"throttled"`)) {
		t.Errorf("no msg=cleanup throttled line:\n%s", e.logs)
	}
	if failed := e.deliver(item); len(failed) > 0 {
		t.Fatalf("second item failed: %v", failed)
	}
	if diff := cmp.Diff([]int{1, 2, 8, 9, 10}, e.active("web")); diff != "" {
		t.Errorf("after the next item, ACTIVE (-want +got):\n%s", diff)
	}
	if m, _ := e.marks.Clean(context.Background(), key); m[key[0]].Revision != 10 {
		t.Errorf("marks = %v, want web clean as of 10", m)
	}
}

// TestWorkerCleanupTransientFailureReturns: a describe that fails (not a
// throttle of the register bucket) returns the item to the queue, and its
// redelivery does the work once.
func TestWorkerCleanupTransientFailureReturns(t *testing.T) {
	e := newCleanupEnv(t, nil)
	e.family("web", 6)
	e.service("web", "web", 6)
	e.proxy.Fail("DescribeServices", 1)
	if failed := e.deliver(webCleanup(2, "web")); !slices.Equal(failed, []string{"m-0"}) {
		t.Fatalf("failed = %v, want the item returned", failed)
	}
	if diff := cmp.Diff([]int{1, 2, 3, 4, 5, 6}, e.active("web")); diff != "" {
		t.Errorf("a failed run changed the family (-want +got):\n%s", diff)
	}
	e.proxy.Calls()
	if failed := e.deliver(webCleanup(2, "web"), webCleanup(2, "web")); len(failed) > 0 {
		t.Fatalf("redelivery failed: %v", failed)
	}
	if diff := cmp.Diff([]int{5, 6}, e.active("web")); diff != "" {
		t.Errorf("after redelivery (-want +got):\n%s", diff)
	}
}
