package worker

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/deploy"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/notify"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work"
)

// alwaysThrottled throttles every registration while on, as an account
// whose bucket another tool drains does (a fake over moto's ECS: moto
// never throttles).
type alwaysThrottled struct {
	deploy.ECS
	on *bool
}

func (c alwaysThrottled) RegisterTaskDefinition(ctx context.Context, in *ecs.RegisterTaskDefinitionInput, o ...func(*ecs.Options)) (*ecs.RegisterTaskDefinitionOutput, error) {
	if *c.on {
		return nil, &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded", Fault: smithy.FaultClient}
	}
	return c.ECS.RegisterTaskDefinition(ctx, in, o...)
}

// rolloutStore is the fixture's table as a rollout store, one DynamoDB
// call at a time: moto's server applies concurrent conditional writes
// without isolation (two claims of one notice may both succeed), where
// DynamoDB serialises the writes to one item (testenv.SerialDynamoDB).
// The targets still interleave between their calls.
func rolloutStore(f *fixture) *history.Store {
	return history.NewStore(testenv.SerialDynamoDB(f.moto.AWSConfig()), "autodeploy")
}

// rollouts is the rule notices sent.
func (n *notices) rollouts() []notify.Notice {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []notify.Notice
	for _, x := range n.all {
		if x.Outcome == notify.RolloutEnded {
			out = append(out, x)
		}
	}
	return out
}

// groups is a rule notice's failures, as "outcome services: reason".
func groups(n notify.Notice) []string {
	var out []string
	for _, g := range n.Summary.Groups {
		out = append(out, g.Outcome+" "+strings.Join(g.Services, ",")+": "+g.Reason)
	}
	slices.Sort(out)
	return out
}

