package testenv_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/emulator"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rollout"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

// canaryConfig is a canary with a PAUSE hook before production traffic
// shifts, as a platform team's CDK would configure it.
var canaryConfig = types.DeploymentConfiguration{
	Strategy: types.DeploymentStrategyCanary, BakeTimeInMinutes: aws.Int32(10),
	CanaryConfiguration: &types.CanaryConfiguration{CanaryPercent: aws.Float64(10), CanaryBakeTimeInMinutes: aws.Int32(5)},
	LifecycleHooks: []types.DeploymentLifecycleHook{{TargetType: types.DeploymentLifecycleHookTargetTypePause,
		LifecycleStages: []types.DeploymentLifecycleHookStage{"PRE_PRODUCTION_TRAFFIC_SHIFT"}}},
	Alarms: &types.DeploymentAlarms{AlarmNames: []string{"checkout-5xx"}, Enable: true, Rollback: true},
}

type frontEnv struct {
	front      *testenv.ECSNativeFront
	viaFront   *ecs.Client // the SDK's client, its endpoint the front
	moto       *ecs.Client // the SDK's client on moto itself
	cfg        aws.Config  // aimed at the front
	running    string      // checkout's first task definition
	next, cart string      // checkout's second task definition, cart's first
}

// startFront seeds moto with shop/checkout (marked native: CANARY) and
// shop/cart (rolling), and starts a front for them. The service
// deployments are testenv.FakeECSDeployments': moto has none.
func startFront(t *testing.T) frontEnv {
	t.Helper()
	m := testenv.StartMoto(t)
	ctx := context.Background()
	e := frontEnv{moto: ecs.NewFromConfig(m.AWSConfig())}
	var err error
	for _, s := range []struct {
		name string
		arn  *string
	}{{"checkout", &e.running}, {"cart", &e.cart}} {
		if *s.arn, err = emulator.SeedService(ctx, e.moto, emulator.Service{Cluster: "shop", Name: s.name, Family: s.name,
			Containers: []emulator.Container{{Name: "app", Image: emulator.Registry + "/" + s.name + ":1"}}}); err != nil {
			t.Fatal(err)
		}
	}
	td, err := e.moto.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("checkout"),
		ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String(emulator.Registry + "/checkout:2"), Memory: aws.Int32(256)}}})
	if err != nil {
		t.Fatal(err)
	}
	e.next = aws.ToString(td.TaskDefinition.TaskDefinitionArn)
	if e.front, err = testenv.StartECSNativeFront(m.Endpoint, testenv.NewFakeECSDeployments()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.front.Close() })
	e.front.MarkNative("shop", "checkout", canaryConfig, e.running)
	e.cfg = m.AWSConfig()
	e.cfg.BaseEndpoint = aws.String(e.front.URL)
	e.viaFront = ecs.NewFromConfig(e.cfg)
	return e
}

