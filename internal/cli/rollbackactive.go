package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecsarn"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
)

// revisionLister lists a family's revisions.
type revisionLister interface {
	ListTaskDefinitions(ctx context.Context, in *ecs.ListTaskDefinitionsInput, optFns ...func(*ecs.Options)) (*ecs.ListTaskDefinitionsOutput, error)
}

// rollbackReader is what a rollback's plan reads of ECS: revisions, and
// the family's ACTIVE ones (after clean-up, only those can be deployed).
type rollbackReader interface {
	taskDefinitionReader
	revisionLister
}

// revisionGoneError is a revision DescribeTaskDefinition no longer knows:
// deleted (by clean-up's delete: true, or by hand), or never registered.
type revisionGoneError struct{ revision string }

func (e *revisionGoneError) Error() string {
	return fmt.Sprintf("revision %s not found (deleted, or never registered)", e.revision)
}

// shownActive bounds how many ACTIVE revisions a refusal names.
const shownActive = 8

// activeOlder are the family's ACTIVE revisions older than current, newest
// first (family:revision): what a rollback can go back to once clean-up
// deregistered the rest. One ListTaskDefinitions call per 100 revisions.
func activeOlder(ctx context.Context, client revisionLister, current string) ([]string, error) {
	fam, n := ecsarn.FamilyRevision(current)
	in := &ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String(fam), Status: types.TaskDefinitionStatusActive,
		Sort: types.SortOrderDesc, MaxResults: aws.Int32(100)}
	type rev struct {
		name string
		n    int
	}
	var revs []rev
	for {
		page, err := client.ListTaskDefinitions(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list the ACTIVE revisions of %s: %w", fam, err)
		}
		for _, a := range page.TaskDefinitionArns {
			// familyPrefix also lists web-prod-worker under web-prod.
			if f, m := ecsarn.FamilyRevision(a); f == fam && m < n {
				revs = append(revs, rev{ecsarn.Revision(a), m})
			}
		}
		if aws.ToString(page.NextToken) == "" {
			break
		}
		in.NextToken = page.NextToken
	}
	slices.SortFunc(revs, func(a, b rev) int { return cmp.Compare(b.n, a.n) })
	out := make([]string, len(revs))
	for i, r := range revs {
		out[i] = r.name
	}
	return out, nil
}

// activeChoices says which ACTIVE revisions a rollback of current may go
// back to, for a refusal: "the ACTIVE revisions to roll back to are
// web-prod:9, web-prod:7 (--to 9)", or that there is none. A revision whose
// last deploy there failed or was rolled back (failed, by family:revision)
// is marked so and never the one suggested.
func activeChoices(ctx context.Context, client revisionLister, current string, failed map[string]bool) string {
	revs, err := activeOlder(ctx, client, current)
	switch {
	case err != nil:
		return "the ACTIVE revisions were not read: " + err.Error()
	case len(revs) == 0:
		return fmt.Sprintf("no revision of %s older than the running %s is ACTIVE, so there is nothing to roll back to", ecsarn.Family(current), ecsarn.Revision(current))
	}
	shown := slices.Clone(revs[:min(len(revs), shownActive)])
	more := ""
	if len(revs) > len(shown) {
		more = fmt.Sprintf(" and %d older", len(revs)-len(shown))
	}
	suggest := ""
	if i := slices.IndexFunc(revs, func(r string) bool { return !failed[r] }); i >= 0 {
		_, n := ecsarn.FamilyRevision(revs[i])
		suggest = fmt.Sprintf(" (e.g. --to %d)", n)
	}
	for i, r := range shown {
		if failed[r] {
			shown[i] = r + " (its deploy failed)"
		}
	}
	return fmt.Sprintf("the ACTIVE revisions to roll back to are %s%s%s", strings.Join(shown, ", "), more, suggest)
}

