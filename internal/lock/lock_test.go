package lock

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

// All of these run against moto's DynamoDB, through a proxy that makes
// its conditional writes atomic as DynamoDB's are.

func newLocker(t *testing.T) (*Locker, *testenv.Moto) {
	t.Helper()
	m := testenv.StartMoto(t)
	table := m.CreateTable(t, "autodeploy")
	proxy := testenv.StartProxy(t, m.Endpoint)
	return New(dynamodb.NewFromConfig(proxy.Config(m.AWSConfig())), table), m
}

func key(name string) Key { return Key{PK: "service#" + name, SK: "state"} }

func TestLockAgainstDynamoDB(t *testing.T) {
	l, m := newLocker(t)
	ctx := context.Background()

	t.Run("held lease times out a second taker", func(t *testing.T) {
		first, err := l.Acquire(ctx, key("svc-a"), "first")
		if err != nil {
			t.Fatal(err)
		}
		short := *l
		short.MaxWait = 300 * time.Millisecond
		_, err = short.Acquire(ctx, key("svc-a"), "second")
		var timeout *TimeoutError
		if !errors.As(err, &timeout) || timeout.Key != key("svc-a").String() || timeout.Holder != "first" {
			t.Fatalf("second Acquire = %v, want TimeoutError for svc-a naming its holder", err)
		}
		if err := first.Release(ctx); err != nil {
			t.Fatal(err)
		}
		second, err := short.Acquire(ctx, key("svc-a"), "second")
		if err != nil {
			t.Fatalf("Acquire after release: %v", err)
		}
		_ = second.Release(ctx)
	})

	t.Run("keys are independent", func(t *testing.T) {
		a, err := l.Acquire(ctx, key("svc-b"), "a")
		if err != nil {
			t.Fatal(err)
		}
		defer a.Release(ctx)
		c, err := l.Acquire(ctx, key("svc-c"), "c")
		if err != nil {
			t.Fatalf("a lease on svc-b blocked svc-c: %v", err)
		}
		if c.TookOver != "" {
			t.Errorf("a free lock's lease TookOver = %q, want none", c.TookOver)
		}
		_ = c.Release(ctx)
	})

	t.Run("a dead holder's lease is taken over and its release reports the loss", func(t *testing.T) {
		brief := *l
		brief.Lease = 300 * time.Millisecond
		stale, err := brief.Acquire(ctx, key("svc-d"), "crashed")
		if err != nil {
			t.Fatal(err)
		}
		stale.Stop() // it stops renewing, as a crashed holder does
		fresh, err := brief.Acquire(ctx, key("svc-d"), "next")
		if err != nil {
			t.Fatalf("Acquire of a dead lease: %v", err)
		}
		if fresh.TookOver != "crashed" {
			t.Errorf("TookOver = %q, want the dead holder %q", fresh.TookOver, "crashed")
		}
		if err := stale.Check(); !errors.Is(err, ErrLeaseLost) {
			t.Errorf("stale Check = %v, want ErrLeaseLost", err)
		}
		if err := stale.Release(ctx); !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("stale Release = %v, want ErrLeaseLost", err)
		}
		if err := fresh.Release(ctx); err != nil {
			t.Fatalf("fresh lease was harmed by the stale release: %v", err)
		}
	})

	t.Run("a live holder renews and keeps its lease for many lease durations", func(t *testing.T) {
		brief := *l
		brief.Lease = 300 * time.Millisecond
		live, err := brief.Acquire(ctx, key("svc-g"), "slow deploy")
		if err != nil {
			t.Fatal(err)
		}
		waiter := brief
		waiter.MaxWait = 1500 * time.Millisecond // five leases
		if _, err := waiter.Acquire(ctx, key("svc-g"), "waiter"); !errors.As(err, new(*TimeoutError)) {
			t.Fatalf("waiter Acquire = %v, want a timeout: the holder is alive", err)
		}
		if err := live.Check(); err != nil {
			t.Fatalf("live Check = %v", err)
		}
		if err := live.Release(ctx); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("a taker whose clock is minutes off cannot break a live lease", func(t *testing.T) {
		holder, err := l.Acquire(ctx, key("svc-h"), "deployer")
		if err != nil {
			t.Fatal(err)
		}
		defer holder.Release(ctx)
		laptop := *l
		laptop.Now = func() time.Time { return time.Now().Add(2 * time.Minute) }
		laptop.MaxWait = 400 * time.Millisecond
		if _, err := laptop.Acquire(ctx, key("svc-h"), "fast laptop"); !errors.As(err, new(*TimeoutError)) {
			t.Fatalf("skewed Acquire = %v, want a timeout", err)
		}
		if err := holder.Check(); err != nil {
			t.Fatalf("holder lost its lease to a skewed taker: %v", err)
		}
	})

	t.Run("the lock keeps the item's other attributes and returns them", func(t *testing.T) {
		db := dynamodb.NewFromConfig(m.AWSConfig())
		_, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("autodeploy"), Item: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: key("svc-i").PK}, "sk": &types.AttributeValueMemberS{Value: "state"},
			"note": &types.AttributeValueMemberS{Value: "kept"},
		}})
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			le, err := l.Acquire(ctx, key("svc-i"), "reader")
			if err != nil {
				t.Fatal(err)
			}
			if got := str(le.Item, "note"); got != "kept" {
				t.Fatalf("Item[note] = %q, want kept", got)
			}
			if err := le.Release(ctx); err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("mutual exclusion under contention", func(t *testing.T) {
		var inside, maxInside atomic.Int32
		var wg sync.WaitGroup
		for range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				le, err := l.Acquire(ctx, key("svc-e"), "racer")
				if err != nil {
					t.Error(err)
					return
				}
				n := inside.Add(1)
				for {
					m := maxInside.Load()
					if n <= m || maxInside.CompareAndSwap(m, n) {
						break
					}
				}
				time.Sleep(20 * time.Millisecond)
				inside.Add(-1)
				if err := le.Release(ctx); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if maxInside.Load() != 1 {
			t.Fatalf("%d holders at once, want 1", maxInside.Load())
		}
	})

	t.Run("cancelled wait returns the context error", func(t *testing.T) {
		held, err := l.Acquire(ctx, key("svc-f"), "holder")
		if err != nil {
			t.Fatal(err)
		}
		defer held.Release(ctx)
		cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		_, err = l.Acquire(cctx, key("svc-f"), "waiter")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Acquire = %v, want context.DeadlineExceeded", err)
		}
	})
}

