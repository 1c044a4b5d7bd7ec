package cli

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/emulator"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

// cleanupFamily seeds, on moto, family web-prod with revisions 1–12:
// prod/web runs :12 (history: deployed from :3), prod/web-canary, of a
// rule without clean-up, runs :6, and :8 is already INACTIVE. moto's
// UpdateService starts no deployment, so the services' deployments still
// use :1 and :2, their seeds. A clean-up keeping 3 keeps 12, 11, 10
// (newest), 11 (before prod/web's), 3 (its rollback candidate), 6 and 5
// (the canary's running one and the one before it), 1 and 2 (deployments):
// it would deregister 4, 7 and 9.
func cleanupFamily(t *testing.T, m *testenv.Moto, table string) *ecs.Client {
	t.Helper()
	ctx := context.Background()
	client := ecs.NewFromConfig(m.AWSConfig())
	for _, name := range []string{"web", "web-canary"} {
		if _, err := emulator.SeedService(ctx, client, emulator.Service{Cluster: "prod", Name: name, Family: "web-prod",
			Containers: []emulator.Container{{Name: "app", Image: emulator.Registry + "/web:seed"}}}); err != nil {
			t.Fatal(err)
		}
	}
	for n := 3; n <= 12; n++ {
		if _, err := client.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("web-prod"),
			ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String(emulator.Registry + "/web:seed"), Memory: aws.Int32(128)}}}); err != nil {
			t.Fatal(err)
		}
	}
	for svc, rev := range map[string]string{"web": "web-prod:12", "web-canary": "web-prod:6"} {
		if _, err := client.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("prod"), Service: aws.String(svc), TaskDefinition: aws.String(rev)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := client.DeregisterTaskDefinition(ctx, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String("web-prod:8")}); err != nil {
		t.Fatal(err)
	}
	store := history.NewStore(dynamodb.NewFromConfig(m.AWSConfig()), table)
	if err := store.Put(ctx, history.Record{Rule: "web-prod", Account: testenv.Account, Region: testenv.Region, Cluster: "prod", Service: "web",
		FromTaskDefinition: "arn:aws:ecs:" + testenv.Region + ":" + testenv.Account + ":task-definition/web-prod:3",
		ToTaskDefinition:   "arn:aws:ecs:" + testenv.Region + ":" + testenv.Account + ":task-definition/web-prod:12",
		EventID:            "e1", Outcome: "deployed", DeployedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	return client
}

func activeRevisions(t *testing.T, client *ecs.Client) int {
	t.Helper()
	out, err := client.ListTaskDefinitions(context.Background(), &ecs.ListTaskDefinitionsInput{FamilyPrefix: aws.String("web-prod"), Status: types.TaskDefinitionStatusActive})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.TaskDefinitionArns)
}

// TestStatusAndPlanShowTheNextCleanUp, on moto: status (for every family a
// rule with cleanup: runs) and plan (for the push's targets) say what the
// next clean-up would deregister — with the Target the runs build: every
// service of the place running the family, history's rollback candidates
// (not without a table, and then it says so), and with delete: true the
// INACTIVE revisions it would delete — and change nothing.
func TestStatusAndPlanShowTheNextCleanUp(t *testing.T) {
	t.Parallel()
	event := filepath.Join(testenv.RepoRoot(t), "events", "ecr-push-release.json")
	for _, tc := range []struct {
		name, cleanup string
		status, plan  string
		planNoTable   string
	}{
		{
			name: "keep", cleanup: "{keep: 3}",
			status:      "web-prod in " + testenv.Account + " " + testenv.Region + " (prod/web, prod/web-canary; rules web-prod, web-canary): keep 3, would deregister up to 3 (web-prod:4, 7, 9)",
			plan:        "rule web-prod → prod/web\n",
			planNoTable: "  clean-up of web-prod: keep 3, would deregister up to 4 (web-prod:3–4, 7, 9) (rollback candidates not read: no state table)",
		},
		{
			name: "delete", cleanup: "{keep: 3, delete: true}",
			status:      "keep 3, would deregister up to 3 (web-prod:4, 7, 9), then delete them and 1 INACTIVE (web-prod:8)",
			planNoTable: "  clean-up of web-prod: keep 3, would deregister up to 4 (web-prod:3–4, 7, 9), then delete them and 1 INACTIVE (web-prod:8) (rollback candidates not read: no state table)",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := testenv.StartMoto(t)
			table := m.CreateTable(t, "autodeploy")
			m.Repository(t, "web", "v1.0.0", "canary-1")
			client := cleanupFamily(t, m, table)
			config := writeTempFile(t, "version: 1\nrules:\n"+
				"  - {name: web-prod, repository: web, semver: \">= 1.0.0\", cleanup: "+tc.cleanup+", targets: [{cluster: prod, service: web}]}\n"+
				"  - {name: web-canary, repository: web, tags: [\"canary-*\"], cleanup: "+tc.cleanup+", targets: [{cluster: prod, service: web-canary}]}\n")

			r := cli(t, m, table, "status", "--config", config)
			if r.code != 0 || !strings.Contains(r.stdout, "CLEAN-UP (what the next one would do, per family)\n") || !strings.Contains(r.stdout, tc.status) {
				t.Errorf("status lacks %q:\n%s%s", tc.status, r.stdout, r.stderr)
			}
			want := "  clean-up of web-prod: " + tc.status[strings.Index(tc.status, "keep "):]
			r = cli(t, m, table, "plan", "--event", event, "--config", config)
			if r.code != 0 || !strings.Contains(r.stdout, tc.plan) || !strings.Contains(r.stdout, want+"\n") {
				t.Errorf("plan lacks %q:\n%s%s", want, r.stdout, r.stderr)
			}
			r = cli(t, m, "", "plan", "--event", event, "--config", config)
			if r.code != 0 || !strings.Contains(r.stdout, tc.planNoTable+"\n") {
				t.Errorf("plan without a table lacks %q:\n%s%s", tc.planNoTable, r.stdout, r.stderr)
			}
			if n := activeRevisions(t, client); n != 11 {
				t.Errorf("%d ACTIVE revisions after status and plan, want the 11 there were", n)
			}
		})
	}
	// Without cleanup: in the rules, neither says anything of it.
	m := testenv.StartMoto(t)
	table := m.CreateTable(t, "autodeploy")
	m.Repository(t, "web", "v1.0.0")
	cleanupFamily(t, m, table)
	config := writeTempFile(t, "version: 1\nrules:\n  - {name: web-prod, repository: web, semver: \">= 1.0.0\", targets: [{cluster: prod, service: web}]}\n")
	for _, args := range [][]string{{"status", "--config", config}, {"plan", "--event", event, "--config", config}} {
		if r := cli(t, m, table, args...); r.code != 0 || strings.Contains(strings.ToLower(r.stdout), "clean-up") {
			t.Errorf("%s without cleanup: %+v", args[0], r)
		}
	}
}

