package demo

import (
	"bytes"
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

// TestDemoEndState runs the demo as `make demo` does and checks what it
// ends with, so the README's first command cannot silently rot.
func TestDemoEndState(t *testing.T) {
	root := testenv.RepoRoot(t)
	var out bytes.Buffer
	err := Run(context.Background(), &out, Options{
		MotoServer: testenv.MotoBinary(t), RIE: testenv.RIEBinary(t),
		Deployer:  testenv.BuildFunction(t, "deployer", t.TempDir()),
		Watcher:   testenv.BuildFunction(t, "watcher", t.TempDir()),
		Worker:    testenv.BuildFunction(t, "worker", t.TempDir()),
		EventsDir: filepath.Join(root, "events"),
	})
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	text := out.String()
	for _, want := range []string{
		"deployer: queued staging/web (rule web-staging)",
		"worker: deployed staging/web (rule web-staging)",
		"(the queued path)",
		"AUTODEPLOY_WORK_QUEUE_URL=http://",
		"(playing the event source mapping) the worker took 1 work item(s) in 1 batch(es)",
		"rule web-prod     does not match: tag main-4f2a9c1 is not a semantic version",
		"    + app    123456789012.dkr.ecr.eu-west-1.amazonaws.com/web@sha256:",
		"watcher: every target of web-staging completed, so the digest is promoted: ECR tags now main-4f2a9c1, verified-main-4f2a9c1",
		"worker: deployed prod/web (rule web-prod)",
		"never downgrade: app: v1.3.2 is older than the running v1.4.0",
		"deployer: ignored: tag sha256-",
		"already running 123456789012.dkr.ecr.eu-west-1.amazonaws.com/web@sha256:",
		"    (the JSON line ops read in CloudWatch:)\n    {\"time\":",
		`"msg":"deploy"`,
		"worker log: deploy rule=web-staging tag=main-4f2a9c1 target=staging/web outcome=deployed\n",
		"now running: staging/web web-staging:2 app=web@sha256:",
		"prod/web web-prod:2 app=web@sha256:",
		"chat (thread ecr-autodeploy/123456789012/eu-west-1/staging/web): ✅ staging/web is running web:main-4f2a9c1",
		"chat (thread ecr-autodeploy/123456789012/eu-west-1/prod/web): ❌ prod/web deployment of web:v1.5.0 FAILED",
		"the watcher records failed, then rolled_back, and tells the incident once",
		"next: See what ran before: `autodeploy history --cluster prod --service web --account 123456789012 --region eu-west-1`",
		"parked: Lambda gave up (RetriesExhausted after 3 attempts)",
		"deployer: 1 queued for the worker, 0 failed\n  1 moved, 0 left\n  (playing the event source mapping)",
		"now running: staging/web web-staging:3 app=web@sha256:c4be16ad4b58",
		"sweep: queued    staging/web (rule web-staging, newest main-8e9f0a1)",
		"sweep: skipped   prod/web (rule web-prod, newest v1.6.0) held by ops@example.com since ",
		"sweep: queued    prod/web (rule web-prod, newest v1.6.0)",
		"deployer log: reconcile rule=web-staging target=staging/web outcome=queued",
		// moto's one deployment id per service, and the sweep the watcher
		// asks for after a rollback of a rule that publishes (played).
		"(moto keeps one deployment id per service across updates: ecs-svc/",
		"(still the image rolled back from)\n  (playing the watcher's request",
		"published: /ecr-autodeploy/prod/web/app = 123456789012.dkr.ecr.eu-west-1.amazonaws.com/web@sha256:c973adf8",
		"published: /ecr-autodeploy/prod/web/app = 123456789012.dkr.ecr.eu-west-1.amazonaws.com/web@sha256:c973adf8",
		"published /ecr-autodeploy/prod/web/app (it was stale)",
		"worker: deployed prod/web-canary (rule web-canary)",
		`"TaskDefinition": "arn:aws:ecs:eu-west-1:123456789012:task-definition/web-canary:2"`,
		"(playing CodeDeploy) green tasks healthy, traffic shifted: web-canary now runs web-canary:2",
		"chat (thread ecr-autodeploy/123456789012/eu-west-1/prod/web-canary): ✅ prod/web-canary is running web:canary-7c1d2e3",
		"sweep: in_sync   prod/web-canary (rule web-canary, newest canary-7c1d2e3)",
		// ECS-native (the ECS front plays service deployments: moto has none)
		"AWS_ENDPOINT_URL_ECS=http://",
		"worker: deployed prod/checkout (rule checkout)",
		`worker log: deploy rule=checkout tag=main-5d6e7f8 target=prod/checkout rollout="ECS-native CANARY" outcome=deployed`,
		"rule checkout     matches  →  prod/checkout",
		"worker: rollout=ECS-native CANARY, service deployment arn:aws:ecs:eu-west-1:123456789012:service-deployment/prod/checkout/",
		"the canary: 10% of production traffic  →  CANARY 10% · bake 5 min left",
		"→  CANARY 10% · paused at PRE_PRODUCTION_TRAFFIC_SHIFT · times out in 30 min (then ROLLBACK)",
		"chat (thread ecr-autodeploy/123456789012/eu-west-1/prod/checkout): ⏸️ prod/checkout PAUSED at PRE_PRODUCTION_TRAFFIC_SHIFT: the deployment of checkout:main-5d6e7f8 waits for you",
		"next: To go on: `autodeploy continue --cluster prod --service checkout --account 123456789012 --region eu-west-1 --hook ecs-pause-",
		"prod/checkout: continued at PRE_PRODUCTION_TRAFFIC_SHIFT: hook ecs-pause-",
		"while its service deployment still says IN_PROGRESS (baking)",
		`outcome=in_progress stage="CANARY 100% · bake 10 min left"`,
		`(playing the watcher's timer: the demo configures no EventBridge Scheduler) {"kind":"recheck","v":1,"deployment_id":"ecs-svc/`,
		"chat (thread ecr-autodeploy/123456789012/eu-west-1/prod/checkout): ✅ prod/checkout is running checkout:main-5d6e7f8",
		"now running: prod/checkout checkout:2 app=checkout@sha256:",
		`rollout="ECS-native BLUE_GREEN"`,
		"watcher: rolled_back because: alarm payments-5xx in ALARM",
		"chat (thread ecr-autodeploy/123456789012/eu-west-1/prod/payments): ↩️ prod/payments was ROLLED BACK from payments:main-9a8b7c6",
		"prod/payments payments:1 app=payments:main-0000000",
		"Done:",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	for _, re := range []string{`watcher: deployment ecs-svc/\d+ failed\n`, `watcher: deployment ecs-svc/\d+ rolled_back\n`,
		`CodeDeploy deployment [0-9a-f-]+ in web/web-canary, AppSpec:`, `watcher: deployment [0-9a-f-]{36} completed\n`,
		`watcher: deployment ecs-svc/\d+ paused \(stage: PRE_PRODUCTION_TRAFFIC_SHIFT\)\n`,
		`watcher: deployment ecs-svc/\d+ in_progress \(stage: CANARY 100% · bake 10 min left\)\n`,
		`watcher log: deployment rule=checkout .*outcome=completed`,
		`watcher log: ERROR deployment rule=payments .*outcome=rolled_back .*reason="alarm payments-5xx in ALARM"`,
		`published: /ecr-autodeploy/prod/web/app = \S+@sha256:c973adf8\S+ \(what runs again\)`} {
		if !regexp.MustCompile(re).MatchString(text) {
			t.Errorf("demo output lacks %s", re)
		}
	}
	// After the rollback prod runs the last good revision again, until the
	// sweep after the hold rolls it to v1.6.0.
	steps := strings.Split(text, "\n== Step ")
	if rollback := steps[6]; !strings.Contains(rollback, "now running: staging/web web-staging:2 app=web@sha256:fe63") || !strings.Contains(rollback, "prod/web web-prod:2 ") {
		t.Errorf("after the rollback: %s", rollback)
	}
	running := strings.Split(steps[10], "now running: ") // the last step before the ECS-native scenes
	if last := running[len(running)-1]; !strings.Contains(last, "prod/web web-prod:4 ") {
		t.Errorf("prod at the end: %s", last)
	}
	// The canary: completed only after the pause was continued and the
	// bake ended — in that order.
	canary := steps[11]
	order := []string{"paused (stage: PRE_PRODUCTION_TRAFFIC_SHIFT)", "$ autodeploy continue --cluster prod --service checkout --account 123456789012 --region eu-west-1 --hook ecs-pause-",
		"in_progress (stage: CANARY 100% · bake 10 min left)", "service deployment SUCCESSFUL", " completed\n"}
	at := strings.Index(canary, order[0])
	if at < 0 {
		t.Errorf("canary scene lacks %q", order[0])
	}
	for i := 1; i < len(order) && at >= 0; i++ {
		next := strings.Index(canary[at:], order[i])
		if next < 0 {
			t.Errorf("canary scene: %q does not follow %q", order[i], order[i-1])
			break
		}
		at += next
	}
	// The gates: an approval and its approve, a blocked scan, a bake an
	// alarm stops — each in its order within its step.
	for i, order := range [][]string{
		{"deployer: skipped prod/billing (rule billing)", "⏸️ billing:v2.0.0 waits for approval to deploy by rule billing",
			"next: To deploy it: `autodeploy approve --rule billing --digest sha256:", "now running: prod/billing billing:1 app=billing:v1.0.0",
			"approved for rule billing by alice@example.com", "worker: deployed prod/billing (rule billing)", "now running: prod/billing billing:2 app=billing@sha256:"},
		{"deployer: gate scan of rule reports: waits — waits for its scan", "watcher: gate scan of rule reports: blocked — 1 CRITICAL, 3 HIGH",
			"🛑 reports:main-3c4d5e6 NOT deployed by rule reports: its scan found 1 CRITICAL, 3 HIGH", "now running: prod/reports reports:1 app=reports:main-0000000"},
		{"worker: deployed staging/search (rule search-staging)", "gate=bake outcome=baking",
			"✅ staging/search is running search:main-6f7a8b9", "now running: staging/search search:2 ",
			"watcher: gate bake of rule search-staging: not promoted — alarm search-5xx in ALARM at ",
			"NOT promoted by rule search-staging: alarm search-5xx during its bake", "(no verified-main-6f7a8b9: it was not promoted)"},
	} {
		scene := steps[13+i]
		at := 0
		for _, want := range order {
			next := strings.Index(scene[at:], want)
			if next < 0 {
				t.Errorf("step %d lacks %q after what came before", 13+i, want)
				break
			}
			at += next
		}
	}
	// The demo tells the truth about itself: its functions' log lines are
	// short lines, but the one JSON line shown as ops read it; a push's
	// event carries when it was pushed, so push_to_completion counts what
	// the demo took, not the sample events' day.
	if n := strings.Count(text, "(the JSON line ops read in CloudWatch:)"); n != 1 {
		t.Errorf("the JSON line is shown %d times, want once", n)
	}
	if raw := regexp.MustCompile(`(?m)log: \{.*$`).FindAllString(text, 3); len(raw) > 0 {
		t.Errorf("raw JSON log lines: %q", raw)
	}
	completions := regexp.MustCompile(`push_to_completion=(\S+)`).FindAllStringSubmatch(text, -1)
	if len(completions) < 6 {
		t.Errorf("%d deployment lines say push_to_completion, want every end's", len(completions))
	}
	for _, m := range completions {
		if took, err := time.ParseDuration(m[1]); err != nil || took < 0 || took > time.Minute {
			t.Errorf("push_to_completion=%s: want the demo's own seconds", m[1])
		}
	}
	// Every step that deploys prod/web prints its parameter (README: "the
	// demo prints the Parameter Store value after each prod deploy").
	deploys := 0
	for i, s := range steps {
		for _, part := range strings.Split(s, "worker: deployed prod/web (rule web-prod)")[1:] {
			deploys++
			if !strings.Contains(part, "published: /ecr-autodeploy/prod/web/app = ") {
				t.Errorf("step %d deploys prod/web without printing its parameter", i)
			}
		}
	}
	if deploys != 3 {
		t.Errorf("%d deploys of prod/web, want 3 (v1.4.0, v1.5.0, v1.6.0)", deploys)
	}
	if !strings.Contains(steps[10], "published: /ecr-autodeploy/prod/web/app = 123456789012.dkr.ecr.eu-west-1.amazonaws.com/web@sha256:c1fc1f7b9050") {
		t.Errorf("the sweep's deploy of v1.6.0 does not print its parameter: %s", steps[10])
	}
	// Each scene prints what the target it talks about runs, and no other's.
	for i, want := range map[int]string{11: "prod/checkout", 12: "prod/payments", 13: "prod/billing", 14: "prod/reports", 15: "staging/search"} {
		running := regexp.MustCompile(`(?m)^  now running: (.*)$`).FindAllStringSubmatch(steps[i], -1)
		if len(running) == 0 {
			t.Errorf("step %d prints no now running line", i)
		}
		for _, m := range running {
			if !strings.HasPrefix(m[1], want+" ") || strings.Contains(m[1], "|") {
				t.Errorf("step %d: now running: %s, want %s's line only", i, m[1], want)
			}
		}
	}
	// One incident, one notice: the circuit breaker's rollback after the
	// failure is not told a second time.
	if strings.Contains(text, "prod/web was ROLLED BACK from web:v1.5.0") {
		t.Error("the rollback after v1.5.0's failure was told a second time")
	}
	if strings.Contains(text, "never-logged") {
		t.Error("a container environment value reached the demo's log lines")
	}
	if t.Failed() {
		t.Log(text)
	}
}

// TestAccountsDemoEndState runs `make demo-accounts` and checks its end:
// deployed in the target account, promoted in the registry account, caught
// up by a sweep.
func TestAccountsDemoEndState(t *testing.T) {
	root := testenv.RepoRoot(t)
	var out bytes.Buffer
	err := RunAccounts(context.Background(), &out, Options{
		MotoServer: testenv.MotoBinary(t), RIE: testenv.RIEBinary(t),
		Deployer:  testenv.BuildFunction(t, "deployer", t.TempDir()),
		Watcher:   testenv.BuildFunction(t, "watcher", t.TempDir()),
		EventsDir: filepath.Join(root, "events"),
	})
	text := out.String()
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, text)
	}
	for _, want := range []string{
		"deployer: deployed prod/web in 222222222222/us-east-1 through arn:aws:iam::222222222222:role/ecr-autodeploy-target-us-east-1",
		"the worker deploys through ecr-autodeploy-target-us-east-1; the deployer's sweeps read through ecr-autodeploy-sweep-us-east-1",
		"now running in 222222222222/us-east-1: prod/web web-prod:2 app=web@sha256:",
		"watcher: deployment ecs-svc/",
		"completed; promoted verified-main-1",
		"tags now: main-1, verified-main-1 (through arn:aws:iam::333333333333:role/ecr-autodeploy-promote-eu-west-1)",
		"deployer log: reconcile rule=web-prod target=prod/web outcome=deployed",
		"now running in 222222222222/us-east-1: prod/web web-prod:3 app=web@sha256:",
		"Done:",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(text)
	}
}