// A rule of two targets: ghost is not in ECS (a permanent failure), svc-00
// is throttled on every receive and parks in the work dead-letter queue
// after MaxReceiveCount receives. ghost's failure is told at once (the
// rollout's first failure); svc-00's last receive ends it in the rollout as
// parked, so the rule's notice goes. A redrive that then deploys svc-00 is
// the watcher's per-target report: the rollout counts nothing twice and
// nothing fails.
func TestAParkedTargetEndsItsRollout(t *testing.T) {
	f := newFixture(t, 1, 2*time.Second, 2)
	f.handler.MaxReceiveCount, f.handler.SQS, f.handler.QueueURL = 2, f.sqs, f.queue.URL
	f.handler.Backoff = func(int) time.Duration { return 0 }
	f.edit(t, "    targets:\n", "    targets:\n      - {cluster: fleet, service: ghost}\n")
	store := rolloutStore(f)
	f.d.Rollouts = store
	throttled := true
	inner := f.d.ECS
	f.d.ECS = func(region, role string) deploy.ECS { return alwaysThrottled{inner(region, role), &throttled} }

	queued(t, f.d, f.push)
	f.drain(t)

	if d := f.depth(t, f.queue.DLQ); d != 1 {
		t.Fatalf("%d messages parked, want svc-00's item\n%s", d, f.logs)
	}
	var first []string
	for _, n := range f.notices.all {
		if n.Outcome == notify.NotDeployed {
			first = append(first, n.Cluster+"/"+n.Service+": "+n.Reason)
		}
	}
	if len(first) != 1 || !strings.HasPrefix(first[0], "fleet/ghost: ") ||
		!strings.Contains(first[0], "(first failure of 2 targets of rule fleet; the rule's notice follows when every target ended)") {
		t.Errorf("first-failure notices %q, want one for fleet/ghost", first)
	}
	ended := f.notices.rollouts()
	if len(ended) != 1 {
		t.Fatalf("%d rule notices, want 1: %v", len(ended), f.notices.list())
	}
	got := groups(ended[0])
	if len(got) != 2 || !strings.HasPrefix(got[1], "not_deployed fleet/svc-00: parked in the work dead-letter queue after 2 receives (last: ") ||
		!strings.HasSuffix(got[1], "`autodeploy redrive --queue work` replays it") || strings.Contains(got[1], "will retry") ||
		!strings.HasPrefix(got[0], "not_deployed fleet/ghost: ") {
		t.Errorf("rule notice's failures:\n%s", strings.Join(got, "\n"))
	}
	if n := len(f.lines(t, "work item parked")); n != 1 {
		t.Errorf("%d parked lines, want 1", n)
	}

	// The redrive, once the account's bucket refills: svc-00 deploys.
	throttled = false
	redrive(t, f)
	f.from = len(f.logs.String())
	f.drain(t)
	if img := f.image(t, "svc-00"); !strings.HasSuffix(img, "@"+f.push.Digest) && !strings.HasSuffix(img, ":"+f.push.Tag) {
		t.Fatalf("svc-00 runs %s after the redrive", img)
	}
	// The watcher's end of its deployment: not the rollout's any more.
	key := history.ServiceKey(central.Account, central.Region, "fleet", "svc-00")
	end := history.RolloutEnd{ServiceKey: key, Account: central.Account, Region: central.Region, Cluster: "fleet", Service: "svc-00",
		Outcome: notify.Completed, At: time.Now()}
	for range 2 { // and its duplicate event
		tracked, err := notify.EndTarget(context.Background(), store, f.notices, f.d.Log, "fleet", f.push.EventID, end, time.Now())
		if err != nil || tracked {
			t.Errorf("the redriven deployment's end: tracked %v, %v; want untracked (reported by itself)", tracked, err)
		}
	}
	for _, msg := range []string{"rollout end not recorded", "notification not sent"} {
		if l := f.lines(t, msg); len(l) != 0 {
			t.Errorf("%q after the redrive: %v", msg, l)
		}
	}
	if n := len(f.notices.rollouts()); n != 1 {
		t.Errorf("%d rule notices after the redrive, want still 1", n)
	}
	ends, err := store.RolloutEnds(context.Background(), "fleet", f.push.EventID)
	if err != nil {
		t.Fatal(err)
	}
	var outcomes []string
	for _, e := range ends {
		outcomes = append(outcomes, e.Service+" "+e.Outcome)
	}
	slices.Sort(outcomes)
	if diff := cmp.Diff([]string{"ghost not_deployed", "svc-00 not_deployed"}, outcomes); diff != "" {
		t.Errorf("the rollout's ends after the redrive (-want +got):\n%s", diff)
	}
}

// redrive moves the dead-letter queue's messages back to the work queue,
// as `autodeploy redrive --queue work` does.
func redrive(t *testing.T, f *fixture) {
	t.Helper()
	ctx := context.Background()
	out, err := f.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(f.queue.DLQ), MaxNumberOfMessages: 10})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range out.Messages {
		if _, err := f.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(f.queue.URL), MessageBody: m.Body}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(f.queue.DLQ), ReceiptHandle: m.ReceiptHandle}); err != nil {
			t.Fatal(err)
		}
	}
}

// message is item as the event source mapping hands it over on its
// receives-th receive.
func message(t *testing.T, id string, it work.DeployTarget, receives string) events.SQSMessage {
	t.Helper()
	body, err := work.Encode(it)
	if err != nil {
		t.Fatal(err)
	}
	return events.SQSMessage{MessageId: id, Body: string(body), ReceiptHandle: "rh-" + id,
		Attributes: map[string]string{"ApproximateReceiveCount": receives}}
}

