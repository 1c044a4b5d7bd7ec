package cli

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// Times the run makes (deploys stamped now, moto's deployment ids) are
// not the shape: they are replaced before the comparison. Times from the
// sample events stay.
var (
	nowish       = regexp.MustCompile(`"(at|due|asked_at)": "20[0-9]{2}-[0-9-]+T[0-9:.]+Z"`)
	deploymentID = regexp.MustCompile(`"deployment_id": "[^"]*"`)
)

// golden compares a command's JSON with testdata/name, after checking it
// is one JSON document.
func golden(t *testing.T, name, got string, keepTimes bool) {
	t.Helper()
	if !json.Valid([]byte(got)) {
		t.Fatalf("%s: not one JSON document:\n%s", name, got)
	}
	if !keepTimes {
		got = nowish.ReplaceAllString(got, `"$1": "TIME"`)
	}
	got = deploymentID.ReplaceAllString(got, `"deployment_id": "ID"`)
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -run %s -update writes it)", err, t.Name())
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", name, diff)
	}
}

// Every key validate shows, in JSON: no AWS call.
func TestValidateJSON(t *testing.T) {
	t.Parallel()
	path := writeTempFile(t, `version: 1
rules:
  - name: web-staging
    repository: web
    tags: ["main-*"]
    publish: {ssm-prefix: /ecr-autodeploy}
    cleanup: {keep: 5, delete: true}
    targets:
      - {cluster: staging, service: web, containers: [app]}
      - {cluster: staging, service: web-bg, codedeploy: {application: web, deployment-group: web-staging}}
  - name: web-prod
    repository: web
    semver: ">= 1.0.0"
    registry: {account: "333333333333", region: eu-west-1}
    approval: {expires: 24h}
    scan: {block: [CRITICAL], wait: 30m}
    targets: [{cluster: prod, service: web, account: "222222222222", region: eu-central-1}]
`)
	r := cli(t, nil, "", "validate", "--output", "json", "--account", "111111111111", "--region", "eu-west-1", path)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("validate --output json: %+v", r)
	}
	golden(t, "validate.json", strings.ReplaceAll(r.stdout, path, "autodeploy.yaml"), true)

	// The table shows the same keys.
	r = cli(t, nil, "", "validate", path)
	for _, want := range []string{"CODEDEPLOY", "web/web-staging", "/ecr-autodeploy", "333333333333 eu-west-1", "scan, approval", "2 rules, valid"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("validate table lacks %q:\n%s", want, r.stdout)
		}
	}
	one := writeTempFile(t, "version: 1\nrules:\n  - {name: a, repository: web, tags: [main-*], targets: [{cluster: prod, service: web}]}\n")
	if r := cli(t, nil, "", "validate", one); !strings.Contains(r.stdout, ": 1 rule, valid") {
		t.Errorf("validate of one rule: %+v", r)
	}
}

// A bad --output is a usage error (exit 2) before anything is read or
// called, on every command that takes it.
func TestBadOutput(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"validate", "--output", "yaml"},
		{"status", "--output", "yaml"},
		{"plan", "--output", "yaml", "--event", "x.json"},
		{"history", "--output", "yaml", "--cluster", "prod", "--service", "web"},
	} {
		r := cli(t, nil, "t", args...)
		if want := "autodeploy " + args[0] + ": --output \"yaml\": want text or json\n"; r.code != 2 || r.stderr != want {
			t.Errorf("%v = %+v, want exit 2 and %q", args, r, want)
		}
	}
}

// Every bad flag value of these commands is refused in words, exit 2,
// before any call (cli fails the test when one calls AWS).
func TestBadFlagValues(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"history", "--cluster", "prod", "--service", "web", "--limit", "0"}, "--limit 0: want 1 to 1000"},
		{[]string{"history", "--cluster", "prod", "--service", "web", "--limit", "-5"}, "--limit -5: want 1 to 1000"},
		{[]string{"history", "--cluster", "prod", "--service", "web", "--limit", "1001"}, "--limit 1001: want 1 to 1000"},
		{[]string{"history", "--cluster", "prod", "--service", "web", "--limit", "many"}, `invalid value "many" for flag -limit: parse error`},
		{[]string{"history", "--service", "web"}, "--cluster and --service are required"},
		{[]string{"plan", "--rule", "web-prod"}, "--rule and --tag go together"},
		{[]string{"plan", "--event", "e.json", "--rule", "web-prod", "--tag", "v1"}, "give --event, or --rule and --tag, not both"},
		{[]string{"validate", "--output", ""}, `--output "": want text or json`},
	} {
		r := cli(t, nil, "t", tc.args...)
		if want := "autodeploy " + tc.args[0] + ": " + tc.want + "\n"; r.code != 2 || !strings.HasSuffix(r.stderr, want) {
			t.Errorf("%v = %+v, want exit 2 and %q", tc.args, r, want)
		}
	}
}

