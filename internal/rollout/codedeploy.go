package rollout

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/bluegreen"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/codedeployevent"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// CodeDeployRollout is a blue/green deployment CodeDeploy runs for a
// service on the CODE_DEPLOY controller: internal/bluegreen's, unchanged,
// behind the seam. The service's task definition is never changed by
// UpdateService (ECS refuses it on that controller).
type CodeDeployRollout struct {
	// Client is CodeDeploy in the target's account and region; nil when
	// the caller has none (Start refuses, Outcome says so in the reason,
	// as the watcher did).
	Client bluegreen.CodeDeploy
	// Groups keeps each service's deployment group for the execution
	// environment; Scope tells clients of different accounts and regions
	// apart in it (region|role).
	Groups *bluegreen.Groups
	Scope  string
	// Target is the target's codedeploy: the group named, or {} to find
	// it, and the AppSpec's hooks. nil: the rules give none.
	Target *rules.CodeDeploy
}

// Kind is CodeDeploy-controlled.
func (CodeDeployRollout) Kind() Kind {
	return Kind{Family: CodeDeployControlled, Controller: types.DeploymentControllerTypeCodeDeploy}
}

// Active finds the service's deployment group and its active deployments:
// the deployer reads them before registering anything, since CodeDeploy
// refuses a second deployment while the group deploys (internal/deploy's
// whileActive decides from them).
func (c CodeDeployRollout) Active(ctx context.Context, cluster, service string) (bluegreen.Group, []bluegreen.Deployment, error) {
	if err := c.usable(cluster, service); err != nil {
		return bluegreen.Group{}, nil, err
	}
	var active []bluegreen.Deployment
	grp, err := c.Groups.With(ctx, c.Client, c.Scope, cluster, service, c.Target, func(g bluegreen.Group) (err error) {
		active, err = bluegreen.Active(ctx, c.Client, g)
		return err
	})
	return grp, active, err
}

// Start creates the CodeDeploy deployment of rev's task definition: an
// AppSpec from the described service (bluegreen.BuildAppSpec), in the
// service's group (found again once if it is gone), with rev's origin as
// the description's mark, so an earlier attempt's deployment is found
// instead of refused (bluegreen.Start).
func (c CodeDeployRollout) Start(ctx context.Context, rev Revision) (Started, error) {
	if err := c.usable(rev.Cluster, rev.Service); err != nil {
		return Started{}, err
	}
	if rev.Described == nil {
		return Started{}, fmt.Errorf("start CodeDeploy deployment of %s/%s: the described service is needed for its AppSpec", rev.Cluster, rev.Service)
	}
	spec, err := bluegreen.BuildAppSpec(rev.TaskDefinition, rev.Described, c.Target.Hooks)
	if err != nil {
		return Started{}, err
	}
	mark := bluegreen.Mark{Event: rev.Origin.Event, Rule: rev.Origin.Rule, Digest: rev.Origin.Digest}
	var started bluegreen.Started
	_, err = c.Groups.With(ctx, c.Client, c.Scope, rev.Cluster, rev.Service, c.Target, func(g bluegreen.Group) (err error) {
		started, err = bluegreen.Start(ctx, c.Client, g, spec, mark.String())
		return err
	})
	if err != nil {
		return Started{}, err
	}
	td := started.TaskDefinition
	if td == "" {
		td = rev.TaskDefinition
	}
	return Started{DeploymentID: started.ID, TaskDefinition: td}, nil
}

func (c CodeDeployRollout) usable(cluster, service string) error {
	if c.Target == nil {
		return bluegreen.Permanent("service %s in cluster %s is CodeDeploy-controlled (CODE_DEPLOY controller): give its target codedeploy: {} (or name application and deployment-group) to deploy it through CodeDeploy", service, cluster)
	}
	if c.Client == nil || c.Groups == nil {
		return bluegreen.Permanent("service %s/%s is CodeDeploy-controlled but this caller has no CodeDeploy client", cluster, service)
	}
	return nil
}

// Outcome maps CodeDeploy's state (the watcher's codeDeployEnding asks it,
// so the decision lives here only): SUCCESS is
// completed; FAILURE is failed, or rolled back when CodeDeploy rolled it
// back (GetDeployment's rollbackInfo, bluegreen.Ended); STOP is failed;
// START and READY are in flight. A duplicate (Recorded) reads nothing. A
// transient read error is returned (the event is retried); any other is
// told in the reason, the outcome staying failed.
func (c CodeDeployRollout) Outcome(ctx context.Context, end End) (Outcome, error) {
	switch end.Event.Name {
	case codedeployevent.Success:
		return Outcome{Outcome: history.Completed}, nil
	case codedeployevent.Failure, codedeployevent.Stop:
	default:
		return Outcome{}, nil
	}
	o := Outcome{Outcome: history.Failed, Reason: "CodeDeploy deployment failed"}
	if end.Event.Name == codedeployevent.Stop {
		o.Reason = "CodeDeploy deployment stopped"
	}
	if end.Recorded != "" {
		return o, nil // a duplicate: recorded already, nothing to look up
	}
	var ending bluegreen.Ending
	err := errors.New("this watcher has no CodeDeploy client")
	if c.Client != nil {
		ending, err = bluegreen.Ended(ctx, c.Client, end.DeploymentID)
	}
	switch {
	case err != nil && awsenv.IsTransient(err):
		return Outcome{}, err
	case err != nil:
		o.Reason += fmt.Sprintf(" (whether it was rolled back is unknown: %v)", err)
	default:
		if ending.RolledBack && end.Event.Name == codedeployevent.Failure {
			o.Outcome = history.RolledBack
		}
		if ending.Reason != "" {
			o.Reason += ": " + ending.Reason
		}
	}
	return o, nil
}
