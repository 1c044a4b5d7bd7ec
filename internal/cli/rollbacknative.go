package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecsarn"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rollout"
)

// nativeRollback is a rollback of an ECS-native deployment in flight:
// ECS takes the service back to the revision the deployment came from.
type nativeRollback struct {
	// d is the deployment rolled back, among all in flight (one read:
	// the plan shown is of the deployment acted on).
	d   types.ServiceDeployment
	all []types.ServiceDeployment
	now time.Time
	// plan: current is the deployment's target revision, target the one
	// it came from ("" when ECS names none), restores their images.
	plan rollbackPlan
}

// nativeReader is what an ECS-native rollback's plan reads.
type nativeReader interface {
	rollout.ServiceDeploymentReader
	taskDefinitionReader
}

// planNative is the rollback through ECS of the service's ECS-native
// deployment in flight; nil when the service is of another kind or has
// none in flight (the rollback then deploys an older revision). --to names
// a revision of its own: refused while a deployment is in flight, which
// ECS must end first.
func planNative(ctx context.Context, client nativeReader, kind rollout.Kind, cluster, service, to string, now time.Time) (*nativeRollback, error) {
	if !kind.IsECSNative() {
		return nil, nil
	}
	all, err := rollout.InFlight(ctx, client, cluster, service)
	if err != nil {
		return nil, err
	}
	d, found := rollout.RollBackTarget(all)
	if !found {
		return nil, nil
	}
	arn := aws.ToString(d.ServiceDeploymentArn)
	if to != "" {
		return nil, fmt.Errorf("refused: an ECS-native deployment of %s/%s is in flight (service deployment %s, %s); roll it back through ECS first (autodeploy rollback without --to), then name a revision with --to",
			cluster, service, arn, stageOf(d, now))
	}
	n := &nativeRollback{d: d, all: all, now: now}
	var arns []string
	if t := d.TargetServiceRevision; t != nil && aws.ToString(t.Arn) != "" {
		arns = append(arns, aws.ToString(t.Arn))
	}
	source := sourceRevision(d)
	if source != "" {
		arns = append(arns, source)
	}
	if len(arns) == 0 {
		return n, nil
	}
	out, err := client.DescribeServiceRevisions(ctx, &ecs.DescribeServiceRevisionsInput{ServiceRevisionArns: arns})
	if err != nil {
		return nil, fmt.Errorf("read the revisions of service deployment %s: %w", arn, err)
	}
	for _, r := range out.ServiceRevisions {
		switch aws.ToString(r.ServiceRevisionArn) {
		case source:
			n.plan.target = aws.ToString(r.TaskDefinition)
		case arns[0]:
			n.plan.current = aws.ToString(r.TaskDefinition)
		}
	}
	if n.plan.current == "" || n.plan.target == "" {
		return n, nil
	}
	cur, err := describeRevision(ctx, client, n.plan.current)
	if err != nil {
		return nil, err
	}
	tgt, err := describeRevision(ctx, client, n.plan.target)
	if err != nil {
		return nil, err
	}
	n.plan.restores = restores(cur, tgt)
	return n, nil
}

// sourceRevision is the service revision a deployment came from: the one
// serving most of production when it started (ECS lists one, or several
// after an interrupted deployment).
func sourceRevision(d types.ServiceDeployment) string {
	var best string
	var weight float64 = -1
	for _, s := range d.SourceServiceRevisions {
		if w := aws.ToFloat64(s.RequestedProductionTrafficWeight); s.Arn != nil && w > weight {
			best, weight = aws.ToString(s.Arn), w
		}
	}
	return best
}

// would says what the rollback would send, for --dry-run.
func (n *nativeRollback) would() string {
	arn := aws.ToString(n.d.ServiceDeploymentArn)
	what := fmt.Sprintf("service deployment %s (%s)", arn, stageOf(n.d, n.now))
	switch {
	case rollout.RollingBack(n.d):
		what = "ECS is already rolling back " + what + "; nothing would be sent"
	case n.d.Status == types.ServiceDeploymentStatusStopRequested:
		what = "ECS is stopping " + what + " without rollback; it would be refused"
	case rollout.PausedHookID(n.d) != "":
		what = "ContinueServiceDeployment ROLLBACK at the paused hook " + rollout.PausedHookID(n.d) + " of " + what
	default:
		what = "StopServiceDeployment ROLLBACK of " + what
	}
	if n.plan.current != "" && n.plan.target != "" {
		what += fmt.Sprintf(", %s → %s", ecsarn.Revision(n.plan.current), ecsarn.Revision(n.plan.target))
	}
	return what
}

// how says what the rollback did, as ECS was asked.
func (n *nativeRollback) how(a rollout.Action) string {
	if a.HookID != "" {
		return fmt.Sprintf("%s %s at %s", a.Did, a.HookID, a.Stage)
	}
	return a.Did
}
