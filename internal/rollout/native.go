package rollout

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// NativeRollout is a BLUE_GREEN, LINEAR or CANARY deployment ECS runs
// itself on the ECS controller. It starts as a rolling update does
// (UpdateService with the task definition only: the strategy, bake, hooks
// and alarms stay the infrastructure code's), but the "ECS Deployment State
// Change" event is not the whole truth of how it ended (traffic shifts in
// steps, a bake follows, a hook or an alarm can roll it back): Outcome
// reads the service deployment that targets the revision.
type NativeRollout struct {
	Strategy types.DeploymentStrategy
	// ECS starts the rollout; Outcome also reads its service deployment
	// through it (a ServiceDeploymentReader too: the watcher's client), so the deployer's
	// client, which only starts rollouts, needs no reads.
	ECS UpdateServiceAPI
	// Now is the clock for stages; time.Now when nil.
	Now func() time.Time
}

// Kind is ECS-native with the rollout's strategy.
func (n NativeRollout) Kind() Kind {
	return Kind{Family: ECSNative, Strategy: n.Strategy, Controller: types.DeploymentControllerTypeEcs}
}

// Start updates the service to rev's task definition; ECS runs the
// strategy. UpdateService's answer names the service's current service
// deployment, kept as a hint for Outcome.
func (n NativeRollout) Start(ctx context.Context, rev Revision) (Started, error) {
	return updateService(ctx, n.ECS, rev)
}

// Outcome reads the service deployment that targets end's task definition
// (FindServiceDeployment: two or three reads, once per outcome) and judges
// it (Judge): completed only when it is SUCCESSFUL. A duplicate (Recorded)
// reads nothing. Errors are the calls' own, wrapped: a throttled or failed
// read is the caller's to retry (awsenv.IsTransient); ErrNoServiceDeployment
// right after a start is too.
func (n NativeRollout) Outcome(ctx context.Context, end End) (Outcome, error) {
	if end.Recorded != "" {
		return Outcome{Outcome: end.Recorded}, nil
	}
	reader, ok := n.ECS.(ServiceDeploymentReader)
	if !ok {
		return Outcome{}, fmt.Errorf("service %s/%s: the ECS client reads no service deployments", end.Cluster, end.Service)
	}
	d, err := FindServiceDeployment(ctx, reader, Query{Cluster: end.Cluster, Service: end.Service,
		TaskDefinition: end.TaskDefinition, Since: end.StartedAt, Known: end.ServiceDeploymentARN})
	if err != nil {
		return Outcome{}, err
	}
	return Judge(d, n.now()), nil
}

func (n NativeRollout) now() time.Time {
	if n.Now != nil {
		return n.Now()
	}
	return time.Now()
}
