package cli

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/emulator"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

// Against moto: status says where each target stands; reconcile (dry run,
// then for real) brings it to the newest image; rollback holds the service so
// that sweeps leave it; resume lets the next sweep roll it forward.
func TestStatusReconcileHoldResume(t *testing.T) {
	t.Parallel()
	m := testenv.StartMoto(t)
	ctx := context.Background()
	table := m.CreateTable(t, "autodeploy")
	newest := m.Repository(t, "web", "main-1", "main-2")["main-2"]
	client := ecs.NewFromConfig(m.AWSConfig())
	if _, err := emulator.SeedService(ctx, client, emulator.Service{Cluster: "staging", Name: "web", Family: "web",
		Containers: []emulator.Container{{Name: "app", Image: emulator.Registry + "/web:seed"}}}); err != nil {
		t.Fatal(err)
	}
	config := writeTempFile(t, "version: 1\nrules:\n  - {name: web-staging, repository: web, tags: [\"main-*\"], targets: [{cluster: staging, service: web}]}\n")
	runningImage := func() string {
		svc, _ := client.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("staging"), Services: []string{"web"}})
		td, _ := client.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: svc.Services[0].TaskDefinition})
		return aws.ToString(td.TaskDefinition.ContainerDefinitions[0].Image)
	}
	short := newest[:19]
	row := func(out string) string {
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "web-staging") {
				return strings.Join(strings.Fields(l), " ")
			}
		}
		return ""
	}

	r := cli(t, m, table, "status", "--config", config)
	if r.code != 0 || row(r.stdout) != "web-staging staging/web rolling seed main-2 "+short+" behind - -" {
		t.Fatalf("status before: %+v\nrow %q", r, row(r.stdout))
	}
	r = cli(t, m, table, "reconcile", "--config", config, "--dry-run")
	if r.code != 0 || !strings.Contains(flat(r.stdout), "behind would deploy") || !strings.Contains(r.stdout, "1 of 1 target behind; would deploy 1 (dry run)") ||
		runningImage() != emulator.Registry+"/web:seed" {
		t.Fatalf("dry run: %+v", r)
	}
	r = cli(t, m, table, "reconcile", "--config", config)
	if r.code != 0 || !strings.Contains(r.stdout, "deployed") || runningImage() != emulator.Registry+"/web@"+newest {
		t.Fatalf("reconcile: %+v (runs %s)", r, runningImage())
	}
	r = cli(t, m, table, "status", "--config", config)
	if !regexp.MustCompile(`^web-staging staging/web rolling main-2 ` + short + ` main-2 ` + short + ` in sync - deployed \S+ \(main-2\)$`).MatchString(row(r.stdout)) {
		t.Errorf("status after: %q", row(r.stdout))
	}

	// rollback holds: the next sweep leaves the service where it was put.
	r = cli(t, m, table, "rollback", "--cluster", "staging", "--service", "web")
	if r.code != 0 || !strings.Contains(r.stdout, "held by ") || !strings.Contains(r.stdout, "until: autodeploy resume --cluster staging --service web") {
		t.Fatalf("rollback: %+v", r)
	}
	r = cli(t, m, table, "reconcile", "--config", config)
	if r.code != 0 || !strings.Contains(flat(r.stdout), "skipped held by ") || runningImage() != emulator.Registry+"/web:seed" {
		t.Fatalf("sweep of a held service: %+v (runs %s)", r, runningImage())
	}
	if r = cli(t, m, table, "status", "--config", config); !strings.Contains(row(r.stdout), " held by ") {
		t.Errorf("status of a held service: %q", row(r.stdout))
	}
	r = cli(t, m, table, "resume", "--cluster", "staging", "--service", "web")
	if r.code != 0 || !strings.Contains(r.stdout, "staging/web resumed (it was held by ") {
		t.Fatalf("resume: %+v", r)
	}
	if r = cli(t, m, table, "resume", "--cluster", "staging", "--service", "web"); r.code != 0 || !strings.Contains(r.stdout, "was not held") {
		t.Errorf("resume twice: %+v", r)
	}
	if r = cli(t, m, table, "reconcile", "--config", config); r.code != 0 || runningImage() != emulator.Registry+"/web@"+newest {
		t.Errorf("sweep after resume: %+v (runs %s)", r, runningImage())
	}

	// hold by hand, with a reason; without one it is refused.
	if r = cli(t, m, table, "hold", "--cluster", "staging", "--service", "web"); r.code != 2 || !strings.Contains(r.stderr, "--reason is required") {
		t.Errorf("hold without a reason: %+v", r)
	}
	r = cli(t, m, table, "hold", "--cluster", "staging", "--service", "web", "--reason", "load test", "--by", "bob")
	if r.code != 0 || !strings.Contains(r.stdout, "staging/web held by bob since ") || !strings.Contains(r.stdout, ": load test") {
		t.Errorf("hold: %+v", r)
	}
	if r = cli(t, m, table, "rollback", "--cluster", "staging", "--service", "web", "--no-hold"); r.code != 0 || !strings.Contains(r.stdout, "not held (--no-hold)") {
		t.Errorf("rollback --no-hold: %+v", r)
	}
}

// flat is text with runs of spaces (tabwriter's columns) made one.
func flat(s string) string { return strings.Join(strings.Fields(s), " ") }
