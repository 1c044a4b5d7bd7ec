package cli

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/deploy"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/emulator"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/lock"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/logging"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

const rulesYAML = `version: 1
rules:
  - name: web-staging
    repository: web
    tags: ["main-*"]
    targets: [{cluster: staging, service: web}]
  - name: web-prod
    repository: web
    semver: ">= 1.0.0"
    targets: [{cluster: prod, service: web}]
`

type run struct {
	code           int
	stdout, stderr string
}

func cli(t *testing.T, m *testenv.Moto, table string, args ...string) run {
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
		AWS: func(context.Context) (aws.Config, error) {
			if m == nil {
				t.Fatal("this command must not call AWS")
			}
			return m.AWSConfig(), nil
		},
		Now: time.Now,
	}
	code := Run(context.Background(), args, env)
	return run{code, out.String(), errOut.String()}
}

func writeRules(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "autodeploy.yaml")
	if err := os.WriteFile(path, []byte(rulesYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestValidate(t *testing.T) {
	t.Parallel()
	good := writeRules(t)
	r := cli(t, nil, "", "validate", good)
	if r.code != 0 || !strings.Contains(r.stdout, "web-staging  web         tags main-*") || !strings.Contains(r.stdout, "2 rules, valid") {
		t.Errorf("validate good: %+v", r)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("version: 1\nrules:\n  - name: x\n    repository: web\n    tags: [a]\n    targets: []\n    colour: red\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = cli(t, nil, "", "validate", bad)
	if r.code != 1 || !strings.Contains(r.stderr, bad+":6: rules[0].targets: must be a non-empty list of targets") ||
		!strings.Contains(r.stderr, bad+":7: rules[0].colour: unknown key") {
		t.Errorf("validate bad: %+v", r)
	}
	// Two owners of one container that only the central region shows:
	// validate refuses the file as the functions' init would.
	owners := filepath.Join(t.TempDir(), "owners.yaml")
	if err := os.WriteFile(owners, []byte("version: 1\nrules:\n  - {name: a, repository: web, tags: [main-*], targets: [{cluster: prod, service: web}]}\n"+
		"  - {name: b, repository: web, semver: '>= 1.0.0', targets: [{cluster: prod, service: web, region: eu-west-1}]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := cli(t, nil, "", "validate", owners); r.code != 0 || !strings.Contains(r.stdout, "checked without the central account and region") {
		t.Errorf("validate without a central place: %+v", r)
	}
	if r := cli(t, nil, "", "validate", "--account", "123456789012", "--region", "eu-west-1", owners); r.code != 1 ||
		!strings.Contains(r.stderr, owners+":4: rules[1].targets[0]: every container from repository web of service prod/web is also deployed by rule a") {
		t.Errorf("validate with the central place: %+v", r)
	}
	if r := cli(t, nil, "", "frobnicate"); r.code != 2 || !strings.Contains(r.stderr, "unknown command") {
		t.Errorf("unknown command: %+v", r)
	}
	if r := cli(t, nil, "", "plan"); r.code != 2 || !strings.Contains(r.stderr, "--event is required") {
		t.Errorf("plan without --event: %+v", r)
	}
}

type motoSetup struct {
	moto  *testenv.Moto
	table string
	ecs   *ecs.Client
	rules string
}

func setup(t *testing.T) motoSetup {
	t.Helper()
	m := testenv.StartMoto(t)
	s := motoSetup{moto: m, table: m.CreateTable(t, "autodeploy"), ecs: ecs.NewFromConfig(m.AWSConfig()), rules: writeRules(t)}
	for _, cluster := range []string{"staging", "prod"} {
		if _, err := emulator.SeedService(context.Background(), s.ecs, emulator.Service{
			Cluster: cluster, Name: "web", Family: "web-" + cluster,
			Containers: []emulator.Container{{Name: "app", Image: emulator.Registry + "/web:main-0000000"}},
		}); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func (s motoSetup) running(t *testing.T, cluster string) string {
	t.Helper()
	out, err := s.ecs.DescribeServices(context.Background(), &ecs.DescribeServicesInput{Cluster: aws.String(cluster), Services: []string{"web"}})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.Services[0].TaskDefinition)
}

// deploy runs the deployer on a sample event, with text replacements.
func (s motoSetup) deploy(t *testing.T, event string, edits ...[2]string) {
	t.Helper()
	cfg, err := rules.Load(s.rules)
	if err != nil {
		t.Fatal(err)
	}
	db := dynamodb.NewFromConfig(s.moto.AWSConfig())
	d := &deploy.Deployer{Rules: cfg, Central: rules.Place{Account: testenv.Account, Region: testenv.Region}, ECS: func(string, string) deploy.ECS { return s.ecs }, Services: history.NewServices(lock.New(db, s.table), history.NewStore(db, s.table)),
		Log: logging.New(io.Discard, slog.LevelError), Concurrency: 2, Now: time.Now}
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "events", event))
	if err != nil {
		t.Fatal(err)
	}
	for _, edit := range edits {
		data = []byte(strings.ReplaceAll(string(data), edit[0], edit[1]))
	}
	if _, err := d.Handle(context.Background(), data); err != nil {
		t.Fatal(err)
	}
}

func TestPlanIsReadOnly(t *testing.T) {
	t.Parallel()
	s := setup(t)
	event := filepath.Join(testenv.RepoRoot(t), "events", "ecr-push-main.json")
	r := cli(t, s.moto, s.table, "plan", "--event", event, "--config", s.rules)
	if r.code != 0 {
		t.Fatalf("plan: %+v", r)
	}
	for _, want := range []string{
		"push web:main-4f2a9c1 (sha256:15794219",
		"rule web-staging → staging/web",
		"would register a new revision of web-staging (running web-staging:1)",
		"  - app: " + emulator.Registry + "/web:main-0000000",
		"  + app: " + emulator.Registry + "/web@sha256:15794219de6dc381cac7805b3e96683d02e81b9cb72265b5cb8c1f501c21d71c",
		"autodeploy:app:tag=main-4f2a9c1",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("plan output lacks %q:\n%s", want, r.stdout)
		}
	}
	if got := s.running(t, "staging"); !strings.HasSuffix(got, "web-staging:1") {
		t.Errorf("plan changed the service: %s", got)
	}
	sig := filepath.Join(testenv.RepoRoot(t), "events", "ecr-push-signature.json")
	if r := cli(t, nil, s.table, "plan", "--event", sig, "--config", s.rules); r.code != 0 || !strings.Contains(r.stdout, "ignored: tag sha256-") {
		t.Errorf("plan of a signature: %+v", r)
	}
	// Once deployed, a plan of the same push says it would skip.
	s.deploy(t, "ecr-push-main.json")
	if r := cli(t, s.moto, s.table, "plan", "--event", event, "--config", s.rules); !strings.Contains(r.stdout, "skip: already running") {
		t.Errorf("plan after the deploy:\n%s", r.stdout)
	}
}

// Against moto: plan decides as the deployer does — a held service and a
// digest that failed there are skipped, with the deployer's own reasons —
// and without a table it says what it could not check.
func TestPlanDecidesAsTheDeployer(t *testing.T) {
	t.Parallel()
	s := setup(t)
	ctx := context.Background()
	event := filepath.Join(testenv.RepoRoot(t), "events", "ecr-push-main.json")
	store := history.NewStore(dynamodb.NewFromConfig(s.moto.AWSConfig()), s.table)
	key := history.ServiceKey(testenv.Account, testenv.Region, "staging", "web")
	if _, err := store.PlaceHold(ctx, key, history.Hold{By: "alice", At: time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC), Reason: "incident"}, false); err != nil {
		t.Fatal(err)
	}
	r := cli(t, s.moto, s.table, "plan", "--event", event, "--config", s.rules)
	if r.code != 0 || !strings.Contains(r.stdout, "rule web-staging → staging/web\n  skip: held by alice since 2026-11-26T09:00:00Z: incident") ||
		strings.Contains(r.stdout, "would register") {
		t.Errorf("plan of a held service:\n%s%s", r.stdout, r.stderr)
	}
	if _, err := store.LiftHold(ctx, key, "alice", time.Date(2026, 11, 26, 9, 30, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	// ECS rolled this digest back here (the watcher's mark).
	rec := history.Record{Rule: "web-staging", Account: testenv.Account, Region: testenv.Region, Cluster: "staging", Service: "web",
		Digest: "sha256:15794219de6dc381cac7805b3e96683d02e81b9cb72265b5cb8c1f501c21d71c", EventID: "e1", Outcome: "deployed", DeployedAt: time.Now()}
	if err := store.Put(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if _, err := store.SetOutcome(ctx, rec, history.RolledBack, "circuit breaker", time.Now()); err != nil {
		t.Fatal(err)
	}
	r = cli(t, s.moto, s.table, "plan", "--event", event, "--config", s.rules)
	if !strings.Contains(r.stdout, "skip: the latest deployment of sha256:15794219de6dc381cac7805b3e96683d02e81b9cb72265b5cb8c1f501c21d71c on this service failed or was rolled back") {
		t.Errorf("plan of a rolled-back digest:\n%s%s", r.stdout, r.stderr)
	}
	r = cli(t, s.moto, "", "plan", "--event", event, "--config", s.rules)
	if r.code != 0 || !strings.Contains(r.stdout, "not checked: holds and failed digests") || !strings.Contains(r.stdout, "would register") {
		t.Errorf("plan without a table:\n%s%s", r.stdout, r.stderr)
	}
}

func TestHistoryAndRollback(t *testing.T) {
	t.Parallel()
	s := setup(t)
	s.deploy(t, "ecr-push-release.json")       // prod: web-prod:1 → :2 (v1.4.0)
	s.deploy(t, "ecr-push-older-release.json") // refused as a downgrade: not in history
	if got := s.running(t, "prod"); !strings.HasSuffix(got, "web-prod:2") {
		t.Fatalf("prod runs %s after the release", got)
	}
	r := cli(t, s.moto, s.table, "history", "--cluster", "prod", "--service", "web")
	if r.code != 0 || !strings.Contains(r.stdout, "web-prod  web:v1.4.0") || !strings.Contains(r.stdout, "web-prod:1 → web-prod:2") {
		t.Fatalf("history: %+v", r)
	}

	r = cli(t, s.moto, s.table, "rollback", "--cluster", "prod", "--service", "web")
	if r.code != 0 || !strings.Contains(r.stdout, "rolled prod/web back: web-prod:2 → web-prod:1") {
		t.Fatalf("rollback: %+v", r)
	}
	if got := s.running(t, "prod"); !strings.HasSuffix(got, "web-prod:1") {
		t.Errorf("prod runs %s after the rollback", got)
	}
	r = cli(t, s.moto, s.table, "history", "--cluster", "prod", "--service", "web")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	// The rollback names the image it restores; its hold is a row of its own.
	if len(lines) != 4 || !strings.Contains(flat(lines[1]), "rollback web:main-0000000 deployed") ||
		!strings.Contains(flat(lines[2]), "hold - held - - by ") || !strings.Contains(lines[3], "web:v1.4.0") {
		t.Errorf("history after rollback, newest first:\n%s", r.stdout)
	}
	// Forward again by revision number only with --force, and it says so.
	if r := cli(t, s.moto, s.table, "rollback", "--cluster", "prod", "--service", "web", "--to", "2"); r.code != 1 || !strings.Contains(r.stderr, "web-prod:2 is newer than the running web-prod:1") {
		t.Errorf("rollback --to 2: %+v", r)
	}
	if r := cli(t, s.moto, s.table, "rollback", "--cluster", "prod", "--service", "web", "--to", "2", "--force"); r.code != 0 || !strings.Contains(r.stdout, "rolled prod/web forward: web-prod:1 → web-prod:2") {
		t.Errorf("rollback --to 2 --force: %+v", r)
	}
	if r := cli(t, s.moto, s.table, "rollback", "--cluster", "prod", "--service", "web", "--to", "2"); r.code != 1 || !strings.Contains(r.stderr, "already runs web-prod:2") {
		t.Errorf("rollback to the running revision: %+v", r)
	}
	if r := cli(t, s.moto, s.table, "history", "--cluster", "prod"); r.code != 2 {
		t.Errorf("history without --service: %+v", r)
	}
}

// TestSecondRollbackGoesFurtherBack: a rollback after a rollback returns to
// the revision before, never forward to the bad one; named by ARN, the
// service is the same service (same lock, same history).
func TestSecondRollbackGoesFurtherBack(t *testing.T) {
	t.Parallel()
	s := setup(t)
	s.deploy(t, "ecr-push-release.json") // prod: web-prod:1 → :2 (v1.4.0)
	s.deploy(t, "ecr-push-release.json", [2]string{"v1.4.0", "v1.5.0"}, [2]string{"2026-11-25T10:05:00Z", "2026-11-25T11:05:00Z"},
		[2]string{"sha256:3b", "sha256:4c"}) // :2 → :3 (v1.5.0)
	if got := s.running(t, "prod"); !strings.HasSuffix(got, "web-prod:3") {
		t.Fatalf("prod runs %s after two releases", got)
	}
	service := "arn:aws:ecs:" + testenv.Region + ":" + testenv.Account + ":service/prod/web"
	cluster := "arn:aws:ecs:" + testenv.Region + ":" + testenv.Account + ":cluster/prod"
	for _, want := range []string{"web-prod:3 → web-prod:2", "web-prod:2 → web-prod:1"} {
		r := cli(t, s.moto, s.table, "rollback", "--cluster", cluster, "--service", service)
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Fatalf("rollback = %+v, want %s", r, want)
		}
	}
	r := cli(t, s.moto, s.table, "rollback", "--cluster", "prod", "--service", "web")
	if r.code != 1 || !strings.Contains(r.stderr, "nothing earlier to go back to") {
		t.Errorf("a third rollback = %+v, want a refusal that says why", r)
	}
	if got := s.running(t, "prod"); !strings.HasSuffix(got, "web-prod:1") {
		t.Errorf("prod runs %s, want web-prod:1", got)
	}
	r = cli(t, s.moto, s.table, "history", "--cluster", "prod", "--service", "web")
	if n := strings.Count(r.stdout, "rollback by the autodeploy CLI"); n != 2 {
		t.Errorf("history by name shows %d of the rollbacks made by ARN, want 2:\n%s", n, r.stdout)
	}
}
