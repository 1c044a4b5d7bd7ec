package notify

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// A pause of a deployment no record names (started outside autodeploy on a
// service of the rules) still tells the service, stage, hook and commands.
func TestPausedNoticeOfAServiceOnly(t *testing.T) {
	n := PausedNotice(Notice{Cluster: "prod", Service: "web", EventID: "evt-1"}, Pause{Stage: "PRE_PRODUCTION_TRAFFIC_SHIFT", HookID: "ecs-pause-1"})
	if got, want := n.Title(), "prod/web PAUSED at PRE_PRODUCTION_TRAFFIC_SHIFT: a deployment waits for you"; got != want {
		t.Errorf("title = %q, want %q", got, want)
	}
	want := []string{
		"To go on: `autodeploy continue --cluster prod --service web --hook ecs-pause-1`",
		"To roll back: `autodeploy rollback --cluster prod --service web`",
	}
	if diff := cmp.Diff(want, n.NextSteps()); diff != "" {
		t.Errorf("next steps (-want +got):\n%s", diff)
	}
	mail := n.Email()
	for _, s := range []string{"Stage:", "Hook:", "ecs-pause-1"} {
		if !strings.Contains(mail, s) {
			t.Errorf("e-mail lacks %q:\n%s", s, mail)
		}
	}
	for _, s := range []string{"Image:", "Expires:", "Push to end"} {
		if strings.Contains(mail, s) {
			t.Errorf("e-mail says %q with nothing to say:\n%s", s, mail)
		}
	}
}

// The commands name the service's account and region: the CLI's defaults
// are the caller's account and the SDK's region, where the same cluster and
// service names may be another service.
func TestPausedNoticeNamesWhere(t *testing.T) {
	n := PausedNotice(Notice{Cluster: "prod", Service: "web", Account: "222222222222", Region: "us-east-1", EventID: "evt-1"},
		Pause{Stage: "PRE_PRODUCTION_TRAFFIC_SHIFT", HookID: "ecs-pause-1"})
	want := []string{
		"To go on: `autodeploy continue --cluster prod --service web --account 222222222222 --region us-east-1 --hook ecs-pause-1`",
		"To roll back: `autodeploy rollback --cluster prod --service web --account 222222222222 --region us-east-1`",
	}
	if diff := cmp.Diff(want, n.NextSteps()); diff != "" {
		t.Errorf("next steps (-want +got):\n%s", diff)
	}
}
