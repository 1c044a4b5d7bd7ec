package deploy

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecrevent"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/lock"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/notify"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

// titles keeps the titles of the notices sent, safe for concurrent targets.
type titles struct {
	mu  sync.Mutex
	all []string
}

func (n *titles) Notify(_ context.Context, notice notify.Notice) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.all = append(n.all, notice.Title())
	return nil
}

func (n *titles) list() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.all...)
}

// The deploy path's ends count in the rule's rollout (the rollouts on
// moto's DynamoDB, ECS faked as in the other tests): a rule of two targets
// is one notice when both ended, whoever ends last (here a skip, or the
// watcher's end of a deployment); a rule of one target keeps its notice.
func TestRolloutNoticesFromTheDeployPath(t *testing.T) {
	m := testenv.StartMoto(t)
	store := history.NewStore(testenv.SerialDynamoDB(m.AWSConfig()), m.CreateTable(t, "autodeploy"))
	ctx := context.Background()

	t.Run("a first failure is told at once, the rule's notice waits for the deployment's end, and a retry counts nothing twice", func(t *testing.T) {
		f := newFixture(t)
		notices := &titles{}
		f.d.Notifier, f.d.Rollouts = notices, store
		delete(f.ecs.services, "staging/web-worker")
		ev := pushEvent(t, "web", "main-aaa0001", t0)
		for range 2 { // the push, and a redelivery of it
			if _, err := f.d.Handle(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
		first := []string{"staging/web-worker NOT deployed web:main-aaa0001"} // the rollout's first failure, once
		if diff := cmp.Diff(first, notices.list()); diff != "" {
			t.Fatalf("notices before the deployment ended (-want +got):\n%s", diff)
		}
		// The watcher's end of staging/web's deployment.
		rec := f.services.recorded()
		var deployed history.Record
		for _, r := range rec {
			if r.Service == "web" && r.Outcome == "deployed" {
				deployed = r
			}
		}
		end := history.RolloutEnd{ServiceKey: history.ServiceKey(deployed.Account, deployed.Region, "staging", "web"),
			Account: deployed.Account, Region: deployed.Region, Cluster: "staging", Service: "web", Outcome: notify.Completed, At: time.Now()}
		for range 2 { // and its duplicate event
			if tracked, err := notify.EndTarget(ctx, store, notices, f.d.Log, "web-staging", deployed.EventID, end, time.Now()); err != nil || !tracked {
				t.Fatalf("end: %v, %v", tracked, err)
			}
		}
		want := append(first, "rule web-staging deployed web:main-aaa0001 to 1 of 2 services, 1 FAILED")
		if diff := cmp.Diff(want, notices.list()); diff != "" {
			t.Errorf("notices (-want +got):\n%s", diff)
		}
	})

	t.Run("skips end it at deploy time", func(t *testing.T) {
		f := newFixture(t)
		notices := &titles{}
		f.d.Notifier, f.d.Rollouts = notices, store
		if _, err := f.d.Handle(ctx, pushEvent(t, "web", "main-bbb0001", t0)); err != nil {
			t.Fatal(err)
		}
		// The same image pushed again (another event): both run it.
		if _, err := f.d.Handle(ctx, pushEvent(t, "web", "main-bbb0001", t0.Add(time.Minute))); err != nil {
			t.Fatal(err)
		}
		want := []string{"rule web-staging deployed web:main-bbb0001 to 0 of 2 services, 2 skipped"}
		if diff := cmp.Diff(want, notices.list()); diff != "" {
			t.Errorf("notices (-want +got):\n%s", diff)
		}
	})

	t.Run("a rule of one target keeps its own notice", func(t *testing.T) {
		f := newFixture(t)
		notices := &titles{}
		f.d.Notifier, f.d.Rollouts = notices, store
		delete(f.ecs.services, "prod/web")
		if _, err := f.d.Handle(ctx, pushEvent(t, "web", "v1.0.0", t0)); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"prod/web NOT deployed web:v1.0.0"}, notices.list()); diff != "" {
			t.Errorf("notices (-want +got):\n%s", diff)
		}
	})
}

