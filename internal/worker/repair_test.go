package worker

import (
	"context"
	"encoding/json"
	"errors"
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
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/deploy"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/watch"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work"
)

// rolloutAs plays ECS's deployments, which moto leaves as they were at
// CreateService (a fake wrapper around moto's ECS): DescribeServices shows
// the PRIMARY deployment running the service's task definition, in the
// given rolloutState.
type rolloutAs struct {
	deploy.ECS
	state  types.DeploymentRolloutState
	reason string
}

func (r rolloutAs) DescribeServices(ctx context.Context, in *ecs.DescribeServicesInput, o ...func(*ecs.Options)) (*ecs.DescribeServicesOutput, error) {
	out, err := r.ECS.DescribeServices(ctx, in, o...)
	if err != nil {
		return out, err
	}
	for i := range out.Services {
		svc := &out.Services[i]
		for j := range svc.Deployments {
			if aws.ToString(svc.Deployments[j].Status) == "PRIMARY" {
				svc.Deployments[j].TaskDefinition = svc.TaskDefinition
				svc.Deployments[j].RolloutState, svc.Deployments[j].RolloutStateReason = r.state, aws.String(r.reason)
			}
		}
	}
	return out, nil
}

// outcomeFailsOnce is the history store whose first SetOutcome fails, as a
// DynamoDB write that kept failing through the SDK's retries does.
type outcomeFailsOnce struct {
	deploy.Outcomes
	failed atomic.Bool
}

func (o *outcomeFailsOnce) SetOutcome(ctx context.Context, r history.Record, outcome, reason string, at time.Time) (bool, error) {
	if o.failed.CompareAndSwap(false, true) {
		return false, errors.New("record outcome: InternalServerError (injected)")
	}
	return o.Outcomes.SetOutcome(ctx, r, outcome, reason, at)
}

