package watch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwschemas "github.com/aws/aws-sdk-go-v2/service/cloudwatch/schemas"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/smithy-go/transport/http/protocol/awsquery"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/alarms"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/emulator"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/gate"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/logging"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/notify"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/promote"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/timer"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work"
)

const gatesYAML = `version: 1
reconcile: {every: 10m}
rules:
  - name: web-prod
    repository: web
    semver: ">= 1.0.0"
    scan: {block: [CRITICAL, HIGH], wait: 30m}
    targets: [{cluster: prod, service: web}]
  - name: web-qa
    repository: web
    tags: ["rc-*"]
    approval: {expires: 24h}
    targets: [{cluster: qa, service: web}]
  - name: web-staging
    repository: web
    tags: ["main-*"]
    targets:
      - {cluster: staging, service: web}
      - {cluster: staging, service: web-worker}
    promote: {tag: "verified-{tag}", bake: 15m, alarms: [web-staging-5xx, web-staging-latency]}
`

// The samples' digest (events/ecr-image-scan-*.json, inspector2-scan.json).
const sampleDigest = "sha256:15794219de6dc381cac7805b3e96683d02e81b9cb72265b5cb8c1f501c21d71c"

const watcherARN = "arn:aws:lambda:eu-west-1:123456789012:function:ecr-autodeploy-watcher"

// gateClock is the tests' settable clock, shared by the watcher, the gates
// and the timers.
type gateClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *gateClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *gateClock) Set(t time.Time)     { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }
func (c *gateClock) Add(d time.Duration) { c.Set(c.Now().Add(d)) }

// handOffs records what the watcher hands the deployer (Lambda's Invoke)
// and what it tells people. It is a fake: the deployer is not under test,
// and its command is what is compared; moto's Lambda would need a function
// to run. failInvokes makes that many hand-offs fail first.
type handOffs struct {
	mu          sync.Mutex
	commands    []work.Command
	notices     []notify.Notice
	failInvokes int
}

func (h *handOffs) Invoke(_ context.Context, in *lambda.InvokeInput, _ ...func(*lambda.Options)) (*lambda.InvokeOutput, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failInvokes > 0 {
		h.failInvokes--
		return nil, errors.New("lambda: service unavailable (test)")
	}
	c, err := work.DecodeCommand(in.Payload)
	if err != nil {
		return nil, err
	}
	h.commands = append(h.commands, c)
	return &lambda.InvokeOutput{StatusCode: 202}, nil
}

func (h *handOffs) Notify(_ context.Context, n notify.Notice) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.notices = append(h.notices, n)
	return nil
}

func (h *handOffs) take() ([]work.Command, []notify.Notice) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, n := h.commands, h.notices
	h.commands, h.notices = nil, nil
	return c, n
}

// gateFixture is one watcher with gates on a table and schedule group of
// its own, in the test's one moto: DynamoDB, ECR (tags), CloudWatch
// (alarms) and Scheduler (timers) are moto's.
type gateFixture struct {
	w     *Watcher
	g     *gate.Gates
	store *history.Store
	ecr   *ecr.Client
	cw    *cloudwatch.Client
	sched *scheduler.Client
	group string
	clock *gateClock
	out   *handOffs
	logs  *bytes.Buffer
	// tag is the fixture's own main-… tag: the cases share moto's ECR.
	tag string
}

