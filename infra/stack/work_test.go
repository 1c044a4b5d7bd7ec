package stack

import (
	"path"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/redrive"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work/queue"
)

// resourceID is the logical id of the one resource of typ whose id starts
// with prefix.
func (s synthesized) resourceID(t *testing.T, typ, prefix string) string {
	t.Helper()
	var found []string
	for id := range s.resources(typ) {
		if strings.HasPrefix(id, prefix) {
			found = append(found, id)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d resources %s of type %s, want 1: %v", len(found), prefix, typ, found)
	}
	return found[0]
}

// policiesOf are the statements of every policy (inline or managed)
// attached to the role whose logical id starts with prefix.
func (s synthesized) policiesOf(t *testing.T, prefix string) []map[string]any {
	t.Helper()
	role := s.resourceID(t, "AWS::IAM::Role", prefix)
	var out []map[string]any
	for _, typ := range []string{"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"} {
		for _, p := range s.resources(typ) {
			attached := false
			for _, r := range asList(p["Roles"]) {
				attached = attached || r.(map[string]any)["Ref"] == role
			}
			if !attached {
				continue
			}
			for _, st := range asList(p["PolicyDocument"].(map[string]any)["Statement"]) {
				out = append(out, st.(map[string]any))
			}
		}
	}
	return out
}

// actions are the actions a role is allowed, each with the resources of
// the statements that allow it (as JSON).
func actions(statements []map[string]any) map[string][]string {
	out := map[string][]string{}
	for _, st := range statements {
		acts := asList(st["Action"])
		if a, ok := st["Action"].(string); ok {
			acts = []any{a}
		}
		for _, a := range acts {
			out[a.(string)] = append(out[a.(string)], jsonString(st["Resource"]))
		}
	}
	return out
}

// The places of rulesYAML: the central one, prod/web in us-east-1, and
// prod/api in account 222222222222 (through its own role).
var rulesPlaces = []rules.Place{{Account: "111111111111", Region: "eu-west-1"}, {Account: "111111111111", Region: "us-east-1"},
	{Account: "222222222222", Region: "eu-west-1"}}

// One standard queue per target place, named from the central one as the
// functions derive them (queue.NameFor), encrypted, kept 14 days, hidden
// six times the worker's timeout while a batch is in hand, and parked in
// one alarmed dead-letter queue after queue.MaxReceiveCount receives; that
// queue is on the dashboard and in the outputs redrive reads.
func TestWorkQueues(t *testing.T) {
	s := synth(t)
	base := WorkQueueBase("Test")
	worker := s.resources("AWS::Lambda::Function")[s.resourceID(t, "AWS::Lambda::Function", "Worker")]
	timeout := worker["Timeout"].(float64)
	if timeout != queue.WorkerTimeout.Seconds() {
		t.Errorf("worker timeout %vs, want %v", timeout, queue.WorkerTimeout)
	}
	dlq := s.resourceID(t, "AWS::SQS::Queue", "WorkDeadLetters")
	var names []string
	for id, q := range s.resources("AWS::SQS::Queue") {
		name, named := q["QueueName"].(string)
		if !named {
			continue
		}
		names = append(names, name)
		if v := q["VisibilityTimeout"].(float64); v < 6*timeout || v != queue.Visibility.Seconds() {
			t.Errorf("%s: visibility timeout %vs, want queue.Visibility (%v), six times the worker's %vs", id, v, queue.Visibility, timeout)
		}
		wantRedrive := map[string]any{"deadLetterTargetArn": map[string]any{"Fn::GetAtt": []any{dlq, "Arn"}}, "maxReceiveCount": float64(queue.MaxReceiveCount)}
		if diff := cmp.Diff(wantRedrive, q["RedrivePolicy"]); diff != "" {
			t.Errorf("%s: redrive policy (-want +got):\n%s", id, diff)
		}
		if q["SqsManagedSseEnabled"] != true || q["MessageRetentionPeriod"] != 1209600.0 || q["FifoQueue"] != nil {
			t.Errorf("%s: want a standard queue, SQS-managed SSE, 14 days: %v", id, q)
		}
	}
	var want []string
	for _, p := range rulesPlaces {
		want = append(want, queue.NameFor(base, rulesPlaces[0], p))
	}
	if diff := cmp.Diff(want, names, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("work queues (-want +got):\n%s", diff)
	}
	if d := s.resources("AWS::SQS::Queue")[dlq]; d["QueueName"] != nil || d["RedrivePolicy"] != nil {
		t.Errorf("the dead-letter queue must keep CloudFormation's name (outside the work queues' pattern) and park nothing further: %v", d)
	}
	alarmed := false
	for _, a := range s.resources("AWS::CloudWatch::Alarm") {
		if strings.Contains(jsonString(a["Dimensions"]), dlq) && a["MetricName"] == "ApproximateNumberOfMessagesVisible" &&
			strings.Contains(jsonString(a["AlarmActions"]), "Alarms") {
			alarmed = true
		}
	}
	if !alarmed {
		t.Error("no alarm on the work dead-letter queue's messages")
	}
	dash := jsonString(s.one(t, "AWS::CloudWatch::Dashboard")["DashboardBody"])
	for _, w := range []string{`\"work items (worker)\"`, "Work items waiting, per target place", "ApproximateAgeOfOldestMessage"} {
		if !strings.Contains(dash, w) {
			t.Errorf("dashboard lacks %s", w)
		}
	}
	out, ok := s.template["Outputs"].(map[string]any)[redrive.OutputWorkDeadLetterQueue].(map[string]any)
	if !ok || jsonString(out["Value"]) != `{"Ref":"`+dlq+`"}` {
		t.Errorf("output %s = %v, want the dead-letter queue's URL", redrive.OutputWorkDeadLetterQueue, out)
	}
}

// One event source mapping per place's queue into the worker: batches of
// ten, only the failed items returned, at most MaximumConcurrency
// invocations per place (the workConcurrency knob overrides it).
func TestWorkMappings(t *testing.T) {
	for _, tc := range []struct {
		name        string
		concurrency int
		want        float64
	}{
		{"default", 0, queue.MaximumConcurrency},
		{"knob", 7, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := synth(t, func(p *Props) { p.WorkConcurrency = tc.concurrency })
			worker := s.resourceID(t, "AWS::Lambda::Function", "Worker")
			var sources []string
			for id, m := range s.resources("AWS::Lambda::EventSourceMapping") {
				want := map[string]any{
					"FunctionName":          map[string]any{"Ref": worker},
					"BatchSize":             10.0,
					"FunctionResponseTypes": []any{"ReportBatchItemFailures"},
					"ScalingConfig":         map[string]any{"MaximumConcurrency": tc.want},
				}
				got := map[string]any{}
				for k := range want {
					got[k] = m[k]
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("%s (-want +got):\n%s", id, diff)
				}
				sources = append(sources, m["EventSourceArn"].(map[string]any)["Fn::GetAtt"].([]any)[0].(string))
			}
			var queues []string
			for id, q := range s.resources("AWS::SQS::Queue") {
				if q["QueueName"] != nil {
					queues = append(queues, id)
				}
			}
			if diff := cmp.Diff(queues, sources, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
				t.Errorf("mappings' sources, want each work queue once (-queues +sources):\n%s", diff)
			}
		})
	}
}