// TestECSNativeFrontDescribesKinds: through the front a native service is
// described with its strategy, steps, hooks and alarms over moto's own
// members, and a service not marked stays as moto has it (rolling).
func TestECSNativeFrontDescribesKinds(t *testing.T) {
	e := startFront(t)
	out, err := e.viaFront.DescribeServices(context.Background(), &ecs.DescribeServicesInput{Cluster: aws.String("shop"),
		Services: []string{"checkout", "arn:aws:ecs:" + testenv.Region + ":" + testenv.Account + ":service/shop/cart"}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, s := range out.Services {
		got[aws.ToString(s.ServiceName)] = rollout.KindOf(s).String() + " running " + aws.ToString(s.TaskDefinition)
		if aws.ToString(s.ServiceName) == "checkout" {
			if diff := cmp.Diff(canaryConfig, *s.DeploymentConfiguration, cmpopts.IgnoreUnexported(types.DeploymentConfiguration{},
				types.CanaryConfiguration{}, types.DeploymentLifecycleHook{}, types.DeploymentAlarms{}),
				cmpopts.IgnoreFields(types.DeploymentConfiguration{}, "MaximumPercent", "MinimumHealthyPercent")); diff != "" {
				t.Errorf("checkout's deployment configuration (-marked +described):\n%s", diff)
			}
		}
	}
	want := map[string]string{"checkout": "ECS-native CANARY running " + e.running, "cart": "rolling running " + e.cart}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("kinds through the front (-want +got):\n%s", diff)
	}
}

// TestECSNativeFrontUpdateServiceStartsAServiceDeployment: UpdateService
// of the native service reaches moto (it runs the new revision) and starts
// the fake's service deployment, which the answer names and which the
// product's own reads (rollout.FindServiceDeployment: List, Describe,
// DescribeServiceRevisions over the wire, timestamps in epoch seconds)
// find; a rolling service's update is moto's alone.
func TestECSNativeFrontUpdateServiceStartsAServiceDeployment(t *testing.T) {
	e := startFront(t)
	ctx := context.Background()
	since := time.Now().Add(-time.Second)
	up, err := e.viaFront.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("shop"), Service: aws.String("checkout"), TaskDefinition: aws.String(e.next)})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(up.Service.CurrentServiceDeployment)
	if arn == "" || rollout.KindOf(*up.Service).String() != "ECS-native CANARY" {
		t.Fatalf("UpdateService answered current service deployment %q, kind %s", arn, rollout.KindOf(*up.Service))
	}
	if id := rollout.PrimaryDeployment(up.Service, e.next); id == "" || up.Service.Deployments[0].Status == nil || *up.Service.Deployments[0].Status != "PRIMARY" {
		t.Errorf("UpdateService's PRIMARY deployment of the new revision: %q in %+v", id, up.Service.Deployments)
	}
	direct, err := e.moto.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("shop"), Services: []string{"checkout"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(direct.Services[0].TaskDefinition); got != e.next {
		t.Errorf("moto runs %s, want %s (the front forwards UpdateService)", got, e.next)
	}
	found, err := rollout.FindServiceDeployment(ctx, e.viaFront, rollout.Query{Cluster: "shop", Service: "checkout", TaskDefinition: e.next, Since: since})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(e.front.Fake.Deployment(arn), found, ignoreSDK, cmpopts.EquateApproxTime(time.Millisecond)); diff != "" {
		t.Errorf("the service deployment through the wire (-fake +SDK):\n%s", diff)
	}

	if _, err := e.viaFront.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("shop"), Service: aws.String("cart"), TaskDefinition: aws.String(e.cart)}); err != nil {
		t.Fatal(err)
	}
	if n := e.front.Fake.Calls("UpdateService"); n != 1 {
		t.Errorf("the fake saw %d UpdateService calls, want 1 (cart is rolling: moto's alone)", n)
	}
}

var ignoreSDK = cmpopts.IgnoreUnexported(types.ServiceDeployment{}, types.ServiceRevisionSummary{}, types.DeploymentConfiguration{},
	types.CanaryConfiguration{}, types.DeploymentLifecycleHook{}, types.DeploymentAlarms{}, types.ServiceDeploymentAlarms{},
	types.DeploymentLifecycleHookDetail{}, types.Rollback{})