func newGateFixture(t *testing.T, m *testenv.Moto, n int) *gateFixture {
	t.Helper()
	ctx := context.Background()
	cfg, err := rules.Parse("autodeploy.yaml", []byte(gatesYAML))
	if err != nil {
		t.Fatal(err)
	}
	db := dynamodb.NewFromConfig(m.AWSConfig())
	table := m.CreateTable(t, fmt.Sprintf("autodeploy-%d", n))
	f := &gateFixture{store: history.NewStore(db, table), ecr: ecr.NewFromConfig(m.AWSConfig()), cw: motoCloudWatch(m),
		sched: scheduler.NewFromConfig(m.AWSConfig()), group: fmt.Sprintf("gates-%d", n), clock: &gateClock{t: t0}, out: &handOffs{},
		logs: &bytes.Buffer{}, tag: fmt.Sprintf("main-%d", n)}
	if _, err := f.sched.CreateScheduleGroup(ctx, &scheduler.CreateScheduleGroupInput{Name: aws.String(f.group)}); err != nil {
		t.Fatal(err)
	}
	log := logging.New(f.logs, slog.LevelDebug)
	promoter := &promote.Promoter{ECR: func(string, string) promote.ECR { return f.ecr }, Central: central,
		Lambda: f.out, DeployerFunction: "autodeploy-deployer", Now: f.clock.Now}
	f.w = &Watcher{Rules: cfg, Central: central, Store: f.store, Notifier: f.out, Promoter: promoter, Log: log, Now: f.clock.Now}
	f.g = &gate.Gates{Rules: cfg, Central: central, Store: gate.NewStore(db, table), Notifier: f.out,
		Scans:   func(string, string) gate.ScanReader { return f.ecr },
		Alarms:  func(string, string) gate.AlarmReader { return alarms.Reader{CloudWatch: f.cw} },
		Timers:  &timer.GateTimers{Watcher: watcherARN, Timers: &timer.Timers{Scheduler: f.sched, Config: timer.Config{Group: f.group, RoleARN: "arn:aws:iam::123456789012:role/timers"}, Now: f.clock.Now}},
		HandOff: promoter.HandOffPush, Promote: f.w.PromoteBaked, Log: log, Now: f.clock.Now}
	f.w.Gates = f.g
	return f
}

// motoCloudWatch is a CloudWatch client moto understands: the SDK speaks
// CBOR (rpcv2) to CloudWatch, which moto does not (it answers 404); moto
// speaks CloudWatch's query protocol, which the service still takes. Only
// the wire format differs from the watcher's client.
func motoCloudWatch(m *testenv.Moto) *cloudwatch.Client {
	return cloudwatch.NewFromConfig(m.AWSConfig(), func(o *cloudwatch.Options) {
		o.Protocol = awsquery.New(cwschemas.GraniteServiceVersion20100801)
	})
}

