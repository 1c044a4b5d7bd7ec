package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/deploy"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/watch"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work"
)

// laterECS plays what moto cannot show of ECS after a first receive: every
// task definition carries its registeredAt (moto's carry none; ECS's do),
// the time registered; with to set, a deployment circuit breaker rolled the
// service back (moto has none): it runs revision to again, its PRIMARY
// deployment (the rollback, created at rolledBack) COMPLETED, the failed
// deployment drained from the list. It counts UpdateService; with
// throttleUpdates, each is throttled, as past the SDK's attempts.
type laterECS struct {
	deploy.ECS
	to              string
	registered      time.Time
	rolledBack      time.Time
	updates         *atomic.Int32
	throttleUpdates bool
}

func (r laterECS) DescribeServices(ctx context.Context, in *ecs.DescribeServicesInput, o ...func(*ecs.Options)) (*ecs.DescribeServicesOutput, error) {
	out, err := r.ECS.DescribeServices(ctx, in, o...)
	if err != nil || r.to == "" {
		return out, err
	}
	for i := range out.Services {
		svc := &out.Services[i]
		svc.TaskDefinition = aws.String(r.to)
		svc.Deployments = []types.Deployment{{Id: aws.String("ecs-svc/rollback"), Status: aws.String("PRIMARY"),
			TaskDefinition: aws.String(r.to), RolloutState: types.DeploymentRolloutStateCompleted, CreatedAt: aws.Time(r.rolledBack)}}
	}
	return out, nil
}

func (r laterECS) DescribeTaskDefinition(ctx context.Context, in *ecs.DescribeTaskDefinitionInput, o ...func(*ecs.Options)) (*ecs.DescribeTaskDefinitionOutput, error) {
	out, err := r.ECS.DescribeTaskDefinition(ctx, in, o...)
	if err == nil && out.TaskDefinition != nil && out.TaskDefinition.RegisteredAt == nil {
		out.TaskDefinition.RegisteredAt = aws.Time(r.registered)
	}
	return out, err
}

func (r laterECS) UpdateService(ctx context.Context, in *ecs.UpdateServiceInput, o ...func(*ecs.Options)) (*ecs.UpdateServiceOutput, error) {
	r.updates.Add(1)
	if r.throttleUpdates {
		return nil, &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded", Fault: smithy.FaultClient}
	}
	return r.ECS.UpdateService(ctx, in, o...)
}

