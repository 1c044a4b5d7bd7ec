package watch

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/logging"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

// A push reached 50 services of one rule: their deployments end (five
// fail), some events come twice, the last two race. People get exactly one
// notice, the rule's, and no notice per deployment.
func TestFiftyEndsMakeOneRuleNotice(t *testing.T) {
	const targets = 50
	var yaml strings.Builder
	yaml.WriteString("version: 1\nrules:\n  - name: fleet\n    repository: web\n    tags: [\"main-*\"]\n    targets:\n")
	for i := range targets {
		fmt.Fprintf(&yaml, "      - {cluster: fleet, service: svc-%02d}\n", i)
	}
	cfg, err := rules.Parse("autodeploy.yaml", []byte(yaml.String()))
	if err != nil {
		t.Fatal(err)
	}
	m := testenv.StartMoto(t)
	store := history.NewStore(&serialDB{Client: dynamodb.NewFromConfig(m.AWSConfig())}, m.CreateTable(t, "autodeploy"))
	rec := &recorder{}
	logs := &syncBuffer{}
	w := &Watcher{Rules: cfg, Central: central, Store: store, Notifier: rec, Log: logging.New(logs, slog.LevelInfo)}
	ctx := context.Background()
	digest := "sha256:" + strings.Repeat("ab", 32)
	if err := store.OpenRollout(ctx, history.Rollout{Rule: "fleet", EventID: "push-main-abc", Repository: "web", Tag: "main-abc",
		Digest: digest, PushedAt: t0, Expected: targets}, t0); err != nil {
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
		if _, err := w.Handle(ctx, event(i)); err != nil {
			t.Errorf("target %d: %v", i, err)
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

// serialDB makes one DynamoDB call at a time: moto's server applies
// concurrent transactions without isolation (it loses an increment of two
// at once), where DynamoDB serialises the writes to one item. The handlers
// still interleave between their calls, which is the race tested.
type serialDB struct {
	mu sync.Mutex
	*dynamodb.Client
}

func (s *serialDB) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Client.UpdateItem(ctx, in, o...)
}

func (s *serialDB) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Client.PutItem(ctx, in, o...)
}

func (s *serialDB) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Client.TransactWriteItems(ctx, in, o...)
}

func (s *serialDB) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Client.GetItem(ctx, in, o...)
}

func (s *serialDB) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.Client.Query(ctx, in, o...)
}