// image pushes web:<the fixture's tag> into moto's ECR and returns its digest.
func (f *gateFixture) image(t *testing.T) string {
	t.Helper()
	d, err := emulator.PushImage(context.Background(), f.ecr, "web", f.tag)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (f *gateFixture) handle(t *testing.T, raw []byte) (Result, error) {
	t.Helper()
	return f.w.Handle(context.Background(), raw)
}

// schedules are the timers set in the fixture's group, as their commands.
func (f *gateFixture) schedules(t *testing.T) []work.Command {
	t.Helper()
	ctx := context.Background()
	list, err := f.sched.ListSchedules(ctx, &scheduler.ListSchedulesInput{GroupName: aws.String(f.group)})
	if err != nil {
		t.Fatal(err)
	}
	var out []work.Command
	for _, s := range list.Schedules {
		got, err := f.sched.GetSchedule(ctx, &scheduler.GetScheduleInput{Name: s.Name, GroupName: aws.String(f.group)})
		if err != nil {
			t.Fatal(err)
		}
		c, err := work.DecodeCommand([]byte(aws.ToString(got.Target.Input)))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

func (f *gateFixture) pendingScan(t *testing.T, digest, tag string, at time.Time) {
	t.Helper()
	if _, _, err := f.g.Store.StartScan(context.Background(), gate.ScanRequest{Rule: "web-prod", Digest: digest, Repository: "web", Tag: tag,
		PushedAt: at, At: at, Wait: 30 * time.Minute}); err != nil {
		t.Fatal(err)
	}
}

func (f *gateFixture) alarms(t *testing.T) {
	t.Helper()
	for _, name := range []string{"web-staging-5xx", "web-staging-latency"} {
		if _, err := f.cw.PutMetricAlarm(context.Background(), &cloudwatch.PutMetricAlarmInput{
			AlarmName: aws.String(name), Namespace: aws.String("AWS/ApplicationELB"), MetricName: aws.String("HTTPCode_Target_5XX_Count"),
			Statistic: cwtypes.StatisticSum, Period: aws.Int32(60), EvaluationPeriods: aws.Int32(1), Threshold: aws.Float64(10),
			ComparisonOperator: cwtypes.ComparisonOperatorGreaterThanThreshold,
		}); err != nil {
			t.Fatal(err)
		}
	}
}

// bake is web-staging's bake of digest.
func (f *gateFixture) bake(t *testing.T, digest string) gate.Bake {
	t.Helper()
	b, found, err := f.g.Store.GetBake(context.Background(), "web-staging", digest)
	if err != nil || !found {
		t.Fatalf("bake of %s: found %v, %v", digest, found, err)
	}
	return b
}

// sample is a sample event with edit applied to its detail (nil: none).
func sample(t *testing.T, name string, edit func(ev, detail map[string]any)) []byte {
	t.Helper()
	var ev map[string]any
	if err := json.Unmarshal(testenv.Event(t, name), &ev); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(ev, ev["detail"].(map[string]any))
	}
	out, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func gateDue(t *testing.T, g gate.Kind, rule, digest string) []byte {
	t.Helper()
	raw, err := work.EncodeCommand(work.GateDue{Gate: string(g), Rule: rule, Digest: digest})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func outcomesOf(ns []notify.Notice) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.Outcome)
	}
	return out
}

// TestGateEvents plays the gates' events and timers through Handle, each
// delivered twice, on one moto (a table and schedule group per case).
func TestGateEvents(t *testing.T) {
	t.Parallel()
	m := testenv.StartMoto(t)
	if _, err := ecr.NewFromConfig(m.AWSConfig()).CreateRepository(context.Background(), &ecr.CreateRepositoryInput{RepositoryName: aws.String("web")}); err != nil {
		t.Fatal(err)
	}
	for i, tt := range []struct {
		name string
		run  func(t *testing.T, f *gateFixture)
	}{
		{"clean scan hands off once", testCleanScan},
		{"blocked scan noticed once", testBlockedScan},
		{"failed scan", testFailedScan},
		{"inspector scan by ARN", testInspectorScan},
		{"alarm stops a bake", testAlarmStopsBake},
		{"alarm no bake watches", testAlarmNotWatched},
		{"last completion starts the bake", testLastCompletionBakes},
		{"bake's end promotes once", testBakeEndPromotes},
		{"bake's end with an alarm in ALARM", testBakeEndAlarm},
		{"schedule ends what is due", testScheduleEndsDue},
		{"malformed gate events", testMalformedGateEvents},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.run(t, newGateFixture(t, m, i+1))
		})
	}
}

func testCleanScan(t *testing.T, f *gateFixture) {
	f.pendingScan(t, sampleDigest, "v1.3.0", t0)
	for i := range 2 {
		res, err := f.handle(t, testenv.Event(t, "ecr-image-scan-clean.json"))
		if err != nil {
			t.Fatalf("delivery %d: %v", i+1, err)
		}
		if diff := cmp.Diff(Result{Gates: &GateResult{Judged: []string{"web-prod"}}}, res); diff != "" {
			t.Errorf("delivery %d (-want +got):\n%s", i+1, diff)
		}
	}
	cmds, notices := f.out.take()
	want := []work.Command{work.DeployPush{Rule: "web-prod", Origin: "scan of " + sampleDigest + " clean for rule web-prod", Push: work.Push{
		EventID: gate.HandOffID(gate.KindScan, "web-prod", sampleDigest), RegistryAccount: testenv.Account, RegistryRegion: testenv.Region,
		Repository: "web", Tag: "v1.3.0", Digest: sampleDigest, PushedAt: t0}}}
	if diff := cmp.Diff(want, cmds); diff != "" {
		t.Errorf("hand-offs (-want +got):\n%s", diff)
	}
	if len(notices) != 0 {
		t.Errorf("a clean scan noticed %v", outcomesOf(notices))
	}
	sc, _, err := f.g.Store.GetScan(context.Background(), "web-prod", sampleDigest)
	if err != nil || sc.State != gate.Clean || sc.Source != gate.SourceECR {
		t.Errorf("scan %s from %q (%v), want clean from ECR Image Scan", sc.State, sc.Source, err)
	}
}