// TestReconcileCleansUp, on moto: `autodeploy reconcile` cleans up after
// its deploys as the schedule's sweep does without a work queue — the
// preview's revisions go, each a msg="cleanup" line, but for the newest
// one autodeploy did not register (the fixture's carry no autodeploy tags:
// :9 stays as IaC's head, which is why the preview says "up to") — and a
// second run, the family marked clean, does nothing more; --dry-run and
// status clean nothing.
func TestReconcileCleansUp(t *testing.T) {
	t.Parallel()
	m := testenv.StartMoto(t)
	table := m.CreateTable(t, "autodeploy")
	m.Repository(t, "web", "unselected")
	client := cleanupFamily(t, m, table)
	config := writeTempFile(t, "version: 1\nrules:\n"+
		"  - {name: web-prod, repository: web, semver: \">= 1.0.0\", cleanup: {keep: 3}, targets: [{cluster: prod, service: web}]}\n"+
		"  - {name: web-canary, repository: web, tags: [\"canary-*\"], cleanup: {keep: 3}, targets: [{cluster: prod, service: web-canary}]}\n")
	for _, args := range [][]string{{"reconcile", "--config", config, "--dry-run"}, {"status", "--config", config}} {
		if r := cli(t, m, table, args...); strings.Contains(r.stderr, `"msg":"cleanup"`) || activeRevisions(t, client) != 11 {
			t.Fatalf("%v cleaned up: %+v", args, r)
		}
	}
	r := cli(t, m, table, "reconcile", "--config", config)
	for _, want := range []string{`"family":"web-prod","revisions":[9],"outcome":"kept","detail":"not registered by autodeploy"`,
		`"family":"web-prod","revisions":[7],"outcome":"deregistered"`, `"family":"web-prod","revisions":[4],"outcome":"deregistered"`} {
		if !strings.Contains(r.stdout, "clean-up: 1 family cleaned within the sweep's budget") || strings.Count(r.stderr, `"msg":"cleanup"`) != 3 ||
			!strings.Contains(r.stderr, want) {
			t.Errorf("reconcile lacks %s: %+v", want, r)
		}
	}
	if n := activeRevisions(t, client); n != 9 {
		t.Errorf("%d ACTIVE revisions after the clean-up, want 9 (4 and 7 gone)", n)
	}
	r = cli(t, m, table, "status", "--config", config)
	if !strings.Contains(r.stdout, "keep 3, would deregister up to 1 (web-prod:9)") {
		t.Errorf("status after the clean-up: %+v", r)
	}
	r = cli(t, m, table, "reconcile", "--config", config)
	if strings.Contains(r.stdout, "clean-up:") || strings.Contains(r.stderr, `"msg":"cleanup"`) || activeRevisions(t, client) != 9 {
		t.Errorf("a second reconcile, the family clean: %+v", r)
	}
}
