package stack

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The watcher's timers: one schedule group, ecr-autodeploy; a role only
// EventBridge Scheduler of this account assumes, which may only invoke the
// watcher; the watcher may set, read and delete schedules of that group
// only and pass that role only, to Scheduler only; and it is told the
// group and the role in its environment (internal/timer.LoadConfig).
func TestTimers(t *testing.T) {
	s := synth(t)
	group := s.one(t, "AWS::Scheduler::ScheduleGroup")
	if diff := cmp.Diff(map[string]any{"Name": "ecr-autodeploy"}, group); diff != "" {
		t.Errorf("schedule group (-want +got):\n%s", diff)
	}
	groupID := s.resourceID(t, "AWS::Scheduler::ScheduleGroup", "TimerGroup")
	roleID := s.resourceID(t, "AWS::IAM::Role", "TimerRole")
	watcherID := s.resourceID(t, "AWS::Lambda::Function", "Watcher")
	role := s.resources("AWS::IAM::Role")[roleID]
	if diff := cmp.Diff(map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{map[string]any{
			"Action": "sts:AssumeRole", "Effect": "Allow",
			"Principal": map[string]any{"Service": "scheduler.amazonaws.com"},
			"Condition": map[string]any{"StringEquals": map[string]any{"aws:SourceAccount": "111111111111"}},
		}},
	}, role["AssumeRolePolicyDocument"]); diff != "" {
		t.Errorf("timer role's trust (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]map[string]any{{
		"Sid": "InvokeTheWatcher", "Effect": "Allow", "Action": "lambda:InvokeFunction",
		"Resource": map[string]any{"Fn::GetAtt": []any{watcherID, "Arn"}},
	}}, s.policiesOf(t, "TimerRole")); diff != "" {
		t.Errorf("timer role's grants (-want +got):\n%s", diff)
	}
	wantWatcher := map[string]map[string]any{
		"SetTimers": {
			"Sid": "SetTimers", "Effect": "Allow",
			"Action":   "scheduler:CreateSchedule",
			"Resource": map[string]any{"Fn::Sub": "arn:${AWS::Partition}:scheduler:${AWS::Region}:${AWS::AccountId}:schedule/ecr-autodeploy/*"},
		},
		"PassTheTimerRoleToScheduler": {
			"Sid": "PassTheTimerRoleToScheduler", "Effect": "Allow", "Action": "iam:PassRole",
			"Resource":  map[string]any{"Fn::GetAtt": []any{roleID, "Arn"}},
			"Condition": map[string]any{"StringEquals": map[string]any{"iam:PassedToService": "scheduler.amazonaws.com"}},
		},
	}
	got := map[string]map[string]any{}
	for _, st := range s.policiesOf(t, "WatcherRole") {
		if sid, _ := st["Sid"].(string); wantWatcher[sid] != nil {
			got[sid] = st
		}
	}
	if diff := cmp.Diff(wantWatcher, got); diff != "" {
		t.Errorf("watcher's timer grants (-want +got):\n%s", diff)
	}
	// Nobody else sets timers or passes the timer role.
	for _, other := range []string{"DeployerRole", "WorkerRole"} {
		for a := range actions(s.policiesOf(t, other)) {
			if a == "scheduler:CreateSchedule" || a == "scheduler:DeleteSchedule" || a == "scheduler:GetSchedule" {
				t.Errorf("%s may %s", other, a)
			}
		}
	}
	env := s.resources("AWS::Lambda::Function")[watcherID]["Environment"].(map[string]any)["Variables"].(map[string]any)
	if diff := cmp.Diff(map[string]any{"Ref": groupID}, env["AUTODEPLOY_SCHEDULE_GROUP"]); diff != "" {
		t.Errorf("AUTODEPLOY_SCHEDULE_GROUP (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]any{"Fn::GetAtt": []any{roleID, "Arn"}}, env["AUTODEPLOY_SCHEDULER_ROLE_ARN"]); diff != "" {
		t.Errorf("AUTODEPLOY_SCHEDULER_ROLE_ARN (-want +got):\n%s", diff)
	}
	for _, fn := range []string{"Deployer", "Worker"} {
		vars := s.resources("AWS::Lambda::Function")[s.resourceID(t, "AWS::Lambda::Function", fn)]["Environment"].(map[string]any)["Variables"].(map[string]any)
		if _, ok := vars["AUTODEPLOY_SCHEDULE_GROUP"]; ok {
			t.Errorf("%s is told the timers' group: only the watcher sets timers", fn)
		}
	}
}
