package watch

// CodeDeploy deployment events, on the sample events in events/: history
// and ECR are moto's; GetDeployment is testenv.FakeCodeDeploy's, because
// moto's deployments never end (so carry no rollback information).

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	cdtypes "github.com/aws/aws-sdk-go-v2/service/codedeploy/types"
	"github.com/aws/smithy-go"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/bluegreen"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

// codeDeployEvent is a sample CodeDeploy event about deployment id.
func codeDeployEvent(t *testing.T, sample, id string) json.RawMessage {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "events", sample))
	if err != nil {
		t.Fatal(err)
	}
	var ev map[string]any
	if err := json.Unmarshal(data, &ev); err != nil {
		t.Fatal(err)
	}
	ev["detail"].(map[string]any)["deploymentId"] = id
	out, _ := json.Marshal(ev)
	return out
}

// withCodeDeploy gives the watcher a fake CodeDeploy holding deployments
// d-FAKE00001… in group web/web-staging.
func (f *fixture) withCodeDeploy(t *testing.T, n int) *testenv.FakeCodeDeploy {
	t.Helper()
	cd := testenv.NewFakeCodeDeploy()
	cd.AddApplication("web", cdtypes.ComputePlatformEcs)
	cd.AddGroup("web", "web-staging", "staging", "web", true)
	for i := range n {
		if _, err := cd.CreateDeployment(context.Background(), &codedeploy.CreateDeploymentInput{
			ApplicationName: aws.String("web"), DeploymentGroupName: aws.String("web-staging")}); err != nil {
			t.Fatal(err)
		}
		if i < n-1 { // one active deployment per group: end all but the last
			cd.End(aws.ToString(cd.Deployments()[i].DeploymentId), cdtypes.DeploymentStatusSucceeded, "", "")
		}
	}
	f.w.CodeDeploy = func(string, string) bluegreen.CodeDeploy { return cd }
	return cd
}

func TestCodeDeploySuccessPromotesWithECSTargets(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.withCodeDeploy(t, 1)
	ctx := context.Background()
	digest := f.pushImage(t, "main-bg1")
	f.deployed(t, "web-staging", "staging", "web", "main-bg1", digest, "d-FAKE00001") // blue/green
	f.deployed(t, "web-staging", "staging", "web-worker", "main-bg1", digest, "ecs-svc/21")

	for _, sample := range []string{"codedeploy-start.json", "codedeploy-ready.json"} {
		if res, err := f.w.Handle(ctx, codeDeployEvent(t, sample, "d-FAKE00001")); err != nil || res.Ignored != "deployment still in progress" {
			t.Errorf("%s: %+v, %v", sample, res, err)
		}
	}
	res, err := f.w.Handle(ctx, codeDeployEvent(t, "codedeploy-success.json", "d-FAKE00001"))
	if err != nil || res.Outcome != history.Completed || res.Promoted != "" {
		t.Fatalf("success: %+v, %v", res, err)
	}
	// The duplicate delivery is reported once.
	if res, err := f.w.Handle(ctx, codeDeployEvent(t, "codedeploy-success.json", "d-FAKE00001")); err != nil || res.Ignored != "outcome already recorded" {
		t.Errorf("duplicate: %+v, %v", res, err)
	}
	res, err = f.w.Handle(ctx, ecsEvent(t, "ecs-deployment-completed.json", "staging", "web-worker", "ecs-svc/21"))
	if err != nil || res.Promoted != "verified-main-bg1" {
		t.Fatalf("last target completed: %+v, %v", res, err)
	}
	if n := strings.Count(f.logs.String(), `"msg":"deployment"`); n != 2 {
		t.Errorf("%d deployment lines, want 2 (one per deployment)", n)
	}
	if n := len(f.rec.messages); n != 2 || !strings.Contains(f.rec.messages[0], "staging/web") {
		t.Errorf("notices = %q", f.rec.messages)
	}
}

