package stack

import (
	"strings"
	"testing"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/redrive"
	"github.com/google/go-cmp/cmp"
)

// With the Slack context, one Chatbot channel reads both topics with a
// read-only guardrail; the template stays nag- and lint-clean.
func TestSlackChannel(t *testing.T) {
	s := synth(t, func(p *Props) { p.Slack = &Slack{WorkspaceID: "T0123ABC", ChannelID: "C0456DEF"} })
	ch := s.one(t, "AWS::Chatbot::SlackChannelConfiguration")
	if ch["SlackWorkspaceId"] != "T0123ABC" || ch["SlackChannelId"] != "C0456DEF" {
		t.Errorf("channel = %v", ch)
	}
	if got := jsonString(ch["GuardrailPolicies"]); !strings.Contains(got, "policy/ReadOnlyAccess") || strings.Contains(got, "Administrator") {
		t.Errorf("guardrail policies = %s, want ReadOnlyAccess only", got)
	}
	var topics []string
	for _, ref := range ch["SnsTopicArns"].([]any) {
		topics = append(topics, logicalIDHash.ReplaceAllString("${"+ref.(map[string]any)["Ref"].(string), "$1"))
	}
	if diff := cmp.Diff([]string{"${Alarms", "${Notifications"}, topics); diff != "" {
		t.Errorf("topics (-want +got):\n%s", diff)
	}
	s.nagClean(t)
	s.lintClean(t)
}

// Without it, no channel; the outputs redrive reads are always there.
func TestNoSlackChannelAndRedriveOutputs(t *testing.T) {
	s := synth(t)
	if n := len(s.resources("AWS::Chatbot::SlackChannelConfiguration")); n != 0 {
		t.Errorf("%d Slack channels without the context", n)
	}
	outputs := s.template["Outputs"].(map[string]any)
	for name, want := range map[string]string{
		redrive.OutputDeployerFunction:    `{"Ref":"Deployer`,
		redrive.OutputPushEventsQueue:     `{"Ref":"PushEventsDLQ`,
		redrive.OutputDeployerFailedQueue: `{"Ref":"DeployerFailedEvents`,
	} {
		o, ok := outputs[name].(map[string]any)
		if !ok || !strings.HasPrefix(jsonString(o["Value"]), want) {
			t.Errorf("output %s = %v, want %s…", name, outputs[name], want)
		}
	}
}
