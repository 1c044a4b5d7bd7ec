package cli

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/deploy"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/lock"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/logging"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

// cliWith runs the CLI on an AWS config of the test's making.
func cliWith(t *testing.T, cfg aws.Config, table string, args ...string) run {
	t.Helper()
	var out, errOut bytes.Buffer
	env := Env{
		Stdout: &out, Stderr: &errOut,
		Getenv: func(k string) string {
			if k == "AUTODEPLOY_TABLE" {
				return table
			}
			return ""
		},
		AWS: func(context.Context) (aws.Config, error) { return cfg, nil },
		Now: time.Now,
	}
	code := Run(context.Background(), args, env)
	return run{code, out.String(), errOut.String()}
}

// twoReleases deploys v1.4.0 (web-prod:1 → :2) and v1.5.0 (:2 → :3) to
// prod and returns the edits that make the sample event the v1.5.0 push.
func twoReleases(t *testing.T, s motoSetup) [][2]string {
	t.Helper()
	v150 := [][2]string{{"v1.4.0", "v1.5.0"}, {"2026-11-25T10:05:00Z", "2026-11-25T11:05:00Z"}, {"sha256:3b", "sha256:4c"}}
	s.deploy(t, "ecr-push-release.json")
	s.deploy(t, "ecr-push-release.json", v150...)
	if got := s.running(t, "prod"); !strings.HasSuffix(got, "web-prod:3") {
		t.Fatalf("prod runs %s after two releases", got)
	}
	return v150
}

// lockGate stands in the CLI's HTTP client. When the CLI first calls ECS
// while it holds the service's lock, it starts a deploy that waits on that
// lock; whenever an answer of the CLI's shows the lock free, it lets that
// deploy run to its end before the CLI goes on. So the waiting deploy acts
// exactly in the window between the lock's release and whatever the CLI
// does after.
type lockGate struct {
	inner  aws.HTTPClient
	free   func() bool
	start  func()
	done   chan struct{}
	once   sync.Once
	waited bool
}

func (g *lockGate) Do(req *http.Request) (*http.Response, error) {
	target := req.Header.Get("X-Amz-Target")
	resp, err := g.inner.Do(req)
	// Only once the CLI holds the lock: it describes the service before it
	// locks too, and a deploy started then could take the lock first.
	if strings.HasPrefix(target, "AmazonEC2ContainerService") && !g.free() {
		g.once.Do(func() { go g.start() })
	}
	if strings.HasPrefix(target, "DynamoDB_") && !g.waited && g.free() {
		select {
		case <-g.done:
			g.waited = true
		case <-time.After(60 * time.Second):
		}
	}
	return resp, err
}

// TestRollbackHoldsBeforeItUnlocks: a redelivery of the push just rolled
// back from waits on the service's lock while `autodeploy rollback` runs;
// when the rollback lets the lock go, the hold is already there, so the
// waiting deploy skips the service instead of rolling it forward again.
func TestRollbackHoldsBeforeItUnlocks(t *testing.T) {
	t.Parallel()
	s := setup(t)
	v150 := twoReleases(t, s)
	proxy := testenv.StartProxy(t, s.moto.Endpoint) // DynamoDB's atomic conditions
	db := dynamodb.NewFromConfig(proxy.Config(s.moto.AWSConfig()))
	key := history.ServiceKey(testenv.Account, testenv.Region, "prod", "web")

	cfg, err := rules.Load(s.rules)
	if err != nil {
		t.Fatal(err)
	}
	event, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "events", "ecr-push-release.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range v150 {
		event = []byte(strings.ReplaceAll(string(event), e[0], e[1]))
	}
	var sum deploy.Summary
	var deployErr error
	gate := &lockGate{inner: awshttp.NewBuildableClient(), done: make(chan struct{})}
	gate.free = func() bool {
		out, err := db.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(s.table),
			Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "service#" + key}, "sk": &types.AttributeValueMemberS{Value: "state"}}, ConsistentRead: aws.Bool(true)})
		// Free of the CLI: unlocked, or already taken by the waiting deploy
		// (it may take the lock before this read).
		holder, _ := out.Item["lock_holder"].(*types.AttributeValueMemberS)
		return err == nil && (holder == nil || holder.Value != "autodeploy rollback")
	}
	gate.start = func() {
		defer close(gate.done)
		d := &deploy.Deployer{Rules: cfg, Central: rules.Place{Account: testenv.Account, Region: testenv.Region},
			ECS: func(string, string) deploy.ECS { return s.ecs }, Services: history.NewServices(lock.New(db, s.table), history.NewStore(db, s.table)),
			Log: logging.New(io.Discard, slog.LevelError), Concurrency: 1, Now: time.Now}
		sum, deployErr = d.Handle(context.Background(), event)
	}
	cliCfg := proxy.Config(s.moto.AWSConfig())
	cliCfg.HTTPClient = gate

	r := cliWith(t, cliCfg, s.table, "rollback", "--cluster", "prod", "--service", "web")
	if r.code != 0 || !strings.Contains(r.stdout, "rolled prod/web back: web-prod:3 → web-prod:2") || !strings.Contains(r.stdout, "held by ") {
		t.Fatalf("rollback: %+v", r)
	}
	<-gate.done
	if !gate.waited {
		t.Fatal("the waiting deploy did not run while the lock was free")
	}
	if deployErr != nil || len(sum.Results) == 0 {
		t.Fatalf("waiting deploy: %+v, %v", sum, deployErr)
	}
	res := sum.Results[0]
	if res.Outcome != deploy.Skipped || !strings.HasPrefix(res.Reason, "held by ") {
		t.Errorf("the waiting deploy: %s (%s), want skipped as held", res.Outcome, res.Reason)
	}
	if got := s.running(t, "prod"); !strings.HasSuffix(got, "web-prod:2") {
		t.Errorf("prod runs %s after the rollback, want web-prod:2", got)
	}
}

