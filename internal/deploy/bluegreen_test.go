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
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecrevent"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
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

// TestBlueGreenActiveDeployment: a push of another image while the group
// deploys is a transient failure (Lambda retries it; the sweep catches up)
// that registers nothing, and goes through once the deployment ended. The
// refusal (DeploymentLimitExceededException) is the fake's: moto has none.
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
	if n := f.ecs.calls["RegisterTaskDefinition"]; n != 1 {
		t.Errorf("%d revisions registered, want 1: a retry while the group deploys must not register one CodeDeploy refuses", n)
	}
	f.cd.End("d-FAKE00001", cdtypes.DeploymentStatusSucceeded, "", "")
	retry, err := f.d.Handle(ctx, ev)
	if err != nil || retry.Results[0].Outcome != Deployed || retry.Results[0].DeploymentID != "d-FAKE00002" {
		t.Fatalf("retry = %+v, %v", retry.Results, err)
	}
}

// TestBlueGreenRetryRecordsOnce: an earlier attempt's deployment runs but
// was never recorded — CreateDeployment was applied and its answer lost, or
// the history write was lost. The retry records that deployment (and its
// revision) once, registers no revision and starts no deployment; the next
// retry finds it recorded and writes nothing. The lost answer and the
// deployment that keeps running are the fake's (moto's never end either,
// but it cannot lose an answer).
func TestBlueGreenRetryRecordsOnce(t *testing.T) {
	tests := []struct {
		name string
		lose func(blueGreenFixture) // before the first attempt
		lost func(blueGreenFixture) // after it
	}{
		{name: "CreateDeployment applied, its answer lost", lose: func(f blueGreenFixture) { f.cd.LoseCreate = 1 }},
		{name: "history write lost", lost: func(f blueGreenFixture) {
			f.services = newMemServices() // as if Finish never happened
			f.d.Services = f.services
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			f := newBlueGreenFixture(t)
			if tt.lose != nil {
				tt.lose(f)
			}
			ev := pushEvent(t, "web", "v1.2.0", t0)
			_, _ = f.d.Handle(ctx, ev)
			if tt.lost != nil {
				tt.lost(f)
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
			if n := f.ecs.calls["RegisterTaskDefinition"]; n != 1 {
				t.Errorf("%d revisions registered, want 1 (the retry registers none)", n)
			}
			recs := f.services.recorded()
			if len(recs) != 1 || recs[0].DeploymentID != "d-FAKE00001" || recs[0].ToTaskDefinition != first {
				t.Fatalf("history = %+v", recs)
			}
			// Once recorded, a further retry writes nothing.
			again, err := f.d.Handle(ctx, ev)
			if err != nil || again.Results[0].Outcome != Skipped || !strings.HasPrefix(again.Results[0].Reason, "deploying") {
				t.Fatalf("next retry = %+v, %v", again.Results, err)
			}
			if n := len(f.services.recorded()); n != 1 {
				t.Errorf("%d records, want 1", n)
			}
		})
	}
}

// TestBlueGreenWhileItsImageDeploys: while the group deploys the image a
// deploy would deploy, under the same rule — a duplicate delivery of the
// push, a sweep of that digest during the push's deployment, the next
// sweep during the sweep's own — the deploy is "deploying": skipped, no
// revision registered, nothing recorded, no failure, no notice. The
// deployment that keeps running is the fake's.
func TestBlueGreenWhileItsImageDeploys(t *testing.T) {
	push := func(t *testing.T, eventID string) ecrevent.Push {
		p, err := ecrevent.Parse(pushEvent(t, "web", "v1.2.0", t0))
		if err != nil {
			t.Fatal(err)
		}
		if eventID != "" {
			p.EventID = eventID
		}
		return p
	}
	sweepID := "reconcile-" + strings.TrimPrefix(digestOf("web:v1.2.0"), "sha256:")[:12] // reconcile.EventID's form
	tests := []struct {
		name          string
		first, second string // event ids; "" is the push's
	}{
		{name: "duplicate delivery of the push"},
		{name: "sweep during the push's deployment", second: sweepID},
		{name: "next sweep during the sweep's deployment", first: sweepID, second: sweepID},
		{name: "push during the sweep's deployment", first: sweepID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			f := newBlueGreenFixture(t)
			notices := &memNotifier{}
			f.d.Notifier = notices
			deploy := func(eventID string) (Result, error) {
				p := push(t, eventID)
				jobs, _ := Match(f.d.Rules, f.d.Central, p)
				sum, err := f.d.DeployJobs(ctx, p, jobs)
				return sum.Results[0], err
			}
			if r, err := deploy(tt.first); err != nil || r.Outcome != Deployed {
				t.Fatalf("first = %+v, %v", r, err)
			}
			r, err := deploy(tt.second)
			if err != nil || r.Outcome != Skipped || r.Retryable || !strings.HasPrefix(r.Reason, "deploying") || !strings.Contains(r.Reason, "d-FAKE00001") {
				t.Fatalf("second = %+v, %v; want skipped, deploying", r, err)
			}
			if n := f.ecs.calls["RegisterTaskDefinition"]; n != 1 {
				t.Errorf("%d revisions registered, want 1", n)
			}
			if n := len(f.cd.Deployments()); n != 1 {
				t.Errorf("%d deployments, want 1", n)
			}
			if recs := f.services.recorded(); len(recs) != 1 {
				t.Errorf("history = %+v, want the first deploy's record only", recs)
			}
			if len(notices.messages) != 0 {
				t.Errorf("notified: %q", notices.messages)
			}
		})
	}
}