// The handler ends a throttled item in its rollout on its last receive
// only; the last receive delivered twice (the event source mapping may)
// counts once and sends one rule notice; and a rollout's first permanent
// failure is told once however often it is delivered.
func TestLastReceiveEndsTheTargetOnce(t *testing.T) {
	tests := []struct {
		name       string
		receives   []string // svc-00's deliveries
		ghostTimes int      // ghost's deliveries (a permanent failure)
		wantRule   int
		wantFirst  int
		wantParked int
	}{
		{"a receive before the last ends nothing", []string{"1"}, 1, 0, 1, 0},
		{"the last receive ends it", []string{"1", "2"}, 1, 1, 1, 1},
		{"the last receive delivered twice", []string{"2", "2"}, 2, 1, 1, 2},
		{"past the last (a count SQS gives approximately)", []string{"3"}, 1, 1, 1, 1},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, 1, 30*time.Second, 2)
			f.handler.MaxReceiveCount = 2
			f.edit(t, "    targets:\n", "    targets:\n      - {cluster: fleet, service: ghost}\n")
			f.d.Rollouts = rolloutStore(f)
			throttled := true
			inner := f.d.ECS
			f.d.ECS = func(region, role string) deploy.ECS { return alwaysThrottled{inner(region, role), &throttled} }
			f.push.EventID = f.push.EventID + "-" + string(rune('a'+i))
			queued(t, f.d, f.push) // opens the rollout; the items are built below
			r := f.d.Rules.Rules[0]
			ghost, svc := work.NewDeployTarget(f.push, r, 0, central), work.NewDeployTarget(f.push, r, 1, central)
			for range tc.ghostTimes {
				resp, err := f.handler.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{message(t, "g", ghost, "1")}})
				if err != nil || len(resp.BatchItemFailures) != 0 {
					t.Fatalf("ghost: %+v, %v; want it done for good", resp, err)
				}
			}
			for _, n := range tc.receives {
				resp, err := f.handler.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{message(t, "s", svc, n)}})
				if err != nil || len(resp.BatchItemFailures) != 1 {
					t.Fatalf("svc-00 receive %s: %+v, %v; want it returned", n, resp, err)
				}
			}
			first := 0
			for _, n := range f.notices.all {
				if n.Outcome == notify.NotDeployed && strings.Contains(n.Reason, "first failure of 2 targets") {
					first++
				}
			}
			if got := []int{len(f.notices.rollouts()), first, len(f.lines(t, "work item parked"))}; !slices.Equal(got, []int{tc.wantRule, tc.wantFirst, tc.wantParked}) {
				t.Errorf("rule notices, first-failure notices, parked lines = %v, want %v\n%v", got, []int{tc.wantRule, tc.wantFirst, tc.wantParked}, f.notices.list())
			}
			if n := len(f.notices.all); n != tc.wantRule+tc.wantFirst {
				t.Errorf("%d notices, want %d: %v", n, tc.wantRule+tc.wantFirst, f.notices.list())
			}
		})
	}
}

// A rule of one target is no rollout: its item parked on its last receive
// is notified by itself.
func TestAParkedTargetOfNoRolloutIsNotifiedByItself(t *testing.T) {
	f := newFixture(t, 1, 30*time.Second, 2)
	f.handler.MaxReceiveCount = 2
	f.d.Rollouts = rolloutStore(f)
	throttled := true
	inner := f.d.ECS
	f.d.ECS = func(region, role string) deploy.ECS { return alwaysThrottled{inner(region, role), &throttled} }
	queued(t, f.d, f.push)
	it := work.NewDeployTarget(f.push, f.d.Rules.Rules[0], 0, central)
	if _, err := f.handler.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{message(t, "s", it, "2")}}); err != nil {
		t.Fatal(err)
	}
	if len(f.notices.all) != 1 || f.notices.all[0].Outcome != notify.NotDeployed ||
		!strings.Contains(f.notices.all[0].Reason, "parked in the work dead-letter queue after 2 receives") {
		t.Errorf("notices %+v, want svc-00's parked notice", f.notices.all)
	}
}

