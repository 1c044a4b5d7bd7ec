package deploy

// Blue/green deploys against fakes: fakeECS for the CODE_DEPLOY service
// (moto keeps no task sets) and testenv.FakeCodeDeploy for what moto's
// CodeDeploy lacks — an active deployment refusing the next, deployments
// that end, BatchGetDeploymentGroups. integration_test.go runs a blue/green
// deploy against moto's ECS and CodeDeploy.

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cdtypes "github.com/aws/aws-sdk-go-v2/service/codedeploy/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/bluegreen"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

const blueGreenRules = `version: 1
rules:
  - name: web-prod
    repository: web
    semver: ">= 1.0.0"
    targets:
      - cluster: prod
        service: web
        codedeploy:
          hooks: {AfterAllowTestTraffic: web-smoke}
`

type blueGreenFixture struct {
	*fixture
	cd *testenv.FakeCodeDeploy
}

func newBlueGreenFixture(t *testing.T) blueGreenFixture {
	t.Helper()
	f := newFixture(t)
	cfg, err := rules.Parse("bluegreen.yaml", []byte(blueGreenRules))
	if err != nil {
		t.Fatal(err)
	}
	f.d.Rules = cfg
	svc := f.ecs.services["prod/web"]
	svc.DeploymentController = &types.DeploymentController{Type: types.DeploymentControllerTypeCodeDeploy}
	svc.LoadBalancers = []types.LoadBalancer{{TargetGroupArn: aws.String("arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web-blue/1"),
		ContainerName: aws.String("app"), ContainerPort: aws.Int32(8080)}}
	svc.NetworkConfiguration = &types.NetworkConfiguration{AwsvpcConfiguration: &types.AwsVpcConfiguration{Subnets: []string{"subnet-0a"}}}
	cd := testenv.NewFakeCodeDeploy()
	cd.AddApplication("web", cdtypes.ComputePlatformEcs)
	cd.AddGroup("web", "web-staging", "staging", "web", true)
	cd.AddGroup("web", "web-prod", "prod", "web", true)
	f.d.CodeDeploy = func(string, string) bluegreen.CodeDeploy { return cd }
	return blueGreenFixture{f, cd}
}

