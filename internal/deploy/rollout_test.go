package deploy

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
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
	store := history.NewStore(&serialDB{Client: dynamodb.NewFromConfig(m.AWSConfig())}, m.CreateTable(t, "autodeploy"))
	ctx := context.Background()

	t.Run("a failure waits for the deployment's end, and a retry counts nothing twice", func(t *testing.T) {
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
		if got := notices.list(); len(got) != 0 {
			t.Fatalf("notices before the deployment ended: %q", got)
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
		want := []string{"rule web-staging deployed web:main-aaa0001 to 1 of 2 services, 1 FAILED"}
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

// serialDB makes one DynamoDB call at a time: moto's server applies
// concurrent transactions without isolation (it loses an increment of two
// at once), where DynamoDB serialises the writes to one item. The targets
// of a push still interleave between their calls.
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
