package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/emulator"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

// The queued path end to end, with the built functions under aws-lambda-rie:
// the deployer (AUTODEPLOY_WORK_QUEUE_URL set) queues one work item per
// target and deploys none itself; the worker, fed by testenv.Poller playing
// Lambda's event source mapping over moto's SQS, deploys each target exactly
// once (25 registrations, 25 history rows). The same push delivered again
// (Lambda's retry, or SQS's at-least-once) finds every image running: no
// second registration. moto: SQS, ECS, DynamoDB; the proxy only counts.
func TestQueuedPushDeploysEachTargetOnce(t *testing.T) {
	const n = 25
	f := newFleet(t, n, 30*time.Second, 3)
	deployer := testenv.StartFunction(t, "deployer", f.rules, f.env())
	worker := startWorker(t, f.rules, f.env())
	push := f.pushEvent(t, "main-1", time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))

	var sum struct {
		Results []struct{ Outcome, Service, Reason string } `json:"results"`
	}
	body := invoke(t, deployer, push)
	if err := json.Unmarshal(body, &sum); err != nil || len(sum.Results) != n {
		t.Fatalf("deployer answered %s", body)
	}
	for _, r := range sum.Results {
		if r.Outcome != "queued" {
			t.Errorf("%s: %s (%s), want queued", r.Service, r.Outcome, r.Reason)
		}
	}
	if ops, _ := f.calls(); ops["RegisterTaskDefinition"]+ops["UpdateService"]+ops["DescribeServices"] != 0 || ops["SendMessageBatch"] != 3 {
		t.Errorf("the intake's calls %v: want 3 SendMessageBatch (25 items) and no ECS call", ops)
	}

	stats := drain(t, f, worker.Handle, 2*time.Minute)
	if stats.Received != n || stats.Failures != 0 {
		t.Errorf("poll stats %+v, want %d received, no failure", stats, n)
	}
	ops, families := f.calls()
	if ops["RegisterTaskDefinition"] != n || ops["UpdateService"] != n {
		t.Errorf("%d registrations, %d updates; want %d each", ops["RegisterTaskDefinition"], ops["UpdateService"], n)
	}
	for i := range n {
		svc := fmt.Sprintf("svc-%02d", i)
		if families[svc] != 1 {
			t.Errorf("%s registered %d times", svc, families[svc])
		}
		if img := f.image(t, svc); img != emulator.Registry+"/web@"+f.digest("main-1") {
			t.Errorf("%s runs %s", svc, img)
		}
		if recs := f.records(t, svc); len(recs) != 1 || recs[0].EventID != "ev-main-1" {
			t.Errorf("%s history %+v, want one row of ev-main-1", svc, recs)
		}
	}

	// (d) Delivered again: every item finds its image running.
	invoke(t, deployer, push)
	drain(t, f, worker.Handle, 2*time.Minute)
	if ops, _ := f.calls(); ops["RegisterTaskDefinition"] != n || ops["UpdateService"] != n {
		t.Errorf("a redelivery registered or updated: %v", ops)
	}
	skipped := 0
	for _, l := range worker.Lines(t, "deploy") {
		if l["outcome"] == "skipped" && strings.HasPrefix(fmt.Sprint(l["reason"]), "already running ") {
			skipped++
		}
	}
	if skipped != n {
		t.Errorf("%d redelivered items skipped as already running, want %d", skipped, n)
	}
	for i := range n {
		if recs := f.records(t, fmt.Sprintf("svc-%02d", i)); len(recs) != 1 {
			t.Errorf("svc-%02d has %d history rows after the redelivery, want 1", i, len(recs))
		}
	}
	if d := f.depth(t, f.queue.DLQ); d != 0 {
		t.Errorf("%d messages in the dead-letter queue", d)
	}
}

