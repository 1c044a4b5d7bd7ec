package reconcile

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/cleanup"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work"
)

// recordedMarks keeps the marks written, and reads none.
type recordedMarks struct{ got []Mark }

func (m *recordedMarks) Clean(context.Context, []MarkKey) (map[MarkKey]Mark, error) { return nil, nil }
func (m *recordedMarks) MarkClean(_ context.Context, _ MarkKey, mk Mark) error {
	m.got = append(m.got, mk)
	return nil
}

// The runner narrows an item to its own rules (keep 5, no delete) and marks
// the family clean under the settings it ran under, not the item's (keep 2,
// delete): a sweep whose policy is the item's (a sweeper on the rules file
// the item was built from, while the stack's functions update one after
// another) finds the mark not clean and sends the family again, instead of
// skipping it with revisions 3–5 left and nothing INACTIVE deleted.
func TestMarkRecordsTheSettingsItRanUnder(t *testing.T) {
	cfg, err := rules.Parse("autodeploy.yaml", []byte("version: 1\nrules:\n  - name: web\n    repository: web\n    tags: [\"main-*\"]\n    cleanup: {keep: 5}\n    targets:\n      - {cluster: c, service: web}\n"))
	if err != nil {
		t.Fatal(err)
	}
	f := &familyECS{services: []types.Service{{ServiceName: aws.String("web"), Status: aws.String("ACTIVE"),
		TaskDefinition: aws.String(tdARN + "web:10"),
		Deployments:    []types.Deployment{{Status: aws.String("PRIMARY"), TaskDefinition: aws.String(tdARN + "web:10")}}}}}
	for i := 1; i <= 10; i++ {
		f.active = append(f.active, fmt.Sprintf("web:%d", i))
	}
	marks := &recordedMarks{}
	central := rules.Place{Account: "111111111111", Region: "eu-west-1"}
	r := &CleanupRunner{ECS: func(string, string) CleanupECS { return f }, History: fakeHistory(nil), Marks: marks,
		Rules: cfg, Central: central, Log: slog.New(slog.DiscardHandler)}
	cmd := work.Cleanup{Account: central.Account, Region: central.Region, Family: "web", Keep: 2, Delete: true,
		Services: []work.CleanupService{{Cluster: "c", Service: "web"}}, Rules: []string{"web"}}
	if _, err := r.Run(context.Background(), cmd, cleanup.NewBudget(100)); err != nil {
		t.Fatal(err)
	}
	if len(f.deregistered) != 5 {
		t.Fatalf("deregistered %v; want web:1–5 (keep 5 from the rules)", f.deregistered)
	}
	if len(marks.got) != 1 || marks.got[0].Settings != MarkSettings(5, false) {
		t.Errorf("marks %+v; want one as of web:10 under %q, the settings the run cleaned under", marks.got, MarkSettings(5, false))
	}
}