// During a stack update the intake may run a newer rules file than a warm
// worker: an item for a target the worker's file does not have yet goes
// back to the queue (a worker with the new file takes it; by its last
// receive every worker runs the stack's file, so it is refused for good,
// told, rather than parked to alarm and loop through redrives), while with
// the intake's own file the refusal stays permanent.
func TestRulesFileOutOfStepWithTheIntake(t *testing.T) {
	const added = "      - {cluster: fleet, service: svc-01}\n"
	tests := []struct {
		name      string
		receives  string // the item's receive
		noSHA     bool   // an older intake's item, without rules_sha256
		sameSHA   bool   // the item names the worker's own file
		wantRetry bool
		wantLine  string
		wantNote  string // the notice's reason, "" for none
	}{
		{"a warm worker with the older file", "1", false, false, true, "work item refused: rules file differs from the intake's; it returns to the queue", ""},
		{"its last receive refuses it for good, told", "3", false, false, false, "work item refused", "work item refused: rule fleet no longer targets"},
		{"an item from an older intake is refused for good", "1", true, false, false, "work item refused", "work item refused: rule fleet no longer targets"},
		{"the same file refuses for good", "1", false, true, false, "work item refused", "work item refused: rule fleet no longer targets"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, 1, 30*time.Second, 3)
			f.handler.MaxReceiveCount = 3
			old := f.d.Rules
			f.edit(t, "    targets:\n", "    targets:\n"+added) // the intake's file
			it := work.NewDeployTarget(f.push, f.d.Rules.Rules[0], 0, central)
			switch {
			case tc.noSHA:
				it.RulesSHA256 = ""
			case tc.sameSHA:
				it.RulesSHA256 = old.SHA256()
			}
			f.d.Rules = old // the worker's, from before the target was added
			resp, err := f.handler.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{message(t, "m", it, tc.receives)}})
			if err != nil {
				t.Fatal(err)
			}
			if got := len(resp.BatchItemFailures) == 1; got != tc.wantRetry {
				t.Errorf("returned to the queue: %v, want %v", got, tc.wantRetry)
			}
			if len(f.lines(t, tc.wantLine)) != 1 {
				t.Errorf("no %q line:\n%s", tc.wantLine, f.logs)
			}
			var reasons []string
			for _, n := range f.notices.all {
				reasons = append(reasons, n.Reason)
			}
			switch {
			case tc.wantNote == "" && len(reasons) != 0:
				t.Errorf("notices %q, want none (the item returns)", reasons)
			case tc.wantNote != "" && (len(reasons) != 1 || !strings.HasPrefix(reasons[0], tc.wantNote)):
				t.Errorf("notices %q, want one saying %q", reasons, tc.wantNote)
			}
		})
	}

	// A fresh worker with the intake's file takes the item and deploys it.
	f := newFixture(t, 2, 30*time.Second, 3)
	it := work.NewDeployTarget(f.push, f.d.Rules.Rules[0], 1, central)
	resp, err := f.handler.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{message(t, "m", it, "2")}})
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("%+v, %v", resp, err)
	}
	if diff := cmp.Diff(map[string]int{"svc-01 deployed": 1}, f.outcomes(t)); diff != "" {
		t.Errorf("deploys (-want +got):\n%s", diff)
	}
}

// Lambda delivers an asynchronous event at least once, and retries the
// intake when any target of the push was not queued: a redelivery of a
// push whose rollout ended (both targets skipped: the digest runs already)
// sends its rule's notice no second time, through the queue as in-process
// (internal/deploy's TestRedeliveredPushAfterItsRolloutEndedIsNotToldAgain).
func TestRedeliveredPushThroughTheQueueIsToldOnce(t *testing.T) {
	f := newFixture(t, 2, 30*time.Second, 3)
	f.d.Rollouts = rolloutStore(f)
	queued(t, f.d, f.push) // the digest reaches both services
	f.drain(t)

	again := f.push // the same digest under a second tag, its own event
	again.EventID, again.Tag = "ev-fleet-2", "main-also"
	count := func() int {
		n := 0
		for _, x := range f.notices.all {
			if x.EventID == again.EventID {
				n++
			}
		}
		return n
	}
	for delivery := 1; delivery <= 2; delivery++ { // the event, then Lambda's second delivery of it
		queued(t, f.d, again)
		f.drain(t)
		if n := count(); n != 1 {
			t.Fatalf("after delivery %d: %d notices for %s, want 1: %v\n%s", delivery, n, again.EventID, f.notices.list(), f.logs)
		}
	}
}
