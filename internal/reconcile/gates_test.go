package reconcile

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/emulator"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/gate"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

const gatedRules = `version: 1
rules:
  - name: web-prod
    repository: web
    semver: ">= 1.0.0"
    approval: {expires: 24h}
    targets: [{cluster: prod, service: web}]
`

// gated is the sweep fixture with its deployer's gates in the same moto
// table (ECR's scan results from moto too).
func gated(t *testing.T, yaml string) (*fixture, *gate.Store) {
	t.Helper()
	f := newFixture(t, yaml)
	table := f.moto.CreateTable(t, "gates")
	store := gate.NewStore(dynamodb.NewFromConfig(f.moto.AWSConfig()), table)
	registry := ecr.NewFromConfig(f.moto.AWSConfig())
	f.sweeper.Deployer.Gates = &gate.Gates{Rules: f.sweeper.Rules, Central: rules.Place{Account: testenv.Account, Region: testenv.Region},
		Store: store, Scans: func(string, string) gate.ScanReader { return registry }, Log: f.sweeper.Log}
	return f, store
}

// A sweep never deploys a digest its rule's approval has not let through:
// the newest image (whose push event was lost) is asked for once, however
// many sweeps find it; a dry run asks nothing; once approved, the next
// sweep deploys it. Against moto.
func TestSweepDeploysOnlyTheApproved(t *testing.T) {
	t.Parallel()
	f, store := gated(t, gatedRules)
	ctx := context.Background()
	images := f.repo(t, "web", "v1.0.0", "v1.1.0")
	from := f.service(t, "prod", "web", emulator.Registry+"/web:seed")

	if _, err := f.sweeper.Sweep(ctx, Options{EventID: "dry", DryRun: true}); err != nil {
		t.Fatal(err)
	}
	if open, err := store.Open(ctx, gate.KindApproval, ""); err != nil || len(open) != 0 {
		t.Fatalf("a dry run asked for approvals: %v %v", open, err)
	}
	for _, id := range []string{"sweep-1", "sweep-2"} {
		rep, got := f.sweep(t, id)
		if diff := cmp.Diff(map[string]string{"prod/web": Skipped}, got); diff != "" {
			t.Fatalf("%s (-want +got):\n%s", id, diff)
		}
		if r := reason(rep, "prod", "web"); !strings.HasPrefix(r, "approval: waits for approval") {
			t.Errorf("%s: reason %q, want waiting for approval", id, r)
		}
		if rep.Drift != 0 {
			t.Errorf("%s: drift %d: a target its gate holds is not drift", id, rep.Drift)
		}
	}
	open, err := store.Open(ctx, gate.KindApproval, "web-prod")
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != 1 || open[0].Digest != images["v1.1.0"] || open[0].Tag != "v1.1.0" {
		t.Fatalf("open approvals %+v, want one for v1.1.0", open)
	}
	if arn, _ := f.running(t, "prod", "web"); arn != from {
		t.Fatalf("deployed %s before any approval", arn)
	}
	if _, err := store.Approve(ctx, "web-prod", images["v1.1.0"], "alice", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, got := f.sweep(t, "sweep-3"); got["prod/web"] != Deployed {
		t.Fatalf("approved: prod/web %s, want deployed\n%s", got["prod/web"], f.logs)
	}
	if _, image := f.running(t, "prod", "web"); !strings.HasSuffix(image, "@"+images["v1.1.0"]) {
		t.Errorf("runs %s, want v1.1.0's digest", image)
	}
}

// An approval that expired is not asked again by a sweep (only a push
// asks): the target stays, said so.
func TestSweepDoesNotReaskAnExpiredApproval(t *testing.T) {
	t.Parallel()
	f, store := gated(t, gatedRules)
	ctx := context.Background()
	images := f.repo(t, "web", "v1.1.0")
	f.service(t, "prod", "web", emulator.Registry+"/web:seed")
	asked := time.Now().Add(-25 * time.Hour)
	if _, err := store.RequestApproval(ctx, gate.ApprovalRequest{Rule: "web-prod", Digest: images["v1.1.0"], Repository: "web", Tag: "v1.1.0",
		PushedAt: asked, At: asked, Expires: 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, expired, err := store.ExpireApproval(ctx, "web-prod", images["v1.1.0"], time.Now()); err != nil || !expired {
		t.Fatalf("expire: %v %v", expired, err)
	}
	rep, got := f.sweep(t, "sweep-x")
	if got["prod/web"] != Skipped || !strings.Contains(reason(rep, "prod", "web"), "expired") {
		t.Fatalf("prod/web %s (%s), want skipped as expired", got["prod/web"], reason(rep, "prod", "web"))
	}
	a, _, err := store.GetApproval(ctx, "web-prod", images["v1.1.0"])
	if err != nil || a.State != gate.Expired {
		t.Errorf("approval %s %v, want still expired", a.State, err)
	}
}

// A sweep that reads the gates only (the CLI's, which tells no one) asks
// for no approval: it leaves that to the deployer's sweep, which notices.
func TestSweepThatReadsGatesOpensNone(t *testing.T) {
	t.Parallel()
	f, store := gated(t, gatedRules)
	ctx := context.Background()
	f.repo(t, "web", "v1.1.0")
	f.service(t, "prod", "web", emulator.Registry+"/web:seed")
	rep, err := f.sweeper.Sweep(ctx, Options{EventID: "cli-1", ReadGates: true})
	if err != nil {
		t.Fatal(err)
	}
	if r := reason(rep, "prod", "web"); !strings.HasPrefix(r, "approval: waits for approval (a push, or the deployer's sweep, asks for it)") {
		t.Errorf("reason %q", r)
	}
	if open, err := store.Open(ctx, "", ""); err != nil || len(open) != 0 {
		t.Errorf("a sweep reading the gates opened %v (%v)", open, err)
	}
}
