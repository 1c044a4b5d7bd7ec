package deploy

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/bluegreen"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// IsBlueGreen reports whether CodeDeploy deploys svc.
func IsBlueGreen(svc *types.Service) bool {
	dc := svc.DeploymentController
	return dc != nil && dc.Type == types.DeploymentControllerTypeCodeDeploy
}

// blueGreen is a blue/green target's CodeDeploy client and group.
type blueGreen struct {
	client bluegreen.CodeDeploy
	group  bluegreen.Group
}

// blueGreen finds the deployment group of target t (cached per execution
// environment).
func (d *Deployer) blueGreen(ctx context.Context, region string, t rules.Target) (blueGreen, error) {
	if d.CodeDeploy == nil {
		return blueGreen{}, permanent("service %s/%s is blue/green but this deployer has no CodeDeploy client", t.Cluster, t.Service)
	}
	role := t.RoleFor(d.Central)
	client := d.CodeDeploy(region, role)
	grp, err := d.groups.Find(ctx, client, region+"|"+role, t.Cluster, t.Service, t.CodeDeploy)
	return blueGreen{client, grp}, err
}

// start creates the CodeDeploy deployment of taskDefinition.
func (bg blueGreen) start(ctx context.Context, taskDefinition string, svc *types.Service, t rules.Target, eventID, rule string) (bluegreen.Started, error) {
	spec, err := bluegreen.BuildAppSpec(taskDefinition, svc, t.CodeDeploy.Hooks)
	if err != nil {
		return bluegreen.Started{}, err
	}
	return bluegreen.Start(ctx, bg.client, bg.group, spec, bluegreen.Marker(eventID, rule))
}
