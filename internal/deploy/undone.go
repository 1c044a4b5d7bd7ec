package deploy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecrevent"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecsarn"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rollout"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/taskdef"
)

// undoneLookback bounds the revisions after the running one that a
// redelivered item describes looking for its own (revisions registered and
// never deployed — a deploy that failed after registering — come between).
const undoneLookback = 10

// undoneReason begins the reason of a target skipped because this event's
// deploy of it was undone before it was recorded.
const undoneReason = "this event's deploy was undone before it was recorded"

// undone finds, for a redelivered item (Job.Redelivered) whose image does
// not run, a deploy of this very event that an earlier receive made and
// that was undone since: a worker killed after UpdateService (its history
// write lost), then ECS's circuit breaker rolled the service back before
// the item came back (18 min later in the stack). The watcher dropped the
// failure and the rollback (no record named the deployment) and the
// repair (unrecorded) only sees a revision that runs, so without this the
// item would deploy the digest ECS just rolled back, again.
//
// It is the newest revision of the family newer than the running one that
// this event registered under this rule (its tags), derived from the
// running revision (autodeploy:from: the rollback returned to it), with the
// service's PRIMARY deployment created after that revision was registered
// (something moved the service after it: without it, the earlier receive
// failed before its UpdateService, and the deploy goes on as usual), and
// no other newer revision registered before that deployment (it, not ours,
// may be what was undone). Anything less certain deploys as before.
//
// The repair it returns records the deploy (recorded at the revision's
// registration time, so a retry writes the same record again) and its end
// as rolled back: the digest is remembered failed on the service, the
// target ends in its rollout, or is notified by itself.
func (d *Deployer) undone(ctx context.Context, client ECS, push ecrevent.Push, rule *rules.Rule, p Plan, res *Result) (*repair, error) {
	if p.Running == nil || p.Service == nil || p.Kind.IsCodeDeployControlled() {
		return nil, nil
	}
	newer, err := newerRevisions(ctx, client, aws.ToString(p.Running.TaskDefinitionArn), p.Running.Revision)
	if err != nil {
		return nil, d.undoneCheckFailed(ctx, res, err)
	}
	var own *ecs.DescribeTaskDefinitionOutput
	var others []*types.TaskDefinition
	for _, out := range slices.Backward(newer) { // newest first
		if taskdef.TagValue(out.Tags, taskdef.TagEvent) == push.EventID && taskdef.TagValue(out.Tags, taskdef.TagRule) == rule.Name {
			own = out
			break
		}
		others = append(others, out.TaskDefinition)
	}
	if own == nil || taskdef.TagValue(own.Tags, taskdef.TagFrom) != p.From {
		return nil, nil
	}
	mine := own.TaskDefinition
	primary := rollout.Primary(p.Service, p.From)
	if primary == nil || primary.CreatedAt == nil || mine.RegisteredAt == nil || !primary.CreatedAt.After(*mine.RegisteredAt) {
		return nil, nil
	}
	for _, o := range others {
		if o.RegisteredAt == nil || !o.RegisteredAt.After(*primary.CreatedAt) {
			return nil, nil
		}
	}
	revision := aws.ToString(mine.TaskDefinitionArn)
	var deploymentID string
	for _, dep := range p.Service.Deployments {
		if aws.ToString(dep.TaskDefinition) == revision {
			deploymentID = aws.ToString(dep.Id)
		}
	}
	reason := fmt.Sprintf("%s runs again (deployment %s, created %s) after this event deployed %s: rolled back, or replaced by hand, before its end was recorded",
		ecsarn.Revision(p.From), aws.ToString(primary.Id), primary.CreatedAt.UTC().Format("2006-01-02T15:04:05Z"), ecsarn.Revision(revision))
	rec := d.record(push, Result{Rule: res.Rule, Account: res.Account, Region: res.Region, Cluster: res.Cluster,
		Service: res.Service, Containers: res.Containers, From: p.From, To: revision, DeploymentID: deploymentID,
		Outcome: Deployed, Reason: repairedReason})
	rec.DeployedAt = *mine.RegisteredAt
	res.Outcome = Skipped
	res.Reason = undoneReason + ": " + reason + "; " + push.Digest + " is not deployed again (only a newer image moves the service)"
	res.ownRevision = true
	return &repair{rec: &rec, deploymentID: deploymentID, outcome: history.RolledBack, reason: reason}, nil
}

// undoneCheckFailed is the error of an undone check that could not read
// ECS: a transient one returns the item (its next receive checks again);
// any other (a deploy role denied the describe, a stack
// updated after the worker) is logged and the deploy goes on, as it did
// before the check.
func (d *Deployer) undoneCheckFailed(ctx context.Context, res *Result, err error) error {
	if !IsPermanent(err) {
		return fmt.Errorf("look for an undone deploy of this event: %w", err)
	}
	d.Log.WarnContext(ctx, "undone deploy not checked", "cluster", res.Cluster, "service", res.Service, "error", err.Error())
	return nil
}

// newerRevisions describes (with tags) the revisions registered after the
// running one, oldest first: family:running+1, +2, … until ECS knows none
// (ClientException: a number never registered) or undoneLookback of them.
// Exact where a familyPrefix listing would not be: it lists longer
// families (web-api under web) first, sorted by name, and pages of 100.
func newerRevisions(ctx context.Context, client ECS, runningARN string, running int32) ([]*ecs.DescribeTaskDefinitionOutput, error) {
	prefix := runningARN[:strings.LastIndex(runningARN, ":")+1]
	var newer []*ecs.DescribeTaskDefinitionOutput
	for n := running + 1; n <= running+undoneLookback; n++ {
		arn := prefix + strconv.Itoa(int(n))
		out, err := client.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{
			TaskDefinition: aws.String(arn), Include: []types.TaskDefinitionField{types.TaskDefinitionFieldTags}})
		var apiErr smithy.APIError
		if errors.As(err, &apiErr) && apiErr.ErrorCode() == "ClientException" {
			break // not registered (yet): the newest is behind
		}
		if err != nil {
			return nil, fmt.Errorf("describe task definition %s: %w", arn, err)
		}
		newer = append(newer, out)
	}
	return newer, nil
}