// TestECSNativeFrontControlsAndFailures: continue and stop go to the fake
// through the SDK, and the fake's failures come back as ECS's errors: a
// throttle the SDK retries (the same call delivered twice, applied once),
// a continue whose answer was lost (the SDK resends it; rollout.Continue
// reads that ECS applied it), a conflict and a missing deployment typed as
// the SDK's errors.
func TestECSNativeFrontControlsAndFailures(t *testing.T) {
	e := startFront(t)
	ctx := context.Background()
	up, err := e.viaFront.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("shop"), Service: aws.String("checkout"), TaskDefinition: aws.String(e.next)})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(up.Service.CurrentServiceDeployment)
	fake := e.front.Fake
	fake.Advance(arn, types.ServiceDeploymentLifecycleStageProductionTrafficShift, 10)
	for _, tt := range []struct {
		name      string
		setup     func() string // returns the hook id to continue
		wantErr   any           // a pointer to the SDK error type expected, or nil
		wantCalls int           // ContinueServiceDeployment calls the fake saw
		wantHook  types.DeploymentLifecycleHookStatus
		wantNote  bool
	}{
		{name: "continued", setup: func() string { return fake.Pause(arn, "PRE_PRODUCTION_TRAFFIC_SHIFT", time.Hour) },
			wantCalls: 1, wantHook: types.DeploymentLifecycleHookStatusSucceeded},
		{name: "throttled once, retried by the SDK", setup: func() string {
			fake.FailNext("ContinueServiceDeployment", &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded"})
			return fake.Pause(arn, "PRE_PRODUCTION_TRAFFIC_SHIFT", time.Hour)
		}, wantCalls: 2, wantHook: types.DeploymentLifecycleHookStatusSucceeded},
		{name: "applied, answer lost", setup: func() string {
			fake.LoseNext("ContinueServiceDeployment", 1)
			return fake.Pause(arn, "PRE_PRODUCTION_TRAFFIC_SHIFT", time.Hour)
		}, wantCalls: 2, wantHook: types.DeploymentLifecycleHookStatusSucceeded, wantNote: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			hook := tt.setup()
			before := fake.Calls("ContinueServiceDeployment")
			a, err := rollout.Continue(ctx, e.viaFront, "shop", "checkout", rollout.ContinueOptions{HookID: hook})
			if err != nil {
				t.Fatal(err)
			}
			if got := fake.Calls("ContinueServiceDeployment") - before; got != tt.wantCalls {
				t.Errorf("the fake saw %d continue calls, want %d", got, tt.wantCalls)
			}
			d := fake.Deployment(arn)
			status := d.LifecycleHookDetails[len(d.LifecycleHookDetails)-1].Status
			if a.HookID != hook || status != tt.wantHook || (a.Note != "") != tt.wantNote {
				t.Errorf("continued %s (note %q), hook %s is %s; want %s, %s, a note: %v", a.HookID, a.Note, hook, status, hook, tt.wantHook, tt.wantNote)
			}
		})
	}

	// A hook continued already is ECS's conflict; an unknown deployment
	// its not-found: both typed as the SDK's errors.
	hook := aws.ToString(fake.Deployment(arn).LifecycleHookDetails[0].HookId)
	_, err = e.viaFront.ContinueServiceDeployment(ctx, &ecs.ContinueServiceDeploymentInput{ServiceDeploymentArn: aws.String(arn), HookId: aws.String(hook)})
	if !errors.As(err, new(*types.ConflictException)) {
		t.Errorf("continuing a continued hook: %v, want a ConflictException", err)
	}
	_, err = e.viaFront.StopServiceDeployment(ctx, &ecs.StopServiceDeploymentInput{ServiceDeploymentArn: aws.String(arn + "x"), StopType: types.StopServiceDeploymentStopTypeRollback})
	if !errors.As(err, new(*types.ServiceDeploymentNotFoundException)) {
		t.Errorf("stopping an unknown deployment: %v, want a ServiceDeploymentNotFoundException", err)
	}
	// Stop with rollback: ECS (the fake) rolls it back.
	if _, err := e.viaFront.StopServiceDeployment(ctx, &ecs.StopServiceDeploymentInput{ServiceDeploymentArn: aws.String(arn), StopType: types.StopServiceDeploymentStopTypeRollback}); err != nil {
		t.Fatal(err)
	}
	got, err := e.viaFront.DescribeServiceDeployments(ctx, &ecs.DescribeServiceDeploymentsInput{ServiceDeploymentArns: []string{arn}})
	if err != nil {
		t.Fatal(err)
	}
	if s := got.ServiceDeployments[0].Status; s != types.ServiceDeploymentStatusRollbackRequested {
		t.Errorf("after StopServiceDeployment ROLLBACK the deployment is %s", s)
	}
}

// TestECSNativeFrontPassesTheRestToMoto: a client whose whole endpoint is
// the front reaches moto for every other service (here STS).
func TestECSNativeFrontPassesTheRestToMoto(t *testing.T) {
	e := startFront(t)
	id, err := sts.NewFromConfig(e.cfg).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(id.Account); got != testenv.Account {
		t.Errorf("account through the front: %s, want moto's %s", got, testenv.Account)
	}
}
