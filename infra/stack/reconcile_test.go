package stack

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
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

func TestReconcileOff(t *testing.T) {
	s := synth(t, func(p *Props) { p.Rules.Reconcile = rules.Reconcile{} })
	for _, r := range s.resources("AWS::Events::Rule") {
		if r["ScheduleExpression"] != nil {
			t.Errorf("a schedule with reconcile off: %v", r)
		}
	}
	if _, ok := s.statements(t)["ListImagesForSweeps"]; ok {
		t.Error("DescribeImages granted with reconcile off")
	}
}