func testBlockedScan(t *testing.T, f *gateFixture) {
	f.pendingScan(t, sampleDigest, "v1.3.0", t0)
	for i := range 2 {
		if res, err := f.handle(t, testenv.Event(t, "ecr-image-scan-blocked.json")); err != nil || res.Gates == nil {
			t.Fatalf("delivery %d: %+v, %v", i+1, res, err)
		}
	}
	cmds, notices := f.out.take()
	if len(cmds) != 0 {
		t.Errorf("a blocked scan handed off %v", cmds)
	}
	if diff := cmp.Diff([]string{notify.ScanBlocked}, outcomesOf(notices)); diff != "" {
		t.Fatalf("notices (-want +got):\n%s", diff)
	}
	if g := notices[0].Gate; g == nil || g.Findings != "1 CRITICAL, 3 HIGH" || notices[0].Tag != "v1.3.0" {
		t.Errorf("notice %+v (gate %+v), want the counts 1 CRITICAL, 3 HIGH of v1.3.0", notices[0], g)
	}
}

func testFailedScan(t *testing.T, f *gateFixture) {
	f.pendingScan(t, sampleDigest, "v1.3.0", t0)
	for i := range 2 {
		if _, err := f.handle(t, testenv.Event(t, "ecr-image-scan-failed.json")); err != nil {
			t.Fatalf("delivery %d: %v", i+1, err)
		}
	}
	cmds, notices := f.out.take()
	if len(cmds) != 0 || len(notices) != 1 || notices[0].Outcome != notify.ScanNotDone || !strings.Contains(notices[0].Reason, "FAILED") {
		t.Errorf("hand-offs %v, notices %+v; want none and one scan_not_done saying FAILED", cmds, notices)
	}
	sc, _, err := f.g.Store.GetScan(context.Background(), "web-prod", sampleDigest)
	if err != nil || sc.State != gate.ScanFailed {
		t.Errorf("scan %s (%v), want failed", sc.State, err)
	}
}

func testInspectorScan(t *testing.T, f *gateFixture) {
	f.pendingScan(t, sampleDigest, "v1.3.0", t0)
	// Another account's repository of the same name is not web-prod's.
	other := sample(t, "inspector2-scan.json", func(_, d map[string]any) {
		d["repository-name"] = "arn:aws:ecr:eu-west-1:210987654321:repository/web"
	})
	if res, err := f.handle(t, other); err != nil || res.Ignored != "no rule with scan: on this repository" {
		t.Errorf("another registry's scan: %+v, %v", res, err)
	}
	for i := range 2 {
		res, err := f.handle(t, testenv.Event(t, "inspector2-scan.json"))
		if err != nil || res.Gates == nil || !slices.Equal(res.Gates.Judged, []string{"web-prod"}) {
			t.Fatalf("delivery %d: %+v, %v", i+1, res, err)
		}
	}
	cmds, notices := f.out.take()
	if len(cmds) != 0 || len(notices) != 1 || notices[0].Gate == nil || notices[0].Gate.Findings != "2 HIGH" {
		t.Errorf("hand-offs %v, notices %+v; want one scan_blocked of 2 HIGH", cmds, notices)
	}
	sc, _, err := f.g.Store.GetScan(context.Background(), "web-prod", sampleDigest)
	if err != nil || sc.State != gate.Blocked || sc.Source != gate.SourceInspector {
		t.Errorf("scan %s from %q (%v), want blocked by Inspector2 Scan", sc.State, sc.Source, err)
	}
}

// startBake starts web-staging's bake of digest (the fixture's tag) at
// t0+4m, as the last completion does: due at t0+19m.
func (f *gateFixture) startBake(t *testing.T, digest string) gate.Bake {
	t.Helper()
	r := f.w.ruleNamed("web-staging")
	b, started, err := f.g.StartBake(context.Background(), r, digest, f.tag, t0, t0.Add(4*time.Minute))
	if err != nil || !started {
		t.Fatalf("start bake: %v (started %v)", err, started)
	}
	return b
}

