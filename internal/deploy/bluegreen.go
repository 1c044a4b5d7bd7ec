package deploy

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/bluegreen"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecrevent"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// blueGreen is a blue/green target's CodeDeploy client, group and the mark
// its deployment carries.
type blueGreen struct {
	client bluegreen.CodeDeploy
	groups *bluegreen.Groups
	scope  string
	target rules.Target
	group  bluegreen.Group
	mark   bluegreen.Mark
}

// blueGreen finds the deployment group of target t (cached per execution
// environment, found again when it is gone) and reads its active
// deployments, before anything is registered: while the group deploys,
// CodeDeploy refuses another deployment, so a revision registered now would
// never run. done means res holds the outcome and nothing is to be
// registered; see whileActive.
func (d *Deployer) blueGreen(ctx context.Context, push ecrevent.Push, rule *rules.Rule, t rules.Target, state history.ServiceState, res *Result) (blueGreen, bool, error) {
	if d.CodeDeploy == nil {
		return blueGreen{}, false, permanent("service %s/%s is blue/green but this deployer has no CodeDeploy client", t.Cluster, t.Service)
	}
	role := t.RoleFor(d.Central)
	bg := blueGreen{client: d.CodeDeploy(res.Region, role), groups: &d.groups, scope: res.Region + "|" + role, target: t,
		mark: bluegreen.Mark{Event: push.EventID, Rule: rule.Name, Digest: push.Digest}}
	var active []bluegreen.Deployment
	grp, err := bg.with(ctx, func(g bluegreen.Group) (err error) {
		active, err = bluegreen.Active(ctx, bg.client, g)
		return err
	})
	if err != nil {
		return bg, false, err
	}
	bg.group = grp
	done, err := whileActive(grp, active, bg.mark, push.Digest, state, res)
	return bg, done, err
}

// whileActive decides a deploy while grp has active deployments (there is
// usually one; none: deploy). In the order checked:
//   - this very event and rule's deployment (a retry, a duplicate delivery
//     or a sweep's next run): skipped when its history says it is recorded,
//     else recorded now, once (an earlier attempt lost CreateDeployment's
//     answer or its history write);
//   - another event's deployment of this digest under this rule (a sweep
//     during the push's deployment, a push during the sweep's): "deploying",
//     skipped, nothing written — that event records its own;
//   - anything else (another image, a deployment by hand, or one an older
//     version made, whose description names no digest): transient, retried
//     once it ends.
func whileActive(grp bluegreen.Group, active []bluegreen.Deployment, mark bluegreen.Mark, digest string, state history.ServiceState, res *Result) (bool, error) {
	if len(active) == 0 {
		return false, nil
	}
	for _, a := range active {
		if !a.SameDeploy(mark.String()) {
			continue
		}
		if a.TaskDefinition == "" || a.TaskDefinition == state.LastTaskDefinition {
			res.Outcome, res.Reason = Skipped, fmt.Sprintf("deploying %s: this event's CodeDeploy deployment %s runs, already recorded", res.Image, a.ID)
			return true, nil
		}
		res.Outcome, res.DeploymentID, res.To = Deployed, a.ID, a.TaskDefinition
		res.Reason = "recorded by a retry: its CodeDeploy deployment " + a.ID + " was created by an earlier attempt whose answer or history write was lost"
		return true, nil
	}
	for _, a := range active {
		if digest != "" && a.Marked && a.Mark.Rule == mark.Rule && a.Mark.Digest == digest {
			res.Outcome, res.Reason = Skipped, fmt.Sprintf("deploying %s: CodeDeploy deployment %s of event %s runs it", res.Image, a.ID, a.Mark.Event)
			return true, nil
		}
	}
	var running []string
	for _, a := range active {
		running = append(running, fmt.Sprintf("%s (%q)", a.ID, a.Description))
	}
	return false, &bluegreen.ActiveDeploymentError{Group: grp, Err: fmt.Errorf("it runs %s", strings.Join(running, ", "))}
}

// with runs fn with the target's group, finding it again once if fn finds
// it gone (re-created under another name).
func (bg blueGreen) with(ctx context.Context, fn func(bluegreen.Group) error) (bluegreen.Group, error) {
	t := bg.target
	return bg.groups.With(ctx, bg.client, bg.scope, t.Cluster, t.Service, t.CodeDeploy, fn)
}

// start creates the CodeDeploy deployment of taskDefinition.
func (bg blueGreen) start(ctx context.Context, taskDefinition string, svc *types.Service) (bluegreen.Started, error) {
	spec, err := bluegreen.BuildAppSpec(taskDefinition, svc, bg.target.CodeDeploy.Hooks)
	if err != nil {
		return bluegreen.Started{}, err
	}
	var started bluegreen.Started
	_, err = bg.with(ctx, func(g bluegreen.Group) (err error) {
		started, err = bluegreen.Start(ctx, bg.client, g, spec, bg.mark.String())
		return err
	})
	return started, err
}
