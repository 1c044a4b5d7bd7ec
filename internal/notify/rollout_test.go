package notify

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
)

func rollout(expected int) history.Rollout {
	return history.Rollout{Rule: "fleet", EventID: "0f6a1e3c-3b7e-4a7d-9f39-2f1c2b0e9d11", Repository: "log-router", Tag: "v2.3.0",
		Digest: "sha256:4a5c0e1f9b2d3c4e5f60718293a4b5c6d7e8f9012a3b4c5d6e7f8091a2b3c4d5", PushedAt: pushed, Expected: expected, Round: 1}
}

// ends makes n ends of one outcome and reason, services named from first.
func ends(first, n int, outcome, reason string) []history.RolloutEnd {
	var es []history.RolloutEnd
	for i := first; i < first+n; i++ {
		es = append(es, history.RolloutEnd{Account: "123456789012", Region: "eu-west-1", Cluster: fmt.Sprintf("c%02d", i%50),
			Service: fmt.Sprintf("svc-%03d", i), Outcome: outcome, Reason: reason})
	}
	return es
}

// A push that reached 500 services: one message, failures grouped by
// reason with their services named, long lists cut.
func TestGoldenRolloutMessage(t *testing.T) {
	var all []history.RolloutEnd
	all = append(all, ends(0, 480, Completed, "")...)
	all = append(all, ends(480, 12, Failed, "ECS deployment circuit breaker: tasks failed to start")...)
	all = append(all, ends(492, 5, RolledBack, "ECS deployment circuit breaker: rolling back to deploymentId ecs-svc/998877")...)
	all = append(all, ends(497, 2, Skipped, "held by alice since 2026-11-26T08:00:00Z: incident 42")...)
	all = append(all, ends(499, 1, NotDeployed, "service svc-499 not found in cluster c49")...)
	n := RolloutNotice(rollout(500), all, ended)
	chat, err := n.Chatbot()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "rollout_ended.chatbot.json", string(chat)+"\n")
	golden(t, "rollout_ended.email.txt", n.Email())
	in, err := publishInput("arn:aws:sns:eu-west-1:123456789012:autodeploy", n)
	if err != nil {
		t.Fatal(err)
	}
	if want := "[autodeploy] rule fleet deployed log-router:v2.3.0 to 480 of 500 services, 18 FAILED, 2 skipped"; *in.Subject != want {
		t.Errorf("subject %q", *in.Subject)
	}
}

func TestRolloutSummary(t *testing.T) {
	long := strings.Repeat("é", 400)
	for _, tt := range []struct {
		name      string
		expected  int
		ends      []history.RolloutEnd
		title     string
		groups    []Group
		more      int
		icon      string
		nextSteps int
	}{
		{
			name: "all completed", expected: 2, ends: ends(0, 2, Completed, ""),
			title: "rule fleet deployed log-router:v2.3.0 to 2 of 2 services", icon: "✅", nextSteps: 1,
		},
		{
			name: "only skips", expected: 3, ends: append(ends(0, 1, Completed, ""), ends(1, 2, Skipped, "already running x")...),
			title:  "rule fleet deployed log-router:v2.3.0 to 1 of 3 services, 2 skipped",
			groups: []Group{{Outcome: Skipped, Reason: "already running x", Count: 2, Services: []string{"c01/svc-001", "c02/svc-002"}}},
			icon:   "⚠️", nextSteps: 2,
		},
		{
			name: "a group's names cut at MaxNamed", expected: 25, ends: ends(0, 25, Failed, "boom"),
			title: "rule fleet deployed log-router:v2.3.0 to 0 of 25 services, 25 FAILED",
			groups: []Group{{Outcome: Failed, Reason: "boom", Count: 25, Services: []string{
				"c00/svc-000", "c01/svc-001", "c02/svc-002", "c03/svc-003", "c04/svc-004",
				"c05/svc-005", "c06/svc-006", "c07/svc-007", "c08/svc-008", "c09/svc-009"}}},
			icon: "❌", nextSteps: 2,
		},
		{
			name: "failures first, then the biggest; a long reason cut", expected: 6,
			ends:  append(append(ends(0, 3, Skipped, "held"), ends(3, 1, RolledBack, "alarm")...), ends(4, 2, Failed, long)...),
			title: "rule fleet deployed log-router:v2.3.0 to 0 of 6 services, 3 FAILED, 3 skipped",
			groups: []Group{
				{Outcome: Failed, Reason: strings.Repeat("é", (MaxGroupReason-3)/2) + "…", Count: 2, Services: []string{"c04/svc-004", "c05/svc-005"}},
				{Outcome: RolledBack, Reason: "alarm", Count: 1, Services: []string{"c03/svc-003"}},
				{Outcome: Skipped, Reason: "held", Count: 3, Services: []string{"c00/svc-000", "c01/svc-001", "c02/svc-002"}},
			},
			icon: "❌", nextSteps: 3,
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := RolloutNotice(rollout(tt.expected), tt.ends, ended)
			if n.Title() != tt.title {
				t.Errorf("title %q, want %q", n.Title(), tt.title)
			}
			if diff := cmp.Diff(tt.groups, n.Summary.Groups); diff != "" {
				t.Errorf("groups (-want +got):\n%s", diff)
			}
			if n.Summary.MoreGroups != tt.more || n.icon() != tt.icon || len(n.NextSteps()) != tt.nextSteps {
				t.Errorf("more %d icon %s next steps %q", n.Summary.MoreGroups, n.icon(), n.NextSteps())
			}
		})
	}
}

// A thousand targets failing each for its own long reason still make one
// message of bounded size.
func TestRolloutNoticeBounded(t *testing.T) {
	var all []history.RolloutEnd
	for i := range 1000 {
		all = append(all, ends(i, 1, Failed, fmt.Sprintf("failure %d: %s", i, strings.Repeat("x", 5000)))...)
	}
	n := RolloutNotice(rollout(1000), all, ended)
	if len(n.Summary.Groups) != MaxGroups || n.Summary.MoreGroups != 1000-MaxGroups {
		t.Errorf("%d groups, %d more", len(n.Summary.Groups), n.Summary.MoreGroups)
	}
	in, err := publishInput("arn:aws:sns:eu-west-1:123456789012:autodeploy", n)
	if err != nil {
		t.Fatal(err)
	}
	if size := len(*in.Message); size > 16_000 {
		t.Errorf("message of %d bytes", size)
	}
	if !strings.Contains(n.Email(), "and 992 more reasons") {
		t.Errorf("email does not say what it left out:\n%s", n.Email())
	}
}