// TestWritesWhoseResponseWasLost: moto applies the write, a proxy loses the
// answer, the SDK retries the same request. Each write must recognise its
// own earlier success instead of failing its own condition.
func TestWritesWhoseResponseWasLost(t *testing.T) {
	m := testenv.StartMoto(t)
	table := m.CreateTable(t, "autodeploy")
	proxy := testenv.StartProxy(t, m.Endpoint)
	l := New(dynamodb.NewFromConfig(proxy.Config(m.AWSConfig())), table)
	l.MaxWait = 2 * time.Second // the old lock waited its whole 90 s here
	ctx := context.Background()

	proxy.Lose("UpdateItem", 1)
	le, err := l.Acquire(ctx, key("svc"), "deployer")
	if err != nil {
		t.Fatalf("Acquire whose first answer was lost: %v", err)
	}
	if proxy.Lost("UpdateItem") != 1 {
		t.Fatalf("the proxy lost %d answers, want 1", proxy.Lost("UpdateItem"))
	}
	proxy.Lose("UpdateItem", 1)
	if err := le.Release(ctx); err != nil {
		t.Fatalf("Release whose first answer was lost: %v", err)
	}
	again, err := l.Acquire(ctx, key("svc"), "next")
	if err != nil {
		t.Fatalf("the lock stayed held after a release: %v", err)
	}
	_ = again.Release(ctx)
}
