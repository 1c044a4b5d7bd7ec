package e2e

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/cli"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/deploy"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecrevent"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/emulator"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/fnenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/logging"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/wiring"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/worker"
)

// inProcess builds both functions in this process exactly as their mains
// do (fnenv.Init from the environment, then wiring), with one change: the
// SDK makes one attempt per call. The built binaries' SDK retries a
// throttle up to 8 times over about half a minute; with one attempt a
// throttle reaches the worker at once, which is the case under test (a
// bucket still empty once the SDK's retries are spent).
func inProcess(t *testing.T, f *fleet) (*deploy.Deployer, *worker.Handler, *emulator.Buffer) {
	t.Helper()
	for _, kv := range append(f.env(), "AUTODEPLOY_CONFIG="+f.rules, "AWS_PROFILE=", "AWS_CONFIG_FILE="+os.DevNull, "AWS_SHARED_CREDENTIALS_FILE="+os.DevNull) {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	rt, err := fnenv.Init(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rt.AWS.Retryer = func() aws.Retryer { return retry.AddWithMaxAttempts(retry.NewStandard(), 1) }
	logs := &emulator.Buffer{}
	rt.Log = logging.New(logs, slog.LevelInfo)
	fns := wiring.New(rt)
	d, _ := fns.Intake()
	h, err := fns.Worker()
	if err != nil {
		t.Fatal(err)
	}
	return d, h, logs
}

func queuePush(t *testing.T, d *deploy.Deployer, tag string) {
	t.Helper()
	push := ecrevent.Push{EventID: "ev-" + tag, Account: testenv.Account, Region: testenv.Region, Repository: "web", Tag: tag,
		Digest: fleetDigest(tag), Time: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	sum, err := d.Deploy(context.Background(), push)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range sum.Results {
		if r.Outcome != deploy.Queued {
			t.Fatalf("%s: %s (%s), want queued", r.Service, r.Outcome, r.Reason)
		}
	}
}

// fleetDigest is the digest the tests give tag's image.
func fleetDigest(tag string) string {
	d := fmt.Sprintf("%x", tag)
	return "sha256:" + (d + strings.Repeat("0", 64))[:64]
}

// (b) A throttled target goes back to the queue with a growing backoff
// (ChangeMessageVisibility on moto's queue, shorter than its 30 s
// visibility timeout), is received three times and deploys on the third;
// the other targets are not held up. moto: SQS, ECS, DynamoDB; the
// throttle is the test proxy's (moto does not throttle).
func TestThrottledTargetReturnsToTheQueue(t *testing.T) {
	f := newFleet(t, 4, 30*time.Second, 5)
	d, h, logs := inProcess(t, f)
	f.proxy.ThrottleRegistrations("svc-01", 2)
	queuePush(t, d, "main-1")
	start := time.Now()
	stats := drain(t, f, h.Handle, time.Minute)
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("drained in %s: the backoff did not shorten the 30 s visibility timeout", took)
	}
	if stats.Received != 6 || stats.Failures != 2 {
		t.Errorf("poll stats %+v: want svc-01 received three times", stats)
	}
	_, families := f.calls()
	for i := range 4 {
		svc := fmt.Sprintf("svc-%02d", i)
		if families[svc] != 1 || f.image(t, svc) != emulator.Registry+"/web@"+fleetDigest("main-1") || len(f.records(t, svc)) != 1 {
			t.Errorf("%s: %d registrations, runs %s, %d history rows; want one each", svc, families[svc], f.image(t, svc), len(f.records(t, svc)))
		}
	}
	var backoffs []string
	for _, l := range linesOf(t, logs.String(), "work item returned to the queue") {
		backoffs = append(backoffs, fmt.Sprint(l["receive_count"], ":", l["backoff_s"]))
	}
	// Receive 1 backs off 1–2 s, receive 2 2–4 s (jittered).
	if len(backoffs) != 2 || !strings.HasPrefix(backoffs[0], "1:") || !strings.HasPrefix(backoffs[1], "2:") {
		t.Errorf("backoffs %v: want receives 1 and 2 returned", backoffs)
	}
}

// (c) Poison: a target that keeps failing transiently past maxReceiveCount,
// and a message that is not a work item, land in the dead-letter queue
// (moto's redrive policy). `autodeploy redrive --queue work` (the CLI)
// sends the work item back to its work queue and leaves the unreadable one,
// saying why; a second run sends nothing more; the item then deploys once.
// moto: SQS, ECS, DynamoDB; the throttle is the test proxy's.
func TestPoisonItemIsParkedAndRedriven(t *testing.T) {
	f := newFleet(t, 2, 30*time.Second, 3)
	d, h, _ := inProcess(t, f)
	f.proxy.ThrottleRegistrations("svc-01", 1000)
	queuePush(t, d, "main-1")
	if _, err := f.sqs.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: aws.String(f.queue.URL), MessageBody: aws.String(`{"kind":"deploy-target"`)}); err != nil {
		t.Fatal(err)
	}
	var returned int
	stats := drain(t, f, func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		resp, err := h.Handle(ctx, ev)
		returned += len(resp.BatchItemFailures)
		return resp, err
	}, 2*time.Minute)
	if got := f.depth(t, f.queue.DLQ); got != 2 || returned != 6 {
		t.Fatalf("%d in the dead-letter queue, %d returns (stats %+v); want both parked after 3 receives each", got, returned, stats)
	}
	if f.image(t, "svc-00") != emulator.Registry+"/web@"+fleetDigest("main-1") || len(f.records(t, "svc-01")) != 0 {
		t.Fatalf("svc-00 runs %s, svc-01 has %v", f.image(t, "svc-00"), f.records(t, "svc-01"))
	}

	f.proxy.ThrottleRegistrations("svc-01", 0) // the account's bucket refilled
	redrive := func() (int, string) {
		var out, errOut bytes.Buffer
		code := cli.Run(context.Background(), []string{"redrive", "--queue", "work", "--queue-url", f.queue.DLQ},
			cli.Env{Stdout: &out, Stderr: &errOut, Getenv: os.Getenv, AWS: awsenv.Load, Now: time.Now})
		return code, out.String() + errOut.String()
	}
	code, out := redrive()
	t.Logf("autodeploy redrive --queue work:\n%s", out)
	if code != 1 || !strings.Contains(out, "1 moved, 1 left") || !strings.Contains(out, "sent to "+f.queue.URL) ||
		!strings.Contains(out, "deploy web:main-1") || !strings.Contains(out, "unreadable work item") {
		t.Fatalf("redrive: %d\n%s", code, out)
	}
	if code, out := redrive(); code != 1 || !strings.Contains(out, "0 moved, 1 left") {
		t.Errorf("second redrive: %d\n%s", code, out)
	}
	if got := f.depth(t, f.queue.URL); got != 1 {
		t.Errorf("%d items in the work queue after two redrives, want 1", got)
	}
	drain(t, f, h.Handle, time.Minute)
	_, families := f.calls()
	if families["svc-01"] != 1 || f.image(t, "svc-01") != emulator.Registry+"/web@"+fleetDigest("main-1") || len(f.records(t, "svc-01")) != 1 {
		t.Errorf("svc-01 after the redrive: %d registrations, runs %s, history %v", families["svc-01"], f.image(t, "svc-01"), f.records(t, "svc-01"))
	}
}
