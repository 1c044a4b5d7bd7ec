package stack

import "testing"

// The watcher sets timers with CreateSchedule only (internal/timer's
// Scheduler has no other method; schedules delete themselves): it may do
// nothing else with schedules.
func TestTimerGrantsOnlyWhatIsCalled(t *testing.T) {
	s := synth(t)
	for _, st := range s.policiesOf(t, "WatcherRole") {
		if st["Sid"] != "SetTimers" {
			continue
		}
		for _, a := range asList(st["Action"]) {
			if a != "scheduler:CreateSchedule" {
				t.Errorf("the watcher may %s, which it never calls", a)
			}
		}
	}
}

// Timers exist only for ECS-native rechecks: a rules file whose every
// target is CodeDeploy-controlled gets no schedule group, Scheduler role,
// CreateSchedule or iam:PassRole on the watcher (issue 20 §5: no new
// permission when no target uses them).
func TestNoTimersWithoutNativeTargets(t *testing.T) {
	s := synth(t, withRules(t, onlyCodeDeploy))
	if n := len(s.resources("AWS::Scheduler::ScheduleGroup")); n != 0 {
		t.Errorf("%d schedule groups where no target may be ECS-native", n)
	}
	for _, st := range s.policiesOf(t, "WatcherRole") {
		if sid := st["Sid"]; sid == "SetTimers" || sid == "PassTheTimerRoleToScheduler" {
			t.Errorf("watcher statement %s where no target may be ECS-native", sid)
		}
	}
}
