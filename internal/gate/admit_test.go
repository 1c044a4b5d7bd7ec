package gate

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecrevent"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/emulator"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/notify"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

// gatesRules are the rules of the Gates tests: a scan gate (web), an
// approval with targets in two places (api) and another (held), both gates
// (app), a scan blocking LOW, which Inspector's event does not count
// (strict), and a bake watching an alarm of the central account and one of a target account
// (svc).
const gatesRules = `version: 1
rules:
  - name: scanned
    repository: web
    tags: ["*"]
    scan: {block: [CRITICAL, HIGH], wait: 30m}
    targets: [{cluster: prod, service: web}]
  - name: approved
    repository: api
    tags: ["*"]
    approval: {expires: 24h}
    targets:
      - {cluster: prod, service: api}
      - {cluster: prod, service: api, account: "222222222222", region: eu-central-1}
  - name: held
    repository: api
    tags: ["rc-*"]
    approval: {expires: 24h}
    targets: [{cluster: qa, service: api}]
  - name: both
    repository: app
    tags: ["*"]
    scan: {block: [CRITICAL], wait: 30m}
    approval: {expires: 24h}
    targets: [{cluster: prod, service: app}]
  - name: strict
    repository: lib
    tags: ["*"]
    scan: {block: [HIGH, LOW], wait: 30m}
    targets: [{cluster: prod, service: lib}]
  - name: baked
    repository: svc
    tags: ["main-*"]
    targets:
      - {cluster: staging, service: svc}
      - {cluster: staging, service: svc, account: "222222222222", region: eu-central-1}
    promote: {tag: "verified-{tag}", bake: 15m, alarms: [svc-5xx, "222222222222:svc-latency"]}
`

// central is where the tests' functions run: moto's account and region.
var central = rules.Place{Account: testenv.Account, Region: testenv.Region}

// ms is a sub-second offset, as real ECR and CloudWatch report times.
const ms = time.Millisecond

// clock is a test's injected "now".
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

// notices records what the gates notice. A fake: notify's senders (SNS,
// chat) are tested in their package; here what matters is which notices,
// and how many.
type notices struct {
	mu  sync.Mutex
	got []notify.Notice
}

func (n *notices) Notify(_ context.Context, x notify.Notice) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.got = append(n.got, x)
	return nil
}

// take returns the notices since the last take.
func (n *notices) take() []notify.Notice {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := n.got
	n.got = nil
	return out
}

func outcomes(ns []notify.Notice) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.Outcome+" "+n.Digest[len(n.Digest)-4:])
	}
	return out
}

// scanReads records the places Admit read scans in, and can fail them.
// It wraps moto's ECR: the fake part is only the failure (moto's ECR
// does not fail on demand).
type scanReads struct {
	mu    sync.Mutex
	ecr   *ecr.Client
	calls []string // region/role
	fail  error
}

func (s *scanReads) reader(region, role string) ScanReader {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, region+"/"+role)
	return s
}

func (s *scanReads) DescribeImageScanFindings(ctx context.Context, in *ecr.DescribeImageScanFindingsInput, optFns ...func(*ecr.Options)) (*ecr.DescribeImageScanFindingsOutput, error) {
	s.mu.Lock()
	fail := s.fail
	s.mu.Unlock()
	if fail != nil {
		return nil, fail
	}
	return s.ecr.DescribeImageScanFindings(ctx, in, optFns...)
}

// fixture is one Gates on a table of its own in the tests' one moto.
type fixture struct {
	g       *Gates
	store   *Store
	db      *dynamodb.Client
	table   string
	clock   *clock
	notices *notices
	logs    *syncBuffer
	scans   *scanReads
	moto    *testenv.Moto
	ecr     *ecr.Client
	cfg     *rules.Config
}

// syncBuffer is a log sink the gates and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// lines are the JSON log lines with msg since the last call of lines.
func (s *syncBuffer) lines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	s.mu.Lock()
	data := s.b.Bytes()
	s.b = bytes.Buffer{}
	s.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l map[string]any
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("log line not JSON: %q: %v", sc.Text(), err)
		}
		if l["msg"] == msg {
			out = append(out, l)
		}
	}
	return out
}

// gateLog is a msg="gate" line as "gate outcome digest-tail: reason".
func gateLog(ls []map[string]any) []string {
	var out []string
	for _, l := range ls {
		dg, _ := l["digest"].(string)
		out = append(out, fmt.Sprintf("%v %v %s", l["gate"], l["outcome"], dg[max(0, len(dg)-4):]))
	}
	return out
}

// gateReasons is a msg="gate" line as "gate outcome digest-tail: reason",
// for the decisions whose reason the test checks.
func gateReasons(ls []map[string]any) []string {
	var out []string
	for _, l := range ls {
		dg, _ := l["digest"].(string)
		out = append(out, fmt.Sprintf("%v %v %s %v: %v", l["rule"], l["gate"], dg[max(0, len(dg)-4):], l["outcome"], l["reason"]))
	}
	return out
}

// gatesMoto is the moto server of TestGates (one for the whole binary's
// Gates tests) with the ECR repositories the rules name.
func gatesMoto(t *testing.T) *testenv.Moto {
	t.Helper()
	m := testenv.StartMoto(t)
	m.Repository(t, "web")
	m.Repository(t, "app")
	m.Repository(t, "lib")
	return m
}

func newFixture(t *testing.T, m *testenv.Moto, table string) *fixture {
	t.Helper()
	cfg, err := rules.Parse("autodeploy.yaml", []byte(gatesRules))
	if err != nil {
		t.Fatal(err)
	}
	m.CreateTable(t, table)
	db := dynamodb.NewFromConfig(m.AWSConfig())
	client := ecr.NewFromConfig(m.AWSConfig())
	f := &fixture{store: NewStore(db, table), db: db, table: table, clock: &clock{t: base}, notices: &notices{}, logs: &syncBuffer{},
		scans: &scanReads{ecr: client}, moto: m, ecr: client, cfg: cfg}
	f.g = &Gates{Rules: cfg, Central: central, Store: f.store, Scans: f.scans.reader, Notifier: f.notices,
		Log: slog.New(slog.NewJSONHandler(f.logs, nil)), Now: f.clock.Now}
	return f
}