// A workConcurrency outside Lambda's bounds stops the synth with them.
func TestWorkConcurrencyBounds(t *testing.T) {
	for _, tc := range []struct {
		n       int
		want    int
		wantErr bool
	}{
		{0, queue.MaximumConcurrency, false}, {2, 2, false}, {1000, 1000, false},
		{1, 0, true}, {-3, 0, true}, {1001, 0, true},
	} {
		got, err := checkWorkConcurrency(tc.n)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("checkWorkConcurrency(%d) = %d, %v; want %d, error %v", tc.n, got, err, tc.want, tc.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), "2 to 1000") {
			t.Errorf("error %q does not give the bounds", err)
		}
	}
	synthStacks(t, t.TempDir(), func(app awscdk.App, p Props) ([]awscdk.Stack, error) {
		p.WorkConcurrency = 1
		_, err := New(app, "Test", p)
		if err == nil || !strings.Contains(err.Error(), "stack Test: workConcurrency 1") {
			t.Errorf("New with workConcurrency 1: %v", err)
		}
		return nil, nil
	})
}

// The base name fits SQS's names for every place, is the same for one
// stack name every time, and keeps two long names that share a start apart.
func TestWorkQueueBase(t *testing.T) {
	long := strings.Repeat("A", 60)
	for _, tc := range []struct{ stack, want string }{
		{"EcrAutodeploy", "EcrAutodeploy-work"},
		{strings.Repeat("S", queue.MaxBaseNameLen-5), strings.Repeat("S", queue.MaxBaseNameLen-5) + "-work"},
	} {
		if got := WorkQueueBase(tc.stack); got != tc.want {
			t.Errorf("WorkQueueBase(%q) = %q, want %q", tc.stack, got, tc.want)
		}
	}
	a, b := WorkQueueBase(long+"-one"), WorkQueueBase(long+"-two")
	if a == b || len(a) != queue.MaxBaseNameLen || len(b) != queue.MaxBaseNameLen || a != WorkQueueBase(long+"-one") {
		t.Errorf("long names: %q and %q", a, b)
	}
	if !strings.HasPrefix(a, long[:20]) || !strings.HasSuffix(a, "-work") {
		t.Errorf("a long name keeps its start and -work: %q", a)
	}
}

