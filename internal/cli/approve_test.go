package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/emulator"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/gate"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work"
)

// fakeLambda is the deployer's Invoke API, recording what it was handed.
// A fake, not moto: moto's Lambda runs a function's code in Docker (or not
// at all) and keeps no record of an asynchronous invocation's payload.
type fakeLambda struct {
	mu      sync.Mutex
	calls   []invocation
	failing int // the next calls answer ResourceNotFoundException (not retried)
	srv     *httptest.Server
}

type invocation struct {
	function, invocationType string
	payload                  []byte
}

func startFakeLambda(t *testing.T) *fakeLambda {
	t.Helper()
	f := &fakeLambda{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// POST /2015-03-31/functions/{name}/invocations
		parts := strings.Split(r.URL.Path, "/")
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.failing > 0 {
			f.failing--
			w.Header().Set("X-Amzn-Errortype", "ResourceNotFoundException")
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"Type":"User","message":"Function not found"}`)
			return
		}
		if len(parts) < 4 {
			http.Error(w, "not an Invoke", http.StatusBadRequest)
			return
		}
		f.calls = append(f.calls, invocation{function: parts[3], invocationType: r.Header.Get("X-Amz-Invocation-Type"), payload: body})
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeLambda) taken() []invocation {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]invocation(nil), f.calls...)
}

func (f *fakeLambda) failNext(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failing = n
}

// lambdaAt aims the SDK's Lambda client (and only it) at url, as
// AWS_ENDPOINT_URL_LAMBDA does, through a config source.
type lambdaAt string

func (l lambdaAt) GetServiceBaseEndpoint(_ context.Context, sdkID string) (string, bool, error) {
	return string(l), sdkID == "Lambda", nil
}

// gateRules: one rule per scenario, each with a service of its own (two
// rules may not own one container).
func gateRules(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("version: 1\nrules:\n")
	for _, name := range []string{"ok", "fail", "sup", "exp", "rej"} {
		fmt.Fprintf(&b, "  - {name: %s, repository: web, tags: [\"v*\"], approval: {expires: 1h}, targets: [{cluster: prod, service: %s}]}\n", name, name)
	}
	b.WriteString("  - {name: plain, repository: web, tags: [\"v*\"], targets: [{cluster: prod, service: plain}]}\n")
	return writeTempFile(t, b.String())
}

// TestGatesCLI runs the gates' commands against one moto server.
func TestGatesCLI(t *testing.T) {
	t.Parallel()
	m := testenv.StartMoto(t)
	t.Run("approve and reject", func(t *testing.T) { testApproveAndReject(t, m) })
	t.Run("plan and status", func(t *testing.T) { testGatesInPlanAndStatus(t, m) })
}

// testApproveAndReject against moto (DynamoDB, ECR, STS, CloudFormation)
// and a fake Lambda: the approval gate's CLI. Approvals are asked for
// through gate.Store as the intake asks.
func testApproveAndReject(t *testing.T, m *testenv.Moto) {
	ctx := context.Background()
	table := m.CreateTable(t, "autodeploy")
	digests := m.Repository(t, "web", "v1.0.0", "v1.1.0", "v1.2.0", "v1.3.0")
	lambdaFake := startFakeLambda(t)
	cfg := m.AWSConfig()
	cfg.ConfigSources = append(cfg.ConfigSources, lambdaAt(lambdaFake.srv.URL))
	cfn := cloudformation.NewFromConfig(cfg)
	if _, err := cfn.CreateStack(ctx, &cloudformation.CreateStackInput{StackName: aws.String(defaultStack), TemplateBody: aws.String(`{
	  "Resources": {"Q": {"Type": "AWS::SQS::Queue"}},
	  "Outputs": {"DeployerFunctionName": {"Value": "deployer-from-stack"}}}`)}); err != nil {
		t.Fatal(err)
	}
	rulesFile := gateRules(t)
	store := gate.NewStore(awsenv.StateTable(cfg), table)
	now := time.Now()
	pushedAt := map[string]time.Time{"v1.0.0": now.Add(-4 * time.Hour), "v1.1.0": now.Add(-3 * time.Hour), "v1.2.0": now.Add(-2 * time.Hour), "v1.3.0": now.Add(-time.Hour)}
	ask := func(rule, tag string, at time.Time) {
		t.Helper()
		if _, err := store.RequestApproval(ctx, gate.ApprovalRequest{Rule: rule, Digest: digests[tag], Repository: "web", Tag: tag,
			PushedAt: pushedAt[tag], At: at, Expires: time.Hour}); err != nil {
			t.Fatal(err)
		}
	}
	run := func(args ...string) run {
		t.Helper()
		return cliWith(t, cfg, table, append(args, "--config", rulesFile)...)
	}
	state := func(rule, tag string) gate.Approval {
		t.Helper()
		a, _, err := store.GetApproval(ctx, rule, digests[tag])
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	// wantHandOff checks the invocations since the n-th: each the same push
	// command, asynchronous, to function.
	wantHandOff := func(n int, function, rule, tag, by string, count int) {
		t.Helper()
		got := lambdaFake.taken()[n:]
		if len(got) != count {
			t.Fatalf("%d invocations, want %d: %+v", len(got), count, got)
		}
		want := work.DeployPush{Rule: rule, Origin: fmt.Sprintf("approval of %s for rule %s by %s", digests[tag], rule, by), Push: work.Push{
			EventID: gate.HandOffID(gate.KindApproval, rule, digests[tag]), RegistryAccount: testenv.Account, RegistryRegion: testenv.Region,
			Repository: "web", Tag: tag, Digest: digests[tag], PushedAt: pushedAt[tag].UTC(),
		}}
		for _, inv := range got {
			if inv.function != function || inv.invocationType != "Event" {
				t.Errorf("invoked %s as %q, want %s as Event", inv.function, inv.invocationType, function)
			}
			c, err := work.DecodeCommand(inv.payload)
			if err != nil {
				t.Fatalf("the deployer could not read the hand-off: %v\n%s", err, inv.payload)
			}
			if d := cmp.Diff(work.Command(want), c); d != "" {
				t.Errorf("hand-off (-want +got):\n%s", d)
			}
		}
	}

	t.Run("approve, by tag, through the stack's deployer, as the caller; then again", func(t *testing.T) {
		ask("ok", "v1.1.0", now)
		n := len(lambdaFake.taken())
		r := run("approve", "--rule", "ok", "--tag", "v1.1.0")
		if r.code != 0 || !strings.Contains(r.stdout, "web:v1.1.0 ("+digests["v1.1.0"][:19]+") approved for rule ok by user/moto at ") ||
			!strings.Contains(r.stdout, "handed to the deployer deployer-from-stack") {
			t.Fatalf("approve: %+v", r)
		}
		wantHandOff(n, "deployer-from-stack", "ok", "v1.1.0", "user/moto", 1)
		if a := state("ok", "v1.1.0"); a.State != gate.Approved || a.By != "user/moto" {
			t.Errorf("approval after approve: %+v", a)
		}
		// The same operator again: told it was approved, and the hand-off
		// is sent again — the same push, which the deployer skips as running.
		r = run("approve", "--rule", "ok", "--digest", digests["v1.1.0"], "--function", "deployer")
		if r.code != 0 || !strings.Contains(r.stdout, "was already approved by user/moto at ") || !strings.Contains(r.stdout, "handing it to the deployer again") {
			t.Fatalf("approve twice: %+v", r)
		}
		wantHandOff(n+1, "deployer", "ok", "v1.1.0", "user/moto", 1)
		// Someone else: refused with who approved it, and nothing sent.
		r = run("approve", "--rule", "ok", "--tag", "v1.1.0", "--by", "bob", "--function", "deployer")
		if r.code != 1 || !strings.Contains(r.stderr, "already approved by user/moto at ") || r.stdout != "" {
			t.Errorf("approve by another: %+v", r)
		}
		wantHandOff(n+1, "deployer", "ok", "v1.1.0", "user/moto", 1)
	})

	t.Run("a hand-off that failed after the approval is sent by approving again", func(t *testing.T) {
		ask("fail", "v1.2.0", now)
		n := len(lambdaFake.taken())
		lambdaFake.failNext(1)
		r := run("approve", "--rule", "fail", "--tag", "v1.2.0", "--by", "alice", "--function", "deployer")
		if r.code != 1 || !strings.Contains(r.stdout, "approved for rule fail by alice") ||
			!strings.Contains(r.stderr, "the approval is recorded, but the deploy was not handed to the deployer") ||
			!strings.Contains(r.stderr, "run the same command again") {
			t.Fatalf("approve with a failing deployer: %+v", r)
		}
		wantHandOff(n, "deployer", "fail", "v1.2.0", "alice", 0)
		r = run("approve", "--rule", "fail", "--tag", "v1.2.0", "--by", "alice", "--function", "deployer")
		if r.code != 0 || !strings.Contains(r.stdout, "already approved by alice") {
			t.Fatalf("approve again: %+v", r)
		}
		wantHandOff(n, "deployer", "fail", "v1.2.0", "alice", 1)
	})

	t.Run("refusals say why and call nothing else", func(t *testing.T) {
		ask("sup", "v1.0.0", now)
		ask("sup", "v1.3.0", now) // a newer push supersedes v1.0.0
		ask("exp", "v1.1.0", now.Add(-2*time.Hour))
		ask("rej", "v1.1.0", now)
		if r := run("reject", "--rule", "rej", "--tag", "v1.1.0", "--reason", "CVE-2026-0001", "--by", "carol"); r.code != 0 ||
			!strings.Contains(r.stdout, "rejected for rule rej by carol at ") || !strings.Contains(r.stdout, ": CVE-2026-0001") {
			t.Fatalf("reject: %+v", r)
		}
		// The same rejection again (its answer lost, say): done already.
		if r := run("reject", "--rule", "rej", "--tag", "v1.1.0", "--reason", "CVE-2026-0001", "--by", "carol"); r.code != 0 ||
			!strings.Contains(r.stdout, "was already rejected for rule rej by carol") {
			t.Errorf("reject twice: %+v", r)
		}
		n := len(lambdaFake.taken())
		for _, tc := range []struct {
			name string
			args []string
			want string
		}{
			{"superseded", []string{"--rule", "sup", "--tag", "v1.0.0"}, "superseded at "},
			{"expired", []string{"--rule", "exp", "--tag", "v1.1.0"}, "expired at "},
			{"rejected", []string{"--rule", "rej", "--tag", "v1.1.0"}, "rejected by carol at "},
			{"not asked", []string{"--rule", "ok", "--tag", "v1.3.0"}, "there is none"},
			{"no such digest", []string{"--rule", "ok", "--digest", "sha256:" + strings.Repeat("0", 64)}, "there is none"},
			{"no such tag", []string{"--rule", "ok", "--tag", "v9.9.9"}, "tag v9.9.9 not found in repository web"},
			{"no approval on the rule", []string{"--rule", "plain", "--tag", "v1.1.0"}, "rule plain has no approval:"},
			{"no such rule", []string{"--rule", "nope", "--tag", "v1.1.0"}, `no rule "nope"`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := run(append([]string{"approve", "--by", "dave", "--function", "deployer"}, tc.args...)...)
				if r.code != 1 || !strings.Contains(r.stderr, tc.want) || r.stdout != "" {
					t.Errorf("approve %v = %+v, want a refusal with %q", tc.args, r, tc.want)
				}
			})
		}
		if got := len(lambdaFake.taken()); got != n {
			t.Errorf("refusals invoked the deployer %d times", got-n)
		}
		for _, tc := range []struct {
			rule, tag string
			want      gate.State
		}{{"sup", "v1.0.0", gate.Superseded}, {"sup", "v1.3.0", gate.Pending}, {"exp", "v1.1.0", gate.Expired}, {"rej", "v1.1.0", gate.Rejected}} {
			if a := state(tc.rule, tc.tag); a.State != tc.want {
				t.Errorf("%s %s is %s, want %s", tc.rule, tc.tag, a.State, tc.want)
			}
		}
		// Rejecting what is not pending is refused alike.
		if r := run("reject", "--rule", "sup", "--tag", "v1.0.0", "--reason", "x"); r.code != 1 || !strings.Contains(r.stderr, "superseded at ") {
			t.Errorf("reject a superseded one: %+v", r)
		}
	})
}

// TestApproveFlags: bad flags are usage errors before any call (cli with
// no moto fails the test on a call to AWS).
func TestApproveFlags(t *testing.T) {
	t.Parallel()
	d := "sha256:" + strings.Repeat("a", 64)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"approve", "--rule", "ok"}, "--tag or --digest is required"},
		{[]string{"approve", "--rule", "ok", "--tag", "v1", "--digest", d}, "give --tag or --digest, not both"},
		{[]string{"approve", "--tag", "v1"}, "--rule is required"},
		{[]string{"approve", "--rule", "ok", "--digest", "sha256:abc"}, `--digest "sha256:abc" is not sha256:<64 hex digits>`},
		{[]string{"reject", "--rule", "ok", "--tag", "v1"}, "--reason is required"},
		{[]string{"reject", "--rule", "ok", "--tag", "v1", "--reason", "  "}, "--reason is required"},
		{[]string{"reject", "--rule", "ok", "--reason", "x"}, "--tag or --digest is required"},
		{[]string{"approve", "--rule", "ok", "--tag", "v1", "--frobnicate"}, "flag provided but not defined"},
		{[]string{"plan", "--rule", "ok"}, "--rule and --tag go together"},
		{[]string{"plan", "--event", "e.json", "--tag", "v1"}, "give --event, or --rule and --tag, not both"},
	} {
		if r := cli(t, nil, "autodeploy", tc.args...); r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v = %+v, want a usage error with %q", tc.args, r, tc.want)
		}
	}
	if r := cli(t, nil, "", "approve", "--rule", "ok", "--tag", "v1"); r.code != 2 || !strings.Contains(r.stderr, "AUTODEPLOY_TABLE is required") {
		t.Errorf("approve without a table: %+v", r)
	}
}

// testGatesInPlanAndStatus against moto: plan says each gate's verdict
// (moto's ECR scans: StartImageScan, then a result set through moto's API),
// writing nothing; status lists pending approvals with their command and
// the scans and bakes under way.
func testGatesInPlanAndStatus(t *testing.T, m *testenv.Moto) {
	ctx := context.Background()
	cfg := m.AWSConfig()
	table := m.CreateTable(t, "autodeploy-plan")
	digests := m.Repository(t, "app", "a-1", "s-1", "s-2", "s-3")
	ecsClient := ecs.NewFromConfig(cfg)
	for _, svc := range []string{"app-a", "app-s"} {
		if _, err := emulator.SeedService(ctx, ecsClient, emulator.Service{Cluster: "prod", Name: svc, Family: svc,
			Containers: []emulator.Container{{Name: "app", Image: emulator.Registry + "/app:old"}}}); err != nil {
			t.Fatal(err)
		}
	}
	rulesFile := writeTempFile(t, `version: 1
rules:
  - {name: app-approval, repository: app, tags: ["a-*"], approval: {expires: 2h}, targets: [{cluster: prod, service: app-a}]}
  - {name: app-scan, repository: app, tags: ["s-*"], scan: {block: [CRITICAL], wait: 30m}, targets: [{cluster: prod, service: app-s}]}
`)
	ecrClient := ecr.NewFromConfig(cfg)
	for _, tag := range []string{"s-2", "s-3"} {
		if _, err := ecrClient.StartImageScan(ctx, &ecr.StartImageScanInput{RepositoryName: aws.String("app"),
			ImageId: &ecrtypes.ImageIdentifier{ImageDigest: aws.String(digests[tag])}}); err != nil {
			t.Fatal(err)
		}
	}
	// s-2's scan finds a CRITICAL; s-3's is moto's static result (1 HIGH,
	// which this rule does not block).
	setScanResult(t, m, "app", digests["s-2"], map[string]int{"CRITICAL": 1, "MEDIUM": 2})
	event := func(tag string) string {
		body := strings.NewReplacer("main-4f2a9c1", tag, `"web"`, `"app"`,
			"sha256:15794219de6dc381cac7805b3e96683d02e81b9cb72265b5cb8c1f501c21d71c", digests[tag]).Replace(string(testenv.Event(t, "ecr-push-main.json")))
		path := filepath.Join(t.TempDir(), tag+".json")
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	store := gate.NewStore(awsenv.StateTable(cfg), table)
	plan := func(tag string) run {
		t.Helper()
		return cliWith(t, cfg, table, "plan", "--event", event(tag), "--config", rulesFile)
	}
	for _, tc := range []struct {
		tag  string
		want []string
		not  []string
	}{
		{"a-1", []string{"rule app-approval → prod/app-a", "  waits: approval: waits for approval (a push, or the deployer's sweep, asks for it)"}, []string{"would register", "approve:"}},
		{"s-1", []string{"  waits: scan: waits for its scan"}, []string{"would register"}},
		{"s-2", []string{"  not deployed: scan: blocked: 1 CRITICAL"}, []string{"would register"}},
		{"s-3", []string{"  gates: passed", "would register a new revision of app-s"}, nil},
	} {
		r := plan(tc.tag)
		t.Logf("autodeploy plan of %s:\n%s", tc.tag, r.stdout)
		if r.code != 0 {
			t.Fatalf("plan %s: %+v", tc.tag, r)
		}
		for _, w := range tc.want {
			if !strings.Contains(r.stdout, w) {
				t.Errorf("plan %s lacks %q:\n%s", tc.tag, w, r.stdout)
			}
		}
		for _, w := range tc.not {
			if strings.Contains(r.stdout, w) {
				t.Errorf("plan %s says %q:\n%s", tc.tag, w, r.stdout)
			}
		}
	}
	// The notice's form: the rule's image under a tag, as its registry holds it.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--rule", "app-scan", "--tag", "s-2"}, "  not deployed: scan: blocked: 1 CRITICAL"},
		{[]string{"--rule", "app-approval", "--tag", "a-1"}, "image app:a-1 (" + digests["a-1"] + ") pushed at "},
		{[]string{"--rule", "app-approval", "--tag", "s-1"}, "ignored: rule app-approval does not take it: "},
	} {
		r := cliWith(t, cfg, table, append([]string{"plan", "--config", rulesFile}, tc.args...)...)
		t.Logf("autodeploy plan %v:\n%s", tc.args, r.stdout)
		if r.code != 0 || !strings.Contains(r.stdout, tc.want) || strings.Contains(r.stdout, "rule app-scan → ") != (tc.args[1] == "app-scan") {
			t.Errorf("plan %v = %+v, want %q", tc.args, r, tc.want)
		}
	}
	if r := cliWith(t, cfg, table, "plan", "--config", rulesFile, "--rule", "app-scan", "--tag", "s-9"); r.code != 1 || !strings.Contains(r.stderr, "tag s-9 not found in repository app") {
		t.Errorf("plan of a tag not there: %+v", r)
	}
	// Peek wrote nothing: no gate opened.
	if open, err := store.Open(ctx, "", ""); err != nil || len(open) != 0 {
		t.Errorf("plan opened gates: %+v, %v", open, err)
	}
	// The CLI's reconcile tells no one, so it asks for no approval (the
	// deployer's sweep does, and notices it) and deploys nothing gated.
	if r := cliWith(t, cfg, table, "reconcile", "--config", rulesFile); !strings.Contains(r.stdout+r.stderr, "waits for approval (a push, or the deployer's sweep, asks for it)") {
		t.Errorf("reconcile of a rule waiting for approval:\n%s%s", r.stdout, r.stderr)
	}
	if open, err := store.Open(ctx, gate.KindApproval, ""); err != nil || len(open) != 0 {
		t.Errorf("the CLI's reconcile asked for approvals %v (%v): no one would be told", open, err)
	}
	// Once the push asked, plan says until when, and how to approve.
	now := time.Now()
	if _, err := store.RequestApproval(ctx, gate.ApprovalRequest{Rule: "app-approval", Digest: digests["a-1"], Repository: "app", Tag: "a-1",
		PushedAt: now.Add(-time.Minute), At: now, Expires: 2 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	if r := plan("a-1"); !strings.Contains(r.stdout, "  waits: approval: waits for approval (until ") ||
		!strings.Contains(r.stdout, "  approve: autodeploy approve --rule app-approval --digest "+digests["a-1"]) {
		t.Errorf("plan of an asked approval:\n%s", r.stdout)
	}

	// status: the pending approval with its command; a scan and a bake
	// under way.
	if _, _, err := store.StartScan(ctx, gate.ScanRequest{Rule: "app-scan", Digest: digests["s-1"], Repository: "app", Tag: "s-1",
		PushedAt: now, At: now, Wait: 30 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.StartBake(ctx, gate.BakeRequest{Rule: "app-scan", Digest: digests["s-3"], Tag: "s-3", PushedAt: now, At: now,
		Bake: 15 * time.Minute, Alarms: []string{"app-5xx"}}); err != nil {
		t.Fatal(err)
	}
	r := cliWith(t, cfg, table, "status", "--config", rulesFile)
	t.Logf("autodeploy status:\n%s", r.stdout)
	if r.code != 0 {
		t.Fatalf("status: %+v", r)
	}
	rfc := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	for _, want := range [][]string{
		{"app-approval", "prod/app-a", "skipped: approval: waits for approval (until " + rfc(now.Add(2*time.Hour)) + ")"},
		{"WAITING FOR APPROVAL"},
		{"app-approval", "a-1 " + digests["a-1"][:19], rfc(now), rfc(now.Add(2 * time.Hour)), "autodeploy approve --rule app-approval --digest " + digests["a-1"]},
		{"GATES UNDER WAY"},
		{"app-scan", "s-1 " + digests["s-1"][:19], "waits for its scan (until " + rfc(now.Add(30*time.Minute)) + ")"},
		{"app-scan", "s-3 " + digests["s-3"][:19], "bakes until " + rfc(now.Add(15*time.Minute))},
	} {
		if !hasLine(r.stdout, want...) {
			t.Errorf("status has no line with %q:\n%s", want, r.stdout)
		}
	}
}

// hasLine reports whether one line of out holds every part.
func hasLine(out string, parts ...string) bool {
	for _, l := range strings.Split(out, "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(l, p)
		}
		if all {
			return true
		}
	}
	return false
}

// setScanResult makes moto's DescribeImageScanFindings of repository@digest
// answer a completed scan with counts (moto's API for static results).
func setScanResult(t *testing.T, m *testenv.Moto, repository, digest string, counts map[string]int) {
	t.Helper()
	body, err := json.Marshal(map[string]any{"region": testenv.Region, "account_id": testenv.Account, "results": []any{map[string]any{
		"registryId": testenv.Account, "repositoryName": repository, "imageId": map[string]string{"imageDigest": digest},
		"imageScanStatus":   map[string]string{"status": "COMPLETE", "description": "The scan was completed successfully."},
		"imageScanFindings": map[string]any{"findingSeverityCounts": counts, "findings": []any{}, "imageScanCompletedAt": 1764583200.125},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(m.Endpoint+"/moto-api/static/ecr/scan-finding-results", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("set moto's scan result: %s", resp.Status)
	}
}
