package stack

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The stack sends a sweep every reconcile.every (default 10 minutes), and the
// deployer may list images of the rules' repositories, nothing else in ECR.
func TestReconcileSchedule(t *testing.T) {
	s := synth(t)
	var schedules []map[string]any
	for _, r := range s.resources("AWS::Events::Rule") {
		if r["ScheduleExpression"] != nil {
			schedules = append(schedules, r)
		}
	}
	if len(schedules) != 1 || schedules[0]["ScheduleExpression"] != "rate(10 minutes)" {
		t.Fatalf("schedules = %v", schedules)
	}
	target := schedules[0]["Targets"].([]any)[0].(map[string]any)
	if !strings.Contains(jsonString(target["Arn"]), "Deployer") || target["Input"] != nil {
		t.Errorf("the schedule must send the deployer EventBridge's own Scheduled Event: %v", target)
	}
	list := s.statements(t)["ListImagesForSweeps"]
	want := []any{
		map[string]any{"Fn::Sub": "arn:${AWS::Partition}:ecr:${AWS::Region}:${AWS::AccountId}:repository/team/api"},
		map[string]any{"Fn::Sub": "arn:${AWS::Partition}:ecr:${AWS::Region}:${AWS::AccountId}:repository/web"},
	}
	if list["Action"] != "ecr:DescribeImages" || !cmp.Equal(want, list["Resource"]) {
		t.Errorf("DescribeImages statement = %v", list)
	}
	for _, p := range s.resources("AWS::IAM::Policy") {
		if doc := jsonString(p); strings.Contains(doc, "dynamodb:BatchGetItem") && !strings.Contains(doc, "State") {
			t.Errorf("BatchGetItem granted beyond the table: %s", doc)
		}
	}
}

// reconcileOff publishes from rule web, central, and rule api, whose
// registry is another account's.
const reconcileOff = `version: 1
reconcile: {every: off}
rules:
  - name: web
    repository: web
    tags: ["main-*"]
    publish: {ssm-prefix: /ecr-autodeploy}
    targets:
      - {cluster: prod, service: web}
  - name: api
    repository: team/api
    tags: ["main-*"]
    publish: {ssm-prefix: /ecr-autodeploy}
    registry: {account: "333333333333"}
    targets:
      - {cluster: prod, service: api}
`

// With reconcile off the stack sends no sweep, but the watcher still asks
// the deployer for one after ECS rolls back a deploy of a rule that
// publishes (watch.republishAfterRollback does not look at the schedule),
// and that sweep lists every rule's repository first
// (reconcile.Sweeper.images; a target whose listing failed is failed
// before its parameter is checked). So while any rule publishes, the
// deployer may list the central repositories and assume the registry's
// read role, which the registry stack makes, and the dashboard graphs the
// sweeps' drift; when no rule publishes no sweep ever runs and none of it
// is there. (It was a review's finding: the grants and the role followed
// the schedule only, so the requested sweep was denied in AWS and the
// parameter kept the rolled-back image.)
func TestReconcileOff(t *testing.T) {
	for _, tc := range []struct {
		name   string
		rules  string
		sweeps bool
	}{
		{"a rule publishes", reconcileOff, true},
		{"no rule publishes", strings.ReplaceAll(reconcileOff, "    publish: {ssm-prefix: /ecr-autodeploy}\n", ""), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			all := synthAll(t, tc.rules)
			central := all["Test"]
			for _, r := range central.resources("AWS::Events::Rule") {
				if r["ScheduleExpression"] != nil {
					t.Errorf("a schedule with reconcile off: %v", r)
				}
			}
			deployer := actions(central.policiesOf(t, "DeployerRole"))
			lists := strings.Join(deployer["ecr:DescribeImages"], " ")
			if got := strings.Contains(lists, "repository/web"); got != tc.sweeps {
				t.Errorf("the deployer may list repository web: %v, want %v (ecr:DescribeImages on %q)", got, tc.sweeps, lists)
			}
			assumes := strings.Join(deployer["sts:AssumeRole"], " ")
			if got := strings.Contains(assumes, "ecr-autodeploy-registry-"); got != tc.sweeps {
				t.Errorf("the deployer may assume the registry's read role: %v, want %v (sts:AssumeRole on %q)", got, tc.sweeps, assumes)
			}
			if got := all["Test-Registry-333333333333-eu-west-1"].roleNamed("ecr-autodeploy-registry-eu-west-1") != nil; got != tc.sweeps {
				t.Errorf("the registry stack makes its read role: %v, want %v", got, tc.sweeps)
			}
			if got := strings.Contains(jsonString(central.one(t, "AWS::CloudWatch::Dashboard")), "Sweep drift"); got != tc.sweeps {
				t.Errorf("the dashboard graphs sweep drift: %v, want %v", got, tc.sweeps)
			}
		})
	}
}
