package reconcile

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/cleanup"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/lock"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work"
)

// Cleanup items that arrive together in one place — two completions of a
// shared family in one push, a completion's and a sweep's — spend one
// budget, not one each: a run holds the place's lease (moto's table) and an
// item that finds it held is left to it; and an item for a family its mark
// already shows clean under the same keep and delete spends nothing (not
// even a listing). ECS is the package's fake.
func TestCleanupItemsOfOnePlaceRunOneAtATime(t *testing.T) {
	m := testenv.StartMoto(t)
	table := m.CreateTable(t, "autodeploy")
	db := dynamodb.NewFromConfig(m.AWSConfig())
	f := &familyECS{services: []types.Service{{ServiceName: aws.String("web"), Status: aws.String("ACTIVE"),
		TaskDefinition: aws.String(tdARN + "web:10"),
		Deployments:    []types.Deployment{{Status: aws.String("PRIMARY"), TaskDefinition: aws.String(tdARN + "web:10")}}}}}
	for i := 1; i <= 10; i++ {
		f.active = append(f.active, fmt.Sprintf("web:%d", i))
	}
	places := lock.New(db, table)
	places.Lease = 2 * time.Second
	r := &CleanupRunner{ECS: func(string, string) CleanupECS { return f }, History: fakeHistory(nil),
		Marks: &TableMarks{DB: db, Table: table}, Places: places, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	cmd := work.Cleanup{Account: "111111111111", Region: "eu-west-1", Family: "web", Keep: 2,
		Services: []work.CleanupService{{Cluster: "c", Service: "web"}}, Rules: []string{"web"}, Origin: "test"}
	ctx := context.Background()

	// Another run holds the place: this item spends nothing.
	other, err := places.Acquire(ctx, lock.Key{PK: "cleanup#111111111111/eu-west-1", SK: "lease"}, "sweep-1/api")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Run(ctx, cmd, cleanup.NewBudget(100)); err != nil {
		t.Fatal(err)
	}
	if len(f.deregistered) != 0 {
		t.Errorf("deregistered %v while another run held the place", f.deregistered)
	}
	if err := other.Release(ctx); err != nil {
		t.Fatal(err)
	}

	// The place free: the run cleans the family and marks it clean.
	if _, err := r.Run(ctx, cmd, cleanup.NewBudget(100)); err != nil {
		t.Fatal(err)
	}
	done := len(f.deregistered)
	if done == 0 {
		t.Fatal("nothing deregistered once the place was free")
	}
	// The same item again (the second completion of the push): the mark
	// says clean under keep 2; no listing, no deregistration.
	f.deregistered = nil
	lists := f.lists
	if _, err := r.Run(ctx, cmd, cleanup.NewBudget(100)); err != nil {
		t.Fatal(err)
	}
	if len(f.deregistered) != 0 || f.lists != lists {
		t.Errorf("a family marked clean was listed %d times and %v deregistered", f.lists-lists, f.deregistered)
	}
}
