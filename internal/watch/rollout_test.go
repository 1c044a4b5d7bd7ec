package watch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/logging"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

// A push reached 50 services of one rule: their deployments end (five
// fail), some events come twice, the last two race. People get exactly one
// notice, the rule's, and no notice per deployment.
func TestFiftyEndsMakeOneRuleNotice(t *testing.T) {
	t.Parallel()
	const targets = 50
	w, store, rec, logs := fleetWatcher(t, "fleet", targets)
	ctx := context.Background()
	digest := "sha256:" + strings.Repeat("ab", 32)
	if err := store.OpenRollout(ctx, history.Rollout{Rule: "fleet", EventID: "push-main-abc", Repository: "web", Tag: "main-abc",
		Digest: digest, PushedAt: t0}, fleetTargets(targets), t0); err != nil {
		t.Fatal(err)
	}
	for i := range targets {
		if err := store.Put(ctx, history.Record{Rule: "fleet", Repository: "web", Tag: "main-abc", Digest: digest,
			Account: testenv.Account, Region: testenv.Region, Cluster: "fleet", Service: fmt.Sprintf("svc-%02d", i),
			DeploymentID: fmt.Sprintf("ecs-svc/%d", 100+i), EventID: "push-main-abc", Outcome: "deployed",
			PushedAt: t0, DeployedAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	event := func(i int) []byte {
		sample := "ecs-deployment-completed.json"
		if i%10 == 9 {
			sample = "ecs-deployment-failed.json"
		}
		return ecsEvent(t, sample, "fleet", fmt.Sprintf("svc-%02d", i), fmt.Sprintf("ecs-svc/%d", 100+i))
	}
	handle := func(wg *sync.WaitGroup, i int) {
		defer wg.Done()
		// A copy of an end that finds the rule's notice claimed by another
		// call but not sent yet fails, and Lambda delivers it again: played
		// here until it ends quietly (the notice sent by the claimer).
		for attempt := 1; ; attempt++ {
			_, err := w.Handle(ctx, event(i))
			if err == nil {
				return
			}
			if !errors.Is(err, history.ErrNoticePending) || attempt == 50 {
				t.Errorf("target %d: %v", i, err)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	var wg sync.WaitGroup
	for i := range targets - 2 {
		wg.Add(1)
		go handle(&wg, i)
		if i%5 == 0 { // delivered twice
			wg.Add(1)
			go handle(&wg, i)
		}
	}
	wg.Wait()
	if len(rec.messages) != 0 {
		t.Fatalf("%d notices before the last target ended:\n%s", len(rec.messages), rec.messages[0])
	}
	for _, i := range []int{targets - 2, targets - 1, targets - 2, targets - 1} { // the last two race, twice each
		wg.Add(1)
		go handle(&wg, i)
	}
	wg.Wait()
	if len(rec.messages) != 1 {
		t.Fatalf("%d notices, want the rule's one:\n%s", len(rec.messages), strings.Join(rec.messages, "\n----\n"))
	}
	msg := rec.messages[0]
	for _, want := range []string{
		"rule fleet deployed web:main-abc to 45 of 50 services, 5 FAILED",
		"Failed (5):", "fleet/svc-09, fleet/svc-19, fleet/svc-29, fleet/svc-39, fleet/svc-49",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("the notice lacks %q:\n%s", want, msg)
		}
	}
	if n := strings.Count(logs.String(), `"msg":"rollout","outcome":"ended"`); n != 1 {
		t.Errorf("%d rollout-ended lines, want 1", n)
	}
}

// syncBuffer is a log buffer for concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fleetTargets are svc-00 … svc-<n-1> of cluster fleet, in the central place.
func fleetTargets(n int) []history.RolloutTarget {
	var ts []history.RolloutTarget
	for i := range n {
		svc := fmt.Sprintf("svc-%02d", i)
		ts = append(ts, history.RolloutTarget{ServiceKey: history.ServiceKey(testenv.Account, testenv.Region, "fleet", svc),
			Account: testenv.Account, Region: testenv.Region, Cluster: "fleet", Service: svc})
	}
	return ts
}

// Push 1 (main-abc) reaches svc-00 and svc-01; svc-01's deployment fails,
// counted in push 1's rollout. Before svc-00's deployment ends, push 2
// (main-def) deploys svc-00 again: ECS replaces the first deployment, which
// never reports its end. Here push 2's records are written as a deploy by
// another version would (the deploy path supersedes as it deploys, see
// internal/deploy): when push 2's deployment of svc-00 completes, the
// watcher ends push 1's as superseded, push 1's rollout ends, and its one
// notice tells svc-01's failure. The event delivered twice ends nothing
// twice.
func TestCompletionEndsTheDeploymentsItReplaced(t *testing.T) {
	t.Parallel()
	w, store, rec, _ := fleetWatcher(t, "fleet", 2)
	ctx := context.Background()
	push := func(event, tag, digest string, base int, at time.Time) {
		if err := store.OpenRollout(ctx, history.Rollout{Rule: "fleet", EventID: event, Repository: "web", Tag: tag,
			Digest: digest, PushedAt: t0}, fleetTargets(2), t0); err != nil {
			t.Fatal(err)
		}
		for i := range 2 {
			if err := store.Put(ctx, history.Record{Rule: "fleet", Repository: "web", Tag: tag, Digest: digest,
				Account: testenv.Account, Region: testenv.Region, Cluster: "fleet", Service: fmt.Sprintf("svc-%02d", i),
				DeploymentID: fmt.Sprintf("ecs-svc/%d", base+i), EventID: event, Outcome: "deployed",
				ToTaskDefinition: fmt.Sprintf("arn:aws:ecs:%s:%s:task-definition/svc-%02d:%d", testenv.Region, testenv.Account, i, base),
				PushedAt:         at, DeployedAt: at}); err != nil {
				t.Fatal(err)
			}
		}
	}
	push("push-1", "main-abc", "sha256:"+strings.Repeat("ab", 32), 100, t0)
	if _, err := w.Handle(ctx, ecsEvent(t, "ecs-deployment-failed.json", "fleet", "svc-01", "ecs-svc/101")); err != nil {
		t.Fatal(err)
	}
	// Push 2 replaces svc-00's deployment ecs-svc/100 (no end event for it).
	push("push-2", "main-def", "sha256:"+strings.Repeat("cd", 32), 200, t0.Add(2*time.Minute))
	for _, d := range []string{"ecs-svc/200", "ecs-svc/200", "ecs-svc/201"} {
		svc := "svc-0" + d[len(d)-1:]
		if _, err := w.Handle(ctx, ecsEvent(t, "ecs-deployment-completed.json", "fleet", svc, d)); err != nil {
			t.Fatal(err)
		}
	}
	var abc, def []string
	for _, msg := range rec.messages {
		switch {
		case strings.Contains(msg, "main-abc"):
			abc = append(abc, msg)
		case strings.Contains(msg, "main-def"):
			def = append(def, msg)
		}
	}
	if len(abc) != 1 || !strings.Contains(abc[0], "svc-01") || !strings.Contains(abc[0], "Superseded (1)") {
		t.Errorf("want push 1's one notice, naming svc-01's failure and svc-00 superseded; got:\n%s", strings.Join(abc, "\n----\n"))
	}
	if len(def) != 1 {
		t.Errorf("want push 2's one notice; got %d", len(def))
	}
	old, _, err := store.ByDeployment(ctx, "ecs-svc/100")
	if err != nil || old.DeploymentOutcome != history.Superseded {
		t.Errorf("push 1's deployment of svc-00 recorded %q, %v; want superseded", old.DeploymentOutcome, err)
	}
}

// fleetWatcher is a watcher of one rule over services svc-00… of cluster
// fleet, on a moto table called one request at a time (moto applies
// concurrent writes without isolation), telling its notices to a recorder
// and its lines to a buffer.
func fleetWatcher(t *testing.T, rule string, targets int) (*Watcher, *history.Store, *recorder, *syncBuffer) {
	t.Helper()
	var yaml strings.Builder
	fmt.Fprintf(&yaml, "version: 1\nrules:\n  - name: %s\n    repository: web\n    tags: [\"main-*\"]\n    targets:\n", rule)
	for i := range targets {
		fmt.Fprintf(&yaml, "      - {cluster: fleet, service: svc-%02d}\n", i)
	}
	cfg, err := rules.Parse("autodeploy.yaml", []byte(yaml.String()))
	if err != nil {
		t.Fatal(err)
	}
	m := testenv.StartMoto(t)
	store := history.NewStore(testenv.SerialDynamoDB(m.AWSConfig()), m.CreateTable(t, "autodeploy"))
	rec, logs := &recorder{}, &syncBuffer{}
	return &Watcher{Rules: cfg, Central: central, Store: store, Notifier: rec, Log: logging.New(logs, slog.LevelInfo)}, store, rec, logs
}
