package notify

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// A gate's notice says what to do with the exact command: by digest (a
// tag may move before someone acts), the findings read in the registry's
// account and region, a stopped bake's alarm read where it is.
func TestGateNoticeNextSteps(t *testing.T) {
	const digest = "sha256:15794219de6dc381cac7805b3e96683d02e81b9cb72265b5cb8c1f501c21d71c"
	base := Notice{Rule: "web-prod", Repository: "web", Tag: "latest", Digest: digest}
	due := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	blocked := base
	blocked.Account, blocked.Region = "333333333333", "eu-west-1"
	stopped := base
	stopped.PromotedTag = "verified-latest"
	for _, tc := range []struct {
		name  string
		n     Notice
		title string
		steps []string
	}{
		{"awaiting approval", GateNotice(base, AwaitingApproval, Gate{Kind: "approval", Due: due}),
			"web:latest waits for approval to deploy by rule web-prod", []string{
				"To deploy it: `autodeploy approve --rule web-prod --digest " + digest + "`",
				"To refuse it: `autodeploy reject --rule web-prod --digest " + digest + " --reason \"…\"`",
				"See what it would do: `autodeploy plan --rule web-prod --tag latest` (it plans what the tag names now: check its digest is this one)",
			}},
		{"scan blocked", GateNotice(blocked, ScanBlocked, Gate{Kind: "scan", Findings: "1 CRITICAL"}),
			"web:latest NOT deployed by rule web-prod: its scan found 1 CRITICAL", []string{
				"This digest is not deployed by this rule: fix the findings and push a new image.",
				"Read them: `aws ecr describe-image-scan-findings --registry-id 333333333333 --region eu-west-1 --repository-name web --image-id imageDigest=" + digest + "`",
			}},
		{"bake stopped by another account's alarm", GateNotice(stopped, NotPromoted, Gate{Kind: "bake", Alarm: "222222222222:web-5xx", AlarmAt: due,
			AlarmName: "web-5xx", AlarmRegion: "eu-central-1", AlarmAccount: "222222222222",
			Rollbacks: []string{"autodeploy rollback --cluster staging --service web --account 222222222222 --region eu-central-1"}}),
			"web:latest NOT promoted by rule web-prod: alarm 222222222222:web-5xx during its bake", []string{
				"It stays on the rule's targets; nothing was rolled back. Read what the alarm saw: `aws cloudwatch describe-alarm-history --alarm-name web-5xx --region eu-central-1` (in account 222222222222)",
				"To undo it: `autodeploy rollback --cluster staging --service web --account 222222222222 --region eu-central-1`",
				"Fix and push a new image; or, if the alarm was not the image's fault, tag this digest verified-latest by hand.",
			}},
		{"bake stopped by an alarm not found", GateNotice(stopped, NotPromoted, Gate{Kind: "bake", Alarm: "web-5xx (not found)", AlarmAt: due}),
			"web:latest NOT promoted by rule web-prod: alarm web-5xx (not found) during its bake", []string{
				"It stays on the rule's targets; nothing was rolled back. Read what the alarm saw in CloudWatch (its history).",
				"To undo it on a target: `autodeploy rollback --cluster CLUSTER --service SERVICE` (`autodeploy status` lists them)",
				"Fix and push a new image; or, if the alarm was not the image's fault, tag this digest verified-latest by hand.",
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.n.Title(); got != tc.title {
				t.Errorf("title %q, want %q", got, tc.title)
			}
			if diff := cmp.Diff(tc.steps, tc.n.NextSteps()); diff != "" {
				t.Errorf("next steps (-want +got):\n%s", diff)
			}
			if _, err := tc.n.Chatbot(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
