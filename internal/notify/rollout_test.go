package notify

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/text"
)

func rollout(expected int) history.Rollout {
	return history.Rollout{Rule: "fleet", EventID: "0f6a1e3c-3b7e-4a7d-9f39-2f1c2b0e9d11", Repository: "log-router", Tag: "v2.3.0",
		Digest: "sha256:4a5c0e1f9b2d3c4e5f60718293a4b5c6d7e8f9012a3b4c5d6e7f8091a2b3c4d5", PushedAt: pushed, Expected: expected}
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

// accessDenied is the deploy path's reason when the worker's role may not
// update service svc of cluster fleet: its own names, ARNs, the revision
// and AWS's request id in it, so no two services' reasons are equal.
func accessDenied(svc string, i int) string {
	return fmt.Sprintf("update service fleet/%s to arn:aws:ecs:eu-west-1:123456789012:task-definition/%s:%d: operation error ECS: UpdateService, "+
		"https response error StatusCode: 400, RequestID: 5d1c%04x-2b1e-4c55-9d1a-0c7e8f9a%04x, AccessDeniedException: User: "+
		"arn:aws:sts::123456789012:assumed-role/Test-worker-eu-west-1/Test-Worker is not authorized to perform: ecs:UpdateService on resource: "+
		"arn:aws:ecs:eu-west-1:123456789012:service/fleet/%s because no identity-based policy allows the ecs:UpdateService action", svc, svc, 7+i%3, i, i, svc)
}

// One cause on many services is one group, whatever in its reasons names
// each service (its cluster and service, ARNs, the task definition's
// revision, AWS's request id); the group shows its first service's own
// reason. Causes that differ stay apart, and a name within a longer one
// (web in web-worker) is not taken for the service's.
func TestRolloutGroupsOneCause(t *testing.T) {
	many := func(n int, reason func(svc string, i int) string, outcome string) []history.RolloutEnd {
		var es []history.RolloutEnd
		for i := range n {
			svc := fmt.Sprintf("svc-%03d", i)
			es = append(es, history.RolloutEnd{Account: "123456789012", Region: "eu-west-1", Cluster: "fleet", Service: svc,
				Outcome: outcome, Reason: reason(svc, i)})
		}
		return es
	}
	throttled := func(svc string, i int) string {
		return fmt.Sprintf("register task definition %s: operation error ECS: RegisterTaskDefinition, exceeded maximum number of attempts, 3, "+
			"https response error StatusCode: 400, RequestID: 9a9a%04x-0000-4000-8000-00000000%04x, ThrottlingException: Rate exceeded", svc, i, i)
	}
	for _, tt := range []struct {
		name   string
		ends   []history.RolloutEnd
		groups []Group // Services: only the first
	}{
		{
			name:   "forty services denied alike",
			ends:   many(40, accessDenied, NotDeployed),
			groups: []Group{{Outcome: NotDeployed, Reason: text.Cut(accessDenied("svc-000", 0), MaxGroupReason), Count: 40}},
		},
		{
			name: "two causes",
			ends: append(many(30, accessDenied, NotDeployed), many(12, throttled, Failed)[2:]...),
			groups: []Group{
				{Outcome: NotDeployed, Reason: text.Cut(accessDenied("svc-000", 0), MaxGroupReason), Count: 30},
				{Outcome: Failed, Reason: text.Cut(throttled("svc-002", 2), MaxGroupReason), Count: 10},
			},
		},
		{
			name: "a name within a longer name",
			ends: []history.RolloutEnd{
				{Cluster: "prod", Service: "web", Outcome: Failed, Reason: "container web-worker exited: service web-worker is unhealthy"},
				{Cluster: "prod", Service: "web-worker", Outcome: Failed, Reason: "container web-worker exited: service web-worker is unhealthy"},
			},
			groups: []Group{
				{Outcome: Failed, Reason: "container web-worker exited: service web-worker is unhealthy", Count: 1},
				{Outcome: Failed, Reason: "container web-worker exited: service web-worker is unhealthy", Count: 1},
			},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := RolloutNotice(rollout(len(tt.ends)), tt.ends, ended).Summary
			var got []Group
			for _, g := range s.Groups {
				g.Services = g.Services[:1]
				got = append(got, g)
			}
			want := tt.groups
			for i := range want {
				if i < len(got) {
					want[i].Services = got[i].Services // compared below by count and reason
				}
			}
			if diff := cmp.Diff(want, got); diff != "" || s.MoreGroups != 0 {
				t.Errorf("groups (-want +got):\n%s; %d more", diff, s.MoreGroups)
			}
		})
	}
}

// A deployment a newer push replaced ends its part of the rollout as
// superseded: counted apart from failures, said in the title, explained.
func TestRolloutNoticeSaysSuperseded(t *testing.T) {
	es := append(ends(0, 3, Completed, ""), ends(3, 2, Superseded, "replaced by web:9 (rule fleet, event e2) before it ended")...)
	n := RolloutNotice(rollout(5), es, ended)
	if want := "rule fleet deployed log-router:v2.3.0 to 3 of 5 services, 2 superseded"; n.Title() != want {
		t.Errorf("title %q, want %q", n.Title(), want)
	}
	if n.icon() != "⚠️" || !strings.Contains(strings.Join(n.NextSteps(), "\n"), "Superseded services") {
		t.Errorf("icon %s, next steps %q", n.icon(), n.NextSteps())
	}
	if !strings.Contains(n.Email(), "Superseded (2)") {
		t.Errorf("email does not list the superseded:\n%s", n.Email())
	}
}