func (f *fixture) rule(t *testing.T, name string) *rules.Rule {
	t.Helper()
	for _, r := range f.cfg.Rules {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no rule %s", name)
	return nil
}

// push puts repository:tag into moto's ECR and returns the push event of
// it at pushed (sub-second, as ECR's events say it).
func (f *fixture) push(t *testing.T, repository, tag string, pushed time.Time) ecrevent.Push {
	t.Helper()
	digest, err := emulator.PushImage(context.Background(), f.ecr, repository, tag)
	if err != nil {
		t.Fatal(err)
	}
	return ecrevent.Push{EventID: "ev-" + tag, Account: central.Account, Region: central.Region, Time: pushed,
		Repository: repository, Tag: tag, Digest: digest}
}

// scanned makes moto's ECR answer DescribeImageScanFindings for the
// image with status, description and counts (nil counts: no
// imageScanFindings; an empty status: no imageScanStatus at all), through
// moto's API for static scan results. moto answers ScanNotFound until a
// scan was started, as ECR does for an image never scanned.
func (f *fixture) scanned(t *testing.T, p ecrevent.Push, status, description string, counts map[string]int) {
	t.Helper()
	if _, err := f.ecr.StartImageScan(context.Background(), &ecr.StartImageScanInput{RepositoryName: aws.String(p.Repository),
		ImageId: &ecrtypes.ImageIdentifier{ImageDigest: aws.String(p.Digest)}}); err != nil {
		t.Fatal(err)
	}
	res := map[string]any{"registryId": central.Account, "repositoryName": p.Repository, "imageId": map[string]any{"imageDigest": p.Digest}}
	if status != "" {
		res["imageScanStatus"] = map[string]any{"status": status, "description": description}
	}
	if counts != nil {
		// ECR's completed findings say when their scan completed (epoch
		// seconds, with milliseconds); findings without it are no result.
		res["imageScanFindings"] = map[string]any{"findingSeverityCounts": counts, "findings": []any{}, "imageScanCompletedAt": 1764583200.125}
	}
	body, err := json.Marshal(map[string]any{"region": central.Region, "results": []any{res}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(f.moto.Endpoint+"/moto-api/static/ecr/scan-finding-results", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("moto static scan result: %s", resp.Status)
	}
}

// items counts the table's items (gates and their index entries).
func (f *fixture) items(t *testing.T) int {
	t.Helper()
	out, err := f.db.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(f.table), Select: dbtypes.SelectCount, ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	return int(out.Count)
}

func (f *fixture) admit(t *testing.T, rule string, p ecrevent.Push, mode Mode) Verdict {
	t.Helper()
	v, err := f.g.Admit(context.Background(), f.rule(t, rule), p, mode)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func rfc(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// TestGates runs the Gates tests (admit_test.go, end_test.go) on one moto
// server, each group on a table of its own: EndDue and AlarmChanged read
// every open gate of their table.
func TestGates(t *testing.T) {
	t.Parallel()
	m := gatesMoto(t)
	for _, g := range []struct {
		name string
		run  func(t *testing.T, f *fixture)
	}{
		{"AdmitScan", testAdmitScan},
		{"AdmitScanHeals", testAdmitScanHeals},
		{"AdmitScanReadFails", testAdmitScanReadFails},
		{"AdmitApprovalAsksOnce", testAdmitApprovalAsksOnce},
		{"AdmitApprovalDecided", testAdmitApprovalDecided},
		{"AdmitApprovalSupersedes", testAdmitApprovalSupersedes},
		{"AdmitApprovalAskedAgain", testAdmitApprovalAskedAgain},
		{"AdmitApprovalOverdue", testAdmitApprovalOverdue},
		{"AdmitScanThenApproval", testAdmitScanThenApproval},
		{"Peek", testPeek},
		{"EndApprovalAndScan", testEndApprovalAndScan},
		{"EndBake", testEndBake},
		{"AlarmChanged", testAlarmChanged},
		{"ScanResult", testScanResult},
		{"ScanHandBack", testScanHandBack},
		{"EndDue", testEndDue},
	} {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			g.run(t, newFixture(t, m, "t-"+strings.ToLower(g.name)))
		})
	}
}

// A push of a rule with scan: the registry's answer now decides; a second
// delivery of the push decides the same and notices nothing again.
func testAdmitScan(t *testing.T, f *fixture) {
	ctx := context.Background()
	now := base.Add(1234 * ms)
	f.clock.Set(now)
	due := now.Add(30 * time.Minute)
	for i, tc := range []struct {
		name string
		// status, description, counts: what the registry answers;
		// status "none": no scan at all (ScanNotFound).
		status, description string
		counts              map[string]int
		want                Verdict
		state               State
		reason              string
		notices             []string
		// log: the gate lines over two deliveries, "gate outcome": the
		// transition this push made (once), then each delivery's decision.
		log []string
	}{
		{name: "no result yet: pending, waits", status: "none",
			want:  Verdict{Gate: KindScan, State: Pending, Reason: "waits for its scan (until " + rfc(due) + ")"},
			state: Pending, log: []string{"scan waits", "scan waits"}},
		{name: "in progress: pending, waits", status: "IN_PROGRESS", description: "scanning",
			want:  Verdict{Gate: KindScan, State: Pending, Reason: "waits for its scan (until " + rfc(due) + ")"},
			state: Pending, log: []string{"scan waits", "scan waits"}},
		{name: "enhanced scanning's ACTIVE before Inspector scanned (no findings): pending, waits", status: "ACTIVE",
			description: "Continuous scan is selected for image.",
			want:        Verdict{Gate: KindScan, State: Pending, Reason: "waits for its scan (until " + rfc(due) + ")"},
			state:       Pending, log: []string{"scan waits", "scan waits"}},
		{name: "an answer with no status: pending, waits", status: "",
			want:  Verdict{Gate: KindScan, State: Pending, Reason: "waits for its scan (until " + rfc(due) + ")"},
			state: Pending, log: []string{"scan waits", "scan waits"}},
		{name: "complete and clean: pass", status: "COMPLETE", description: "The scan was completed successfully.",
			counts: map[string]int{"MEDIUM": 2, "INFORMATIONAL": 7}, want: cleanByDescribe, state: Clean, log: []string{"scan clean", "scan passed", "scan passed"}},
		{name: "complete with no findings: pass", status: "COMPLETE", counts: map[string]int{}, want: cleanByDescribe, state: Clean,
			log: []string{"scan clean", "scan passed", "scan passed"}},
		{name: "blocked: a final refusal, noticed once", status: "COMPLETE",
			counts: map[string]int{"CRITICAL": 1, "LOW": 3},
			want:   Verdict{Gate: KindScan, State: Blocked, Final: true, Reason: "blocked: 1 CRITICAL"},
			state:  Blocked, reason: "1 CRITICAL", notices: []string{notify.ScanBlocked}, log: []string{"scan blocked", "scan refused", "scan refused"}},
		{name: "enhanced scanning's ACTIVE with findings: blocked", status: "ACTIVE",
			counts: map[string]int{"HIGH": 2, "TOTAL": 2},
			want:   Verdict{Gate: KindScan, State: Blocked, Final: true, Reason: "blocked: 2 HIGH"},
			state:  Blocked, reason: "2 HIGH", notices: []string{notify.ScanBlocked}, log: []string{"scan blocked", "scan refused", "scan refused"}},
		{name: "FAILED: failed, noticed once", status: "FAILED", description: "The scan failed.",
			want:  Verdict{Gate: KindScan, State: ScanFailed, Final: true, Reason: "its scan failed: The scan failed."},
			state: ScanFailed, reason: "The scan failed.", notices: []string{notify.ScanNotDone}, log: []string{"scan failed", "scan refused", "scan refused"}},
		{name: "UNSUPPORTED_IMAGE without a description: failed", status: "UNSUPPORTED_IMAGE",
			want:  Verdict{Gate: KindScan, State: ScanFailed, Final: true, Reason: "its scan failed: UNSUPPORTED_IMAGE"},
			state: ScanFailed, reason: "UNSUPPORTED_IMAGE", notices: []string{notify.ScanNotDone}, log: []string{"scan failed", "scan refused", "scan refused"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := f.push(t, "web", fmt.Sprintf("v1.0.%d", i), base.Add(250*ms))
			if tc.status != "none" {
				f.scanned(t, p, tc.status, tc.description, tc.counts)
			}
			for delivery := 1; delivery <= 2; delivery++ {
				if diff := cmp.Diff(tc.want, f.admit(t, "scanned", p, FromPush)); diff != "" {
					t.Errorf("delivery %d: verdict (-want +got):\n%s", delivery, diff)
				}
			}
			sc, found, err := f.store.GetScan(ctx, "scanned", p.Digest)
			if err != nil || !found || sc.State != tc.state || sc.Reason != tc.reason {
				t.Errorf("stored scan = %+v, %v, %v; want %s %q", sc, found, err, tc.state, tc.reason)
			}
			if tc.state == Pending && (!sc.Due.Equal(due) || !sc.PushedAt.Equal(p.Time) || sc.Tag != p.Tag) {
				t.Errorf("pending scan = %+v; want due %s, pushed %s, tag %s", sc, due, p.Time, p.Tag)
			}
			if tc.state != Pending && sc.Source != SourceDescribe {
				t.Errorf("source = %q, want %q", sc.Source, SourceDescribe)
			}
			ns := f.notices.take()
			var got []string
			for _, n := range ns {
				got = append(got, n.Outcome)
			}
			if diff := cmp.Diff(tc.notices, got); diff != "" {
				t.Errorf("notices over two deliveries (-want +got):\n%s", diff)
			}
			if tc.state == Blocked {
				want := notify.GateNotice(notify.Notice{Rule: "scanned", Repository: "web", Tag: p.Tag, Digest: p.Digest, Reason: tc.reason,
					Account: central.Account, Region: central.Region},
					notify.ScanBlocked, notify.Gate{Kind: "scan", Findings: tc.reason, Targets: []string{"prod/web in " + central.Account + " " + central.Region}})
				if diff := cmp.Diff(want, ns[0]); diff != "" {
					t.Errorf("blocked notice (-want +got):\n%s", diff)
				}
			}
			var wantLog []string
			for _, l := range tc.log {
				wantLog = append(wantLog, l+" "+p.Digest[len(p.Digest)-4:])
			}
			ls := f.logs.lines(t, "gate")
			if diff := cmp.Diff(wantLog, gateLog(ls)); diff != "" {
				t.Errorf("gate log lines (-want +got):\n%s", diff)
			}
			// Each delivery's decision (the last two lines) says the
			// verdict's reason, for the rule.
			if len(ls) >= 2 {
				tail := p.Digest[len(p.Digest)-4:]
				outcome := map[bool]string{true: "refused", false: "waits"}[tc.want.Final]
				if tc.want.Pass {
					outcome = "passed"
				}
				dec := "scanned scan " + tail + " " + outcome + ": " + tc.want.Reason
				if diff := cmp.Diff([]string{dec, dec}, gateReasons(ls[len(ls)-2:])); diff != "" {
					t.Errorf("decision lines (-want +got):\n%s", diff)
				}
			}
		})
	}
	f.scans.mu.Lock()
	defer f.scans.mu.Unlock()
	for _, c := range f.scans.calls {
		if c != central.Region+"/" {
			t.Errorf("scan read in %q, want the central registry's region with the functions' own role", c)
			break
		}
	}
}

// cleanByDescribe is the pass of a scan judged clean by the registry's
// findings (DescribeImageScanFindings): the scan gate says why it passed.
var cleanByDescribe = Verdict{Pass: true, Gate: KindScan, State: Clean, Reason: "its scan is clean (DescribeImageScanFindings)"}

// A pending scan whose result reached the registry while its event was
// lost is decided by the next Admit: a sweep's (the heal), or a push's.
func testAdmitScanHeals(t *testing.T, f *fixture) {
	ctx := context.Background()
	for i, tc := range []struct {
		name    string
		mode    Mode
		counts  map[string]int
		want    Verdict
		notices []string
	}{
		{"clean, found by a sweep", FromSweep, map[string]int{"LOW": 1}, cleanByDescribe, nil},
		{"blocked, found by a sweep", FromSweep, map[string]int{"HIGH": 1},
			Verdict{Gate: KindScan, State: Blocked, Final: true, Reason: "blocked: 1 HIGH"}, []string{notify.ScanBlocked}},
		{"clean, found by a redrive of the push", FromPush, map[string]int{}, cleanByDescribe, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.clock.Set(base.Add(500 * ms))
			p := f.push(t, "web", fmt.Sprintf("heal-%d", i), base.Add(100*ms))
			if v := f.admit(t, "scanned", p, FromPush); v.State != Pending {
				t.Fatalf("first admit = %+v, want pending", v)
			}
			f.scanned(t, p, "COMPLETE", "", tc.counts)
			f.clock.Set(base.Add(10*time.Minute + 750*ms))
			if diff := cmp.Diff(tc.want, f.admit(t, "scanned", p, tc.mode)); diff != "" {
				t.Errorf("verdict once the result is there (-want +got):\n%s", diff)
			}
			sc, _, err := f.store.GetScan(ctx, "scanned", p.Digest)
			if err != nil || sc.Source != SourceDescribe || !sc.EndedAt.Equal(base.Add(10*time.Minute+750*ms)) {
				t.Errorf("scan = %+v, %v; want ended at the heal by %s", sc, err, SourceDescribe)
			}
			if open, err := f.store.Open(ctx, KindScan, "scanned"); err != nil || len(open) != 0 {
				t.Errorf("open scans = %+v, %v; want none", open, err)
			}
			var got []string
			for _, n := range f.notices.take() {
				got = append(got, n.Outcome)
			}
			if diff := cmp.Diff(tc.notices, got); diff != "" {
				t.Errorf("notices (-want +got):\n%s", diff)
			}
			f.logs.lines(t, "gate")
		})
	}
}

// A registry that cannot be read is an error (the push is tried again),
// with nothing written: a scan is never judged on a failed read.
func testAdmitScanReadFails(t *testing.T, f *fixture) {
	ctx := context.Background()
	p := f.push(t, "web", "unread", base)
	for _, tc := range []struct {
		name string
		fail error
		rule *rules.Rule
		is   func(error) bool
	}{
		{"throttled (a fake failure)", errors.New("ThrottlingException: Rate exceeded"), f.rule(t, "scanned"),
			func(err error) bool { return strings.Contains(err.Error(), "ThrottlingException") }},
		// moto's own failure: a repository that is not there.
		{"repository not found (moto)", nil, &rules.Rule{Name: "scanned", Repository: "gone", Scan: &rules.Scan{Block: []string{"CRITICAL"}, Wait: time.Minute}},
			func(err error) bool { var nf *ecrtypes.RepositoryNotFoundException; return errors.As(err, &nf) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.scans.mu.Lock()
			f.scans.fail = tc.fail
			f.scans.mu.Unlock()
			before := f.items(t)
			for _, mode := range []Mode{FromPush, FromSweep, ReadOnly} {
				v, err := f.g.Admit(ctx, tc.rule, p, mode)
				if err == nil || !tc.is(err) || !strings.Contains(err.Error(), "read the scan of") {
					t.Errorf("mode %d: Admit = %+v, %v; want the read's error, wrapped", mode, v, err)
				}
			}
			if after := f.items(t); after != before {
				t.Errorf("items %d → %d; want nothing written", before, after)
			}
			if ns := f.notices.take(); len(ns) != 0 {
				t.Errorf("notices %v, want none", outcomes(ns))
			}
			f.logs.lines(t, "gate")
		})
	}
	f.scans.mu.Lock()
	f.scans.fail = nil
	f.scans.mu.Unlock()
}

// approvalPush is a push of api (no registry read: approval alone).
func approvalPush(i int, tag string, pushed time.Time) ecrevent.Push {
	return ecrevent.Push{EventID: fmt.Sprintf("ev-%d", i), Account: central.Account, Region: central.Region, Time: pushed,
		Repository: "api", Tag: tag, Digest: d(i)}
}

var apiTargets = []string{"prod/api in " + testenv.Account + " " + testenv.Region, "prod/api in 222222222222 eu-central-1"}

// The first push asks once, naming the targets; its second delivery finds
// the approval pending and asks nothing.
func testAdmitApprovalAsksOnce(t *testing.T, f *fixture) {
	now := base.Add(2*time.Second + 345*ms)
	f.clock.Set(now)
	p := approvalPush(1, "v1.0.0", base.Add(123*ms))
	due := now.Add(24 * time.Hour)
	want := Verdict{Gate: KindApproval, State: Pending, Reason: "waits for approval (until " + rfc(due) + ")"}
	for delivery := 1; delivery <= 2; delivery++ {
		if diff := cmp.Diff(want, f.admit(t, "approved", p, FromPush)); diff != "" {
			t.Errorf("delivery %d (-want +got):\n%s", delivery, diff)
		}
	}
	wantNotice := notify.GateNotice(notify.Notice{Rule: "approved", Repository: "api", Tag: "v1.0.0", Digest: d(1), PushedAt: p.Time},
		notify.AwaitingApproval, notify.Gate{Kind: "approval", Due: due, Targets: apiTargets})
	if diff := cmp.Diff([]notify.Notice{wantNotice}, f.notices.take()); diff != "" {
		t.Errorf("notices over two deliveries (-want +got):\n%s", diff)
	}
	// Each delivery's decision is a line; the second asks no one.
	waits := "approved approval 0001 waits: waits for approval (until " + rfc(due) + ")"
	if diff := cmp.Diff([]string{waits, waits}, gateReasons(f.logs.lines(t, "gate"))); diff != "" {
		t.Errorf("gate log (-want +got):\n%s", diff)
	}
	a, found, err := f.store.GetApproval(context.Background(), "approved", d(1))
	if err != nil || !found || a.State != Pending || !a.PushedAt.Equal(p.Time) || !a.Due.Equal(due) {
		t.Errorf("approval = %+v, %v, %v", a, found, err)
	}
}

// A decided approval stands: Admit says so, Final unless approved, logs
// each delivery's decision and notices nothing; an overdue one (its timer
// not fired yet) is expired by the first delivery, noticed once as the
// timer would.
func testAdmitApprovalDecided(t *testing.T, f *fixture) {
	ctx := context.Background()
	asked := base.Add(1500 * ms)
	due := asked.Add(24 * time.Hour)
	for i, tc := range []struct {
		name string
		// decide brings the approval of d(i) (asked at asked) on.
		decide func(t *testing.T, digest string)
		at     time.Time // when Admit asks
		mode   Mode
		want   Verdict
		stored State
		// notices and log (besides each delivery's decision) over two
		// deliveries.
		notices []string
		log     []string
	}{
		{"approved: pass, saying by whom", func(t *testing.T, digest string) {
			if _, err := f.store.Approve(ctx, "approved", digest, "alice", asked.Add(time.Minute+250*ms)); err != nil {
				t.Fatal(err)
			}
		}, asked.Add(2 * time.Minute), FromPush,
			Verdict{Pass: true, Gate: KindApproval, State: Approved, Reason: "approved by alice at " + rfc(asked.Add(time.Minute))}, Approved, nil, nil},
		{"rejected: final, with who and why", func(t *testing.T, digest string) {
			if _, err := f.store.Reject(ctx, "approved", digest, "bob", "not on a Friday", asked.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
		}, asked.Add(2 * time.Minute), FromPush,
			Verdict{Gate: KindApproval, State: Rejected, Final: true, Reason: "rejected by bob: not on a Friday"}, Rejected, nil, nil},
		{"expired: final", func(t *testing.T, digest string) {
			if _, ok, err := f.store.ExpireApproval(ctx, "approved", digest, due.Add(ms)); err != nil || !ok {
				t.Fatal(ok, err)
			}
		}, due.Add(time.Minute), FromSweep,
			Verdict{Gate: KindApproval, State: Expired, Final: true, Reason: "its approval expired at " + rfc(due)}, Expired, nil, nil},
		{"overdue, its timer not fired yet: a sweep expires it, noticed once", func(*testing.T, string) {}, due.Add(ms), FromSweep,
			Verdict{Gate: KindApproval, State: Expired, Final: true, Reason: "its approval expired at " + rfc(due)}, Expired,
			[]string{notify.ApprovalExpired}, []string{"expired: no one approved it by " + rfc(due)}},
		{"superseded: final, naming the newer push", func(t *testing.T, _ string) {
			if _, err := f.store.RequestApproval(ctx, ApprovalRequest{Rule: "approved", Digest: d(104), Repository: "api", Tag: "v9",
				PushedAt: base.Add(time.Hour), At: asked.Add(time.Minute), Expires: 24 * time.Hour}); err != nil {
				t.Fatal(err)
			}
		}, asked.Add(2 * time.Minute), FromPush,
			Verdict{Gate: KindApproval, State: Superseded, Final: true, Reason: "its approval was superseded by a newer push (" + d(104) + ")"}, Superseded, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Each row on a digest of its own, pushed in order, so a
			// row's newer push supersedes nothing of another row's.
			p := approvalPush(10+i, fmt.Sprintf("v1.%d.0", i), base.Add(time.Duration(i)*time.Second+10*ms))
			f.clock.Set(asked)
			if v := f.admit(t, "approved", p, FromPush); v.State != Pending {
				t.Fatalf("asking: %+v", v)
			}
			tc.decide(t, p.Digest)
			f.notices.take()
			f.logs.lines(t, "gate")
			f.clock.Set(tc.at)
			for delivery := 1; delivery <= 2; delivery++ {
				if diff := cmp.Diff(tc.want, f.admit(t, "approved", p, tc.mode)); diff != "" {
					t.Errorf("delivery %d: verdict (-want +got):\n%s", delivery, diff)
				}
			}
			if a, _, err := f.store.GetApproval(ctx, "approved", p.Digest); err != nil || a.State != tc.stored {
				t.Errorf("stored approval = %+v, %v; want %s", a, err, tc.stored)
			}
			var got []string
			for _, n := range f.notices.take() {
				got = append(got, n.Outcome)
			}
			if diff := cmp.Diff(tc.notices, got); diff != "" {
				t.Errorf("notices over two deliveries (-want +got):\n%s", diff)
			}
			outcome := "refused"
			if tc.want.Pass {
				outcome = "passed"
			}
			tail := p.Digest[len(p.Digest)-4:]
			var wantLog []string
			for _, l := range tc.log {
				wantLog = append(wantLog, "approved approval "+tail+" "+l)
			}
			dec := "approved approval " + tail + " " + outcome + ": " + tc.want.Reason
			wantLog = append(wantLog, dec, dec)
			if diff := cmp.Diff(wantLog, gateReasons(f.logs.lines(t, "gate"))); diff != "" {
				t.Errorf("gate log over two deliveries (-want +got):\n%s", diff)
			}
			// Each row's approval ends before the next row asks.
			for _, o := range must(f.store.Open(ctx, KindApproval, "approved")) {
				var refused *RefusedError // an overdue one is expired instead
				if _, err := f.store.Reject(ctx, "approved", o.Digest, "test", "next row", tc.at); err != nil && !errors.As(err, &refused) {
					t.Fatal(err)
				}
			}
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// stored is a gate a Get read (its zero value when there is none).
func stored[T any](v T, _ bool, err error) T { return must(v, err) }

// A newer push of another digest supersedes the older pending approval,
// noticed once; the older push delivered late (after the newer) is
// superseded at once and asks no one.
func testAdmitApprovalSupersedes(t *testing.T, f *fixture) {
	ctx := context.Background()
	f.clock.Set(base.Add(900 * ms))
	older := approvalPush(1, "v1.0.0", base.Add(100*ms))
	newer := approvalPush(2, "v1.1.0", base.Add(time.Minute+200*ms))
	f.admit(t, "approved", older, FromPush)
	f.clock.Set(base.Add(time.Minute + 900*ms))
	for delivery := 1; delivery <= 2; delivery++ {
		if v := f.admit(t, "approved", newer, FromPush); v.State != Pending || v.Final {
			t.Errorf("delivery %d of the newer push: %+v", delivery, v)
		}
	}
	ns := f.notices.take()
	if diff := cmp.Diff([]string{notify.AwaitingApproval + " 0001", notify.ApprovalSuperseded + " 0001", notify.AwaitingApproval + " 0002"}, outcomes(ns)); diff != "" {
		t.Errorf("notices (-want +got):\n%s", diff)
	}
	if len(ns) == 3 && (ns[1].Gate.NewerTag != "v1.1.0" || ns[1].Tag != "v1.0.0") {
		t.Errorf("superseded notice = %+v %+v; want v1.0.0 superseded by v1.1.0", ns[1], ns[1].Gate)
	}
	want := Verdict{Gate: KindApproval, State: Superseded, Final: true, Reason: "its approval was superseded by a newer push (" + d(2) + ")"}
	if diff := cmp.Diff(want, f.admit(t, "approved", older, FromPush)); diff != "" {
		t.Errorf("the older push again (-want +got):\n%s", diff)
	}
	// The newer push's transition of the older (superseded), each
	// delivery's decision, and the older push's refusal.
	if diff := cmp.Diff([]string{"approval waits 0001", "approval superseded 0001", "approval waits 0002", "approval waits 0002", "approval refused 0001"},
		gateLog(f.logs.lines(t, "gate"))); diff != "" {
		t.Errorf("gate log (-want +got):\n%s", diff)
	}

	// An older push delivered after the newer one asked: superseded by it
	// at once, and no person is asked to approve what cannot be approved.
	late := approvalPush(3, "v1.0.1", base.Add(30*time.Second))
	want = Verdict{Gate: KindApproval, State: Superseded, Final: true, Reason: "its approval was superseded by a newer push (" + d(2) + ")"}
	for delivery := 1; delivery <= 2; delivery++ {
		if diff := cmp.Diff(want, f.admit(t, "approved", late, FromPush)); diff != "" {
			t.Errorf("delivery %d of a late older push (-want +got):\n%s", delivery, diff)
		}
	}
	if ns := f.notices.take(); len(ns) != 0 {
		t.Errorf("notices of a late older push: %v, want none", outcomes(ns))
	}
	if a, _, err := f.store.GetApproval(ctx, "approved", d(2)); err != nil || a.State != Pending {
		t.Errorf("the newer approval = %+v, %v; want pending", a, err)
	}
	refused := "approved approval 0003 refused: its approval was superseded by a newer push (" + d(2) + ")"
	if diff := cmp.Diff([]string{"approved approval 0003 superseded: a newer push of the rule waits: " + d(2), refused, refused},
		gateReasons(f.logs.lines(t, "gate"))); diff != "" {
		t.Errorf("gate log of a late older push (-want +got):\n%s", diff)
	}
}

// An expired approval is asked again only by a newer push of the digest:
// never by a sweep, nor by the same push delivered again.
func testAdmitApprovalAskedAgain(t *testing.T, f *fixture) {
	ctx := context.Background()
	asked := base.Add(700 * ms)
	f.clock.Set(asked)
	p := approvalPush(1, "v2.0.0", base.Add(50*ms))
	f.admit(t, "approved", p, FromPush)
	due := asked.Add(24 * time.Hour)
	if _, ok, err := f.store.ExpireApproval(ctx, "approved", d(1), due); err != nil || !ok {
		t.Fatal(ok, err)
	}
	f.notices.take()
	expired := Verdict{Gate: KindApproval, State: Expired, Final: true, Reason: "its approval expired at " + rfc(due)}
	later := p
	later.Time, later.EventID = due.Add(time.Hour+5*ms), "ev-again"
	now := due.Add(time.Hour + 800*ms)
	f.clock.Set(now)
	for _, tc := range []struct {
		name string
		push ecrevent.Push
		mode Mode
	}{
		{"a sweep, with a newer image time", later, FromSweep},
		{"the same push again", p, FromPush},
		{"a dry run", later, ReadOnly},
	} {
		if diff := cmp.Diff(expired, f.admit(t, "approved", tc.push, tc.mode)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
	if ns := f.notices.take(); len(ns) != 0 {
		t.Errorf("notices before the newer push: %v", outcomes(ns))
	}
	want := Verdict{Gate: KindApproval, State: Pending, Reason: "waits for approval (until " + rfc(now.Add(24*time.Hour)) + ")"}
	for delivery := 1; delivery <= 2; delivery++ {
		if diff := cmp.Diff(want, f.admit(t, "approved", later, FromPush)); diff != "" {
			t.Errorf("delivery %d of a newer push (-want +got):\n%s", delivery, diff)
		}
	}
	if diff := cmp.Diff([]string{notify.AwaitingApproval + " 0001"}, outcomes(f.notices.take())); diff != "" {
		t.Errorf("notices of the newer push (-want +got):\n%s", diff)
	}
	a, _, err := f.store.GetApproval(ctx, "approved", d(1))
	if err != nil || a.State != Pending || !a.PushedAt.Equal(later.Time) {
		t.Errorf("approval = %+v, %v; want pending for the newer push", a, err)
	}
	f.logs.lines(t, "gate")
}

// An approval overdue while still pending (its timer not fired, or lost)
// is expired by the push that finds it, noticed once as its timer would
// have: then a newer push of the digest asks anew, noticed once, and the
// same push again is refused as expired.
func testAdmitApprovalOverdue(t *testing.T, f *fixture) {
	ctx := context.Background()
	asked := base.Add(600 * ms)
	due := asked.Add(24 * time.Hour)
	now := due.Add(2*time.Hour + 125*ms)
	for i, tc := range []struct {
		name string
		// newer: the push that finds it overdue is a newer push of the
		// digest (else the push that asked, delivered again).
		newer   bool
		want    Verdict
		stored  State
		notices []notify.Notice
		log     []string // rule gate digest outcome: reason, over two deliveries
	}{
		{name: "the same push again: expired, noticed once, refused",
			want:   Verdict{Gate: KindApproval, State: Expired, Final: true, Reason: "its approval expired at " + rfc(due)},
			stored: Expired,
			notices: []notify.Notice{notify.GateNotice(notify.Notice{Rule: "approved", Repository: "api", Tag: "v5.0.0", Digest: d(1)},
				notify.ApprovalExpired, notify.Gate{Kind: "approval", Due: due})},
			log: []string{
				"approved approval 0001 expired: no one approved it by " + rfc(due),
				"approved approval 0001 refused: its approval expired at " + rfc(due),
				"approved approval 0001 refused: its approval expired at " + rfc(due),
			}},
		{name: "a newer push: expired, noticed once, then asked anew, noticed once", newer: true,
			want:   Verdict{Gate: KindApproval, State: Pending, Reason: "waits for approval (until " + rfc(now.Add(24*time.Hour)) + ")"},
			stored: Pending,
			notices: []notify.Notice{
				notify.GateNotice(notify.Notice{Rule: "approved", Repository: "api", Tag: "v5.1.0", Digest: d(2)},
					notify.ApprovalExpired, notify.Gate{Kind: "approval", Due: due}),
				notify.GateNotice(notify.Notice{Rule: "approved", Repository: "api", Tag: "v5.1.0", Digest: d(2), PushedAt: due.Add(time.Hour + 5*ms)},
					notify.AwaitingApproval, notify.Gate{Kind: "approval", Due: now.Add(24 * time.Hour), Targets: apiTargets}),
			},
			log: []string{
				"approved approval 0002 expired: no one approved it by " + rfc(due),
				"approved approval 0002 waits: waits for approval (until " + rfc(now.Add(24*time.Hour)) + ")",
				"approved approval 0002 waits: waits for approval (until " + rfc(now.Add(24*time.Hour)) + ")",
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.clock.Set(asked)
			p := approvalPush(i+1, fmt.Sprintf("v5.%d.0", i), base.Add(time.Duration(i)*time.Second+50*ms))
			if v := f.admit(t, "approved", p, FromPush); v.State != Pending {
				t.Fatalf("asking: %+v", v)
			}
			f.notices.take()
			f.logs.lines(t, "gate")
			f.clock.Set(now)
			again := p
			if tc.newer {
				again.Time, again.EventID = due.Add(time.Hour+5*ms), "ev-newer"
			}
			for delivery := 1; delivery <= 2; delivery++ {
				if diff := cmp.Diff(tc.want, f.admit(t, "approved", again, FromPush)); diff != "" {
					t.Errorf("delivery %d: verdict (-want +got):\n%s", delivery, diff)
				}
			}
			a := stored(f.store.GetApproval(ctx, "approved", p.Digest))
			if a.State != tc.stored || !a.PushedAt.Equal(again.Time) {
				t.Errorf("approval = %+v; want %s for the push of %s", a, tc.stored, again.Time)
			}
			if diff := cmp.Diff(tc.notices, f.notices.take()); diff != "" {
				t.Errorf("notices over two deliveries (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.log, gateReasons(f.logs.lines(t, "gate"))); diff != "" {
				t.Errorf("gate log over two deliveries (-want +got):\n%s", diff)
			}
			// Open: only an approval asked anew, due at its new time.
			var open []string
			for _, o := range must(f.store.Open(ctx, KindApproval, "approved")) {
				open = append(open, o.Digest[len(o.Digest)-4:]+" due "+rfc(o.Due))
			}
			var wantOpen []string
			if tc.stored == Pending {
				wantOpen = []string{p.Digest[len(p.Digest)-4:] + " due " + rfc(now.Add(24*time.Hour))}
			}
			if diff := cmp.Diff(wantOpen, open); diff != "" {
				t.Errorf("open approvals (-want +got):\n%s", diff)
			}
			// The row's approval ends before the next row asks.
			for _, o := range must(f.store.Open(ctx, KindApproval, "approved")) {
				if _, err := f.store.Reject(ctx, "approved", o.Digest, "test", "next row", now); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// The scan comes first: no person is asked to approve an image its scan
// blocks, or may still block.
func testAdmitScanThenApproval(t *testing.T, f *fixture) {
	ctx := context.Background()
	f.clock.Set(base.Add(3300 * ms))
	for i, tc := range []struct {
		name    string
		status  string
		counts  map[string]int
		want    State
		gate    Kind
		notices []string
	}{
		{"blocked: refused, no one asked", "COMPLETE", map[string]int{"CRITICAL": 1}, Blocked, KindScan, []string{notify.ScanBlocked}},
		{"scan pending: no one asked yet", "none", nil, Pending, KindScan, nil},
		{"clean: a person is asked", "COMPLETE", map[string]int{"HIGH": 4}, Pending, KindApproval, []string{notify.AwaitingApproval}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := f.push(t, "app", fmt.Sprintf("v3.%d", i), base.Add(time.Second+5*ms))
			if tc.status != "none" {
				f.scanned(t, p, tc.status, "", tc.counts)
			}
			for delivery := 1; delivery <= 2; delivery++ {
				if v := f.admit(t, "both", p, FromPush); v.Gate != tc.gate || v.State != tc.want {
					t.Errorf("delivery %d: %+v; want %s %s", delivery, v, tc.gate, tc.want)
				}
			}
			_, asked, err := f.store.GetApproval(ctx, "both", p.Digest)
			if err != nil || asked != (tc.gate == KindApproval) {
				t.Errorf("approval asked: %v, %v", asked, err)
			}
			var got []string
			for _, n := range f.notices.take() {
				got = append(got, n.Outcome)
			}
			if diff := cmp.Diff(tc.notices, got); diff != "" {
				t.Errorf("notices (-want +got):\n%s", diff)
			}
			f.logs.lines(t, "gate")
		})
	}
}

// Peek (plan, a dry run) says what Admit would, and writes, notices and
// logs nothing.
func testPeek(t *testing.T, f *fixture) {
	ctx := context.Background()
	now := base.Add(4*time.Second + 40*ms)
	f.clock.Set(now)
	for i, tc := range []struct {
		name   string
		rule   string
		status string
		counts map[string]int
		// before: Admit FromPush first (a gate exists when Peek asks).
		before bool
		want   Verdict
		// recorded is ReadRecorded's verdict (the CLI's sweep): only what a
		// gate recorded passes; nil: as want.
		recorded *Verdict
	}{
		{"no scan yet", "scanned", "none", nil, false, Verdict{Gate: KindScan, State: Pending, Reason: "waits for its scan"}, &Verdict{Gate: KindScan, State: Pending, Reason: "waits for its scan (the deployer's sweep reads it)"}},
		{"clean in the registry, no gate yet", "scanned", "COMPLETE", map[string]int{"LOW": 1}, false, cleanByDescribe, &Verdict{Gate: KindScan, State: Pending, Reason: "waits for its scan (the deployer's sweep reads it)"}},
		{"blocked in the registry, no gate yet", "scanned", "COMPLETE", map[string]int{"CRITICAL": 1},
			false, Verdict{Gate: KindScan, State: Blocked, Final: true, Reason: "blocked: 1 CRITICAL"}, &Verdict{Gate: KindScan, State: Pending, Reason: "waits for its scan (the deployer's sweep reads it)"}},
		{"failed in the registry, no gate yet", "scanned", "FAILED", nil, false,
			Verdict{Gate: KindScan, State: ScanFailed, Final: true, Reason: "its scan failed: FAILED"}, &Verdict{Gate: KindScan, State: Pending, Reason: "waits for its scan (the deployer's sweep reads it)"}},
		{"a pending scan", "scanned", "none", nil, true, Verdict{Gate: KindScan, State: Pending, Reason: "waits for its scan"},
			&Verdict{Gate: KindScan, State: Pending, Reason: "waits for its scan (until " + rfc(now.Add(30*time.Minute)) + ")"}},
		{"blocked, gated before", "scanned", "COMPLETE", map[string]int{"HIGH": 3}, true,
			Verdict{Gate: KindScan, State: Blocked, Final: true, Reason: "blocked: 3 HIGH"}, nil},
		{"clean scan, approval not asked yet", "both", "COMPLETE", map[string]int{}, false,
			Verdict{Gate: KindApproval, State: Pending, Reason: "waits for approval (a push, or the deployer's sweep, asks for it)"}, &Verdict{Gate: KindScan, State: Pending, Reason: "waits for its scan (the deployer's sweep reads it)"}},
		{"approval pending", "both", "COMPLETE", map[string]int{}, true,
			Verdict{Gate: KindApproval, State: Pending, Reason: "waits for approval (until " + rfc(now.Add(24*time.Hour)) + ")"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			repo := f.rule(t, tc.rule).Repository
			p := f.push(t, repo, fmt.Sprintf("peek-%d", i), base.Add(7*ms))
			if tc.status != "none" {
				f.scanned(t, p, tc.status, "", tc.counts)
			}
			if tc.before {
				f.admit(t, tc.rule, p, FromPush)
			}
			f.notices.take()
			f.logs.lines(t, "gate")
			before := f.items(t)
			for n := 1; n <= 2; n++ {
				v, err := f.g.Peek(ctx, f.rule(t, tc.rule), p)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tc.want, v); diff != "" {
					t.Errorf("peek %d (-want +got):\n%s", n, diff)
				}
			}
			recorded := tc.want
			if tc.recorded != nil {
				recorded = *tc.recorded
			}
			if diff := cmp.Diff(recorded, f.admit(t, tc.rule, p, ReadRecorded)); diff != "" {
				t.Errorf("ReadRecorded (-want +got):\n%s", diff)
			}
			if after := f.items(t); after != before {
				t.Errorf("items %d → %d; Peek or ReadRecorded wrote", before, after)
			}
			if ns := f.notices.take(); len(ns) != 0 {
				t.Errorf("Peek noticed %v", outcomes(ns))
			}
			if ls := f.logs.lines(t, "gate"); len(ls) != 0 {
				t.Errorf("Peek logged %v", gateLog(ls))
			}
		})
	}
}
