package cli

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
)

// listedRevisions answers ListTaskDefinitions with fixed ACTIVE revisions
// (a fake: the refusal's wording, not ECS, is under test here).
type listedRevisions []string

func (l listedRevisions) ListTaskDefinitions(context.Context, *ecs.ListTaskDefinitionsInput, ...func(*ecs.Options)) (*ecs.ListTaskDefinitionsOutput, error) {
	return &ecs.ListTaskDefinitionsOutput{TaskDefinitionArns: l}, nil
}

// A refusal after clean-up never suggests rolling back to a revision whose
// last deploy there failed or was rolled back; it marks such revisions.
func TestActiveChoicesSuggestNoFailedRevision(t *testing.T) {
	const arn = "arn:aws:ecs:eu-west-1:123456789012:task-definition/"
	client := listedRevisions{arn + "web-prod:11", arn + "web-prod:10", arn + "web-prod:9"}
	recs := []history.Record{ // newest first
		{ToTaskDefinition: arn + "web-prod:11", DeploymentOutcome: history.RolledBack},
		{ToTaskDefinition: arn + "web-prod:10", DeploymentOutcome: history.Completed},
		{ToTaskDefinition: arn + "web-prod:11", DeploymentOutcome: history.Completed}, // older: the latest counts
	}
	for _, tt := range []struct {
		name   string
		failed map[string]bool
		want   string
	}{
		{"nothing failed", nil, "the ACTIVE revisions to roll back to are web-prod:11, web-prod:10, web-prod:9 (e.g. --to 11)"},
		{"the newest rolled back", failedRevisions(recs),
			"the ACTIVE revisions to roll back to are web-prod:11 (its deploy failed), web-prod:10, web-prod:9 (e.g. --to 10)"},
		{"all failed", map[string]bool{"web-prod:11": true, "web-prod:10": true, "web-prod:9": true},
			"the ACTIVE revisions to roll back to are web-prod:11 (its deploy failed), web-prod:10 (its deploy failed), web-prod:9 (its deploy failed)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := activeChoices(context.Background(), client, arn+"web-prod:12", tt.failed); got != tt.want {
				t.Errorf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}