// A push's rollout, once ended, stays ended: a redelivery of the push (or
// Lambda's retry of it after another place failed) finds every target's
// end recorded, and the rule's notice goes once.
func TestRedeliveredPushAfterItsRolloutEndedIsNotToldAgain(t *testing.T) {
	m := testenv.StartMoto(t)
	store := history.NewStore(testenv.SerialDynamoDB(m.AWSConfig()), m.CreateTable(t, "autodeploy"))
	ctx := context.Background()
	f := newFixture(t)
	notices := &titles{}
	f.d.Notifier, f.d.Rollouts = notices, store
	if _, err := f.d.Handle(ctx, pushEvent(t, "web", "main-ccc0001", t0)); err != nil {
		t.Fatal(err)
	}
	again := pushEvent(t, "web", "main-ccc0001", t0.Add(time.Minute)) // the same image, another push: two skips
	for range 3 {                                                     // the push, and two redeliveries of it
		if _, err := f.d.Handle(ctx, again); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"rule web-staging deployed web:main-ccc0001 to 0 of 2 services, 2 skipped"}
	if diff := cmp.Diff(want, notices.list()); diff != "" {
		t.Errorf("notices (-want +got):\n%s", diff)
	}
}

// failClaim fails the nth notice claim (the header's conditional UpdateItem
// on notice_owner) with an error the store does not retry, as DynamoDB's 5xx
// after the SDK's retries (a TransactionConflict is retried in the store:
// see internal/history's TestConflictsAreTriedAgain).
type failClaim struct {
	*dynamodb.Client
	mu        sync.Mutex
	calls, at int
}

func (f *failClaim) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if strings.Contains(aws.ToString(in.UpdateExpression), "SET notice_owner = :me") {
		f.mu.Lock()
		f.calls++
		n := f.calls
		f.mu.Unlock()
		if n == f.at {
			return nil, &smithy.GenericAPIError{Code: "InternalServerError", Message: "Internal server error", Fault: smithy.FaultServer}
		}
	}
	return f.Client.UpdateItem(ctx, in, o...)
}

// The last end is counted, then its claim of the rule's notice fails: the
// target's result is Retryable (a work item returns to its queue, a push
// fails its invocation, here), and the retry — which finds the end counted
// — claims and sends the rule's one notice; a further redelivery sends
// nothing.
func TestAClaimThatFailsIsRetriedAndNoticedOnce(t *testing.T) {
	m := testenv.StartMoto(t)
	db := &failClaim{Client: testenv.SerialDynamoDB(m.AWSConfig()), at: 2}
	store := history.NewStore(db, m.CreateTable(t, "autodeploy"))
	ctx := context.Background()
	f := newFixture(t)
	notices := &titles{}
	f.d.Notifier, f.d.Rollouts = notices, store
	f.d.Concurrency = 1 // the second target's end is the last
	if _, err := f.d.Handle(ctx, pushEvent(t, "web", "main-ddd0001", t0)); err != nil {
		t.Fatal(err)
	}
	again := pushEvent(t, "web", "main-ddd0001", t0.Add(time.Minute)) // both skip at deploy time
	sum, err := f.d.Handle(ctx, again)
	if err == nil {
		t.Fatalf("the last end's claim failed, yet the push is not retried: %+v", sum.Results)
	}
	if got := notices.list(); len(got) != 0 {
		t.Fatalf("notices before the retry: %q", got)
	}
	for range 2 { // Lambda's retry, and a redelivery
		if _, err := f.d.Handle(ctx, again); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"rule web-staging deployed web:main-ddd0001 to 0 of 2 services, 2 skipped"}
	if diff := cmp.Diff(want, notices.list()); diff != "" {
		t.Errorf("notices (-want +got):\n%s", diff)
	}
	if !strings.Contains(f.logs.String(), `"msg":"rollout end not recorded"`) {
		t.Errorf("the failed claim is not logged:\n%s", f.logs)
	}
}

