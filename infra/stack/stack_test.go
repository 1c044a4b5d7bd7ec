package stack

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

const rulesYAML = `version: 1
rules:
  - name: web-staging
    repository: web
    tags: ["main-*"]
    targets:
      - {cluster: staging, service: web}
      - {cluster: staging, service: web-worker, containers: [worker]}
    promote: {tag: "verified-{tag}"}
  - name: web-prod
    repository: web
    semver: ">= 1.0.0"
    targets:
      - {cluster: prod, service: web, region: us-east-1}
  - name: api
    repository: team/api
    tags: [latest]
    targets:
      - {cluster: prod, service: api, role: "arn:aws:iam::222222222222:role/autodeploy-target"}
`

type synthesized struct {
	stack        awscdk.Stack
	template     map[string]any
	templatePath string
}

// synth builds the central stack from rulesYAML with a stand-in bootstrap;
// options change its props.
func synth(t *testing.T, options ...func(*Props)) synthesized {
	t.Helper()
	build := func(app awscdk.App, p Props) ([]awscdk.Stack, error) {
		s, err := New(app, "Test", p)
		return []awscdk.Stack{s}, err
	}
	if len(options) == 0 { // the default stack: many tests read it alike
		return synthOnce(t, "default", build)["Test"]
	}
	return synthStacks(t, t.TempDir(), build, options...)["Test"]
}

// synthAll builds every stack of rules (NewAll), by stack id; once per
// rules text and test binary.
func synthAll(t *testing.T, rulesText string) map[string]synthesized {
	t.Helper()
	return synthOnce(t, "all:"+rulesText, func(app awscdk.App, p Props) ([]awscdk.Stack, error) { return NewAll(app, "Test", p) }, func(p *Props) {
		cfg, err := rules.Parse("all.yaml", []byte(rulesText))
		if err != nil {
			t.Fatal(err)
		}
		p.Rules = cfg
	})
}

// synths keeps the builds that tests read alike, made once per test binary
// (a synth costs seconds of jsii): templates are only read, and their
// files live in the binary's own directory, removed by TestMain.
var synths = struct {
	sync.Mutex
	dir   string
	built map[string]map[string]synthesized
}{built: map[string]map[string]synthesized{}}

