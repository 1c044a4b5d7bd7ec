// Package rollout is the one seam for every kind of rollout: start a
// rollout of a new revision on a service, and read how it ended, with one
// implementation per kind (DESIGN.md, "Rollouts"):
//
//   - rolling (the ECS controller, strategy ROLLING): UpdateService; the
//     "ECS Deployment State Change" event tells how it ended;
//   - ECS-native (the ECS controller, strategy BLUE_GREEN, LINEAR or CANARY):
//     UpdateService, then the service deployment that targets the revision
//     (ListServiceDeployments → DescribeServiceRevisions →
//     DescribeServiceDeployments) tells the truth, after traffic shifts,
//     bakes, hooks and alarms; a paused hook is continued or rolled back
//     through ECS (Continue, RollBack);
//   - CodeDeploy-controlled (the CODE_DEPLOY controller): CreateDeployment,
//     as internal/bluegreen does.
//
// The caller asks a service its kind once, from the service it described
// (KindOf), and then calls the kind.
package rollout

import (
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// Family is what runs a service's rollouts.
type Family string

// The families of rollouts.
const (
	// Rolling: the ECS controller with the ROLLING strategy (or none).
	Rolling Family = "rolling"
	// ECSNative: the ECS controller running a BLUE_GREEN, LINEAR or CANARY
	// deployment itself.
	ECSNative Family = "ecs-native"
	// CodeDeployControlled: the CODE_DEPLOY controller; CodeDeploy runs
	// the blue/green deployment.
	CodeDeployControlled Family = "codedeploy-controlled"
	// Unsupported: the EXTERNAL controller (task sets managed elsewhere),
	// or one this version does not know.
	Unsupported Family = "unsupported"
)

// Kind is a service's kind of rollout.
type Kind struct {
	Family Family
	// Strategy is the service's deploymentConfiguration.strategy:
	// BLUE_GREEN, LINEAR or CANARY for ECSNative, ROLLING for Rolling, ""
	// for the others.
	Strategy types.DeploymentStrategy
	// Controller is the service's deployment controller (ECS when unset).
	Controller types.DeploymentControllerType
}

// KindOf is svc's kind, from its deployment controller and
// deploymentConfiguration.strategy — the service as the caller described
// it, so asking costs no call. A strategy this version does not know, on
// the ECS controller, is ECS-native: ECS runs it, and its service
// deployment tells how it ended whatever the strategy.
func KindOf(svc types.Service) Kind {
	controller := types.DeploymentControllerTypeEcs
	if dc := svc.DeploymentController; dc != nil && dc.Type != "" {
		controller = dc.Type
	}
	switch controller {
	case types.DeploymentControllerTypeEcs:
	case types.DeploymentControllerTypeCodeDeploy:
		return Kind{Family: CodeDeployControlled, Controller: controller}
	default:
		return Kind{Family: Unsupported, Controller: controller}
	}
	var strategy types.DeploymentStrategy
	if dc := svc.DeploymentConfiguration; dc != nil {
		strategy = dc.Strategy
	}
	if strategy == "" || strategy == types.DeploymentStrategyRolling {
		return Kind{Family: Rolling, Strategy: types.DeploymentStrategyRolling, Controller: controller}
	}
	return Kind{Family: ECSNative, Strategy: strategy, Controller: controller}
}

// IsCodeDeployControlled reports whether CodeDeploy runs the service's
// rollouts (the CODE_DEPLOY controller): what deploy.IsBlueGreen meant.
func (k Kind) IsCodeDeployControlled() bool { return k.Family == CodeDeployControlled }

// IsECSNative reports whether ECS runs a BLUE_GREEN, LINEAR or CANARY
// deployment of the service itself.
func (k Kind) IsECSNative() bool { return k.Family == ECSNative }

// String names the kind for logs, status and plan: "rolling",
// "ECS-native CANARY", "CodeDeploy-controlled blue/green", "EXTERNAL
// controller (not deployable)".
func (k Kind) String() string {
	switch k.Family {
	case Rolling:
		return "rolling"
	case ECSNative:
		return "ECS-native " + string(k.Strategy)
	case CodeDeployControlled:
		return "CodeDeploy-controlled blue/green"
	}
	return string(k.Controller) + " controller (not deployable)"
}