// TestRollbackNeverRollsForward: what a rollback refuses without --force,
// what --dry-run says (and that it does nothing), and the images each
// rollback restores, in its output and its history row.
func TestRollbackNeverRollsForward(t *testing.T) {
	t.Parallel()
	s := setup(t)
	twoReleases(t, s) // web-prod:1 main-0000000, :2 v1.4.0, :3 v1.5.0
	key := history.ServiceKey(testenv.Account, testenv.Region, "prod", "web")
	store := history.NewStore(dynamodb.NewFromConfig(s.moto.AWSConfig()), s.table)
	const v140 = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/web@sha256:3bd05339d5f20e1fe378e58d6f3431a75ee11b47d4266506a4a424d7dd3f06e4"
	v150 := strings.Replace(v140, "sha256:3b", "sha256:4c", 1)
	rollback := func(args ...string) run {
		return cli(t, s.moto, s.table, append([]string{"rollback", "--cluster", "prod", "--service", "web"}, args...)...)
	}
	rows := func() int {
		recs, err := store.Recent(context.Background(), key, 50)
		if err != nil {
			t.Fatal(err)
		}
		return len(recs)
	}

	// A dry run says from, to and the image, and takes no lock and writes nothing.
	r := rollback("--dry-run")
	want := []string{
		"would roll prod/web back: web-prod:3 → web-prod:2, by a rolling deployment (dry run: nothing done)",
		"  restores app: " + v140 + " (v1.4.0), in place of " + v150 + " (v1.5.0)",
		"would hold it",
	}
	for _, w := range want {
		if r.code != 0 || !strings.Contains(r.stdout, w) {
			t.Errorf("dry run lacks %q: %+v", w, r)
		}
	}
	states, err := store.States(context.Background(), []string{key})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.running(t, "prod"); !strings.HasSuffix(got, "web-prod:3") || rows() != 2 || states[key].Hold != nil {
		t.Fatalf("the dry run did something: runs %s, %d history rows, hold %v", got, rows(), states[key].Hold)
	}

	r = rollback()
	if r.code != 0 || !strings.Contains(r.stdout, "rolled prod/web back: web-prod:3 → web-prod:2") || !strings.Contains(r.stdout, "restores app: "+v140+" (v1.4.0)") {
		t.Fatalf("rollback: %+v", r)
	}
	recs, err := store.Recent(context.Background(), key, 1)
	if err != nil {
		t.Fatal(err)
	}
	got := recs[0]
	gotImage := history.Record{Rule: got.Rule, Repository: got.Repository, Tag: got.Tag, Digest: got.Digest, Containers: got.Containers}
	wantImage := history.Record{Rule: "rollback", Repository: "web", Tag: "v1.4.0", Digest: v140[strings.Index(v140, "@")+1:], Containers: []string{"app"}}
	if diff := cmp.Diff(wantImage, gotImage); diff != "" {
		t.Errorf("the rollback's history row names (-want +got):\n%s", diff)
	}

	for _, tc := range []struct {
		name string
		args []string
		want string // in stderr, exit 1
	}{
		{"newer than the running one", []string{"--to", "3"}, "refused: web-prod:3 is newer than the running web-prod:2: that rolls forward, not back"},
		{"the image the last rollback took out", []string{"--to", "3", "--dry-run"}, "web-prod:3 runs " + v150 + " in app, the image the last rollback"},
		{"the running one", []string{"--to", "2"}, "already runs web-prod:2"},
		{"a revision that does not exist", []string{"--to", "9"}, "prod/web has no revision 9 in family web-prod (newest 3)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r := rollback(tc.args...); r.code != 1 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("rollback %v = %+v, want a refusal with %q", tc.args, r, tc.want)
			}
		})
	}
	if r := rollback("--to", "0"); r.code != 2 {
		t.Errorf("--to 0: %+v", r)
	}
	if got := s.running(t, "prod"); !strings.HasSuffix(got, "web-prod:2") || rows() != 3 {
		t.Errorf("refusals changed something: runs %s, %d history rows", got, rows())
	}

	// --force rolls forward, and says so in its output and its history.
	r = rollback("--to", "3", "--force")
	if r.code != 0 || !strings.Contains(r.stdout, "rolled prod/web forward: web-prod:2 → web-prod:3") || !strings.Contains(r.stdout, "--force: web-prod:3 is newer") ||
		!strings.Contains(r.stdout, "it stays held by ") {
		t.Errorf("rollback --force: %+v", r)
	}
	r = cli(t, s.moto, s.table, "history", "--cluster", "prod", "--service", "web", "--limit", "1")
	if !strings.Contains(flat(r.stdout), "rollback web:v1.5.0 deployed") || !strings.Contains(r.stdout, "(--force: ") {
		t.Errorf("history of the forced rollback:\n%s", r.stdout)
	}
}