// cleanedUp is why a revision cannot be deployed any more: ECS refuses a
// service an INACTIVE or deleted revision. "" when it is ACTIVE.
func cleanedUp(td *types.TaskDefinition) string {
	switch td.Status {
	case types.TaskDefinitionStatusActive, "":
		return ""
	case types.TaskDefinitionStatusInactive:
		return "INACTIVE" + since(td.DeregisteredAt)
	case types.TaskDefinitionStatusDeleteInProgress:
		return "deleted" + since(td.DeleteRequestedAt)
	}
	return string(td.Status)
}

func since(t *time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return " since " + t.UTC().Format(time.RFC3339)
}

// checkActive refuses a rollback to target when clean-up deregistered or
// deleted it, naming the ACTIVE revisions it may go back to instead.
// which says how target was chosen ("" for --to).
func checkActive(ctx context.Context, client revisionLister, tgt *ecs.DescribeTaskDefinitionOutput, current, which string, failed map[string]bool) error {
	why := cleanedUp(tgt.TaskDefinition)
	if why == "" {
		return nil
	}
	return fmt.Errorf("%s%s was cleaned up (%s): ECS deploys no INACTIVE or deleted revision; %s",
		ecsarn.Revision(aws.ToString(tgt.TaskDefinition.TaskDefinitionArn)), which, why, activeChoices(ctx, client, current, failed))
}

// goneTarget says that the revision a rollback was to go to no longer
// exists: cleaned up when it is older than the running one (revisions are
// numbered in order, so it was registered once), else never registered —
// "prod/web has no revision 99 in family web-prod (newest 7)". name is the
// service's cluster/service.
func goneTarget(ctx context.Context, client revisionLister, err error, name, target, current, which string, failed map[string]bool) error {
	var gone *revisionGoneError
	if !errors.As(err, &gone) {
		return err
	}
	fam, n := ecsarn.FamilyRevision(target)
	switch {
	case fam != ecsarn.Family(current):
		return err
	case newer(current, target):
		return fmt.Errorf("%s%s was cleaned up (deleted): ECS deploys no INACTIVE or deleted revision; %s",
			ecsarn.Revision(target), which, activeChoices(ctx, client, current, failed))
	}
	newest := ""
	if m, err := newestActive(ctx, client, fam); err == nil && m > 0 {
		newest = fmt.Sprintf(" (newest %d)", m)
	}
	return fmt.Errorf("%s has no revision %d in family %s%s", name, n, fam, newest)
}

// newestActive is the number of the family's newest ACTIVE revision (0 for
// none). Listed newest first, the first of the family itself is it
// (web-prod-worker lists under web-prod); the highest is taken all the same,
// for a lister that ignores the order (moto).
func newestActive(ctx context.Context, client revisionLister, fam string) (int, error) {
	in := &ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String(fam), Status: types.TaskDefinitionStatusActive,
		Sort: types.SortOrderDesc, MaxResults: aws.Int32(100)}
	newest := 0
	for {
		page, err := client.ListTaskDefinitions(ctx, in)
		if err != nil {
			return 0, fmt.Errorf("list the revisions of %s: %w", fam, err)
		}
		for _, a := range page.TaskDefinitionArns {
			if f, m := ecsarn.FamilyRevision(a); f == fam {
				newest = max(newest, m)
			}
		}
		if newest > 0 || aws.ToString(page.NextToken) == "" {
			return newest, nil
		}
		in.NextToken = page.NextToken
	}
}

// failedRevisions are the revisions (family:revision) whose latest deploy in
// recs (newest first) failed or was rolled back: no revision to suggest
// rolling back to.
func failedRevisions(recs []history.Record) map[string]bool {
	failed, seen := map[string]bool{}, map[string]bool{}
	for _, r := range recs {
		rev := ecsarn.Revision(r.ToTaskDefinition)
		if rev == "" || seen[rev] {
			continue
		}
		seen[rev] = true
		failed[rev] = r.DeploymentOutcome == history.Failed || r.DeploymentOutcome == history.RolledBack
	}
	return failed
}
