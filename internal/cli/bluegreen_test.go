package cli

// plan and rollback on a blue/green service, against moto's ECS and
// CodeDeploy. moto's deployments never shift traffic, so the test moves
// the service to the new revision itself where CodeDeploy would have; and
// moto has no BatchGetDeploymentGroups, so groups are named here (finding
// them is tested against the fake in internal/bluegreen).

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/bluegreen"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/deploy"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/emulator"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/lock"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/logging"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

const blueGreenYAML = `version: 1
rules:
  - name: web-staging
    repository: web
    tags: ["main-*"]
    targets:
      - cluster: staging
        service: web
        codedeploy: {application: web, deployment-group: web-staging, hooks: {AfterAllowTestTraffic: web-smoke}}
`

func TestBlueGreenPlanAndRollback(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := testenv.StartMoto(t)
	table := m.CreateTable(t, "autodeploy")
	ecsClient := ecs.NewFromConfig(m.AWSConfig())
	cd := codedeploy.NewFromConfig(m.AWSConfig())
	first, err := emulator.SeedService(ctx, ecsClient, emulator.Service{Cluster: "staging", Name: "web", Family: "web-staging",
		Containers: []emulator.Container{{Name: "app", Image: emulator.Registry + "/web:main-0000000"}}, BlueGreen: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := emulator.SeedDeploymentGroup(ctx, cd, "web", "web-staging", "staging", "web"); err != nil {
		t.Fatal(err)
	}
	rulesFile := filepath.Join(t.TempDir(), "autodeploy.yaml")
	if err := os.WriteFile(rulesFile, []byte(blueGreenYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	event := filepath.Join(testenv.RepoRoot(t), "events", "ecr-push-main.json")

	r := cli(t, m, table, "plan", "--event", event, "--config", rulesFile)
	for _, want := range []string{
		"would register a new revision of web-staging (running web-staging:1) and deploy it through CodeDeploy:",
		"  CodeDeploy deployment in web/web-staging with AppSpec:",
		`"TaskDefinition": "arn:aws:ecs:eu-west-1:123456789012:task-definition/web-staging:<new revision>"`,
		`"ContainerName": "app"`, `"ContainerPort": 8080`, `"AfterAllowTestTraffic": "web-smoke"`,
	} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("plan output lacks %q:\n%s%s", want, r.stdout, r.stderr)
		}
	}

	// A group that does not exist: the deployer would fail, and JSON must
	// say "fail" with the reason, as the text does (not "deploy").
	missing := filepath.Join(t.TempDir(), "autodeploy.yaml")
	if err := os.WriteFile(missing, []byte(strings.Replace(blueGreenYAML, "deployment-group: web-staging", "deployment-group: nope", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := cli(t, m, table, "plan", "--event", event, "--config", missing); r.code != 0 || !strings.Contains(r.stdout, "  would fail: ") || !strings.Contains(r.stdout, "nope") {
		t.Errorf("plan with a missing group:\n%s%s", r.stdout, r.stderr)
	}
	r = cli(t, m, table, "plan", "--event", event, "--config", missing, "--output", "json")
	var got PlanOutput
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || len(got.Targets) != 1 {
		t.Fatalf("plan --output json with a missing group: %v\n%s%s", err, r.stdout, r.stderr)
	}
	if pt := got.Targets[0]; pt.Action != "fail" || !strings.Contains(pt.Reason, "nope") {
		t.Errorf("plan --output json with a missing group: action %q, reason %q; want fail, naming the group", pt.Action, pt.Reason)
	}

	cfg, err := rules.Load(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	db := dynamodb.NewFromConfig(m.AWSConfig())
	d := &deploy.Deployer{Rules: cfg, Central: rules.Place{Account: testenv.Account, Region: testenv.Region}, ECS: func(string, string) deploy.ECS { return ecsClient },
		CodeDeploy: func(string, string) bluegreen.CodeDeploy { return cd },
		Services:   history.NewServices(lock.New(db, table), history.NewStore(db, table)),
		Log:        logging.New(io.Discard, slog.LevelError), Concurrency: 1, Now: time.Now}
	sum, err := d.Handle(ctx, testenv.Event(t, "ecr-push-main.json"))
	if err != nil || sum.Results[0].Outcome != deploy.Deployed {
		t.Fatalf("deploy: %+v, %v", sum, err)
	}
	second := sum.Results[0].To
	// Where CodeDeploy would shift traffic to the new revision.
	if _, err := ecsClient.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("staging"), Service: aws.String("web"), TaskDefinition: aws.String(second)}); err != nil {
		t.Fatal(err)
	}

	r = cli(t, m, table, "rollback", "--cluster", "staging", "--service", "web", "--no-hold", "--application", "web", "--deployment-group", "web-staging")
	if r.code != 0 || !strings.Contains(r.stdout, "rolled staging/web back: web-staging:2 → web-staging:1") {
		t.Fatalf("rollback: %+v", r)
	}
	recs, err := history.NewStore(db, table).Recent(ctx, history.ServiceKey(testenv.Account, testenv.Region, "staging", "web"), 1)
	if err != nil || len(recs) != 1 || recs[0].Rule != "rollback" || recs[0].DeploymentID == "" {
		t.Fatalf("history: %+v, %v", recs, err)
	}
	dep, err := cd.GetDeployment(ctx, &codedeploy.GetDeploymentInput{DeploymentId: aws.String(recs[0].DeploymentID)})
	if err != nil {
		t.Fatal(err)
	}
	if got := (bluegreen.AppSpec{Content: aws.ToString(dep.DeploymentInfo.Revision.AppSpecContent.Content)}).TaskDefinition(); got != first {
		t.Errorf("the rollback deploys %s, want %s", got, first)
	}
	if !strings.Contains(r.stdout, "(deployment "+recs[0].DeploymentID+")") {
		t.Errorf("rollback output does not name the deployment: %s", r.stdout)
	}
	if r := cli(t, m, table, "rollback", "--cluster", "staging", "--service", "web", "--to", "1", "--application", "web"); r.code != 2 || !strings.Contains(r.stderr, "go together") {
		t.Errorf("--application alone: %+v", r)
	}
}
