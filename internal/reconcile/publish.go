package reconcile

import (
	"context"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/deploy"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/taskdef"
)

// ParameterStore is what a sweep asks of Parameter Store: the deployer's
// publishing calls (a read, a write).
type ParameterStore = deploy.SSM

// checkPublished makes sure, for a rule that publishes, that each chosen
// container's parameter holds the image that runs: one read per container
// against the sweep's snapshot, and, only when one is missing or differs,
// the deployer's repair under the service's lock, which describes the
// service again and writes what runs then (a deploy may have overtaken the
// snapshot). A dry run only says so.
func (s *Sweeper) checkPublished(ctx context.Context, o Options, r *rules.Rule, t rules.Target, td *ecs.DescribeTaskDefinitionOutput, containers []string, line *Line) error {
	if r.Publish == nil || s.SSM == nil {
		return nil
	}
	images := map[string]string{}
	for _, c := range containers {
		images[c] = taskdef.Image(td.TaskDefinition, c)
	}
	states, err := deploy.CheckPublished(ctx, s.SSM(line.Region, s.Deployer.ReadRole(t)), r, t, containers, images)
	if err != nil {
		line.Published = "failed"
		return err
	}
	line.Published = "ok"
	var off []deploy.Published
	for _, st := range states {
		if st.State != "ok" {
			off = append(off, st)
		}
	}
	if len(off) == 0 {
		return nil
	}
	if o.DryRun {
		line.Published = off[0].State
		return nil
	}
	written, err := s.Deployer.RepairPublished(ctx, r, t, o.EventID+"/publish/"+r.Name)
	if err != nil {
		line.Published = "failed"
		return err
	}
	if len(written) > 0 {
		line.Published = "written"
	}
	var said []string
	for _, w := range written {
		said = append(said, w.Parameter+" (it was "+w.State+")")
	}
	if len(said) > 0 {
		line.Reason += "; published " + strings.Join(said, ", ")
	}
	return nil
}
