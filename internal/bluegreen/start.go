package bluegreen

import (
	"context"
	"errors"
	"fmt"

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
// deployment's description, names the event and rule (a Mark): when
// CodeDeploy refuses because the group already deploys, a deployment of the
// same event and rule is this very deploy, created by an earlier attempt
// whose answer was lost, and it is returned instead.
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
	active, aerr := Active(ctx, client, grp)
	if aerr != nil {
		return Started{}, &ActiveDeploymentError{Group: grp, Err: errors.Join(err, aerr)}
	}
	for _, d := range active {
		if d.SameDeploy(marker) {
			return Started{ID: d.ID, TaskDefinition: d.TaskDefinition}, nil
		}
	}
	return Started{}, &ActiveDeploymentError{Group: grp, Err: err}
}

// activeStatuses are the states of a deployment that still holds its group.
var activeStatuses = []types.DeploymentStatus{
	types.DeploymentStatusCreated, types.DeploymentStatusQueued, types.DeploymentStatusInProgress,
	types.DeploymentStatusBaking, types.DeploymentStatusReady,
}

// Deployment is an active deployment of a group.
type Deployment struct {
	ID          string
	Description string
	// Mark is read from the description; ok is false when no deployer
	// wrote it.
	Mark   Mark
	Marked bool
	// TaskDefinition is the one its AppSpec deploys.
	TaskDefinition string
}

// SameDeploy reports whether d was created for the event and rule marker
// names: by an earlier attempt of the same deploy. Event and rule decide,
// so a deployment an older version made (no digest) is still found.
func (d Deployment) SameDeploy(marker string) bool {
	m, ok := ParseMark(marker)
	if !ok || !d.Marked {
		return d.Description == marker
	}
	return d.Mark.Event == m.Event && d.Mark.Rule == m.Rule
}

// Active lists grp's active deployments: ListDeployments, then
// GetDeployment of each (CodeDeploy lets a group run one, so usually one
// call). A missing group or application is CodeDeploy's error, wrapped
// (see IsGroupMissing).
func Active(ctx context.Context, client CodeDeploy, grp Group) ([]Deployment, error) {
	p := codedeploy.NewListDeploymentsPaginator(client, &codedeploy.ListDeploymentsInput{
		ApplicationName: aws.String(grp.Application), DeploymentGroupName: aws.String(grp.Name),
		IncludeOnlyStatuses: activeStatuses,
	})
	var out []Deployment
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list active deployments of %s: %w", grp, err)
		}
		for _, id := range page.Deployments {
			got, err := client.GetDeployment(ctx, &codedeploy.GetDeploymentInput{DeploymentId: aws.String(id)})
			if err != nil {
				return nil, fmt.Errorf("get deployment %s: %w", id, err)
			}
			d := Deployment{ID: id}
			if info := got.DeploymentInfo; info != nil {
				d.Description = aws.ToString(info.Description)
				d.Mark, d.Marked = ParseMark(d.Description)
				if rev := info.Revision; rev != nil && rev.AppSpecContent != nil {
					d.TaskDefinition = AppSpec{Content: aws.ToString(rev.AppSpecContent.Content)}.TaskDefinition()
				}
			}
			out = append(out, d)
		}
	}
	return out, nil
}