func testAlarmStopsBake(t *testing.T, f *gateFixture) {
	digest := f.image(t)
	f.startBake(t, digest)
	for i, want := range []Result{{Gates: &GateResult{Stopped: 1}}, {Ignored: "no bake stopped by this change"}} {
		res, err := f.handle(t, testenv.Event(t, "cloudwatch-alarm-state-change.json"))
		if err != nil {
			t.Fatalf("delivery %d: %v", i+1, err)
		}
		if diff := cmp.Diff(want, res); diff != "" {
			t.Errorf("delivery %d (-want +got):\n%s", i+1, diff)
		}
	}
	_, notices := f.out.take()
	alarmAt := time.Date(2026, 11, 25, 10, 14, 3, 507e6, time.UTC)
	if len(notices) != 1 || notices[0].Outcome != notify.NotPromoted || notices[0].Gate == nil ||
		notices[0].Gate.Alarm != "web-staging-5xx" || !notices[0].Gate.AlarmAt.Equal(alarmAt) || notices[0].PromotedTag != "verified-"+f.tag {
		t.Fatalf("notices %+v, want one not_promoted naming web-staging-5xx at %s", notices, alarmAt)
	}
	if b := f.bake(t, digest); b.State != gate.NotPromoted {
		t.Errorf("bake %s, want not_promoted", b.State)
	}
	// Its timer fires later: nothing is promoted.
	f.alarms(t)
	f.clock.Set(t0.Add(20 * time.Minute))
	if _, err := f.handle(t, gateDue(t, gate.KindBake, "web-staging", digest)); err != nil {
		t.Fatal(err)
	}
	if cmds, notices := f.out.take(); len(cmds) != 0 || len(notices) != 0 {
		t.Errorf("the stopped bake's timer handed off %v, noticed %v", cmds, outcomesOf(notices))
	}
}

func testAlarmNotWatched(t *testing.T, f *gateFixture) {
	digest := f.image(t)
	f.startBake(t, digest)
	for _, ev := range [][]byte{
		sample(t, "cloudwatch-alarm-state-change.json", func(_, d map[string]any) { d["alarmName"] = "web-prod-5xx" }),
		sample(t, "cloudwatch-alarm-state-change.json", func(ev, _ map[string]any) { ev["account"] = "210987654321" }),
		sample(t, "cloudwatch-alarm-state-change.json", func(_, d map[string]any) { d["state"].(map[string]any)["value"] = "OK" }),
	} {
		res, err := f.handle(t, ev)
		if err != nil || res.Ignored != "no bake stopped by this change" {
			t.Errorf("%+v, %v; want nothing stopped", res, err)
		}
	}
	if _, notices := f.out.take(); len(notices) != 0 {
		t.Errorf("noticed %v", outcomesOf(notices))
	}
	if b := f.bake(t, digest); b.State != gate.Baking {
		t.Errorf("bake %s, want still baking", b.State)
	}
}

func (f *gateFixture) deployed(t *testing.T, service, tag, digest, deployment string) {
	t.Helper()
	if err := f.store.Put(context.Background(), history.Record{Rule: "web-staging", Repository: "web", RegistryAccount: testenv.Account,
		RegistryRegion: testenv.Region, Tag: tag, Digest: digest, Account: testenv.Account, Region: testenv.Region, Cluster: "staging",
		Service: service, ToTaskDefinition: "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:9", DeploymentID: deployment,
		EventID: "push-" + tag, Outcome: "deployed", PushedAt: t0, DeployedAt: t0.Add(2 * time.Second)}); err != nil {
		t.Fatal(err)
	}
}