func TestBlueGreenDeploy(t *testing.T) {
	ctx := context.Background()
	f := newBlueGreenFixture(t)
	from := aws.ToString(f.ecs.services["prod/web"].TaskDefinition)
	sum, err := f.d.Handle(ctx, pushEvent(t, "web", "v1.2.0", t0))
	if err != nil {
		t.Fatal(err)
	}
	r := sum.Results[0]
	if r.Outcome != Deployed || r.DeploymentID != "d-FAKE00001" || r.From != from || r.To == "" || r.To == from {
		t.Fatalf("result = %+v", r)
	}
	if f.ecs.calls["UpdateService"] != 0 {
		t.Error("UpdateService was called on a blue/green service")
	}
	if got := aws.ToString(f.ecs.services["prod/web"].TaskDefinition); got != from {
		t.Errorf("the service's task definition moved to %s before CodeDeploy shifted traffic", got)
	}
	deps := f.cd.Deployments()
	if len(deps) != 1 || aws.ToString(deps[0].DeploymentGroupName) != "web-prod" {
		t.Fatalf("deployments = %+v", deps)
	}
	spec := aws.ToString(deps[0].Revision.AppSpecContent.Content)
	want, err := bluegreen.BuildAppSpec(r.To, f.ecs.services["prod/web"], []rules.Hook{{Event: "AfterAllowTestTraffic", Function: "web-smoke"}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want.Content, spec); diff != "" || aws.ToString(deps[0].Revision.AppSpecContent.Sha256) != want.SHA256 {
		t.Errorf("AppSpec (-want +got):\n%s", diff)
	}
	// The new revision is registered as for any service.
	reg := f.ecs.taskDefs[r.To]
	if got := images(reg.TaskDefinition)["app"]; !strings.HasSuffix(got, "@"+digestOf("web:v1.2.0")) {
		t.Errorf("registered image = %s", got)
	}
	recs := f.services.recorded()
	if len(recs) != 1 || recs[0].DeploymentID != "d-FAKE00001" || recs[0].ToTaskDefinition != r.To {
		t.Errorf("history = %+v", recs)
	}
	if line := f.deployLines(t)["prod/web"]; line["deployment_id"] != "d-FAKE00001" {
		t.Errorf("deploy line = %v", line)
	}

	// CodeDeploy shifted traffic: the service runs the new revision, and
	// the same event again is already running.
	f.cd.End("d-FAKE00001", cdtypes.DeploymentStatusSucceeded, "", "")
	f.ecs.services["prod/web"].TaskDefinition = aws.String(r.To)
	again, err := f.d.Handle(ctx, pushEvent(t, "web", "v1.2.0", t0))
	if err != nil || again.Results[0].Outcome != Skipped || !strings.HasPrefix(again.Results[0].Reason, "already running") {
		t.Fatalf("redelivery = %+v, %v", again.Results, err)
	}
	// An older release is refused, as for any service.
	older, _ := f.d.Handle(ctx, pushEvent(t, "web", "v1.1.0", t0.Add(time.Minute)))
	if older.Results[0].Outcome != Skipped || !strings.Contains(older.Results[0].Reason, "never downgrade") {
		t.Errorf("older = %+v", older.Results[0])
	}
	if n := len(f.cd.Deployments()); n != 1 {
		t.Errorf("%d deployments, want 1", n)
	}
}

// TestBlueGreenActiveDeployment: a push while the group deploys is a
// transient failure (Lambda retries it; the sweep catches up), and goes
// through once the deployment ended.
func TestBlueGreenActiveDeployment(t *testing.T) {
	ctx := context.Background()
	f := newBlueGreenFixture(t)
	if _, err := f.d.Handle(ctx, pushEvent(t, "web", "v1.2.0", t0)); err != nil {
		t.Fatal(err)
	}
	notices := &memNotifier{}
	f.d.Notifier = notices
	ev := pushEvent(t, "web", "v1.3.0", t0.Add(time.Minute))
	sum, err := f.d.Handle(ctx, ev)
	if err == nil || !sum.Results[0].Retryable || !strings.Contains(sum.Results[0].Reason, "deployment group web/web-prod already has an active deployment") {
		t.Fatalf("while deploying: %+v, %v", sum.Results, err)
	}
	if len(notices.messages) != 0 {
		t.Errorf("a transient failure was notified: %q", notices.messages)
	}
	f.cd.End("d-FAKE00001", cdtypes.DeploymentStatusSucceeded, "", "")
	retry, err := f.d.Handle(ctx, ev)
	if err != nil || retry.Results[0].Outcome != Deployed || retry.Results[0].DeploymentID != "d-FAKE00002" {
		t.Fatalf("retry = %+v, %v", retry.Results, err)
	}
}

// TestBlueGreenLostAnswer: CreateDeployment was applied but its answer
// lost; Lambda's retry records that deployment (and its revision), starts
// no second one.
func TestBlueGreenLostAnswer(t *testing.T) {
	ctx := context.Background()
	f := newBlueGreenFixture(t)
	f.cd.LoseCreate = 1
	ev := pushEvent(t, "web", "v1.2.0", t0)
	if _, err := f.d.Handle(ctx, ev); err == nil {
		t.Fatal("a lost answer did not fail the invocation")
	}
	sum, err := f.d.Handle(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	r := sum.Results[0]
	deps := f.cd.Deployments()
	first := bluegreen.AppSpec{Content: aws.ToString(deps[0].Revision.AppSpecContent.Content)}.TaskDefinition()
	if len(deps) != 1 || r.Outcome != Deployed || r.DeploymentID != "d-FAKE00001" || r.To != first {
		t.Fatalf("retry = %+v; deployments %d, first deploys %s", r, len(deps), first)
	}
	if recs := f.services.recorded(); len(recs) != 1 || recs[0].DeploymentID != "d-FAKE00001" {
		t.Errorf("history = %+v", recs)
	}
}

func TestBlueGreenPermanentFailures(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(blueGreenFixture)
		reason string
	}{
		{"service without load balancer", func(f blueGreenFixture) { f.ecs.services["prod/web"].LoadBalancers = nil },
			"service web has no load balancer"},
		{"access denied", func(f blueGreenFixture) {
			f.cd.FailNext("CreateDeployment", &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized to perform codedeploy:CreateDeployment", Fault: smithy.FaultClient})
		}, "create deployment in web/web-prod: api error AccessDeniedException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newBlueGreenFixture(t)
			tt.setup(f)
			notices := &memNotifier{}
			f.d.Notifier = notices
			sum, err := f.d.Handle(context.Background(), pushEvent(t, "web", "v1.2.0", t0))
			if err != nil {
				t.Fatalf("a permanent failure must not fail the invocation: %v", err)
			}
			r := sum.Results[0]
			if r.Outcome != Failed || r.Retryable || !strings.Contains(r.Reason, tt.reason) {
				t.Errorf("result = %+v, want a permanent failure containing %q", r, tt.reason)
			}
			if len(notices.messages) != 1 {
				t.Errorf("notices = %q, want one", notices.messages)
			}
		})
	}
}

// TestBlueGreenNoGroup: without a group that deploys the service, nothing
// is registered and the failure names what was searched.
func TestBlueGreenNoGroup(t *testing.T) {
	f := newBlueGreenFixture(t)
	cd := testenv.NewFakeCodeDeploy()
	cd.AddApplication("web", cdtypes.ComputePlatformEcs)
	cd.AddGroup("web", "web-staging", "staging", "web", true)
	f.d.CodeDeploy = func(string, string) bluegreen.CodeDeploy { return cd }
	sum, err := f.d.Handle(context.Background(), pushEvent(t, "web", "v1.2.0", t0))
	if err != nil {
		t.Fatal(err)
	}
	r := sum.Results[0]
	if r.Outcome != Failed || r.Retryable || !strings.Contains(r.Reason, "no CodeDeploy deployment group deploys service prod/web: searched the groups of 1 ECS application(s) (web)") {
		t.Errorf("result = %+v", r)
	}
	if f.ecs.calls["RegisterTaskDefinition"] != 0 {
		t.Error("a revision was registered for a service no group deploys")
	}
}
