package lock

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

func newLocker(t *testing.T) *Locker {
	t.Helper()
	m := testenv.StartMoto(t)
	table := m.CreateTable(t, "autodeploy")
	return New(dynamodb.NewFromConfig(m.AWSConfig()), table)
}

func TestLockAgainstDynamoDB(t *testing.T) {
	l := newLocker(t)
	ctx := context.Background()

	t.Run("held lease times out a second taker", func(t *testing.T) {
		first, err := l.Acquire(ctx, "svc-a", "first")
		if err != nil {
			t.Fatal(err)
		}
		short := *l
		short.MaxWait = 300 * time.Millisecond
		_, err = short.Acquire(ctx, "svc-a", "second")
		var timeout *TimeoutError
		if !errors.As(err, &timeout) || timeout.Key != "svc-a" {
			t.Fatalf("second Acquire = %v, want TimeoutError for svc-a", err)
		}
		if err := first.Release(ctx); err != nil {
			t.Fatal(err)
		}
		second, err := short.Acquire(ctx, "svc-a", "second")
		if err != nil {
			t.Fatalf("Acquire after release: %v", err)
		}
		_ = second.Release(ctx)
	})

	t.Run("keys are independent", func(t *testing.T) {
		a, err := l.Acquire(ctx, "svc-b", "a")
		if err != nil {
			t.Fatal(err)
		}
		defer a.Release(ctx)
		c, err := l.Acquire(ctx, "svc-c", "c")
		if err != nil {
			t.Fatalf("a lease on svc-b blocked svc-c: %v", err)
		}
		_ = c.Release(ctx)
	})

	t.Run("expired lease is taken over and its release reports the loss", func(t *testing.T) {
		brief := *l
		brief.Lease = 200 * time.Millisecond
		stale, err := brief.Acquire(ctx, "svc-d", "crashed")
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		fresh, err := l.Acquire(ctx, "svc-d", "next")
		if err != nil {
			t.Fatalf("Acquire of an expired lease: %v", err)
		}
		if err := stale.Release(ctx); !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("stale Release = %v, want ErrLeaseLost", err)
		}
		if err := fresh.Release(ctx); err != nil {
			t.Fatalf("fresh lease was harmed by the stale release: %v", err)
		}
	})

	t.Run("mutual exclusion under contention", func(t *testing.T) {
		var inside, maxInside atomic.Int32
		var wg sync.WaitGroup
		for range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				le, err := l.Acquire(ctx, "svc-e", "racer")
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
		held, err := l.Acquire(ctx, "svc-f", "holder")
		if err != nil {
			t.Fatal(err)
		}
		defer held.Release(ctx)
		cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		_, err = l.Acquire(cctx, "svc-f", "waiter")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Acquire = %v, want context.DeadlineExceeded", err)
		}
	})
}
