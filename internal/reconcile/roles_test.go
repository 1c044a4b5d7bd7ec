package reconcile

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/deploy"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/emulator"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

// roleLog records the roles a sweep asks its client factories for.
type roleLog struct {
	mu    sync.Mutex
	roles map[string]bool
}

func (l *roleLog) add(role string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.roles[role] = true
}

func (l *roleLog) sorted() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for r := range l.roles {
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}

// In another account, a sweep whose deployer hands the targets behind to a
// work queue (the intake) reads through the target's sweep role only — the
// describes, the published parameter's check and its repair under the lock
// — never through the deploy role the worker uses; an in-process sweep,
// which deploys too, uses the deploy role; a role the file names is used
// for both. moto acts in the account of whatever role is assumed, so the
// service and parameter live in the target account. Each case sweeps
// twice: the repair writes once, the second sweep finds the parameter in
// place.
func TestSweepRoleInAnotherAccount(t *testing.T) {
	t.Parallel()
	const account = "222222222222"
	sweepRole := "arn:aws:iam::" + account + ":role/" + rules.SweepRoleName(testenv.Region)
	deployRole := "arn:aws:iam::" + account + ":role/" + rules.TargetRoleName(testenv.Region)
	named := "arn:aws:iam::" + account + ":role/team-deployer"
	for _, tc := range []struct {
		name   string
		role   string // the target's role: in the file
		queued bool
		want   []string
	}{
		{"queued: the sweep role", "", true, []string{sweepRole}},
		{"in-process: the deploy role", "", false, []string{deployRole}},
		{"queued, a role the file names: that role", named, true, []string{named}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := `{cluster: c, service: web, account: "` + account + `"`
			if tc.role != "" {
				target += `, role: "` + tc.role + `"`
			}
			f := newFixture(t, "version: 1\nrules:\n  - {name: web, repository: web, tags: [\"*\"], publish: {ssm-prefix: /images}, targets: ["+target+"}]}\n")
			ctx := context.Background()
			digest := f.repo(t, "web", "v1")["v1"]
			image := emulator.Registry + "/web@" + digest
			there := awsenv.NewClients(f.moto.AWSConfig())
			seedRole := "arn:aws:iam::" + account + ":role/seed"
			if _, err := emulator.SeedService(ctx, there.ECS(testenv.Region, seedRole), emulator.Service{Cluster: "c", Name: "web", Family: "c-web",
				Containers: []emulator.Container{{Name: "app", Image: image}}}); err != nil {
				t.Fatal(err)
			}
			params := there.SSM(testenv.Region, seedRole)
			value := func() string {
				out, err := params.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/images/c/web/app")})
				if err != nil {
					return ""
				}
				return aws.ToString(out.Parameter.Value)
			}

			log := &roleLog{roles: map[string]bool{}}
			d := f.sweeper.Deployer
			ecsOf, ssmOf := d.ECS, d.SSM
			d.ECS = func(region, role string) deploy.ECS { log.add(role); return ecsOf(region, role) }
			d.SSM = func(region, role string) deploy.SSM { log.add(role); return ssmOf(region, role) }
			f.sweeper.ECS = d.ECS
			sweepSSM := f.sweeper.SSM
			f.sweeper.SSM = func(region, role string) ParameterStore { log.add(role); return sweepSSM(region, role) }
			if tc.queued {
				d.Dispatcher = &queueStub{}
			}

			for i, want := range []string{"written", "ok"} {
				rep, got := f.sweep(t, "roles-"+string(rune('1'+i)))
				if diff := cmp.Diff(map[string]string{"c/web": InSync}, got); diff != "" {
					t.Fatalf("sweep %d (-want +got):\n%s\n%s", i+1, diff, f.logs)
				}
				if rep.Lines[0].Published != want || rep.Lines[0].Account != account {
					t.Errorf("sweep %d: published %q in %s, want %q in %s", i+1, rep.Lines[0].Published, rep.Lines[0].Account, want, account)
				}
				if value() != image {
					t.Errorf("sweep %d: the target account's parameter holds %q, want %q", i+1, value(), image)
				}
			}
			if diff := cmp.Diff(tc.want, log.sorted()); diff != "" {
				t.Errorf("roles the sweep used (-want +got):\n%s", diff)
			}
		})
	}
}