// Against moto: history, status and plan print the shapes README shows.
func TestJSONOutput(t *testing.T) {
	t.Parallel()
	s := setup(t)
	s.moto.Repository(t, "web", "main-1", "v1.4.0")
	s.deploy(t, "ecr-push-release.json") // prod: web-prod:1 → :2 (v1.4.0)
	// Held at a time of its own: status's state names it.
	store := history.NewStore(dynamodb.NewFromConfig(s.moto.AWSConfig()), s.table)
	if _, err := store.PlaceHold(context.Background(), history.ServiceKey(testenv.Account, testenv.Region, "prod", "web"),
		history.Hold{By: "alice", At: time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC), Reason: "incident 42"}, false); err != nil {
		t.Fatal(err)
	}

	r := cli(t, s.moto, s.table, "history", "--cluster", "prod", "--service", "web", "--output", "json")
	if r.code != 0 {
		t.Fatalf("history --output json: %+v", r)
	}
	golden(t, "history.json", r.stdout, false)

	r = cli(t, s.moto, s.table, "status", "--config", s.rules, "--output", "json")
	if r.code != 0 {
		t.Fatalf("status --output json: %+v", r)
	}
	golden(t, "status.json", r.stdout, false)

	event := filepath.Join(testenv.RepoRoot(t), "events", "ecr-push-main.json")
	r = cli(t, s.moto, s.table, "plan", "--event", event, "--config", s.rules, "--output", "json")
	if r.code != 0 {
		t.Fatalf("plan --output json: %+v", r)
	}
	golden(t, "plan.json", r.stdout, true)
}

// plan reads the event from stdin, and a Lambda failure record copied
// from a dead-letter queue (its requestPayload is the event); it names
// the rules that do not take the push, though another does.
func TestPlanStdinAndFailureRecord(t *testing.T) {
	t.Parallel()
	s := setup(t)
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "events", "ecr-push-main.json"))
	if err != nil {
		t.Fatal(err)
	}
	record := `{"version": "1.0", "requestContext": {"requestId": "r1", "condition": "RetriesExhausted", "approximateInvokeCount": 3},
	  "requestPayload": ` + string(data) + `, "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
	  "responsePayload": {"errorMessage": "throttled"}}`
	for name, stdin := range map[string]string{"event": string(data), "failure record": record} {
		r := cliStdin(t, s, stdin, "plan", "--event", "-", "--config", s.rules)
		if r.code != 0 || !strings.Contains(r.stdout, "push web:main-4f2a9c1") || !strings.Contains(r.stdout, "would register a new revision of web-staging") ||
			!strings.Contains(r.stdout, "not matched: rule web-prod: ") {
			t.Errorf("plan --event - of the %s: %+v", name, r)
		}
		if want := "a Lambda failure record (Lambda gave up (RetriesExhausted after 3 attempts): throttled): planning its request payload"; (name == "failure record") != strings.Contains(r.stderr, want) {
			t.Errorf("plan of the %s, stderr %q", name, r.stderr)
		}
	}
}

func cliStdin(t *testing.T, s motoSetup, stdin string, args ...string) run {
	t.Helper()
	var out, errOut strings.Builder
	env := Env{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errOut,
		Getenv: func(k string) string {
			if k == "AUTODEPLOY_TABLE" {
				return s.table
			}
			return ""
		},
		AWS: func(context.Context) (aws.Config, error) { return s.moto.AWSConfig(), nil }, Now: time.Now}
	code := Run(context.Background(), args, env)
	return run{code, out.String(), errOut.String()}
}
