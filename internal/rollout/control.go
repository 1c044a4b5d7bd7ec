package rollout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// ErrNothingInFlight: the service has no service deployment in flight, so
// there is nothing to continue or to roll back through ECS (the CLI's
// rollback then registers an older revision, as for any service).
var ErrNothingInFlight = errors.New("no service deployment in flight")

// NotPausedError: the in-flight service deployment waits at no hook.
type NotPausedError struct {
	Cluster, Service     string
	ServiceDeploymentARN string
	Stage                string
}

func (e *NotPausedError) Error() string {
	return fmt.Sprintf("service %s/%s is not paused at a hook (service deployment %s: %s): nothing to continue",
		e.Cluster, e.Service, e.ServiceDeploymentARN, e.Stage)
}

// Action is what Continue or RollBack did.
type Action struct {
	ServiceDeploymentARN string
	// HookID is the hook acted on ("" for a stop).
	HookID string
	// Stage is the deployment's lifecycle stage when it was acted on.
	Stage types.ServiceDeploymentLifecycleStage
	// Did: "continued", "rolled back at the paused hook", "stopped with
	// rollback", or, when Already, what had been done.
	Did string
	// Already: it was done before this call (a repeat, or a call whose
	// answer was lost): nothing was sent, or what was sent had applied.
	Already bool
	// Note explains Already, or a lost answer ECS had applied.
	Note string
}

// ContinueOptions narrow Continue.
type ContinueOptions struct {
	// HookID, when set, is the paused hook to continue (the one a notice
	// named). A repeat then does not continue the next step's pause of a
	// linear or canary deployment, which has a hook id of its own: the
	// hook found already continued is reported as such, nothing sent.
	HookID string
}

// forward are the statuses of a deployment still moving to its revision.
var forward = []types.ServiceDeploymentStatus{types.ServiceDeploymentStatusPending, types.ServiceDeploymentStatusInProgress}

// rollingBack are the statuses of a deployment being rolled back.
var rollingBack = []types.ServiceDeploymentStatus{types.ServiceDeploymentStatusRollbackRequested, types.ServiceDeploymentStatusRollbackInProgress}

// RollingBack reports whether ECS is rolling d back.
func RollingBack(d types.ServiceDeployment) bool { return slices.Contains(rollingBack, d.Status) }

// InFlight lists and describes the service's in-flight service
// deployments (forward, rolling back, stop requested), newest first: what
// Continue and RollBack act on, and status and plan show.
func InFlight(ctx context.Context, client ServiceDeploymentReader, cluster, service string) ([]types.ServiceDeployment, error) {
	in := &ecs.ListServiceDeploymentsInput{Cluster: aws.String(cluster), Service: aws.String(service), MaxResults: aws.Int32(20),
		Status: append(append(slices.Clone(forward), rollingBack...), types.ServiceDeploymentStatusStopRequested)}
	var arns []string
	for range windowPages {
		page, err := client.ListServiceDeployments(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list in-flight service deployments of %s/%s: %w", cluster, service, err)
		}
		for _, b := range page.ServiceDeployments {
			arns = append(arns, aws.ToString(b.ServiceDeploymentArn))
		}
		if aws.ToString(page.NextToken) == "" {
			break
		}
		in.NextToken = page.NextToken
	}
	var out []types.ServiceDeployment
	for chunk := range slices.Chunk(arns, 20) {
		ds, err := describeDeployments(ctx, client, chunk)
		if err != nil {
			return nil, err
		}
		out = append(out, ds...)
	}
	slices.SortStableFunc(out, func(a, b types.ServiceDeployment) int {
		return aws.ToTime(b.CreatedAt).Compare(aws.ToTime(a.CreatedAt))
	})
	return out, nil
}

func nothingInFlight(cluster, service string) error {
	return fmt.Errorf("service %s/%s: %w", cluster, service, ErrNothingInFlight)
}

