package cli

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
)

// TestRollbackAfterCleanUp, on moto: once clean-up deregistered (INACTIVE)
// or deleted revisions of the family, a rollback offers and goes only to
// ACTIVE ones — a default target or a --to that was cleaned up is refused,
// naming the ACTIVE revisions there are — and a deleted revision of the
// last rollback does not block the next one (it says what it could not
// check).
func TestRollbackAfterCleanUp(t *testing.T) {
	t.Parallel()
	s := setup(t)
	ctx := context.Background()
	twoReleases(t, s) // web-prod:1 main-0000000, :2 v1.4.0, :3 v1.5.0
	s.deploy(t, "ecr-push-release.json", [2]string{"v1.4.0", "v1.6.0"}, [2]string{"2026-11-25T10:05:00Z", "2026-11-25T12:05:00Z"},
		[2]string{"sha256:3b", "sha256:5d"}) // :3 → :4 (v1.6.0)
	if got := s.running(t, "prod"); !strings.HasSuffix(got, "web-prod:4") {
		t.Fatalf("prod runs %s after three releases", got)
	}
	deregister := func(revs ...string) {
		t.Helper()
		for _, r := range revs {
			if _, err := s.ecs.DeregisterTaskDefinition(ctx, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String(r)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	remove := func(revs ...string) {
		t.Helper()
		deregister(revs...)
		out, err := s.ecs.DeleteTaskDefinitions(ctx, &ecs.DeleteTaskDefinitionsInput{TaskDefinitions: revs})
		if err != nil || len(out.Failures) > 0 {
			t.Fatalf("delete %v: %v %+v", revs, err, out)
		}
	}
	rollback := func(args ...string) run {
		return cli(t, s.moto, s.table, append([]string{"rollback", "--cluster", "prod", "--service", "web"}, args...)...)
	}

	// Clean-up kept the running :4 and :1 but not :3, the one its last
	// deploy replaced, nor :2 (deleted).
	deregister("web-prod:3")
	remove("web-prod:2")
	for _, tc := range []struct {
		name string
		args []string
		want string // in stderr, exit 1
	}{
		{"the default target, INACTIVE", []string{"--dry-run"}, "web-prod:3, the revision the last deploy of web-prod:4 replaced, was cleaned up (INACTIVE): " +
			"ECS deploys no INACTIVE or deleted revision; the ACTIVE revisions to roll back to are web-prod:1 (e.g. --to 1); name one with --to"},
		{"the default target, INACTIVE, for real", nil, "web-prod:3, the revision the last deploy of web-prod:4 replaced, was cleaned up (INACTIVE)"},
		{"--to an INACTIVE revision", []string{"--to", "3"}, "web-prod:3 was cleaned up (INACTIVE): ECS deploys no INACTIVE or deleted revision; " +
			"the ACTIVE revisions to roll back to are web-prod:1 (e.g. --to 1)"},
		{"--to a deleted revision", []string{"--to", "2", "--dry-run"}, "web-prod:2 was cleaned up (deleted): ECS deploys no INACTIVE or deleted revision; " +
			"the ACTIVE revisions to roll back to are web-prod:1 (e.g. --to 1)"},
		{"--to one never registered", []string{"--to", "9"}, "prod/web has no revision 9 in family web-prod (newest 4)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r := rollback(tc.args...); r.code != 1 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("rollback %v = %+v, want a refusal with %q", tc.args, r, tc.want)
			}
		})
	}
	if got := s.running(t, "prod"); !strings.HasSuffix(got, "web-prod:4") {
		t.Fatalf("a refusal moved prod to %s", got)
	}
	// An ACTIVE one it offers goes.
	if r := rollback("--to", "1", "--no-hold"); r.code != 0 || !strings.Contains(r.stdout, "rolled prod/web back: web-prod:4 → web-prod:1") {
		t.Fatalf("rollback --to 1: %+v", r)
	}
	// Nothing older than :1 is ACTIVE, and nothing put :1 in place: said so.
	if r := rollback("--dry-run"); r.code != 1 || !strings.Contains(r.stderr, "no revision of web-prod older than the running web-prod:1 is ACTIVE, so there is nothing to roll back to") {
		t.Errorf("rollback from the oldest ACTIVE one: %+v", r)
	}
}

// TestRollbackWhenTheLastRollbacksRevisionIsDeleted: the check that a
// rollback does not restore what the last one took out reads that
// rollback's revisions; once clean-up deleted one, the rollback goes on
// and says what it did not check, instead of asking for --force.
func TestRollbackWhenTheLastRollbacksRevisionIsDeleted(t *testing.T) {
	t.Parallel()
	s := setup(t)
	ctx := context.Background()
	twoReleases(t, s) // :1, :2 v1.4.0, :3 v1.5.0
	s.deploy(t, "ecr-push-release.json", [2]string{"v1.4.0", "v1.6.0"}, [2]string{"2026-11-25T10:05:00Z", "2026-11-25T12:05:00Z"},
		[2]string{"sha256:3b", "sha256:5d"}) // :3 → :4
	if r := cli(t, s.moto, s.table, "rollback", "--cluster", "prod", "--service", "web", "--no-hold"); r.code != 0 || !strings.Contains(r.stdout, "web-prod:4 → web-prod:3") {
		t.Fatalf("first rollback: %+v", r)
	}
	if _, err := s.ecs.DeregisterTaskDefinition(ctx, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String("web-prod:4")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ecs.DeleteTaskDefinitions(ctx, &ecs.DeleteTaskDefinitionsInput{TaskDefinitions: []string{"web-prod:4"}}); err != nil {
		t.Fatal(err)
	}
	for _, dry := range []bool{true, false} {
		args := []string{"rollback", "--cluster", "prod", "--service", "web", "--no-hold"}
		if dry {
			args = append(args, "--dry-run")
		}
		r := cli(t, s.moto, s.table, args...)
		if r.code != 0 || !strings.Contains(r.stdout, "web-prod:3 → web-prod:2") ||
			!strings.Contains(r.stdout, "not checked whether web-prod:2 runs an image the last rollback (web-prod:4 → web-prod:3) took out: clean-up deleted web-prod:4") {
			t.Errorf("rollback (dry run %v) after :4 was deleted: %+v", dry, r)
		}
	}
	if got := s.running(t, "prod"); !strings.HasSuffix(got, "web-prod:2") {
		t.Errorf("prod runs %s, want web-prod:2", got)
	}
}