func testLastCompletionBakes(t *testing.T, f *gateFixture) {
	digest := f.image(t)
	f.deployed(t, "web", f.tag, digest, "ecs-svc/1")
	f.deployed(t, "web-worker", f.tag, digest, "ecs-svc/2")
	f.clock.Set(t0.Add(5 * time.Minute))
	if res, err := f.handle(t, ecsEvent(t, "ecs-deployment-completed.json", "staging", "web", "ecs-svc/1")); err != nil || res.Baking != "" {
		t.Fatalf("first completion: %+v, %v", res, err)
	}
	// The bake runs from when the watcher starts to watch it (its clock,
	// 10:05), not from the completion's updatedAt (10:04:00.123): alarm
	// events before the bake existed found no bake to stop.
	due := "2026-11-25T10:20:00Z"
	for i, ignored := range []string{"", "outcome already recorded"} {
		res, err := f.handle(t, ecsEvent(t, "ecs-deployment-completed.json", "staging", "web-worker", "ecs-svc/2"))
		if err != nil || res.Baking != due || res.Promoted != "" || res.Ignored != ignored {
			t.Fatalf("last completion, delivery %d: %+v, %v; want baking until %s, not promoted", i+1, res, err, due)
		}
	}
	if diff := cmp.Diff([]work.Command{work.GateDue{Gate: "bake", Rule: "web-staging", Digest: digest}}, f.schedules(t)); diff != "" {
		t.Errorf("schedules (-want +got):\n%s", diff)
	}
	b := f.bake(t, digest)
	if b.State != gate.Baking || b.Tag != f.tag || !slices.Equal(b.Alarms, []string{"web-staging-5xx", "web-staging-latency"}) {
		t.Errorf("bake %+v", b)
	}
	if cmds, _ := f.out.take(); len(cmds) != 0 {
		t.Errorf("promoted before the bake's end: %v", cmds)
	}
	if strings.Contains(strings.Join(f.tagsOf(t, digest), ","), "verified-") {
		t.Errorf("tagged before the bake's end: %v", f.tagsOf(t, digest))
	}
}

func (f *gateFixture) tagsOf(t *testing.T, digest string) []string {
	t.Helper()
	return (&fixture{ecr: f.ecr}).tagsOf(t, digest)
}

func testBakeEndPromotes(t *testing.T, f *gateFixture) {
	f.alarms(t) // in moto, INSUFFICIENT_DATA: not ALARM
	digest := f.image(t)
	f.startBake(t, digest)
	due := gateDue(t, gate.KindBake, "web-staging", digest)

	f.clock.Set(t0.Add(10 * time.Minute)) // an early timer ends nothing
	if _, err := f.handle(t, due); err != nil {
		t.Fatal(err)
	}
	if b := f.bake(t, digest); b.State != gate.Baking {
		t.Fatalf("an early timer ended the bake: %s", b.State)
	}
	f.clock.Set(t0.Add(20 * time.Minute))
	f.out.failInvokes = 1 // the first hand-off fails: the timer's retry promotes
	if _, err := f.handle(t, due); err == nil || !strings.Contains(err.Error(), "service unavailable") {
		t.Fatalf("a failed promotion: %v, want its error (for a retry)", err)
	}
	for i := range 2 { // the retry promotes; a duplicate after it promotes nothing
		res, err := f.handle(t, due)
		if err != nil || res.Gates == nil || res.Gates.Gate != "bake#web-staging#"+digest {
			t.Fatalf("delivery %d: %+v, %v", i+2, res, err)
		}
	}
	cmds, notices := f.out.take()
	if len(cmds) != 1 {
		t.Fatalf("hand-offs %v, want one", cmds)
	}
	if p, ok := cmds[0].(work.DeployPush); !ok || p.Push.Tag != "verified-"+f.tag || p.Push.Digest != digest {
		t.Errorf("hand-off %+v, want verified-%s of %s", cmds[0], f.tag, digest)
	}
	if len(notices) != 0 {
		t.Errorf("noticed %v", outcomesOf(notices))
	}
	if tags := f.tagsOf(t, digest); !slices.Contains(tags, "verified-"+f.tag) {
		t.Errorf("tags %v, want verified-%s", tags, f.tag)
	}
	if b := f.bake(t, digest); b.State != gate.Promoted {
		t.Errorf("bake %s, want promoted", b.State)
	}
}