func synthOnce(t *testing.T, key string, build func(awscdk.App, Props) ([]awscdk.Stack, error), options ...func(*Props)) map[string]synthesized {
	t.Helper()
	synths.Lock()
	defer synths.Unlock()
	if got, ok := synths.built[key]; ok {
		return got
	}
	dir, err := os.MkdirTemp(synths.dir, "synth-")
	if err != nil {
		t.Fatal(err)
	}
	got := synthStacks(t, dir, build, options...)
	if !t.Failed() {
		synths.built[key] = got
	}
	return got
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "stack-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	synths.dir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

func synthStacks(t *testing.T, dir string, build func(awscdk.App, Props) ([]awscdk.Stack, error), options ...func(*Props)) map[string]synthesized {
	t.Helper()
	rulesFile := filepath.Join(dir, "autodeploy.yaml")
	if err := os.WriteFile(rulesFile, []byte(rulesYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	dist := filepath.Join(dir, "dist")
	for _, fn := range Functions() {
		if err := os.MkdirAll(filepath.Join(dist, fn), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dist, fn, "bootstrap"), []byte("stand-in for "+fn), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := rules.Load(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	outdir := filepath.Join(dir, "cdk.out")
	app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(outdir)})
	props := Props{
		StackProps: awscdk.StackProps{Env: &awscdk.Environment{Account: jsii.String("111111111111"), Region: jsii.String("eu-west-1")}},
		Rules:      cfg, RulesFile: rulesFile, DistDir: dist, BundleDir: filepath.Join(dir, "bundles"),
		AlarmEmail: "ops@example.com",
	}
	for _, o := range options {
		o(&props)
	}
	stacks, err := build(app, props)
	if err != nil {
		t.Fatal(err)
	}
	awscdk.Aspects_Of(app).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
	assembly := app.Synth(nil)
	out := map[string]synthesized{}
	for _, s := range stacks {
		path := *assembly.GetStackArtifact(s.ArtifactId()).TemplateFullPath()
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var tmpl map[string]any
		if err := json.Unmarshal(data, &tmpl); err != nil {
			t.Fatal(err)
		}
		out[*s.StackName()] = synthesized{stack: s, template: tmpl, templatePath: path}
	}
	// The bundled asset carries the rules file beside the bootstrap.
	if got, err := os.ReadFile(filepath.Join(dir, "bundles", "deployer", "autodeploy.yaml")); err != nil || string(got) != rulesYAML {
		t.Errorf("rules file not bundled beside bootstrap: %v", err)
	}
	return out
}

// resources returns the properties of every resource of a type.
func (s synthesized) resources(typ string) map[string]map[string]any {
	out := map[string]map[string]any{}
	for id, r := range s.template["Resources"].(map[string]any) {
		res := r.(map[string]any)
		if res["Type"] == typ {
			props, _ := res["Properties"].(map[string]any)
			out[id] = props
		}
	}
	return out
}

func (s synthesized) one(t *testing.T, typ string) map[string]any {
	t.Helper()
	rs := s.resources(typ)
	if len(rs) != 1 {
		t.Fatalf("%d resources of type %s, want 1", len(rs), typ)
	}
	for _, p := range rs {
		return p
	}
	return nil
}

// rule returns the EventBridge rule on events of one source (of aws.ecs:
// its deployments; ruleFor reads the hook rules).
func (s synthesized) rule(t *testing.T, source string) map[string]any {
	t.Helper()
	detailType := ""
	if source == ecsSource {
		detailType = ecsDeployment
	}
	return s.ruleFor(t, source, detailType)
}

// ruleFor returns the EventBridge rule on events of one source and detail
// type ("": any).
func (s synthesized) ruleFor(t *testing.T, source, detailType string) map[string]any {
	t.Helper()
	for _, r := range s.resources("AWS::Events::Rule") {
		pattern, _ := r["EventPattern"].(map[string]any) // a schedule has none
		if cmp.Equal([]any{source}, pattern["source"]) && (detailType == "" || cmp.Equal([]any{detailType}, pattern["detail-type"])) {
			return r
		}
	}
	t.Fatalf("no rule on %s %q events", source, detailType)
	return nil
}

// statements returns the deployer's policy statements by Sid (or first action).
func (s synthesized) statements(t *testing.T) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, p := range s.resources("AWS::IAM::Policy") {
		for _, st := range p["PolicyDocument"].(map[string]any)["Statement"].([]any) {
			m := st.(map[string]any)
			key, _ := m["Sid"].(string)
			if key == "" {
				key = jsonString(m["Action"])
			}
			out[key] = m
		}
	}
	return out
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestEventRule(t *testing.T) {
	s := synth(t)
	rule := s.rule(t, "aws.ecr")
	want := map[string]any{
		"source": []any{"aws.ecr"}, "detail-type": []any{"ECR Image Action"},
		"account": []any{"111111111111"}, "region": []any{"eu-west-1"},
		"detail": map[string]any{"action-type": []any{"PUSH"}, "result": []any{"SUCCESS"}, "repository-name": []any{"web", "team/api"}},
	}
	if diff := cmp.Diff(want, rule["EventPattern"]); diff != "" {
		t.Errorf("event pattern (-want +got):\n%s", diff)
	}
	target := rule["Targets"].([]any)[0].(map[string]any)
	if diff := cmp.Diff(map[string]any{"MaximumEventAgeInSeconds": 86400.0, "MaximumRetryAttempts": 185.0}, target["RetryPolicy"]); diff != "" {
		t.Errorf("retry policy (-want +got):\n%s", diff)
	}
	if !strings.Contains(jsonString(target["DeadLetterConfig"]), "PushEventsDLQ") {
		t.Errorf("no dead-letter queue on the target: %v", target["DeadLetterConfig"])
	}
}

func TestFunctions(t *testing.T) {
	s := synth(t)
	fns := s.resources("AWS::Lambda::Function")
	if len(fns) != len(Functions()) {
		t.Fatalf("%d functions, want %d", len(fns), len(Functions()))
	}
	for id, fn := range fns {
		for k, want := range map[string]any{"Runtime": "provided.al2023", "Handler": "bootstrap", "MemorySize": 256.0} {
			if fn[k] != want {
				t.Errorf("%s: %s = %v, want %v", id, k, fn[k], want)
			}
		}
		if diff := cmp.Diff([]any{"arm64"}, fn["Architectures"]); diff != "" {
			t.Errorf("%s: architectures (-want +got):\n%s", id, diff)
		}
		logging := fn["LoggingConfig"].(map[string]any)
		if logging["LogFormat"] != "JSON" || logging["ApplicationLogLevel"] != "INFO" || logging["LogGroup"] == nil {
			t.Errorf("%s: logging config = %v", id, logging)
		}
		if env := jsonString(fn["Environment"]); !strings.Contains(env, "AUTODEPLOY_TABLE") {
			t.Errorf("%s: environment = %s", id, env)
		}
		if strings.HasPrefix(id, "Watcher") {
			env := jsonString(fn["Environment"])
			if !strings.Contains(env, "AUTODEPLOY_DEPLOYER_FUNCTION") || !strings.Contains(env, "AUTODEPLOY_NOTIFY_TOPIC_ARN") {
				t.Errorf("watcher environment = %s", env)
			}
		}
	}
	for id, lg := range s.resources("AWS::Logs::LogGroup") {
		if lg["RetentionInDays"] != 30.0 {
			t.Errorf("%s: log retention = %v", id, lg["RetentionInDays"])
		}
	}
	invokes := s.resources("AWS::Lambda::EventInvokeConfig")
	if len(invokes) != len(Functions())-1 {
		t.Errorf("%d async invoke configs, want one per function but the worker (only its event source mappings invoke it)", len(invokes))
	}
	for id, inv := range invokes {
		if inv["MaximumRetryAttempts"] != 2.0 || inv["MaximumEventAgeInSeconds"] != 21600.0 ||
			!strings.Contains(jsonString(inv["DestinationConfig"]), "FailedEvents") {
			t.Errorf("%s: async invoke config = %v", id, inv)
		}
	}
	for id, role := range s.resources("AWS::IAM::Role") {
		if _, managed := role["ManagedPolicyArns"]; managed {
			t.Errorf("%s uses managed policies: %v", id, role["ManagedPolicyArns"])
		}
	}
}

func TestEcsDeploymentRule(t *testing.T) {
	s := synth(t)
	rule := s.rule(t, "aws.ecs")
	pattern := rule["EventPattern"].(map[string]any)
	if diff := cmp.Diff([]any{"ECS Deployment State Change"}, pattern["detail-type"]); diff != "" {
		t.Errorf("detail-type (-want +got):\n%s", diff)
	}
	resources := jsonString(pattern["resources"])
	// prod/api's events come forwarded by its target stack, keeping its account.
	for _, svc := range []string{"service/staging/web\"", "service/staging/web-worker", "service/prod/web", "222222222222:service/prod/api"} {
		if !strings.Contains(resources, svc) {
			t.Errorf("ECS rule does not follow %s: %s", svc, resources)
		}
	}
	if diff := cmp.Diff([]any{"111111111111", "222222222222"}, pattern["account"]); diff != "" {
		t.Errorf("accounts (-want +got):\n%s", diff)
	}
	if !strings.Contains(jsonString(rule["Targets"]), "DeploymentEventsDLQ") {
		t.Error("no dead-letter queue on the ECS rule's target")
	}
}

func TestWatcherPermissions(t *testing.T) {
	s := synth(t)
	st := s.statements(t)
	promote := st["PromoteDigests"]
	if promote == nil {
		t.Fatal("no ECR permission for the promoting rule")
	}
	if diff := cmp.Diff([]any{"ecr:BatchGetImage", "ecr:PutImage"}, promote["Action"]); diff != "" {
		t.Errorf("actions (-want +got):\n%s", diff)
	}
	if res := jsonString(promote["Resource"]); !strings.Contains(res, "repository/web") || strings.Contains(res, "team/api") {
		t.Errorf("ECR tagging must be limited to the repositories of rules that promote: %s", res)
	}
	var publish, invoke bool
	for _, p := range s.resources("AWS::IAM::Policy") {
		doc := jsonString(p)
		publish = publish || strings.Contains(doc, `"sns:Publish"`)
		invoke = invoke || strings.Contains(doc, `"lambda:InvokeFunction"`)
	}
	if !publish || !invoke {
		t.Errorf("watcher cannot publish (%v) or hand off to the deployer (%v)", publish, invoke)
	}
}

func TestTable(t *testing.T) {
	s := synth(t)
	table := s.one(t, "AWS::DynamoDB::Table")
	want := map[string]any{
		"KeySchema":                        []any{map[string]any{"AttributeName": "pk", "KeyType": "HASH"}, map[string]any{"AttributeName": "sk", "KeyType": "RANGE"}},
		"BillingMode":                      "PAY_PER_REQUEST",
		"TimeToLiveSpecification":          map[string]any{"AttributeName": "expires_at", "Enabled": true},
		"PointInTimeRecoverySpecification": map[string]any{"PointInTimeRecoveryEnabled": true},
		"SSESpecification":                 map[string]any{"SSEEnabled": true},
	}
	for k, w := range want {
		if diff := cmp.Diff(w, table[k]); diff != "" {
			t.Errorf("%s (-want +got):\n%s", k, diff)
		}
	}
}

func TestLeastPrivilege(t *testing.T) {
	s := synth(t)
	st := s.statements(t)

	roll := st["RollConfiguredServices"]
	if diff := cmp.Diff([]any{"ecs:DescribeServices", "ecs:UpdateService"}, roll["Action"]); diff != "" {
		t.Errorf("actions (-want +got):\n%s", diff)
	}
	wantServices := []any{
		map[string]any{"Fn::Sub": "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:service/staging/web"},
		map[string]any{"Fn::Sub": "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:service/staging/web-worker"},
		map[string]any{"Fn::Sub": "arn:${AWS::Partition}:ecs:us-east-1:${AWS::AccountId}:service/prod/web"},
	}
	if diff := cmp.Diff(wantServices, roll["Resource"], sortAny()); diff != "" {
		t.Errorf("UpdateService resources (-want +got):\n%s", diff)
	}
	// A service not in the rules file gets nothing; prod/api is reached
	// through its target role only.
	for _, p := range s.resources("AWS::IAM::Policy") {
		doc := jsonString(p)
		if strings.Contains(doc, "service/prod/api") || strings.Contains(doc, "service/*") {
			t.Errorf("a policy names a service outside the rules' own-account targets: %s", doc)
		}
	}
	for _, stmt := range st {
		if strings.Contains(jsonString(stmt["Action"]), "ecs:UpdateService") && stmt["Sid"] != "RollConfiguredServices" {
			t.Errorf("UpdateService granted elsewhere: %v", stmt)
		}
	}
	if diff := cmp.Diff(map[string]any{"StringEquals": map[string]any{"ecs:CreateAction": "RegisterTaskDefinition"}}, st["TagNewRevisions"]["Condition"]); diff != "" {
		t.Errorf("TagResource condition (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]any{"StringEquals": map[string]any{"iam:PassedToService": "ecs-tasks.amazonaws.com"}}, st["PassTaskRolesToEcsOnly"]["Condition"]); diff != "" {
		t.Errorf("PassRole condition (-want +got):\n%s", diff)
	}
	wantPass := map[string]any{"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/*"}
	if diff := cmp.Diff(wantPass, st["PassTaskRolesToEcsOnly"]["Resource"]); diff != "" {
		t.Errorf("PassRole resources: only the account's own roles without pass-roles (-want +got):\n%s", diff)
	}
	if got := st["AssumeTargetRoles"]["Resource"]; got != "arn:aws:iam::222222222222:role/autodeploy-target" {
		t.Errorf("AssumeRole resource = %v", got)
	}
	ddb := st[`["dynamodb:GetItem","dynamodb:PutItem","dynamodb:DeleteItem","dynamodb:UpdateItem","dynamodb:Query","dynamodb:ConditionCheckItem"]`]
	if ddb == nil || !strings.Contains(jsonString(ddb["Resource"]), "State") || strings.Contains(jsonString(ddb["Resource"]), `"*"`) {
		t.Errorf("table statement = %v", ddb)
	}
}

func TestAlarmsQueuesAndQueries(t *testing.T) {
	s := synth(t)
	alarms := s.resources("AWS::CloudWatch::Alarm")
	if len(alarms) != 13 {
		t.Errorf("%d alarms, want errors per function, a failure queue per function but the worker, 3 rule DLQs (push, deployment, hook events), the work DLQ, failed deploys, history not written, failed/rolled-back deployments, reports lost", len(alarms))
	}
	// The deploy lines come from the worker and (sweeps, in-process) the
	// deployer: a filter on each log group feeds one alarm's metric.
	var patterns []string
	for _, f := range s.resources("AWS::Logs::MetricFilter") {
		group := f["LogGroupName"].(map[string]any)["Ref"].(string)
		patterns = append(patterns, f["FilterPattern"].(string)+" on "+group[:len(group)-8]) // the logical id's hash aside
	}
	failed := `{ (($.msg = "deploy" || $.msg = "reconcile" || $.msg = "publish") && $.outcome = "failed") || $.msg = "work item refused" }`
	history := `{ $.msg = "history not written" }`
	want := []string{failed + " on DeployerLogs", failed + " on WorkerLogs", history + " on DeployerLogs", history + " on WorkerLogs",
		`{ $.msg = "deployment" && ($.outcome = "failed" || $.outcome = "rolled_back") } on WatcherLogs`,
		reportsLostPattern + " on DeployerLogs", reportsLostPattern + " on WorkerLogs", reportsLostPattern + " on WatcherLogs"}
	if diff := cmp.Diff(want, patterns, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("alarm filters (-want +got):\n%s", diff)
	}
	for id, a := range alarms {
		if !strings.Contains(jsonString(a["AlarmActions"]), "Alarms") {
			t.Errorf("alarm %s does not notify the topic", id)
		}
	}
	for id, topic := range s.resources("AWS::SNS::Topic") {
		if topic["KmsMasterKeyId"] == nil {
			t.Errorf("topic %s is not encrypted", id)
		}
	}
	if sub := s.one(t, "AWS::SNS::Subscription"); sub["Protocol"] != "email" || sub["Endpoint"] != "ops@example.com" {
		t.Errorf("subscription = %v", sub)
	}
	queues := s.resources("AWS::SQS::Queue")
	if len(queues) != 9 {
		t.Errorf("%d queues, want 9: 3 rule DLQs (push, deployment, hook events), 2 failure queues, 3 work queues (one per target place) and their DLQ", len(queues))
	}
	for id, q := range queues {
		if q["SqsManagedSseEnabled"] != true {
			t.Errorf("queue %s not encrypted: %v", id, q)
		}
	}
	// Every queue is in a policy that denies non-SSL requests (the work
	// queues share one).
	ssl := map[string]bool{}
	for id, p := range s.resources("AWS::SQS::QueuePolicy") {
		if !strings.Contains(jsonString(p), `"aws:SecureTransport":"false"`) {
			t.Errorf("queue policy %s does not deny non-SSL: %s", id, jsonString(p))
			continue
		}
		for _, q := range p["Queues"].([]any) {
			ssl[q.(map[string]any)["Ref"].(string)] = true
		}
	}
	for id := range queues {
		if !ssl[id] {
			t.Errorf("queue %s: no policy denies non-SSL requests", id)
		}
	}
	var names []string
	for _, q := range s.resources("AWS::Logs::QueryDefinition") {
		names = append(names, q["Name"].(string))
		if !strings.Contains(q["QueryString"].(string), `msg = "deploy`) && !strings.Contains(q["QueryString"].(string), `msg = "reconcile"`) {
			t.Errorf("query %s = %s", q["Name"], q["QueryString"])
		}
	}
	if diff := cmp.Diff([]string{"ecr-autodeploy/deployment-outcomes", "ecr-autodeploy/failed-deploys", "ecr-autodeploy/recent-deploys", "ecr-autodeploy/sweeps", "ecr-autodeploy/where-is-each-image"}, names, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("saved queries (-want +got):\n%s", diff)
	}
}

func TestCdkNagAwsSolutions(t *testing.T) {
	synth(t).nagClean(t)
}

// nagClean fails on any cdk-nag AwsSolutions finding not suppressed.
func (s synthesized) nagClean(t *testing.T) {
	t.Helper()
	ann := assertions.Annotations_FromStack(s.stack)
	nag := assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-.*"))
	for _, m := range *ann.FindError(jsii.String("*"), nag) {
		t.Errorf("unsuppressed cdk-nag error: %s", jsonString(m))
	}
	for _, m := range *ann.FindWarning(jsii.String("*"), nag) {
		t.Errorf("unsuppressed cdk-nag warning: %s", jsonString(m))
	}
}

// acceptedLintWarnings are cfn-lint findings we accept, with the reason.
var acceptedLintWarnings = map[string]string{
	// CDK adds an explicit DependsOn on the role's default policy beside the
	// GetAtt of the role (aws-cdk#24578); the redundancy is harmless.
	"W3005": "dependency already enforced",
}

func TestCfnLint(t *testing.T) {
	synth(t).lintClean(t)
}

// lintClean runs cfn-lint on the template and fails on what is not accepted.
func (s synthesized) lintClean(t *testing.T) {
	t.Helper()
	bin := testenv.CfnLintBinary(t)
	out, err := exec.Command(bin, "--format", "parseable", s.templatePath).CombinedOutput()
	code := 0
	if exitErr, ok := err.(*exec.ExitError); ok {
		code = exitErr.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if code&2 != 0 {
		t.Errorf("cfn-lint found errors:\n%s", out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		fields := strings.Split(line, ":")
		if len(fields) < 6 || acceptedLintWarnings[fields[5]] == "" {
			t.Errorf("cfn-lint finding not accepted: %s", line)
		}
	}
}

func TestMissingBootstrapFailsClearly(t *testing.T) {
	dir := t.TempDir()
	rulesFile := filepath.Join(dir, "autodeploy.yaml")
	if err := os.WriteFile(rulesFile, []byte(rulesYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := rules.Load(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(awscdk.NewApp(nil), "Test", Props{Rules: cfg, RulesFile: rulesFile, DistDir: filepath.Join(dir, "dist"), BundleDir: dir})
	if err == nil || !strings.Contains(err.Error(), "function deployer is not built") || !strings.Contains(err.Error(), "make build") {
		t.Fatalf("err = %v", err)
	}
}

func sortAny() cmp.Option {
	return cmp.Transformer("sortAny", func(in []any) []string {
		out := make([]string, len(in))
		for i, v := range in {
			out[i] = jsonString(v)
		}
		slices.Sort(out)
		return out
	})
}

func TestPassRolesAndKeyPolicy(t *testing.T) {
	cfg, err := rules.Parse("pass.yaml", []byte("version: 1\ndefaults:\n  pass-roles: [\"arn:aws:iam::123456789012:role/web-*\"]\n"+
		"rules:\n  - name: a\n    repository: web\n    tags: [x]\n    targets: [{cluster: c, service: s}]\n"+
		"  - name: b\n    repository: api\n    tags: [x]\n    pass-roles: [\"arn:aws:iam::123456789012:role/api-task\"]\n    targets: [{cluster: c, service: api}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"arn:aws:iam::123456789012:role/api-task", "arn:aws:iam::123456789012:role/web-*"}, PassRoles(cfg, rules.Place{})); diff != "" {
		t.Errorf("PassRoles (-want +got):\n%s", diff)
	}
	s := synth(t)
	key := s.one(t, "AWS::KMS::Key")
	doc := jsonString(key["KeyPolicy"])
	if !strings.Contains(doc, "cloudwatch.amazonaws.com") || !strings.Contains(doc, `"aws:SourceAccount"`) || !strings.Contains(doc, `"aws:SourceArn"`) {
		t.Errorf("the CloudWatch grant on the topic key is not limited to this account's alarms: %s", doc)
	}
}
