package bluegreen

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"
)

// Started is a deployment Start created (or found).
type Started struct {
	ID string // d-…
	// TaskDefinition is the one the deployment deploys: the AppSpec's, or,
	// for a deployment an earlier attempt created, that attempt's.
	TaskDefinition string
}

// Start creates the deployment of spec in grp. marker, written into the
// deployment's description, names the event and rule: when CodeDeploy
// refuses because the group already deploys, a deployment carrying the
// same marker is this very deploy, created by an earlier attempt whose
// answer was lost, and it is returned instead.
func Start(ctx context.Context, client CodeDeploy, grp Group, spec AppSpec, marker string) (Started, error) {
	out, err := client.CreateDeployment(ctx, &codedeploy.CreateDeploymentInput{
		ApplicationName:     aws.String(grp.Application),
		DeploymentGroupName: aws.String(grp.Name),
		Description:         aws.String(marker),
		Revision: &types.RevisionLocation{
			RevisionType:   types.RevisionLocationTypeAppSpecContent,
			AppSpecContent: &types.AppSpecContent{Content: aws.String(spec.Content), Sha256: aws.String(spec.SHA256)},
		},
	})
	if err == nil {
		return Started{ID: aws.ToString(out.DeploymentId), TaskDefinition: spec.TaskDefinition()}, nil
	}
	var limit *types.DeploymentLimitExceededException
	if !errors.As(err, &limit) {
		return Started{}, fmt.Errorf("create deployment in %s: %w", grp, err)
	}
	own, found, ferr := activeWith(ctx, client, grp, marker)
	switch {
	case ferr != nil:
		return Started{}, &ActiveDeploymentError{Group: grp, Err: errors.Join(err, ferr)}
	case found:
		return own, nil
	}
	return Started{}, &ActiveDeploymentError{Group: grp, Err: err}
}

// activeStatuses are the states of a deployment that still holds its group.
var activeStatuses = []types.DeploymentStatus{
	types.DeploymentStatusCreated, types.DeploymentStatusQueued, types.DeploymentStatusInProgress,
	types.DeploymentStatusBaking, types.DeploymentStatusReady,
}

// activeWith finds the group's active deployment whose description is marker.
func activeWith(ctx context.Context, client CodeDeploy, grp Group, marker string) (Started, bool, error) {
	p := codedeploy.NewListDeploymentsPaginator(client, &codedeploy.ListDeploymentsInput{
		ApplicationName: aws.String(grp.Application), DeploymentGroupName: aws.String(grp.Name),
		IncludeOnlyStatuses: activeStatuses,
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return Started{}, false, fmt.Errorf("list active deployments of %s: %w", grp, err)
		}
		for _, id := range page.Deployments {
			d, err := client.GetDeployment(ctx, &codedeploy.GetDeploymentInput{DeploymentId: aws.String(id)})
			if err != nil {
				return Started{}, false, fmt.Errorf("get deployment %s: %w", id, err)
			}
			info := d.DeploymentInfo
			if info == nil || aws.ToString(info.Description) != marker {
				continue
			}
			own := Started{ID: id}
			if rev := info.Revision; rev != nil && rev.AppSpecContent != nil {
				own.TaskDefinition = AppSpec{Content: aws.ToString(rev.AppSpecContent.Content)}.TaskDefinition()
			}
			return own, true, nil
		}
	}
	return Started{}, false, nil
}

// Marker is the description a deploy gives its deployment: the event and
// rule, as the deployer's task definition tags name them.
func Marker(eventID, rule string) string {
	return strings.Join([]string{"ecr-autodeploy", "event=" + eventID, "rule=" + rule}, " ")
}