// Push 1 reaches both targets of web-staging; web-worker's deployment
// fails (the watcher's end). Before staging/web's deployment ends, push 2
// deploys it again: ECS replaces push 1's deployment and never reports its
// end, so the deploy path ends it as superseded, push 1's rollout ends, and
// its one notice tells web-worker's failure. A redelivery of push 2 ends
// nothing twice.
func TestADeployEndsTheDeploymentItReplaced(t *testing.T) {
	m := testenv.StartMoto(t)
	db := testenv.SerialDynamoDB(m.AWSConfig())
	table := m.CreateTable(t, "autodeploy")
	store := history.NewStore(db, table)
	ctx := context.Background()
	f := newFixture(t)
	notices := &titles{}
	f.d.Notifier, f.d.Rollouts = notices, store
	f.d.Services = history.NewServices(lock.New(db, table), store)
	push1 := pushEvent(t, "web", "main-eee0001", t0)
	if _, err := f.d.Handle(ctx, push1); err != nil {
		t.Fatal(err)
	}
	key := history.ServiceKey("123456789012", "eu-west-1", "staging", "web-worker")
	recs, err := store.Recent(ctx, key, 1)
	if err != nil || len(recs) != 1 {
		t.Fatalf("web-worker's record: %v, %v", recs, err)
	}
	if _, err := store.SetOutcome(ctx, recs[0], history.Failed, "tasks failed to start", t0); err != nil {
		t.Fatal(err)
	}
	end := history.RolloutEnd{ServiceKey: key, Account: "123456789012", Region: "eu-west-1", Cluster: "staging", Service: "web-worker",
		Outcome: history.Failed, Reason: "tasks failed to start", DeploymentID: recs[0].DeploymentID, At: t0}
	if tracked, err := notify.EndTarget(ctx, store, notices, f.d.Log, "web-staging", recs[0].EventID, end, time.Now()); err != nil || !tracked {
		t.Fatalf("web-worker's end: %v, %v", tracked, err)
	}
	push2 := pushEvent(t, "web", "main-eee0002", t0.Add(time.Minute))
	for range 2 { // push 2, and its redelivery
		if _, err := f.d.Handle(ctx, push2); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"rule web-staging deployed web:main-eee0001 to 0 of 2 services, 1 FAILED, 1 superseded"}
	if diff := cmp.Diff(want, notices.list()); diff != "" {
		t.Errorf("notices (-want +got):\n%s", diff)
	}
	web, err := store.Recent(ctx, history.ServiceKey("123456789012", "eu-west-1", "staging", "web"), 2)
	if err != nil || len(web) != 2 {
		t.Fatalf("staging/web's records: %v, %v", web, err)
	}
	if web[1].DeploymentOutcome != history.Superseded || web[0].DeploymentOutcome != "" {
		t.Errorf("staging/web: push 1's deployment %q, push 2's %q; want superseded, under way", web[1].DeploymentOutcome, web[0].DeploymentOutcome)
	}
}

// A sweep opens no rollout (its event id is the same from one sweep of a
// digest to the next): each target it deploys is reported by itself.
func TestASweepOpensNoRollout(t *testing.T) {
	m := testenv.StartMoto(t)
	store := history.NewStore(testenv.SerialDynamoDB(m.AWSConfig()), m.CreateTable(t, "autodeploy"))
	ctx := context.Background()
	f := newFixture(t)
	notices := &titles{}
	f.d.Notifier, f.d.Rollouts = notices, store
	delete(f.ecs.services, "staging/web")
	delete(f.ecs.services, "staging/web-worker")
	push, err := ecrevent.Parse(pushEvent(t, "web", "main-fff0001", t0))
	if err != nil {
		t.Fatal(err)
	}
	push.EventID = "reconcile-" + strings.TrimPrefix(push.Digest, "sha256:")[:12]
	jobs, why := Match(f.d.Rules, f.d.Central, push)
	if len(jobs) != 2 {
		t.Fatalf("jobs %v: %s", jobs, why)
	}
	if _, err := f.d.Dispatch(ctx, push, jobs); err != nil {
		t.Fatal(err)
	}
	want := []string{"staging/web NOT deployed web:main-fff0001", "staging/web-worker NOT deployed web:main-fff0001"}
	got := notices.list()
	slices.Sort(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("notices (-want +got):\n%s", diff)
	}
}