// Continue continues the service's deployment paused at a PAUSE hook:
// ContinueServiceDeployment with action CONTINUE and that hook's id, found
// in lifecycleHookDetails of the in-flight service deployment. It refuses
// clearly when nothing is in flight (ErrNothingInFlight), when the
// deployment is rolling back or being stopped, and when it waits at no
// hook (NotPausedError). When the call fails, the deployment is read again:
// a hook now SUCCEEDED means ECS applied it and the answer was lost, which
// is success.
func Continue(ctx context.Context, client ServiceDeploymentController, cluster, service string, opt ContinueOptions) (Action, error) {
	all, err := InFlight(ctx, client, cluster, service)
	if err != nil {
		return Action{}, err
	}
	moving := slices.DeleteFunc(slices.Clone(all), func(d types.ServiceDeployment) bool { return !slices.Contains(forward, d.Status) })
	if len(moving) == 0 {
		if len(all) > 0 {
			d := all[0]
			return Action{}, fmt.Errorf("service %s/%s: service deployment %s is %s: nothing to continue",
				cluster, service, aws.ToString(d.ServiceDeploymentArn), d.Status)
		}
		return Action{}, nothingInFlight(cluster, service)
	}
	d, hook, done, err := pickHook(cluster, service, moving, opt.HookID)
	if err != nil || done.Already {
		return done, err
	}
	return act(ctx, client, d, hook, types.DeploymentLifecycleHookActionContinue, "continued")
}

// pickHook finds the hook to continue among moving deployments (newest
// first): the one named, or the first awaiting action.
func pickHook(cluster, service string, moving []types.ServiceDeployment, hookID string) (types.ServiceDeployment, string, Action, error) {
	if hookID == "" {
		for _, d := range moving {
			if h := pausedHook(d); h != nil {
				return d, aws.ToString(h.HookId), Action{}, nil
			}
		}
		d := moving[0]
		return d, "", Action{}, &NotPausedError{Cluster: cluster, Service: service,
			ServiceDeploymentARN: aws.ToString(d.ServiceDeploymentArn), Stage: Stage(d, time.Now())}
	}
	for _, d := range moving {
		for _, h := range d.LifecycleHookDetails {
			if aws.ToString(h.HookId) != hookID {
				continue
			}
			arn := aws.ToString(d.ServiceDeploymentArn)
			switch h.Status {
			case types.DeploymentLifecycleHookStatusAwaitingAction:
				return d, hookID, Action{}, nil
			case types.DeploymentLifecycleHookStatusSucceeded:
				a := Action{ServiceDeploymentARN: arn, HookID: hookID, Stage: d.LifecycleStage, Did: "continued", Already: true,
					Note: "hook " + hookID + " was already continued"}
				if p := pausedHook(d); p != nil {
					a.Note += fmt.Sprintf("; the deployment now waits at hook %s (%s): continue that one by its id", aws.ToString(p.HookId), d.LifecycleStage)
				}
				return d, hookID, a, nil
			default:
				return d, hookID, Action{}, fmt.Errorf("service %s/%s: hook %s of service deployment %s is %s, not awaiting action: nothing to continue",
					cluster, service, hookID, arn, h.Status)
			}
		}
	}
	return types.ServiceDeployment{}, "", Action{}, fmt.Errorf("service %s/%s: hook %s is not among the hooks of its in-flight service deployments (it may have been continued or have ended already; autodeploy status shows where the deployment stands)", cluster, service, hookID)
}

// RollBack rolls the service's in-flight service deployment back through
// ECS: ContinueServiceDeployment ROLLBACK at a paused hook, else
// StopServiceDeployment with stopType ROLLBACK. A deployment already rolling
// back is reported (Already), nothing sent; nothing in flight is
// ErrNothingInFlight. When the call fails, the deployment is read again: a
// ROLLBACK_* status means ECS applied it and the answer was lost.
func RollBack(ctx context.Context, client ServiceDeploymentController, cluster, service string) (Action, error) {
	all, err := InFlight(ctx, client, cluster, service)
	if err != nil {
		return Action{}, err
	}
	return RollBackAmong(ctx, client, cluster, service, all)
}

