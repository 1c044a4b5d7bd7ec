package rollout

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"
)

func TestKindOf(t *testing.T) {
	svc := func(controller types.DeploymentControllerType, strategy types.DeploymentStrategy) types.Service {
		s := types.Service{}
		if controller != "" {
			s.DeploymentController = &types.DeploymentController{Type: controller}
		}
		if strategy != "" {
			s.DeploymentConfiguration = &types.DeploymentConfiguration{Strategy: strategy}
		}
		return s
	}
	tests := []struct {
		name       string
		svc        types.Service
		want       Kind
		str        string
		codeDeploy bool
		native     bool
	}{
		{"no controller, no strategy", types.Service{}, Kind{Rolling, types.DeploymentStrategyRolling, types.DeploymentControllerTypeEcs}, "rolling", false, false},
		{"ECS, rolling", svc("ECS", "ROLLING"), Kind{Rolling, types.DeploymentStrategyRolling, types.DeploymentControllerTypeEcs}, "rolling", false, false},
		{"ECS, blue/green", svc("ECS", "BLUE_GREEN"), Kind{ECSNative, types.DeploymentStrategyBlueGreen, types.DeploymentControllerTypeEcs}, "ECS-native BLUE_GREEN", false, true},
		{"ECS, linear", svc("ECS", "LINEAR"), Kind{ECSNative, types.DeploymentStrategyLinear, types.DeploymentControllerTypeEcs}, "ECS-native LINEAR", false, true},
		{"no controller, canary", svc("", "CANARY"), Kind{ECSNative, types.DeploymentStrategyCanary, types.DeploymentControllerTypeEcs}, "ECS-native CANARY", false, true},
		{"ECS, a strategy to come", svc("ECS", "SHADOW"), Kind{ECSNative, "SHADOW", types.DeploymentControllerTypeEcs}, "ECS-native SHADOW", false, true},
		{"CodeDeploy", svc("CODE_DEPLOY", ""), Kind{CodeDeployControlled, "", types.DeploymentControllerTypeCodeDeploy}, "CodeDeploy-controlled blue/green", true, false},
		// The strategy is ECS's; CodeDeploy ignores it.
		{"CodeDeploy with a strategy", svc("CODE_DEPLOY", "CANARY"), Kind{CodeDeployControlled, "", types.DeploymentControllerTypeCodeDeploy}, "CodeDeploy-controlled blue/green", true, false},
		{"external", svc("EXTERNAL", ""), Kind{Unsupported, "", types.DeploymentControllerTypeExternal}, "EXTERNAL controller (not deployable)", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := KindOf(tt.svc)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("KindOf (-want +got):\n%s", diff)
			}
			if got.String() != tt.str || got.IsCodeDeployControlled() != tt.codeDeploy || got.IsECSNative() != tt.native {
				t.Errorf("String %q, IsCodeDeployControlled %v, IsECSNative %v", got.String(), got.IsCodeDeployControlled(), got.IsECSNative())
			}
		})
	}
}

// Each implementation says its own kind, as KindOf would of its services.
func TestImplementationKinds(t *testing.T) {
	for _, tt := range []struct {
		r    Rollout
		want Family
	}{
		{RollingRollout{}, Rolling},
		{NativeRollout{Strategy: types.DeploymentStrategyCanary}, ECSNative},
		{CodeDeployRollout{}, CodeDeployControlled},
	} {
		if got := tt.r.Kind(); got.Family != tt.want {
			t.Errorf("%T.Kind() = %+v, want %s", tt.r, got, tt.want)
		}
	}
}