// TestWhileActive: what a deploy does while its group has an active
// deployment, by that deployment's description.
func TestWhileActive(t *testing.T) {
	grp := bluegreen.Group{Application: "web", Name: "web-prod"}
	const digest, other = "sha256:aaa", "sha256:bbb"
	mark := bluegreen.Mark{Event: "evt-1", Rule: "web-prod", Digest: digest}
	dep := func(desc string) bluegreen.Deployment {
		m, ok := bluegreen.ParseMark(desc)
		return bluegreen.Deployment{ID: "d-1", Description: desc, Mark: m, Marked: ok, TaskDefinition: "web:7"}
	}
	recorded := history.ServiceState{LastTaskDefinition: "web:7"}
	type want struct {
		Outcome      Outcome
		Reason       string // prefix
		DeploymentID string
		To           string
		Done         bool
		Transient    bool
	}
	tests := []struct {
		name   string
		active []bluegreen.Deployment
		state  history.ServiceState
		want   want
	}{
		{name: "none", want: want{}},
		{name: "own, recorded", active: []bluegreen.Deployment{dep(mark.String())}, state: recorded,
			want: want{Outcome: Skipped, Reason: "deploying", Done: true}},
		{name: "own, not recorded", active: []bluegreen.Deployment{dep(mark.String())},
			want: want{Outcome: Deployed, Reason: "recorded by a retry", DeploymentID: "d-1", To: "web:7", Done: true}},
		{name: "own, made by an older version (no digest), not recorded", active: []bluegreen.Deployment{dep("ecr-autodeploy event=evt-1 rule=web-prod")},
			want: want{Outcome: Deployed, Reason: "recorded by a retry", DeploymentID: "d-1", To: "web:7", Done: true}},
		{name: "same image, another event", active: []bluegreen.Deployment{dep("ecr-autodeploy event=reconcile-aaa rule=web-prod digest=" + digest)},
			want: want{Outcome: Skipped, Reason: "deploying", Done: true}},
		{name: "same image, another rule", active: []bluegreen.Deployment{dep("ecr-autodeploy event=evt-1 rule=web-canary digest=" + digest)},
			want: want{Transient: true}},
		{name: "another image", active: []bluegreen.Deployment{dep("ecr-autodeploy event=evt-0 rule=web-prod digest=" + other)},
			want: want{Transient: true}},
		{name: "another event, made by an older version (no digest)", active: []bluegreen.Deployment{dep("ecr-autodeploy event=evt-0 rule=web-prod")},
			want: want{Transient: true}},
		{name: "started by hand", active: []bluegreen.Deployment{dep("hotfix")}, want: want{Transient: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var res Result
			done, err := whileActive(grp, tt.active, mark, digest, tt.state, &res)
			got := want{Outcome: res.Outcome, DeploymentID: res.DeploymentID, To: res.To, Done: done, Transient: bluegreen.IsActiveDeployment(err) && !IsPermanent(err)}
			if strings.HasPrefix(res.Reason, tt.want.Reason) {
				got.Reason = tt.want.Reason
			} else {
				got.Reason = res.Reason
			}
			if err != nil && !got.Transient {
				t.Fatalf("err = %v, want a transient active deployment error", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestBlueGreenGroupRecreated: a discovered group kept by this execution
// environment is deleted and re-created under another name (both the
// fake's: moto cannot delete a group). The next push finds the new one in
// the same attempt; with none left it is a permanent failure that
// registers nothing.
func TestBlueGreenGroupRecreated(t *testing.T) {
	tests := []struct {
		name     string
		recreate bool
	}{
		{name: "re-created under another name", recreate: true},
		{name: "deleted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			f := newBlueGreenFixture(t)
			if _, err := f.d.Handle(ctx, pushEvent(t, "web", "v1.2.0", t0)); err != nil {
				t.Fatal(err)
			}
			f.cd.End("d-FAKE00001", cdtypes.DeploymentStatusSucceeded, "", "")
			f.cd.DeleteGroup("web", "web-prod")
			if tt.recreate {
				f.cd.AddGroup("web", "web-prod-v2", "prod", "web", true)
			}
			sum, err := f.d.Handle(ctx, pushEvent(t, "web", "v1.3.0", t0.Add(time.Minute)))
			r := sum.Results[0]
			if !tt.recreate {
				if err != nil || r.Outcome != Failed || r.Retryable || !strings.Contains(r.Reason, "no CodeDeploy deployment group deploys service prod/web") {
					t.Fatalf("result = %+v, %v; want a permanent failure", r, err)
				}
				if n := f.ecs.calls["RegisterTaskDefinition"]; n != 1 {
					t.Errorf("%d revisions registered, want 1 (none for the failed push)", n)
				}
				return
			}
			if err != nil || r.Outcome != Deployed || r.DeploymentID != "d-FAKE00002" {
				t.Fatalf("result = %+v, %v", r, err)
			}
			if got := aws.ToString(f.cd.Deployments()[1].DeploymentGroupName); got != "web-prod-v2" {
				t.Errorf("deployed in %s, want web-prod-v2", got)
			}
		})
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
		// Moved to ECS-native in the IaC with codedeploy: still in the rules:
		// refused before anything is registered (the stack grants such a
		// target no UpdateService).
		{"codedeploy: on an ECS-controlled service", func(f blueGreenFixture) {
			svc := f.ecs.services["prod/web"]
			svc.DeploymentController = &types.DeploymentController{Type: types.DeploymentControllerTypeEcs}
			svc.DeploymentConfiguration = &types.DeploymentConfiguration{Strategy: types.DeploymentStrategyBlueGreen}
		}, "is ECS-native BLUE_GREEN (ECS controller), but its target has codedeploy:; remove codedeploy:"},
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
			if tt.name == "codedeploy: on an ECS-controlled service" && f.ecs.calls["RegisterTaskDefinition"] != 0 {
				t.Errorf("%d revisions registered, want none", f.ecs.calls["RegisterTaskDefinition"])
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