// A worker killed after UpdateService (here: its history write refused,
// which leaves the table as a kill would) leaves its item invisible for the
// queue's visibility timeout (18 min in the stack). A rolling deployment
// often ends sooner: its end reaches the watcher while no record names the
// deployment, and is dropped ("not started by autodeploy"). The next
// receive repairs the record and, when DescribeServices shows the
// deployment ended, records that end as the watcher would have: the
// outcome (a failed digest remembered, so a redelivery or sweep does not
// deploy it again), the notice. A deployment still running is left to the
// watcher, which now finds its record. Every case delivers the item again
// after the repair: nothing is recorded or notified twice.
func TestRepairRecordsTheEndTheWatcherDropped(t *testing.T) {
	tests := []struct {
		name         string
		state        types.DeploymentRolloutState // "": moto's answer (the deployment is gone, the service runs the revision)
		event        string                       // the ECS event the watcher drops while the item waits
		failOutcome  bool                         // the repair's outcome write fails once
		wantOutcome  string                       // on the repaired record
		wantNotices  []string
		wantRedeploy string // the outcome of the next delivery
	}{
		{name: "the service runs the revision", event: "ecs-deployment-completed.json",
			wantOutcome: history.Completed, wantNotices: []string{"completed fleet fleet/svc-00"}, wantRedeploy: "skipped"},
		{name: "completed", state: types.DeploymentRolloutStateCompleted, event: "ecs-deployment-completed.json",
			wantOutcome: history.Completed, wantNotices: []string{"completed fleet fleet/svc-00"}, wantRedeploy: "skipped"},
		{name: "failed", state: types.DeploymentRolloutStateFailed, event: "ecs-deployment-failed.json",
			wantOutcome: history.Failed, wantNotices: []string{"failed fleet fleet/svc-00"}, wantRedeploy: "skipped"},
		{name: "outcome write lost once", state: types.DeploymentRolloutStateFailed, event: "ecs-deployment-failed.json", failOutcome: true,
			wantOutcome: history.Failed, wantNotices: []string{"failed fleet fleet/svc-00"}, wantRedeploy: "skipped"},
		{name: "still in progress", state: types.DeploymentRolloutStateInProgress,
			wantOutcome: "", wantNotices: nil, wantRedeploy: "skipped"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, 1, 30*time.Second, 3)
			ctx := context.Background()
			if tt.state != "" {
				moto := f.d.ECS
				f.d.ECS = func(region, role string) deploy.ECS {
					return rolloutAs{ECS: moto(region, role), state: tt.state, reason: "ECS deployment " + string(tt.state)}
				}
			}
			if tt.failOutcome {
				f.d.Outcomes = &outcomeFailsOnce{Outcomes: f.d.Outcomes}
			}
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

			f.proxy.Fail("TransactWriteItems", 1)
			if resp := receive(1); len(resp.BatchItemFailures) != 1 {
				t.Fatalf("the first receive, its history write lost, answered %+v; want the item back", resp)
			}
			svc, err := f.ecs.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("fleet"), Services: []string{"svc-00"}})
			if err != nil {
				t.Fatal(err)
			}
			var deployment string
			for _, d := range svc.Services[0].Deployments {
				if aws.ToString(d.Status) == "PRIMARY" {
					deployment = aws.ToString(d.Id)
				}
			}

			store := history.NewStore(dynamodb.NewFromConfig(f.moto.AWSConfig()), "autodeploy")
			w := &watch.Watcher{Rules: f.d.Rules, Central: central, Store: store, Log: f.d.Log}
			deploymentEvent := func(name string) watch.Result {
				t.Helper()
				raw, err := os.ReadFile(filepath.Join("..", "..", "events", name))
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
				res, err := w.Handle(ctx, raw)
				if err != nil {
					t.Fatal(err)
				}
				return res
			}
			if tt.event != "" {
				if res := deploymentEvent(tt.event); res.Outcome != "" {
					t.Fatalf("the watcher recorded %q with no record to find: the test shows nothing", res.Outcome)
				}
			}

			n := 2
			if tt.failOutcome {
				if resp := receive(n); len(resp.BatchItemFailures) != 1 {
					t.Errorf("the repair whose outcome write failed answered %+v; want the item back", resp)
				}
				n++
			}
			if resp := receive(n); len(resp.BatchItemFailures) != 0 {
				t.Errorf("the repair answered %+v; want the item done", resp)
			}
			if resp := receive(n + 1); len(resp.BatchItemFailures) != 0 {
				t.Errorf("the redelivery answered %+v; want the item done", resp)
			}

			recs, err := store.Recent(ctx, history.ServiceKey(central.Account, central.Region, "fleet", "svc-00"), 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != 1 {
				t.Fatalf("records %+v, want the repaired one", recs)
			}
			if recs[0].DeploymentID != deployment || recs[0].DeploymentOutcome != tt.wantOutcome {
				t.Errorf("repaired record: deployment %q outcome %q; want %q %q", recs[0].DeploymentID, recs[0].DeploymentOutcome, deployment, tt.wantOutcome)
			}
			if diff := cmp.Diff(tt.wantNotices, f.notices.list()); diff != "" {
				t.Errorf("notices (-want +got):\n%s", diff)
			}
			deploys := f.lines(t, "deploy")
			if last := deploys[len(deploys)-1]; last["outcome"] != tt.wantRedeploy {
				t.Errorf("the redelivery: %v %v, want %s", last["outcome"], last["reason"], tt.wantRedeploy)
			}
			if tt.wantOutcome == history.Failed {
				last := deploys[len(deploys)-1]
				if reason, _ := last["reason"].(string); !strings.Contains(reason, "failed or was rolled back") {
					t.Errorf("the redelivery's reason %q: the failed digest was not remembered", reason)
				}
			}
			if tt.wantOutcome == "" {
				// The record is there now: the watcher hears the end.
				if res := deploymentEvent("ecs-deployment-completed.json"); res.Outcome != history.Completed {
					t.Errorf("the watcher on the end after the repair: %+v, want completed", res)
				}
			}
			if got := len(f.lines(t, "deployment")); tt.wantOutcome != "" && got != 1 {
				t.Errorf("%d deployment lines from the repair, want 1", got)
			}
		})
	}
}