func testBakeEndAlarm(t *testing.T, f *gateFixture) {
	f.alarms(t)
	if _, err := f.cw.SetAlarmState(context.Background(), &cloudwatch.SetAlarmStateInput{AlarmName: aws.String("web-staging-latency"),
		StateValue: cwtypes.StateValueAlarm, StateReason: aws.String("p99 over 2s (test)")}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // the cases share moto's alarms
		_, _ = f.cw.SetAlarmState(context.Background(), &cloudwatch.SetAlarmStateInput{AlarmName: aws.String("web-staging-latency"),
			StateValue: cwtypes.StateValueOk, StateReason: aws.String("test over")})
	})
	digest := f.image(t)
	f.startBake(t, digest)
	f.clock.Set(t0.Add(20 * time.Minute))
	for i := range 2 {
		if _, err := f.handle(t, gateDue(t, gate.KindBake, "web-staging", digest)); err != nil {
			t.Fatalf("delivery %d: %v", i+1, err)
		}
	}
	cmds, notices := f.out.take()
	if len(cmds) != 0 || len(notices) != 1 || notices[0].Outcome != notify.NotPromoted || notices[0].Gate.Alarm != "web-staging-latency" ||
		notices[0].Gate.AlarmAt.IsZero() {
		t.Errorf("hand-offs %v, notices %+v; want none, and one not_promoted naming web-staging-latency and when", cmds, notices)
	}
	if tags := f.tagsOf(t, digest); slices.Contains(tags, "verified-"+f.tag) {
		t.Errorf("promoted with an alarm in ALARM: %v", tags)
	}
}

func testScheduleEndsDue(t *testing.T, f *gateFixture) {
	ctx := context.Background()
	d := func(i int) string { return fmt.Sprintf("sha256:%064d", i) }
	f.clock.Set(t0.Add(2 * time.Hour))
	now := f.clock.Now()
	// An approval and a scan whose timers were lost, a scan due before the
	// next sweep (10m + a minute), one due after it.
	if _, err := f.g.Store.RequestApproval(ctx, gate.ApprovalRequest{Rule: "web-qa", Digest: d(1), Repository: "web", Tag: "rc-1",
		PushedAt: now.Add(-25 * time.Hour), At: now.Add(-25 * time.Hour), Expires: 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	f.pendingScan(t, d(2), "v1.0.2", now.Add(-time.Hour))
	f.pendingScan(t, d(3), "v1.0.3", now.Add(-25*time.Minute))
	f.pendingScan(t, d(4), "v1.0.4", now.Add(-5*time.Minute))
	for i, want := range []int{2, 0} {
		res, err := f.handle(t, testenv.Event(t, "scheduled-reconcile.json"))
		if err != nil || res.Gates == nil || res.Gates.Ended != want {
			t.Fatalf("delivery %d: %+v, %v; want %d ended", i+1, res, err, want)
		}
	}
	_, notices := f.out.take()
	if diff := cmp.Diff([]string{notify.ApprovalExpired, notify.ScanNotDone}, outcomesOf(notices)); diff != "" {
		t.Errorf("notices (-want +got):\n%s", diff)
	}
	for _, n := range notices {
		if n.Outcome == notify.ScanNotDone && (n.Digest != d(2) || !strings.Contains(n.Reason, "no scan result within 30m")) {
			t.Errorf("scan notice %+v, want d(2)'s timed out", n)
		}
	}
	if diff := cmp.Diff([]work.Command{work.GateDue{Gate: "scan", Rule: "web-prod", Digest: d(3)}}, f.schedules(t)); diff != "" {
		t.Errorf("schedules (-want +got):\n%s", diff)
	}
	a, _, err := f.g.Store.GetApproval(ctx, "web-qa", d(1))
	if err != nil || a.State != gate.Expired {
		t.Errorf("approval %s (%v), want expired", a.State, err)
	}
}

func testMalformedGateEvents(t *testing.T, f *gateFixture) {
	for _, tt := range []struct {
		name string
		raw  []byte
		want string // the error, or the result's Ignored
	}{
		{"scan without digest", sample(t, "ecr-image-scan-clean.json", func(_, d map[string]any) { delete(d, "image-digest") }), "missing detail.image-digest"},
		{"alarm without state", sample(t, "cloudwatch-alarm-state-change.json", func(_, d map[string]any) { delete(d, "state") }), "missing detail.state.value"},
		{"gate-due of no gate", []byte(`{"kind":"gate-due","v":1,"gate":"vibe","rule":"web-staging","digest":"` + sampleDigest + `"}`), "invalid command"},
	} {
		res, err := f.handle(t, tt.raw)
		got := res.Ignored
		if err != nil {
			got = err.Error()
		}
		if !strings.Contains(got, tt.want) {
			t.Errorf("%s: %+v, %v; want %q", tt.name, res, err, tt.want)
		}
	}
}