// (e) Two pushes for the same services, queued before the worker takes
// either: their items meet in one batch and serialise on each service's
// lock; every service ends on the newer image, never downgraded by the
// older item that may run second, and each service's history rows are its
// deploys. moto: SQS, ECS, DynamoDB (the lock); under aws-lambda-rie.
func TestTwoPushesSerialiseOnTheLock(t *testing.T) {
	const n = 3
	f := newFleet(t, n, 30*time.Second, 3)
	deployer := testenv.StartFunction(t, "deployer", f.rules, f.env())
	worker := startWorker(t, f.rules, f.env())
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	invoke(t, deployer, f.pushEvent(t, "main-1", at))
	invoke(t, deployer, f.pushEvent(t, "main-2", at.Add(time.Minute)))
	stats := drain(t, f, worker.Handle, 2*time.Minute)
	if stats.Received != 2*n || stats.Batches != 1 {
		t.Errorf("poll stats %+v, want both pushes' %d items in one batch", stats, 2*n)
	}
	_, families := f.calls()
	for i := range n {
		svc := fmt.Sprintf("svc-%02d", i)
		if img := f.image(t, svc); img != emulator.Registry+"/web@"+f.digest("main-2") {
			t.Errorf("%s runs %s, want main-2's digest", svc, img)
		}
		recs := f.records(t, svc)
		if families[svc] != len(recs) || len(recs) < 1 || len(recs) > 2 || recs[0].EventID != "ev-main-2" {
			t.Errorf("%s: %d registrations, history %+v; want one row per registration, main-2's last", svc, families[svc], recs)
		}
	}
	// Each service's deploys did not overlap: the lock's holder in every
	// deploy line ran alone (no "lease lost", no concurrent revision).
	for _, l := range worker.Lines(t, "deploy") {
		if l["outcome"] == "failed" {
			t.Errorf("a deploy failed: %v", l)
		}
	}
}

// (f) A worker killed mid-deploy (its execution environment ends after
// UpdateService, before the history write and the lock's release, as a
// timeout or crash would) leaves its item in the queue; the next receive,
// in a fresh environment, takes the dead holder's lease over within the
// worker's lock wait, finds the image running with this event's tags, and
// writes the missing history row (the history repair path), with no second
// registration. moto: SQS, ECS, DynamoDB; the kill is the test's.
func TestWorkerKilledMidDeployIsFinishedByTheNextReceive(t *testing.T) {
	f := newFleet(t, 1, 3*time.Second, 5)
	deployer := testenv.StartFunction(t, "deployer", f.rules, f.env())
	worker := startWorker(t, f.rules, f.env())
	// It waits out the dead holder's lease (20 s): that is the case.
	var killed atomic.Bool
	f.proxy.After(func(op string, _ []byte) {
		if op == "UpdateService" && killed.CompareAndSwap(false, true) {
			worker.Kill()
		}
	})
	invoke(t, deployer, f.pushEvent(t, "main-1", time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)))
	stats := drain(t, f, worker.Handle, 2*time.Minute)
	// Received at least twice: the killed receive, then the one that
	// finishes. A receive that reaches the fresh environment before it has
	// started (seconds on a loaded machine) fails and is received again,
	// as Lambda would; what must hold is one deploy and its one record.
	if !killed.Load() || worker.restarts != 1 || stats.Received < 2 || stats.Failures != stats.Received-1 {
		t.Fatalf("killed %v, restarts %d, stats %+v: want one kill, the item received until one receive finished it", killed.Load(), worker.restarts, stats)
	}
	ops, _ := f.calls()
	if ops["RegisterTaskDefinition"] != 1 || ops["UpdateService"] != 1 {
		t.Errorf("calls %v: want one registration and one update in all", ops)
	}
	if img := f.image(t, "svc-00"); img != emulator.Registry+"/web@"+f.digest("main-1") {
		t.Errorf("svc-00 runs %s", img)
	}
	recs := f.records(t, "svc-00")
	if len(recs) != 1 || recs[0].EventID != "ev-main-1" || recs[0].Outcome != "deployed" {
		t.Errorf("history %+v, want the deploy recorded once", recs)
	}
	var reasons []string
	for _, l := range worker.Lines(t, "deploy") {
		reasons = append(reasons, fmt.Sprint(l["outcome"], ": ", l["reason"]))
	}
	if len(reasons) != 1 || !strings.Contains(reasons[0], "recorded its deploy, whose history write had been lost") {
		t.Errorf("deploy lines %v: want the second receive's repair (the killed one wrote none)", reasons)
	}
	if diff := cmp.Diff(0, f.depth(t, f.queue.DLQ)); diff != "" {
		t.Errorf("dead-letter queue (-want +got):\n%s", diff)
	}
}
