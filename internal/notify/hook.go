package notify

import (
	"fmt"
	"strings"
	"time"
)

// Paused is the notice of an ECS-native deployment paused at a PAUSE
// lifecycle hook (ECS Hook State Change HOOK_AWAITING_ACTION): it waits
// for a person to continue it or roll it back.
const Paused = "paused"

// Pause is what a Paused notice says of the hook that waits.
type Pause struct {
	// Stage is the lifecycle stage the deployment paused at.
	Stage string
	// HookID is ECS's id of the hook; `autodeploy continue --hook` takes it,
	// so that a repeated continue never advances a second step.
	HookID string
	// ExpiresAt is when the pause times out (ECS then takes the hook's
	// timeout action); zero when not known.
	ExpiresAt time.Time
	// ServiceDeploymentARN is the paused service deployment.
	ServiceDeploymentARN string
}

// PausedNotice is the notice of a hook that waits for a person; the
// deployment's record fills in rule, image and deployment when one is known
// (a pause of a deployment autodeploy did not start names the service only).
func PausedNotice(base Notice, p Pause) Notice {
	base.Outcome, base.Pause = Paused, &p
	return base
}

func (p *Pause) title(n Notice) string {
	what := "a deployment"
	if n.Repository != "" && n.Tag != "" {
		what = "the deployment of " + n.Repository + ":" + n.Tag
	}
	return fmt.Sprintf("%s PAUSED at %s: %s waits for you", n.service(), p.Stage, what)
}

func (p *Pause) facts(n Notice) []fact {
	fs := []fact{
		{"Service", n.service()},
		{"Account", strings.Trim(n.Account+" "+n.Region, " ")},
		{"Image", n.Repository + ":" + n.Tag},
		{"Digest", n.Digest},
		{"Outcome", "paused, waiting for a person"},
		{"Stage", p.Stage},
		{"Hook", p.HookID},
	}
	if !p.ExpiresAt.IsZero() {
		fs = append(fs, fact{"Expires", p.ExpiresAt.UTC().Format(time.RFC3339) + " (then ECS takes the hook's timeout action)"})
	}
	fs = append(fs, []fact{
		{"Rule", n.Rule},
		{"Service deployment", p.ServiceDeploymentARN},
		{"Task definition", n.TaskDefinition},
		{"Deployment", n.DeploymentID},
		{"Event", n.EventID},
		{"Reason", n.Reason},
	}...)
	return fs
}

func (p *Pause) nextSteps(n Notice) []string {
	flags := n.serviceFlags()
	return []string{
		"To go on: `autodeploy continue " + flags + " --hook " + p.HookID + "`",
		"To roll back: `autodeploy rollback " + flags + "`",
	}
}
