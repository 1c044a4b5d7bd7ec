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

// Start creates the deployment of spec in grp and returns its id (d-…).
// marker, written into the deployment's description, names the event and
// rule: when CodeDeploy refuses because the group already deploys, a
// deployment carrying the same marker is this very deploy, created by an
// earlier attempt whose answer was lost, and its id is returned.
func Start(ctx context.Context, client CodeDeploy, grp Group, spec AppSpec, marker string) (string, error) {
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
		return aws.ToString(out.DeploymentId), nil
	}
	var limit *types.DeploymentLimitExceededException
	if !errors.As(err, &limit) {
		return "", fmt.Errorf("create deployment in %s: %w", grp, err)
	}
	id, found, ferr := activeWith(ctx, client, grp, marker)
	switch {
	case ferr != nil:
		return "", &ActiveDeploymentError{Group: grp, Err: errors.Join(err, ferr)}
	case found:
		return id, nil
	}
	return "", &ActiveDeploymentError{Group: grp, Err: err}
}

// activeStatuses are the states of a deployment that still holds its group.
var activeStatuses = []types.DeploymentStatus{
	types.DeploymentStatusCreated, types.DeploymentStatusQueued, types.DeploymentStatusInProgress,
	types.DeploymentStatusBaking, types.DeploymentStatusReady,
}

// activeWith finds the group's active deployment whose description is marker.
func activeWith(ctx context.Context, client CodeDeploy, grp Group, marker string) (string, bool, error) {
	p := codedeploy.NewListDeploymentsPaginator(client, &codedeploy.ListDeploymentsInput{
		ApplicationName: aws.String(grp.Application), DeploymentGroupName: aws.String(grp.Name),
		IncludeOnlyStatuses: activeStatuses,
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return "", false, fmt.Errorf("list active deployments of %s: %w", grp, err)
		}
		for _, id := range page.Deployments {
			d, err := client.GetDeployment(ctx, &codedeploy.GetDeploymentInput{DeploymentId: aws.String(id)})
			if err != nil {
				return "", false, fmt.Errorf("get deployment %s: %w", id, err)
			}
			if d.DeploymentInfo != nil && aws.ToString(d.DeploymentInfo.Description) == marker {
				return id, true, nil
			}
		}
	}
	return "", false, nil
}

// Marker is the description a deploy gives its deployment: the event and
// rule, as the deployer's task definition tags name them.
func Marker(eventID, rule string) string {
	return strings.Join([]string{"ecr-autodeploy", "event=" + eventID, "rule=" + rule}, " ")
}
