package stack

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The lines that say people may not have been told (a rollout's end not
// recorded, a notice not sent) alarm, whichever function writes them: one
// metric filter on each of the deployer's, the worker's and the watcher's
// log groups feeds one metric, and one alarm on it notifies the topic.
func TestReportsLostAlarm(t *testing.T) {
	s := synth(t)
	var groups []string
	for _, f := range s.resources("AWS::Logs::MetricFilter") {
		if f["FilterPattern"] != reportsLostPattern {
			continue
		}
		mt := f["MetricTransformations"].([]any)[0].(map[string]any)
		if mt["MetricName"] != reportsLostName || mt["MetricNamespace"] != "Autodeploy" || mt["MetricValue"] != "1" {
			t.Errorf("filter's metric = %v", mt)
		}
		group := f["LogGroupName"].(map[string]any)["Ref"].(string)
		groups = append(groups, group[:len(group)-8]) // the logical id's hash aside
	}
	slices.Sort(groups)
	if diff := cmp.Diff([]string{"DeployerLogs", "WatcherLogs", "WorkerLogs"}, groups); diff != "" {
		t.Errorf("log groups filtered (-want +got):\n%s", diff)
	}
	for _, line := range []string{`"rollout end not recorded"`, `"notification not sent"`} {
		if !strings.Contains(reportsLostPattern, line) {
			t.Errorf("the pattern misses %s", line)
		}
	}
	n := 0
	for id, a := range s.resources("AWS::CloudWatch::Alarm") {
		if a["MetricName"] != reportsLostName {
			continue
		}
		n++
		if a["Namespace"] != "Autodeploy" || a["Statistic"] != "Sum" || a["Threshold"] != 1.0 ||
			!strings.Contains(jsonString(a["AlarmActions"]), "Alarms") {
			t.Errorf("alarm %s = %v", id, a)
		}
	}
	if n != 1 {
		t.Errorf("%d alarms on %s, want 1", n, reportsLostName)
	}
}
