package reconcile

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecrevent"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/emulator"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

// TestSweepWhileTheNewestImageDeploys: a sweep while the blue/green
// deployment of the newest image runs — the push's, or an earlier sweep's —
// is "deploying": skipped, no revision registered, no deployment, no
// failure (the sweep returns no error, so nothing is retried or parked).
// moto's deployments stay "Created", an active status, so they stand for
// one that is still baking; moto does not refuse a second deployment (the
// fake in internal/deploy does), so a second one would show here.
func TestSweepWhileTheNewestImageDeploys(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		firstBy  string // "push" or "sweep"
		wantPart string
	}{
		{name: "during the push's deployment", firstBy: "push", wantPart: "of event evt-push-1 runs it"},
		{name: "during the sweep's own deployment", firstBy: "sweep", wantPart: "this event's CodeDeploy deployment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t, `version: 1
rules:
  - name: web-prod
    repository: web
    semver: ">= 1.0.0"
    targets:
      - {cluster: prod, service: web, codedeploy: {application: web, deployment-group: web-prod}}
`)
			digests := f.repo(t, "web", "v1.0.0", "v1.1.0")
			if _, err := emulator.SeedService(ctx, f.ecs, emulator.Service{Cluster: "prod", Name: "web", Family: "prod-web",
				Containers: []emulator.Container{{Name: "app", Image: emulator.Registry + "/web:v1.0.0"}}, BlueGreen: true}); err != nil {
				t.Fatal(err)
			}
			cd := codedeploy.NewFromConfig(f.moto.AWSConfig())
			if err := emulator.SeedDeploymentGroup(ctx, cd, "web", "web-prod", "prod", "web"); err != nil {
				t.Fatal(err)
			}
			switch tt.firstBy {
			case "push":
				push := ecrevent.Push{EventID: "evt-push-1", Account: testenv.Account, Region: testenv.Region, Time: time.Now(),
					Repository: "web", Tag: "v1.1.0", Digest: digests["v1.1.0"]}
				sum, err := f.sweeper.Deployer.Deploy(ctx, push)
				if err != nil || sum.Results[0].Outcome != "deployed" {
					t.Fatalf("push: %+v, %v", sum.Results, err)
				}
			case "sweep":
				if _, outcomes := f.sweep(t, "sweep-1"); outcomes["prod/web"] != Deployed {
					t.Fatalf("first sweep: %v", outcomes)
				}
			}
			f.proxy.Calls()
			for _, id := range []string{"sweep-2", "sweep-3"} {
				rep, outcomes := f.sweep(t, id) // fails the test if the sweep returns an error
				why := reason(rep, "prod", "web")
				if outcomes["prod/web"] != Skipped || !strings.HasPrefix(why, "deploying") || !strings.Contains(why, tt.wantPart) {
					t.Fatalf("%s: %s, %q; want skipped, deploying", id, outcomes["prod/web"], why)
				}
			}
			calls := f.proxy.Calls()
			if calls["RegisterTaskDefinition"] != 0 || calls["CreateDeployment"] != 0 || calls["TransactWriteItems"] != 0 {
				t.Errorf("sweeps while deploying registered, deployed or recorded: %v", calls)
			}
			deps, err := cd.ListDeployments(ctx, &codedeploy.ListDeploymentsInput{ApplicationName: aws.String("web"), DeploymentGroupName: aws.String("web-prod")})
			if err != nil || len(deps.Deployments) != 1 {
				t.Errorf("deployments: %v, %v; want the first only", deps, err)
			}
		})
	}
}