// RollBackTarget is the deployment RollBack acts on among all (InFlight's,
// newest first): the newest moving forward, else the newest (rolling back
// already, or stopped without rollback); false when none is in flight.
func RollBackTarget(all []types.ServiceDeployment) (types.ServiceDeployment, bool) {
	if len(all) == 0 {
		return types.ServiceDeployment{}, false
	}
	if i := slices.IndexFunc(all, func(d types.ServiceDeployment) bool { return slices.Contains(forward, d.Status) }); i >= 0 {
		return all[i], true
	}
	return all[0], true
}

// RollBackAmong is RollBack of the in-flight deployments all, already
// read (the CLI shows its plan from the same read, so it acts on the
// deployment it showed).
func RollBackAmong(ctx context.Context, client ServiceDeploymentController, cluster, service string, all []types.ServiceDeployment) (Action, error) {
	d, ok := RollBackTarget(all)
	if !ok {
		return Action{}, nothingInFlight(cluster, service)
	}
	if !slices.Contains(forward, d.Status) {
		arn := aws.ToString(d.ServiceDeploymentArn)
		if RollingBack(d) {
			return Action{ServiceDeploymentARN: arn, Stage: d.LifecycleStage, Did: "rolling back", Already: true,
				Note: fmt.Sprintf("service deployment %s is already %s", arn, d.Status)}, nil
		}
		return Action{}, fmt.Errorf("service %s/%s: service deployment %s is %s (stopped without rollback): nothing to roll back through ECS",
			cluster, service, arn, d.Status)
	}
	if h := pausedHook(d); h != nil {
		return act(ctx, client, d, aws.ToString(h.HookId), types.DeploymentLifecycleHookActionRollback, "rolled back at the paused hook")
	}
	return act(ctx, client, d, "", "", "stopped with rollback")
}

// act sends the continue (with hook and action) or the stop (no hook), and
// on failure reads the deployment again to tell a lost answer from a
// refusal.
func act(ctx context.Context, client ServiceDeploymentController, d types.ServiceDeployment, hookID string, action types.DeploymentLifecycleHookAction, did string) (Action, error) {
	arn := aws.ToString(d.ServiceDeploymentArn)
	a := Action{ServiceDeploymentARN: arn, HookID: hookID, Stage: d.LifecycleStage, Did: did}
	var err error
	if hookID != "" {
		_, err = client.ContinueServiceDeployment(ctx, &ecs.ContinueServiceDeploymentInput{
			ServiceDeploymentArn: aws.String(arn), HookId: aws.String(hookID), Action: action})
		if err != nil {
			err = fmt.Errorf("continue service deployment %s at hook %s with %s: %w", arn, hookID, action, err)
		}
	} else {
		_, err = client.StopServiceDeployment(ctx, &ecs.StopServiceDeploymentInput{
			ServiceDeploymentArn: aws.String(arn), StopType: types.StopServiceDeploymentStopTypeRollback})
		if err != nil {
			err = fmt.Errorf("stop service deployment %s with rollback: %w", arn, err)
		}
	}
	if err == nil {
		return a, nil
	}
	now, rerr := describeDeployment(ctx, client, arn)
	if rerr != nil {
		return Action{}, errors.Join(err, fmt.Errorf("reading it again to see whether it applied: %w", rerr))
	}
	if applied(now, hookID, action) {
		a.Note = "ECS applied it; its answer was lost (" + strings.TrimSpace(err.Error()) + ")"
		return a, nil
	}
	return Action{}, err
}

// applied reports whether d shows the action done: the hook SUCCEEDED for a
// continue; for a rollback (at a hook or by stop), a ROLLBACK_* status.
func applied(d types.ServiceDeployment, hookID string, action types.DeploymentLifecycleHookAction) bool {
	if hookID != "" && action == types.DeploymentLifecycleHookActionContinue {
		return slices.ContainsFunc(d.LifecycleHookDetails, func(h types.DeploymentLifecycleHookDetail) bool {
			return aws.ToString(h.HookId) == hookID && h.Status == types.DeploymentLifecycleHookStatusSucceeded
		})
	}
	return strings.HasPrefix(string(d.Status), "ROLLBACK_")
}
