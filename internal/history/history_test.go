package history

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

func TestStoreRoundTrip(t *testing.T) {
	m := testenv.StartMoto(t)
	store := NewStore(dynamodb.NewFromConfig(m.AWSConfig()), m.CreateTable(t, "autodeploy"))
	ctx := context.Background()
	at := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	rec := func(i int, deployment string) Record {
		return Record{
			Rule: "web-staging", Repository: "web", Tag: "main-" + string(rune('a'+i)), Digest: "sha256:x",
			Account: testenv.Account, Region: testenv.Region, Cluster: "staging", Service: "web",
			Containers: []string{"app"}, FromTaskDefinition: "td:1", ToTaskDefinition: "td:2",
			DeploymentID: deployment, EventID: "e" + string(rune('a'+i)), Outcome: "deployed",
			PushedAt: at.Add(time.Duration(i) * time.Minute), DeployedAt: at.Add(time.Duration(i)*time.Minute + time.Second),
		}
	}
	want := []Record{rec(0, "ecs-svc/1"), rec(1, ""), rec(2, "ecs-svc/3")}
	for _, r := range want {
		if err := store.Put(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	// Another service's history must not show up.
	other := rec(3, "ecs-svc/4")
	other.Service = "api"
	if err := store.Put(ctx, other); err != nil {
		t.Fatal(err)
	}

	got, err := store.Recent(ctx, ServiceKey(testenv.Account, testenv.Region, "staging", "web"), 10)
	if err != nil {
		t.Fatal(err)
	}
	newestFirst := []Record{want[2], want[1], want[0]}
	if diff := cmp.Diff(newestFirst, got); diff != "" {
		t.Errorf("Recent (-want +got):\n%s", diff)
	}

	byID, found, err := store.ByDeployment(ctx, "ecs-svc/3")
	if err != nil || !found {
		t.Fatalf("ByDeployment = %v, %v", found, err)
	}
	if diff := cmp.Diff(want[2], byID); diff != "" {
		t.Errorf("ByDeployment (-want +got):\n%s", diff)
	}
	if _, found, err := store.ByDeployment(ctx, "ecs-svc/unknown"); found || err != nil {
		t.Errorf("unknown deployment: found=%v err=%v", found, err)
	}
}
