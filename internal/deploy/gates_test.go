package deploy

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecrevent"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/gate"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

// fakeScans is the registry's scan result (ECR answers it; moto's static
// results cannot fail or be in progress on demand, so a fake).
type fakeScans struct {
	mu     sync.Mutex
	status ecrtypes.ScanStatus
	counts map[string]int32
	err    error
	calls  int
}

func (f *fakeScans) DescribeImageScanFindings(_ context.Context, in *ecr.DescribeImageScanFindingsInput, _ ...func(*ecr.Options)) (*ecr.DescribeImageScanFindingsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	return &ecr.DescribeImageScanFindingsOutput{
		ImageId:           in.ImageId,
		ImageScanStatus:   &ecrtypes.ImageScanStatus{Status: f.status},
		ImageScanFindings: &ecrtypes.ImageScanFindings{FindingSeverityCounts: f.counts},
	}, nil
}

func (f *fakeScans) set(status ecrtypes.ScanStatus, counts map[string]int32, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status, f.counts, f.err = status, counts, err
}

// gatedFixture is the deploy fixture with web-prod behind an approval and
// web-staging behind a scan, its gates in moto's DynamoDB (the state
// table), its scan results a fake.
func gatedFixture(t *testing.T) (*fixture, *gate.Store, *fakeScans, *titles) {
	t.Helper()
	f := newFixture(t)
	for _, r := range f.d.Rules.Rules {
		switch r.Name {
		case "web-prod":
			r.Approval = &rules.Approval{Expires: 24 * time.Hour}
		case "web-staging":
			r.Scan = &rules.Scan{Block: []string{"CRITICAL", "HIGH"}, Wait: 30 * time.Minute}
		}
	}
	m := testenv.StartMoto(t)
	store := gate.NewStore(testenv.SerialDynamoDB(m.AWSConfig()), m.CreateTable(t, "autodeploy"))
	scans := &fakeScans{status: ecrtypes.ScanStatusInProgress}
	notices := &titles{}
	f.d.Gates = &gate.Gates{Rules: f.d.Rules, Central: f.d.Central, Store: store, Notifier: notices, Log: f.d.Log,
		Scans: func(string, string) gate.ScanReader { return scans }, Now: func() time.Time { return t0.Add(90 * time.Second) }}
	return f, store, scans, notices
}

func byTarget(s Summary) map[string]string {
	out := map[string]string{}
	for _, r := range s.Results {
		out[r.Rule+" "+r.Cluster+"/"+r.Service] = string(r.Outcome) + ": " + r.Reason
	}
	return out
}