// A worker killed after UpdateService (its history write lost), whose
// deployment then fails and the circuit breaker rolls back before the item
// returns (18 min later in the stack): the watcher drops the failure and the
// rollback ("not started by autodeploy"), and the repair never sees the
// revision it registered running. The next receive finds that revision (its
// tags name the event), newer than the running one and undone by a
// deployment made after it: it records the deploy and its rollback (the
// digest failed on the service, the target told), and deploys nothing —
// the "never redeploy a failed digest" promise kept through one lost
// write. Delivered again, the item finds the digest failed and skips.
// A first receive never lists task definitions.
func TestARedeliveredItemWhoseDeployWasRolledBackIsNotDeployedAgain(t *testing.T) {
	f := newFixture(t, 1, 30*time.Second, 3)
	ctx := context.Background()
	before, err := f.ecs.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("fleet"), Services: []string{"svc-00"}})
	if err != nil {
		t.Fatal(err)
	}
	old := aws.ToString(before.Services[0].TaskDefinition)
	body, err := work.Encode(work.NewDeployTarget(f.push, f.d.Rules.Rules[0], 0, central))
	if err != nil {
		t.Fatal(err)
	}
	receive := func(n int) events.SQSEventResponse {
		t.Helper()
		msg := events.SQSMessage{MessageId: "m1", ReceiptHandle: fmt.Sprintf("rh-%d", n), Body: string(body),
			EventSourceARN: "arn:aws:sqs:eu-west-1:123456789012:work", Attributes: map[string]string{"ApproximateReceiveCount": fmt.Sprint(n)}}
		resp, err := f.handler.Handle(ctx, events.SQSEvent{Records: []events.SQSMessage{msg}})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	registered := time.Now()
	f.proxy.Calls()
	f.proxy.Fail("TransactWriteItems", 1)
	if resp := receive(1); len(resp.BatchItemFailures) != 1 {
		t.Fatalf("first receive answered %+v; want the item back", resp)
	}
	if n := f.proxy.Calls()["ListTaskDefinitions"]; n != 0 {
		t.Errorf("the first receive listed task definitions %d times; a first delivery pays nothing", n)
	}
	svc, err := f.ecs.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("fleet"), Services: []string{"svc-00"}})
	if err != nil {
		t.Fatal(err)
	}
	mine := aws.ToString(svc.Services[0].TaskDefinition)
	deployment := aws.ToString(svc.Services[0].Deployments[0].Id)

	// The watcher hears the failure while no record names the deployment.
	store := history.NewStore(dynamodb.NewFromConfig(f.moto.AWSConfig()), "autodeploy")
	w := &watch.Watcher{Rules: f.d.Rules, Central: central, Store: store, Log: f.d.Log}
	raw, err := os.ReadFile(filepath.Join("..", "..", "events", "ecs-deployment-failed.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ev map[string]any
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	ev["resources"] = []string{fmt.Sprintf("arn:aws:ecs:%s:%s:service/fleet/svc-00", central.Region, central.Account)}
	ev["detail"].(map[string]any)["deploymentId"] = deployment
	raw, _ = json.Marshal(ev)
	if res, err := w.Handle(ctx, raw); err != nil || res.Outcome != "" {
		t.Fatalf("watcher: %+v %v, want the end dropped", res, err)
	}

	// ECS rolled the service back to the revision it ran before.
	var updates atomic.Int32
	moto := f.d.ECS
	f.d.ECS = func(region, role string) deploy.ECS {
		return laterECS{ECS: moto(region, role), to: old, registered: registered, rolledBack: time.Now(), updates: &updates}
	}
	for n := 2; n <= 3; n++ {
		if resp := receive(n); len(resp.BatchItemFailures) != 0 {
			t.Fatalf("receive %d answered %+v; want the item done", n, resp)
		}
	}
	if n := updates.Load(); n != 0 {
		t.Errorf("the item's next receives called UpdateService %d times: they redeployed %s, the digest ECS just rolled back", n, f.push.Digest)
	}
	deploys := f.lines(t, "deploy")
	var reasons []string
	for _, l := range deploys[1:] {
		reasons = append(reasons, fmt.Sprint(l["outcome"])+": "+strings.SplitN(fmt.Sprint(l["reason"]), ":", 2)[0])
	}
	want := []string{"skipped: this event's deploy was undone before it was recorded",
		"skipped: the latest deployment of " + f.push.Digest[:6]}
	reasons[1] = reasons[1][:len(want[1])]
	if diff := cmp.Diff(want, reasons); diff != "" {
		t.Errorf("deploy lines after the rollback (-want +got):\n%s", diff)
	}
	recent, err := store.Recent(ctx, history.ServiceKey(central.Account, central.Region, "fleet", "svc-00"), 10)
	if err != nil {
		t.Fatal(err)
	}
	var recs []string
	for _, r := range recent {
		recs = append(recs, r.EventID+" "+r.ToTaskDefinition+" "+r.DeploymentOutcome)
	}
	if diff := cmp.Diff([]string{f.push.EventID + " " + mine + " " + history.RolledBack}, recs); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"rolled_back fleet fleet/svc-00"}, f.notices.list()); diff != "" {
		t.Errorf("notices (-want +got):\n%s", diff)
	}
}

// A first receive whose UpdateService never went through (throttled past
// the SDK's attempts) leaves its registered revision unused: the service's
// deployment predates it, so the next receive deploys as usual.
func TestARedeliveredItemWhoseUpdateNeverWentThroughDeploys(t *testing.T) {
	f := newFixture(t, 1, 30*time.Second, 3)
	ctx := context.Background()
	body, err := work.Encode(work.NewDeployTarget(f.push, f.d.Rules.Rules[0], 0, central))
	if err != nil {
		t.Fatal(err)
	}
	var updates atomic.Int32
	moto := f.d.ECS
	registered := time.Now()
	throttle := true
	f.d.ECS = func(region, role string) deploy.ECS {
		return laterECS{ECS: moto(region, role), registered: registered, updates: &updates, throttleUpdates: throttle}
	}
	for n := 1; n <= 2; n++ {
		msg := events.SQSMessage{MessageId: "m1", ReceiptHandle: fmt.Sprintf("rh-%d", n), Body: string(body),
			EventSourceARN: "arn:aws:sqs:eu-west-1:123456789012:work", Attributes: map[string]string{"ApproximateReceiveCount": fmt.Sprint(n)}}
		resp, err := f.handler.Handle(ctx, events.SQSEvent{Records: []events.SQSMessage{msg}})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := len(resp.BatchItemFailures), 2-n; got != want {
			t.Fatalf("receive %d returned %d items, want %d", n, got, want)
		}
		throttle = false
	}
	if got := f.image(t, "svc-00"); got != f.push.ByDigest() {
		t.Errorf("svc-00 runs %s, want %s", got, f.push.ByDigest())
	}
	if n := updates.Load(); n != 2 {
		t.Errorf("UpdateService called %d times, want 2 (the throttled one, then the deploy)", n)
	}
}
