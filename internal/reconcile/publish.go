package reconcile

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/deploy"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecsarn"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/taskdef"
)

// ParameterStore is what a sweep asks of Parameter Store.
type ParameterStore interface {
	deploy.SSM
	GetParameter(ctx context.Context, in *ssm.GetParameterInput, optFns ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
}

// checkPublished makes sure, for a rule that publishes, that each chosen
// container's parameter holds the image that runs: one read per container,
// and a write only when it is missing or differs. A dry run only says so.
func (s *Sweeper) checkPublished(ctx context.Context, o Options, r *rules.Rule, t rules.Target, td *ecs.DescribeTaskDefinitionOutput, containers []string, line *Line) error {
	if r.Publish == nil || s.SSM == nil {
		return nil
	}
	client := s.SSM(line.Region, t.RoleFor(s.central()))
	line.Published = "ok"
	for _, c := range containers {
		running := taskdef.Image(td.TaskDefinition, c)
		name := r.Publish.Parameter(ecsarn.Name(t.Cluster), ecsarn.Name(t.Service), c)
		out, err := client.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
		var missing *ssmtypes.ParameterNotFound
		state := ""
		switch {
		case errors.As(err, &missing):
			state = "missing"
		case err != nil:
			line.Published = "failed"
			return fmt.Errorf("read %s: %w", name, err)
		case aws.ToString(out.Parameter.Value) != running:
			state = "stale"
		default:
			continue
		}
		if o.DryRun {
			line.Published = state
			continue
		}
		if err := deploy.Publish(ctx, client, s.Log, r, t, []string{c}, running); err != nil {
			line.Published = "failed"
			return err
		}
		line.Published = "written"
		line.Reason += "; published " + name + " (it was " + state + ")"
	}
	return nil
}