// A push its rule's approval holds registers nothing, told once however
// often it is delivered; approved, the same push (the CLI's hand-off)
// deploys. Gates on moto, ECS a fake.
func TestApprovalHoldsAPushUntilApproved(t *testing.T) {
	f, store, _, notices := gatedFixture(t)
	ctx := context.Background()
	ev := pushEvent(t, "web", "v1.2.0", t0)
	for range 2 { // a duplicate delivery
		sum, err := f.d.Handle(ctx, ev)
		if err != nil {
			t.Fatal(err)
		}
		got := byTarget(sum)["web-prod prod/web"]
		if !strings.HasPrefix(got, "skipped: approval: waits for approval") {
			t.Fatalf("prod/web = %q, want skipped waiting for approval", got)
		}
	}
	if f.ecs.calls["RegisterTaskDefinition"] != 0 {
		t.Fatalf("registered %d task definitions for a push waiting for approval", f.ecs.calls["RegisterTaskDefinition"])
	}
	if diff := cmp.Diff([]string{"web:v1.2.0 waits for approval to deploy by rule web-prod"}, notices.list()); diff != "" {
		t.Errorf("notices (-want +got):\n%s", diff)
	}
	if _, err := store.Approve(ctx, "web-prod", digestOf("web:v1.2.0"), "alice", t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	sum, err := f.d.Handle(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	if got := byTarget(sum)["web-prod prod/web"]; !strings.HasPrefix(got, "deployed") {
		t.Fatalf("approved: prod/web = %q, want deployed", got)
	}
}

// A scan gate: no result yet waits; a blocked result is a refusal for
// good, noticed once; either way nothing is registered for the gated
// rule, while the push's other rules deploy.
func TestScanHoldsAPushUntilClean(t *testing.T) {
	f, _, scans, notices := gatedFixture(t)
	ctx := context.Background()
	ev := pushEvent(t, "web", "main-5a5a5a5", t0)
	sum, err := f.d.Handle(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	if got := byTarget(sum)["web-staging staging/web"]; !strings.HasPrefix(got, "skipped: scan: waits for its scan") {
		t.Fatalf("staging/web = %q, want waiting for its scan", got)
	}
	scans.set(ecrtypes.ScanStatusComplete, map[string]int32{"CRITICAL": 1, "LOW": 4}, nil)
	for range 2 {
		sum, err = f.d.Handle(ctx, ev)
		if err != nil {
			t.Fatal(err)
		}
		if got := byTarget(sum)["web-staging staging/web"]; got != "skipped: scan: blocked: 1 CRITICAL" {
			t.Fatalf("staging/web = %q, want blocked", got)
		}
	}
	if n := f.ecs.calls["RegisterTaskDefinition"]; n != 0 {
		t.Errorf("registered %d task definitions for a push its scan holds", n)
	}
	if diff := cmp.Diff([]string{"web:main-5a5a5a5 NOT deployed by rule web-staging: its scan found 1 CRITICAL"}, notices.list()); diff != "" {
		t.Errorf("notices (-want +got):\n%s", diff)
	}
}

// A gate that cannot be read fails its rule's targets transiently and the
// push with them (Lambda retries it); the retry, the registry answering,
// deploys a clean image.
func TestUnreadableGateRetriesThePush(t *testing.T) {
	f, _, scans, _ := gatedFixture(t)
	ctx := context.Background()
	scans.set("", nil, errors.New("ThrottlingException: rate exceeded"))
	ev := pushEvent(t, "web", "main-6b6b6b6", t0)
	sum, err := f.d.Handle(ctx, ev)
	if err == nil {
		t.Fatal("a gate that could not be read: no error, so Lambda would not retry the push")
	}
	for _, r := range sum.Results {
		if r.Rule == "web-staging" && (r.Outcome != Failed || !r.Retryable) {
			t.Errorf("%s/%s = %s retryable=%v, want a transient failure", r.Cluster, r.Service, r.Outcome, r.Retryable)
		}
	}
	scans.set(ecrtypes.ScanStatusComplete, map[string]int32{"LOW": 2}, nil)
	sum, err = f.d.Handle(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"web-staging staging/web": "deployed", "web-staging staging/web-worker": "deployed"}
	got := map[string]string{}
	for k, v := range byTarget(sum) {
		got[k] = strings.SplitN(v, ":", 2)[0]
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("after the retry (-want +got):\n%s", diff)
	}
}

// A rule with gates and a deployer built without them deploys nothing.
func TestGatedRuleWithoutGatesDeploysNothing(t *testing.T) {
	f, _, _, _ := gatedFixture(t)
	f.d.Gates = nil
	sum, err := f.d.Handle(context.Background(), pushEvent(t, "web", "v1.3.0", t0))
	if err != nil {
		t.Fatal(err)
	}
	got := byTarget(sum)["web-prod prod/web"]
	if !strings.HasPrefix(got, "failed: rule web-prod has gates") || f.ecs.calls["RegisterTaskDefinition"] != 0 {
		t.Errorf("prod/web = %q with %d registrations, want a permanent failure and none", got, f.ecs.calls["RegisterTaskDefinition"])
	}
}

// A gate's hand-off is for its rule alone: the approval of web-prod's
// digest deploys prod/web and leaves web-canary — which took the same
// push when it came, and has no gate — alone: no describe, no rollout, no
// notice of "0 of 2 deployed". Gates on moto, ECS a fake.
func TestHandOffDeploysItsRuleAlone(t *testing.T) {
	f, store, _, notices := gatedFixture(t)
	ctx := context.Background()
	var prod *rules.Rule
	for _, r := range f.d.Rules.Rules {
		if r.Name == "web-prod" {
			prod = r
		}
	}
	canary := *prod
	canary.Name, canary.Approval = "web-canary", nil
	canary.Targets = []rules.Target{{Cluster: "staging", Service: "web", Containers: []string{"worker"}}, {Cluster: "staging", Service: "web-worker", Containers: []string{"worker"}}}
	f.d.Rules.Rules = append(f.d.Rules.Rules, &canary)
	ev := pushEvent(t, "web", "v1.2.0", t0)
	if _, err := f.d.Handle(ctx, ev); err != nil {
		t.Fatal(err)
	}
	notices.list()
	if _, err := store.Approve(ctx, "web-prod", digestOf("web:v1.2.0"), "alice", t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	before := f.ecs.calls["DescribeServices"]
	push, err := ecrevent.Parse(ev)
	if err != nil {
		t.Fatal(err)
	}
	push.EventID = gate.HandOffID(gate.KindApproval, "web-prod", push.Digest)
	sum, err := f.d.DeployRule(ctx, push, "web-prod")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for k, v := range byTarget(sum) {
		got[k] = strings.SplitN(v, ":", 2)[0]
	}
	if diff := cmp.Diff(map[string]string{"web-prod prod/web": "deployed"}, got); diff != "" {
		t.Errorf("the hand-off (-want +got):\n%s", diff)
	}
	if n := f.ecs.calls["DescribeServices"] - before; n != 1 {
		t.Errorf("the hand-off described %d services, want prod/web's alone", n)
	}
	// A rule that no longer takes the push deploys nothing, and says why.
	sum, err = f.d.DeployRule(ctx, push, "web-staging")
	if err != nil || len(sum.Results) != 0 || !strings.Contains(sum.Ignored, "rule web-staging does not take this push") {
		t.Errorf("a hand-off for a rule that does not take it: %+v, %v", sum, err)
	}
}
