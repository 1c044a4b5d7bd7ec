package history

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

// Against moto: two rules on two containers of one service each keep their
// own last permanent failure, so neither is reported again when the other
// fails (one value per service made each sweep report both anew); a state
// item written before failures were kept per rule still answers for its rule.
func TestLastFailurePerRule(t *testing.T) {
	t.Parallel()
	db, table, store, services := servicesOnMoto(t)
	ctx := context.Background()
	key := ServiceKey(testenv.Account, testenv.Region, "prod", "web")
	at := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

	fail := func(event, rule string) {
		t.Helper()
		held, err := services.Take(ctx, key, event)
		if err != nil {
			t.Fatal(err)
		}
		if err := held.Finish(ctx, Record{Rule: rule, Account: testenv.Account, Region: testenv.Region, Cluster: "prod",
			Service: "web", EventID: event, Outcome: Failed, DeployedAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	state := func() ServiceState {
		t.Helper()
		held, err := services.Take(ctx, key, "read")
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = held.Release(ctx) }()
		return held.State()
	}
	fail("reconcile-aaa", "app")
	fail("reconcile-bbb", "sidecar")
	st := state()
	if !st.Reported("reconcile-aaa", "app") || !st.Reported("reconcile-bbb", "sidecar") {
		t.Errorf("after both rules failed: %+v; want each rule's failure reported", st.LastFailures)
	}
	if st.Reported("reconcile-aaa", "sidecar") {
		t.Errorf("one rule's failure counted for the other")
	}
	states, err := store.States(ctx, []string{key})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(st.LastFailures, states[key].LastFailures); diff != "" {
		t.Errorf("States reads failures unlike Take (-take +states):\n%s", diff)
	}

	// An older version's one attribute, beside a newer rule's own.
	if _, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(table), Key: stateKey(key).Attributes(),
		UpdateExpression:          aws.String("SET last_failure = :lf"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":lf": &types.AttributeValueMemberS{Value: FailureKey("evt-9", "legacy")}}}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"app": FailureKey("reconcile-aaa", "app"), "sidecar": FailureKey("reconcile-bbb", "sidecar"),
		"legacy": FailureKey("evt-9", "legacy")}
	if diff := cmp.Diff(want, state().LastFailures); diff != "" {
		t.Errorf("with an older version's last_failure (-want +got):\n%s", diff)
	}
}