// TestReadable: a function's JSON log line in short — msg, rule, tag,
// target, outcome, reason and what else says how it went — and what is
// not JSON as it is.
func TestReadable(t *testing.T) {
	for _, tc := range []struct{ name, line, want string }{
		{"deploy", `{"time":"2026-12-01T21:03:35Z","level":"INFO","msg":"deploy","rule":"web-prod","repository":"web","tag":"v1.3.2","cluster":"prod","service":"web","rollout":"rolling","outcome":"skipped","reason":"never downgrade: app: v1.3.2 is older than the running v1.4.0","duration_ms":48}`,
			`deploy rule=web-prod tag=v1.3.2 target=prod/web outcome=skipped reason="never downgrade: app: v1.3.2 is older than the running v1.4.0"`},
		{"an error with its stage and time", `{"level":"ERROR","msg":"deployment","rule":"checkout","cluster":"prod","service":"checkout","rollout":"ECS-native CANARY","outcome":"rolled_back","stage":"CANARY 10% · bake 5 min left","push_to_completion_ms":904000,"reason":"alarm \"x\" in ALARM"}`,
			`ERROR deployment rule=checkout target=prod/checkout rollout="ECS-native CANARY" outcome=rolled_back stage="CANARY 10% · bake 5 min left" push_to_completion=15m4s reason="alarm \"x\" in ALARM"`},
		{"a hook", `{"level":"INFO","msg":"hook","event":"HOOK_AWAITING_ACTION","cluster":"prod","service":"checkout","stage":"PRE_PRODUCTION_TRAFFIC_SHIFT","hook_id":"ecs-pause-1"}`,
			`hook target=prod/checkout event=HOOK_AWAITING_ACTION hook=ecs-pause-1 stage=PRE_PRODUCTION_TRAFFIC_SHIFT`},
		{"a gate", `{"level":"INFO","msg":"gate","rule":"search-staging","gate":"bake","outcome":"baking","reason":"bakes 15m"}`,
			`gate rule=search-staging gate=bake outcome=baking reason="bakes 15m"`},
		{"a warning of words", `{"level":"WARN","msg":"no recheck timers (unset)"}`, `WARN no recheck timers (unset)`},
		{"not JSON", `START RequestId: 1 Version: $LATEST`, `START RequestId: 1 Version: $LATEST`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, readable(tc.line)); diff != "" {
				t.Errorf("readable (-want +got):\n%s", diff)
			}
		})
	}
}

// TestLogsJSON: with Options.JSON the log lines are printed as they are
// (cmd/demo -json), metrics records still left to CloudWatch.
func TestLogsJSON(t *testing.T) {
	line := `{"level":"INFO","msg":"deploy","rule":"web-prod","cluster":"prod","service":"web","outcome":"deployed"}`
	for _, tc := range []struct {
		name string
		json bool
		want string
	}{
		{"short", false, "    worker log: deploy rule=web-prod target=prod/web outcome=deployed\n"},
		{"as JSON", true, "    worker log: " + line + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			printer{w: &out, json: tc.json}.logs("worker", []string{line, `{"msg":"metrics","_aws":{}}`})
			if diff := cmp.Diff(tc.want, out.String()); diff != "" {
				t.Errorf("logs (-want +got):\n%s", diff)
			}
		})
	}
}
