package stack

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// dashboardBody renders the dashboard's Fn::Join body as JSON, tokens
// written as ${Ref} or ${Resource.Attr}.
func (s synthesized) dashboardBody(t *testing.T) map[string]any {
	t.Helper()
	body := s.one(t, "AWS::CloudWatch::Dashboard")["DashboardBody"]
	var b strings.Builder
	var render func(v any)
	render = func(v any) {
		switch v := v.(type) {
		case string:
			b.WriteString(v)
		case map[string]any:
			switch {
			case v["Fn::Join"] != nil:
				parts := v["Fn::Join"].([]any)
				for i, p := range parts[1].([]any) {
					if i > 0 {
						b.WriteString(parts[0].(string))
					}
					render(p)
				}
			case v["Ref"] != nil:
				fmt.Fprintf(&b, "${%s}", v["Ref"])
			case v["Fn::GetAtt"] != nil:
				ga := v["Fn::GetAtt"].([]any)
				fmt.Fprintf(&b, "${%s.%s}", ga[0], ga[1])
			default:
				t.Fatalf("unexpected token in dashboard body: %v", v)
			}
		}
	}
	render(body)
	var out map[string]any
	if err := json.Unmarshal([]byte(b.String()), &out); err != nil {
		t.Fatalf("dashboard body is not JSON: %v\n%s", err, b.String())
	}
	return out
}

// The dashboard graphs the metrics the functions write, under the names and
// dimensions they write them.
func TestDashboardWidgets(t *testing.T) {
	s := synth(t)
	body := s.dashboardBody(t)
	got := map[string][]string{}
	for _, w := range body["widgets"].([]any) {
		props := w.(map[string]any)["properties"].(map[string]any)
		title, _ := props["title"].(string)
		if title == "" {
			continue // the text widget
		}
		for _, m := range props["metrics"].([]any) {
			got[title] = append(got[title], workQueueID.ReplaceAllString(metricKey(m.([]any)), "${WorkQueue<place>."))
		}
	}
	want := map[string][]string{
		"Deploys by outcome (targets per event)": {
			"Autodeploy Deploys outcome=deployed Sum", "Autodeploy Deploys outcome=skipped Sum", "Autodeploy Deploys outcome=failed Sum"},
		"Push to running per rule (ms)": {
			"Autodeploy PushToRunning rule=web-staging p50", "Autodeploy PushToRunning rule=web-staging p90",
			"Autodeploy PushToRunning rule=web-prod p50", "Autodeploy PushToRunning rule=web-prod p90",
			"Autodeploy PushToRunning rule=api p50", "Autodeploy PushToRunning rule=api p90"},
		"Failed and rolled-back deployments": {
			"Autodeploy DeploymentsFailed rule=web-staging Sum", "Autodeploy DeploymentsRolledBack rule=web-staging Sum",
			"Autodeploy DeploymentsFailed rule=web-prod Sum", "Autodeploy DeploymentsRolledBack rule=web-prod Sum",
			"Autodeploy DeploymentsFailed rule=api Sum", "Autodeploy DeploymentsRolledBack rule=api Sum"},
		"Dead-letter and failure queues (messages waiting)": {
			"AWS/SQS ApproximateNumberOfMessagesVisible QueueName=${DeployerFailedEvents.QueueName} Maximum",
			"AWS/SQS ApproximateNumberOfMessagesVisible QueueName=${DeploymentEventsDLQ.QueueName} Maximum",
			"AWS/SQS ApproximateNumberOfMessagesVisible QueueName=${HookEventsDLQ.QueueName} Maximum",
			"AWS/SQS ApproximateNumberOfMessagesVisible QueueName=${PushEventsDLQ.QueueName} Maximum",
			"AWS/SQS ApproximateNumberOfMessagesVisible QueueName=${WatcherFailedEvents.QueueName} Maximum",
			"AWS/SQS ApproximateNumberOfMessagesVisible QueueName=${WorkDeadLetters.QueueName} Maximum"},
		// One line per target place's work queue (three in rulesYAML).
		"Work items waiting, per target place": {
			"AWS/SQS ApproximateNumberOfMessagesVisible QueueName=${WorkQueue.QueueName} Maximum",
			"AWS/SQS ApproximateNumberOfMessagesVisible QueueName=${WorkQueue<place>.QueueName} Maximum",
			"AWS/SQS ApproximateNumberOfMessagesVisible QueueName=${WorkQueue<place>.QueueName} Maximum"},
		"Oldest work item waiting, per target place (s)": {
			"AWS/SQS ApproximateAgeOfOldestMessage QueueName=${WorkQueue.QueueName} Maximum",
			"AWS/SQS ApproximateAgeOfOldestMessage QueueName=${WorkQueue<place>.QueueName} Maximum",
			"AWS/SQS ApproximateAgeOfOldestMessage QueueName=${WorkQueue<place>.QueueName} Maximum"},
		"Function errors and throttles": {
			"AWS/Lambda Errors FunctionName=${Deployer} Sum", "AWS/Lambda Throttles FunctionName=${Deployer} Sum",
			"AWS/Lambda Errors FunctionName=${Worker} Sum", "AWS/Lambda Throttles FunctionName=${Worker} Sum",
			"AWS/Lambda Errors FunctionName=${Watcher} Sum", "AWS/Lambda Throttles FunctionName=${Watcher} Sum"},
		"Sweep drift: targets found behind, per rule": {
			"Autodeploy Drift rule=web-staging Maximum", "Autodeploy Drift rule=web-prod Maximum", "Autodeploy Drift rule=api Maximum"},
		"Function duration (ms)": {
			"AWS/Lambda Duration FunctionName=${Deployer} p50", "AWS/Lambda Duration FunctionName=${Deployer} Maximum",
			"AWS/Lambda Duration FunctionName=${Worker} p50", "AWS/Lambda Duration FunctionName=${Worker} Maximum",
			"AWS/Lambda Duration FunctionName=${Watcher} p50", "AWS/Lambda Duration FunctionName=${Watcher} Maximum"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("dashboard metrics (-want +got):\n%s", diff)
	}
}

var logicalIDHash = regexp.MustCompile(`(\$\{[A-Za-z]+)[0-9A-F]{8}`)

// workQueueID is the logical id of another place's work queue (its account
// and region, and a hash).
var workQueueID = regexp.MustCompile(`\$\{WorkQueue\w+\.`)

// metricKey reads one dashboard metric array: namespace, name, dimension
// name/value pairs, then an options object.
func metricKey(m []any) string {
	var parts []string
	var dims []string
	for i, v := range m {
		switch v := v.(type) {
		case string:
			if i < 2 {
				parts = append(parts, v)
			} else {
				dims = append(dims, v)
			}
		case map[string]any:
			for j := 0; j+1 < len(dims); j += 2 {
				parts = append(parts, dims[j]+"="+dims[j+1])
			}
			parts = append(parts, fmt.Sprint(v["stat"]))
		}
	}
	// Logical ids end in a hash of the construct path; the name is enough.
	return logicalIDHash.ReplaceAllString(strings.Join(slices.Clip(parts), " "), "$1")
}
