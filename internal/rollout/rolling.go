package rollout

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecsevent"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
)

// RollingRollout is a rolling update by the ECS controller: UpdateService
// with the task definition only, and the "ECS Deployment State Change"
// event is the whole truth of how it ended, so Outcome makes no call (the
// rolling path costs nothing more than before).
type RollingRollout struct {
	ECS UpdateServiceAPI
}

// Kind is rolling.
func (RollingRollout) Kind() Kind {
	return Kind{Family: Rolling, Strategy: types.DeploymentStrategyRolling, Controller: types.DeploymentControllerTypeEcs}
}

// Start updates the service to rev's task definition.
func (r RollingRollout) Start(ctx context.Context, rev Revision) (Started, error) {
	return updateService(ctx, r.ECS, rev)
}

// Outcome maps the event: COMPLETED is completed, FAILED is failed, a
// circuit-breaker rollback is rolled back (with the event's reason);
// anything else is in flight.
func (RollingRollout) Outcome(_ context.Context, end End) (Outcome, error) {
	return eventOutcome(end.Event), nil
}

func eventOutcome(ev Event) Outcome {
	switch {
	case ev.RollingBack:
		return Outcome{Outcome: history.RolledBack, Reason: ev.Reason}
	case ev.Name == ecsevent.Completed:
		return Outcome{Outcome: history.Completed}
	case ev.Name == ecsevent.Failed:
		return Outcome{Outcome: history.Failed, Reason: ev.Reason}
	}
	return Outcome{}
}