// The intake (deployer) sends work items and cannot take them, nor deploy:
// it keeps the reads its sweeps make. The worker takes them (receive,
// delete, change visibility, read attributes) on the work queues only, and
// deploys; it sends nothing to them. Both patterns match every work queue
// and no other queue of the stack.
func TestWorkLeastPrivilege(t *testing.T) {
	s := synth(t)
	base := WorkQueueBase("Test")
	patterns := `[{"Fn::Sub":"arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:` + base + `"},` +
		`{"Fn::Sub":"arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:` + base + `-*"}]`
	deployer, worker := actions(s.policiesOf(t, "DeployerRole")), actions(s.policiesOf(t, "WorkerRole"))

	// Besides its own failure queue (Lambda's on-failure destination).
	own := `{"Fn::GetAtt":["` + s.resourceID(t, "AWS::SQS::Queue", "DeployerFailedEvents") + `","Arn"]}`
	if diff := cmp.Diff([]string{own, patterns}, deployer["sqs:SendMessage"], cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("deployer's sqs:SendMessage (-want +got):\n%s", diff)
	}
	for _, a := range []string{"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
		"ecs:UpdateService", "ecs:RegisterTaskDefinition", "ecs:TagResource", "iam:PassRole", "codedeploy:CreateDeployment"} {
		if deployer[a] != nil {
			t.Errorf("the deployer (intake) may %s on %v", a, deployer[a])
		}
	}
	for _, a := range []string{"ecs:DescribeServices", "ecs:DescribeTaskDefinition", "ecr:DescribeImages", "sts:AssumeRole",
		"dynamodb:BatchGetItem", "sns:Publish"} {
		if deployer[a] == nil {
			t.Errorf("the deployer's sweeps need %s", a)
		}
	}
	// Its sweeps describe every service of its own targets, blue/green too.
	if got := strings.Join(deployer["ecs:DescribeServices"], " "); !strings.Contains(got, "service/staging/web\"") ||
		!strings.Contains(got, "service/prod/web") || !strings.Contains(got, "service/staging/web-worker") {
		t.Errorf("deployer's DescribeServices on %s", got)
	}

	for _, a := range []string{"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"} {
		if diff := cmp.Diff([]string{patterns}, worker[a]); diff != "" {
			t.Errorf("worker's %s (-want +got):\n%s", a, diff)
		}
	}
	for a := range worker {
		if strings.HasPrefix(a, "sqs:") && !strings.Contains("sqs:ReceiveMessage sqs:DeleteMessage sqs:ChangeMessageVisibility sqs:GetQueueAttributes", a) {
			t.Errorf("the worker may %s", a)
		}
	}
	for _, a := range []string{"ecs:UpdateService", "ecs:RegisterTaskDefinition", "iam:PassRole", "sns:Publish", "sts:AssumeRole"} {
		if worker[a] == nil {
			t.Errorf("the worker deploys: it needs %s", a)
		}
	}
	if worker["ecr:DescribeImages"] != nil {
		t.Errorf("the worker lists no images (sweeps are the intake's): %v", worker["ecr:DescribeImages"])
	}

	for id, q := range s.resources("AWS::SQS::Queue") {
		name, named := q["QueueName"].(string)
		if !named {
			// CloudFormation names it <stack>-<logical id>-<suffix>.
			name = "Test-" + id + "-ABCDEFGHIJ12"
		}
		matched := name == base || matchString(base+"-*", name)
		if matched != named {
			t.Errorf("queue %s (%s): matched by the work queues' patterns %v, is a work queue %v", id, name, matched, named)
		}
	}
}

func matchString(pattern, name string) bool {
	ok, _ := path.Match(pattern, name)
	return ok
}

// Both functions find the central work queue in AUTODEPLOY_WORK_QUEUE_URL
// (the other places' are named from it); the worker also has the notice
// topic and the central account, as the deployer does.
func TestWorkEnvironment(t *testing.T) {
	s := synth(t)
	var centralQueue string
	for id, q := range s.resources("AWS::SQS::Queue") {
		if q["QueueName"] == WorkQueueBase("Test") {
			centralQueue = id
		}
	}
	fns := s.resources("AWS::Lambda::Function")
	for _, prefix := range []string{"Deployer", "Worker"} {
		env := fns[s.resourceID(t, "AWS::Lambda::Function", prefix)]["Environment"].(map[string]any)["Variables"].(map[string]any)
		if diff := cmp.Diff(map[string]any{"Ref": centralQueue}, env["AUTODEPLOY_WORK_QUEUE_URL"]); diff != "" {
			t.Errorf("%s AUTODEPLOY_WORK_QUEUE_URL (-want +got):\n%s", prefix, diff)
		}
		for _, k := range []string{"AUTODEPLOY_TABLE", "AUTODEPLOY_NOTIFY_TOPIC_ARN", "AUTODEPLOY_ACCOUNT"} {
			if env[k] == nil {
				t.Errorf("%s has no %s", prefix, k)
			}
		}
	}
}