func TestCodeDeployFailureAndRollback(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	cd := f.withCodeDeploy(t, 3)
	ctx := context.Background()
	rolled := f.pushImage(t, "main-bg2")
	f.deployed(t, "web-staging", "staging", "web", "main-bg2", rolled, "d-FAKE00001")
	cd.End("d-FAKE00001", cdtypes.DeploymentStatusFailed, "The ECS service cannot be updated: tasks failed health checks", "d-FAKE00009")

	// GetDeployment throttled: the event fails, so Lambda retries it.
	cd.FailNext("GetDeployment", &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded"})
	if _, err := f.w.Handle(ctx, codeDeployEvent(t, "codedeploy-failure.json", "d-FAKE00001")); err == nil {
		t.Fatal("a throttled GetDeployment did not fail the event")
	}
	res, err := f.w.Handle(ctx, codeDeployEvent(t, "codedeploy-failure.json", "d-FAKE00001"))
	if err != nil || res.Outcome != history.RolledBack {
		t.Fatalf("failure with rollback: %+v, %v", res, err)
	}
	rec, _, _ := f.store.ByDeployment(ctx, "d-FAKE00001")
	if rec.DeploymentOutcome != history.RolledBack || !strings.Contains(rec.DeploymentReason, "rolled back by deployment d-FAKE00009") ||
		!strings.Contains(rec.DeploymentReason, "tasks failed health checks") {
		t.Errorf("record = %q %q", rec.DeploymentOutcome, rec.DeploymentReason)
	}
	// Duplicates and the rollback deployment's own events are not news.
	if res, _ := f.w.Handle(ctx, codeDeployEvent(t, "codedeploy-failure.json", "d-FAKE00001")); res.Ignored != "outcome already recorded" {
		t.Errorf("duplicate failure: %+v", res)
	}
	if res, _ := f.w.Handle(ctx, codeDeployEvent(t, "codedeploy-success.json", "d-FAKE00009")); res.Ignored != "deployment not started by autodeploy" {
		t.Errorf("rollback deployment's success: %+v", res)
	}
	state, err := f.store.States(ctx, []string{history.ServiceKey(testenv.Account, testenv.Region, "staging", "web")})
	if err != nil {
		t.Fatal(err)
	}
	if st := state[history.ServiceKey(testenv.Account, testenv.Region, "staging", "web")]; !st.DigestFailed(rolled) {
		t.Errorf("the rolled-back digest is not marked failed on the service: %+v", st)
	}
	if !strings.Contains(f.logs.String(), `"DeploymentsRolledBack":1`) {
		t.Error("no rolled-back metric")
	}

	// Failed without rollback, and stopped.
	for _, tt := range []struct{ id, tag, sample, message, want string }{
		{"d-FAKE00002", "main-bg3", "codedeploy-failure.json", "AfterAllowTestTraffic hook web-smoke failed", "CodeDeploy deployment failed: ECS_UPDATE_ERROR: AfterAllowTestTraffic hook web-smoke failed"},
		{"d-FAKE00003", "main-bg4", "codedeploy-stop.json", "", "CodeDeploy deployment stopped"},
	} {
		f.deployed(t, "web-staging", "staging", "web", tt.tag, f.pushImage(t, tt.tag), tt.id)
		cd.End(tt.id, cdtypes.DeploymentStatusFailed, tt.message, "")
		res, err := f.w.Handle(ctx, codeDeployEvent(t, tt.sample, tt.id))
		rec, _, _ := f.store.ByDeployment(ctx, tt.id)
		if err != nil || res.Outcome != history.Failed || rec.DeploymentReason != tt.want {
			t.Errorf("%s: %+v, %v, reason %q; want %q", tt.sample, res, err, rec.DeploymentReason, tt.want)
		}
	}
	if len(f.rec.invokes) != 0 {
		t.Errorf("a failed deployment was promoted: %d hand-offs", len(f.rec.invokes))
	}
}

// TestCodeDeployUnreadable: GetDeployment refused (access denied) is no
// reason to retry forever: the failure is reported, saying what is unknown.
func TestCodeDeployUnreadable(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	cd := f.withCodeDeploy(t, 1)
	ctx := context.Background()
	f.deployed(t, "web-prod", "prod", "web", "v1.0.0", f.pushImage(t, "v1.0.0"), "d-FAKE00001")
	cd.FailNext("GetDeployment", &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized to perform codedeploy:GetDeployment", Fault: smithy.FaultClient})
	res, err := f.w.Handle(ctx, codeDeployEvent(t, "codedeploy-failure.json", "d-FAKE00001"))
	rec, _, _ := f.store.ByDeployment(ctx, "d-FAKE00001")
	if err != nil || res.Outcome != history.Failed || !strings.Contains(rec.DeploymentReason, "whether it was rolled back is unknown") {
		t.Errorf("%+v, %v, reason %q", res, err, rec.DeploymentReason)
	}
	if _, err := f.w.Handle(ctx, json.RawMessage(`{"source":"aws.codedeploy","detail-type":"CodeDeploy Deployment State-change Notification"}`)); err == nil {
		t.Error("a malformed CodeDeploy event was accepted")
	}
}

// TestCodeDeployInAnotherAccount: a forwarded CodeDeploy event of a target
// in another account is read there, through its target stack's watcher role
// (GetDeployment only), never the deployer's role, even one the file names.
func TestCodeDeployInAnotherAccount(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, role string }{
		{"derived role", ""},
		{"named role", `, role: "arn:aws:iam::222222222222:role/custom-deployer"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			cd := f.withCodeDeploy(t, 1)
			cfg, err := rules.Parse("a.yaml", []byte("version: 1\nrules:\n  - name: web-prod\n    repository: web\n    tags: [\"main-*\"]\n"+
				"    targets:\n      - {cluster: prod, service: web, account: \"222222222222\", region: us-east-1, codedeploy: {}"+tc.role+"}\n"))
			if err != nil {
				t.Fatal(err)
			}
			f.w.Rules = cfg
			var asked []string
			f.w.CodeDeploy = func(region, role string) bluegreen.CodeDeploy {
				asked = append(asked, region+" "+role)
				return cd
			}
			rec := f.deployed(t, "web-prod", "prod", "web", "main-x", f.pushImage(t, "main-x"), "d-FAKE00001")
			rec.Account, rec.Region = "222222222222", "us-east-1"
			if err := f.store.Put(context.Background(), rec); err != nil {
				t.Fatal(err)
			}
			cd.End("d-FAKE00001", cdtypes.DeploymentStatusFailed, "health checks failed", "d-FAKE00002")
			res, err := f.w.Handle(context.Background(), codeDeployEvent(t, "codedeploy-failure.json", "d-FAKE00001"))
			if err != nil || res.Outcome != history.RolledBack {
				t.Fatalf("%+v, %v", res, err)
			}
			if want := []string{"us-east-1 arn:aws:iam::222222222222:role/ecr-autodeploy-watcher-us-east-1"}; !slices.Equal(asked, want) {
				t.Errorf("CodeDeploy asked in %q, want %q", asked, want)
			}
		})
	}
}
