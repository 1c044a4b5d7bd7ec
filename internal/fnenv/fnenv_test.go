package fnenv

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
	"github.com/google/go-cmp/cmp"
)

func TestLoad(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    Env
		wantErr string
	}{
		{"defaults", map[string]string{"AUTODEPLOY_TABLE": "t"},
			Env{ConfigPath: "/var/task/autodeploy.yaml", Table: "t", LogLevel: slog.LevelInfo, Concurrency: 10}, ""},
		{"everything set", map[string]string{"AUTODEPLOY_TABLE": "t", "AUTODEPLOY_CONFIG": "/etc/a.yaml", "LOG_LEVEL": "debug", "AUTODEPLOY_CONCURRENCY": "8"},
			Env{ConfigPath: "/etc/a.yaml", Table: "t", LogLevel: slog.LevelDebug, Concurrency: 8}, ""},
		{"no table", map[string]string{}, Env{}, "AUTODEPLOY_TABLE is not set"},
		{"bad concurrency", map[string]string{"AUTODEPLOY_TABLE": "t", "AUTODEPLOY_CONCURRENCY": "0"}, Env{}, `AUTODEPLOY_CONCURRENCY="0"`},
		{"work queue", map[string]string{"AUTODEPLOY_TABLE": "t", "AUTODEPLOY_WORK_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/111111111111/autodeploy-work"},
			Env{ConfigPath: "/var/task/autodeploy.yaml", Table: "t", LogLevel: slog.LevelInfo, Concurrency: 10,
				WorkQueueURL: "https://sqs.eu-west-1.amazonaws.com/111111111111/autodeploy-work"}, ""},
		{"work queue not a URL", map[string]string{"AUTODEPLOY_TABLE": "t", "AUTODEPLOY_WORK_QUEUE_URL": "autodeploy-work"}, Env{},
			`AUTODEPLOY_WORK_QUEUE_URL: work queue URL "autodeploy-work": want https://sqs.<region>.amazonaws.com/<account>/<name>`},
		{"work queue name too long", map[string]string{"AUTODEPLOY_TABLE": "t", "AUTODEPLOY_WORK_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/111111111111/" + strings.Repeat("w", 53)}, Env{},
			"its name is longer than 52 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Load(func(k string) string { return tt.env[k] }, "/var/task/bootstrap")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestInit(t *testing.T) {
	dir := t.TempDir()
	good := dir + "/good.yaml"
	bad := dir + "/bad.yaml"
	if err := os.WriteFile(good, []byte("version: 1\nrules:\n  - name: a\n    repository: web\n    tags: [x]\n    targets: [{cluster: c, service: s}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("version: 1\nrules: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AUTODEPLOY_TABLE", "t")
	t.Setenv("AWS_REGION", "eu-west-1")
	t.Setenv("AUTODEPLOY_CONFIG", good)
	t.Setenv("AUTODEPLOY_ACCOUNT", "111111111111") // else Init asks STS (TestInitAsksSTS)
	rt, err := Init(context.Background())
	if err != nil || len(rt.Rules.Rules) != 1 || rt.AWS.Region != "eu-west-1" || rt.Log == nil ||
		rt.Central != (rules.Place{Account: "111111111111", Region: "eu-west-1"}) {
		t.Fatalf("Init = %+v, %v", rt, err)
	}
	t.Setenv("AUTODEPLOY_CONFIG", bad)
	rt, err = Init(context.Background())
	if err == nil || !strings.Contains(err.Error(), "rules file: "+bad+":2: rules: must be a non-empty list of rules") || rt.Log == nil {
		t.Fatalf("Init with a bad rules file = %v", err)
	}
}

// TestInitAsksSTS: without AUTODEPLOY_ACCOUNT the central account is the
// credentials' own, from STS (moto here).
func TestInitAsksSTS(t *testing.T) {
	m := testenv.StartMoto(t)
	good := t.TempDir() + "/good.yaml"
	if err := os.WriteFile(good, []byte("version: 1\nrules:\n  - {name: a, repository: web, tags: [x], targets: [{cluster: c, service: s}]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, kv := range m.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("AUTODEPLOY_TABLE", "t")
	t.Setenv("AUTODEPLOY_CONFIG", good)
	t.Setenv("AUTODEPLOY_ACCOUNT", "")
	rt, err := Init(context.Background())
	if err != nil || rt.Central != (rules.Place{Account: testenv.Account, Region: testenv.Region}) {
		t.Fatalf("Central = %v, %v", rt.Central, err)
	}
	t.Setenv("AUTODEPLOY_ACCOUNT", "12")
	if _, err := Init(context.Background()); err == nil || !strings.Contains(err.Error(), `AUTODEPLOY_ACCOUNT="12": want a 12-digit account id`) {
		t.Errorf("a malformed AUTODEPLOY_ACCOUNT: %v", err)
	}
}

// With AUTODEPLOY_WORK_QUEUE_URL, Init maps the central place and every
// place a target names (each once) to its work queue; without it, none.
func TestInitWorkQueues(t *testing.T) {
	file := t.TempDir() + "/rules.yaml"
	if err := os.WriteFile(file, []byte(`version: 1
rules:
  - name: a
    repository: web
    tags: [x]
    targets:
      - {cluster: c, service: s}
      - {cluster: c, service: t, account: "222222222222", region: us-east-1}
  - name: b
    repository: api
    tags: [x]
    targets:
      - {cluster: c, service: u, account: "222222222222", region: us-east-1}
      - {cluster: c, service: v, region: eu-central-1}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AUTODEPLOY_TABLE", "t")
	t.Setenv("AWS_REGION", "eu-west-1")
	t.Setenv("AUTODEPLOY_CONFIG", file)
	t.Setenv("AUTODEPLOY_ACCOUNT", "111111111111")
	rt, err := Init(context.Background())
	if err != nil || rt.WorkQueues != nil {
		t.Fatalf("without a work queue: %v, %v", rt.WorkQueues, err)
	}
	const base = "https://sqs.eu-west-1.amazonaws.com/111111111111/autodeploy-work"
	t.Setenv("AUTODEPLOY_WORK_QUEUE_URL", base)
	if rt, err = Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := map[rules.Place]string{
		{Account: "111111111111", Region: "eu-west-1"}:    base,
		{Account: "222222222222", Region: "us-east-1"}:    base + "-222222222222-us-east-1",
		{Account: "111111111111", Region: "eu-central-1"}: base + "-111111111111-eu-central-1",
	}
	if diff := cmp.Diff(want, rt.WorkQueues); diff != "" {
		t.Errorf("work queues (-want +got):\n%s", diff)
	}
}
