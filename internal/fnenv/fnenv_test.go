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
