package rollout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// ErrNoServiceDeployment: no service deployment of the service targets the
// revision (yet). ECS lists one moments after UpdateService, so right after
// a start it passes; much later, the revision never rolled out.
var ErrNoServiceDeployment = errors.New("no service deployment targets the revision")

// Query names the service deployment to find: the one of Cluster/Service
// whose target revision runs TaskDefinition.
type Query struct {
	Cluster, Service, TaskDefinition string
	// Since is when the rollout was started; zero: not known.
	Since time.Time
	// Known is a service deployment ARN to try first (Start's
	// ServiceDeploymentARN); it is used only if it targets TaskDefinition.
	Known string
}

// listSkew is how long before Since a service deployment may have been
// created: Since is the product's clock, taken after UpdateService.
const listSkew = 5 * time.Minute

// listPages bounds the pages read when Since is not known, windowPages
// those from Since on (a window of minutes holds a page or two).
const (
	listPages   = 5
	windowPages = 50
)

// FindServiceDeployment finds the service deployment that targets
// q.TaskDefinition. A service deployment's targetServiceRevision carries
// the service revision's ARN only, so the revisions are described
// (DescribeServiceRevisions) to learn their task definitions. With a known
// ARN that is right, that costs DescribeServiceDeployments and
// DescribeServiceRevisions; else ListServiceDeployments (from Since less a
// few minutes), DescribeServiceRevisions (20 at a time, stopping at the
// match) and DescribeServiceDeployments of the match.
//
// With Since, the oldest match created after it is the one (the revision
// was registered just before its start, so nothing older targets it; a
// later deployment of the same revision, forced by hand, is not the
// product's). Without it, the newest match, from at most five pages.
func FindServiceDeployment(ctx context.Context, client ServiceDeploymentReader, q Query) (types.ServiceDeployment, error) {
	if q.Known != "" {
		d, err := describeDeployment(ctx, client, q.Known)
		if err != nil {
			return types.ServiceDeployment{}, err
		}
		if d.TargetServiceRevision != nil {
			tds, err := revisionTaskDefinitions(ctx, client, []string{aws.ToString(d.TargetServiceRevision.Arn)})
			if err != nil {
				return types.ServiceDeployment{}, err
			}
			if tds[aws.ToString(d.TargetServiceRevision.Arn)] == q.TaskDefinition {
				return d, nil
			}
		}
	}
	briefs, err := listDeployments(ctx, client, q)
	if err != nil {
		return types.ServiceDeployment{}, err
	}
	oldestFirst := !q.Since.IsZero()
	slices.SortStableFunc(briefs, func(a, b types.ServiceDeploymentBrief) int {
		c := aws.ToTime(a.CreatedAt).Compare(aws.ToTime(b.CreatedAt))
		if !oldestFirst {
			c = -c
		}
		return c
	})
	var revisions []string
	for _, b := range briefs {
		if r := aws.ToString(b.TargetServiceRevisionArn); r != "" && !slices.Contains(revisions, r) {
			revisions = append(revisions, r)
		}
	}
	tds := map[string]string{}
	for chunk := range slices.Chunk(revisions, 20) {
		got, err := revisionTaskDefinitions(ctx, client, chunk)
		if err != nil {
			return types.ServiceDeployment{}, err
		}
		for k, v := range got {
			tds[k] = v
		}
		for _, b := range briefs {
			if tds[aws.ToString(b.TargetServiceRevisionArn)] == q.TaskDefinition {
				return describeDeployment(ctx, client, aws.ToString(b.ServiceDeploymentArn))
			}
		}
	}
	if !q.Since.IsZero() {
		// Since may be late: a record a repair wrote after a worker died
		// (its item back after the queue's visibility timeout, or redriven
		// hours later). Before saying there is none, the newest match of
		// the service's latest deployments, whenever made.
		return FindServiceDeployment(ctx, client, Query{Cluster: q.Cluster, Service: q.Service, TaskDefinition: q.TaskDefinition})
	}
	return types.ServiceDeployment{}, fmt.Errorf("service %s/%s: %w %s (%d service deployment(s) listed)",
		q.Cluster, q.Service, ErrNoServiceDeployment, q.TaskDefinition, len(briefs))
}

func listDeployments(ctx context.Context, client ServiceDeploymentReader, q Query) ([]types.ServiceDeploymentBrief, error) {
	in := &ecs.ListServiceDeploymentsInput{Cluster: aws.String(q.Cluster), Service: aws.String(q.Service), MaxResults: aws.Int32(100)}
	if !q.Since.IsZero() {
		in.CreatedAt = &types.CreatedAt{After: aws.Time(q.Since.Add(-listSkew))}
	}
	var out []types.ServiceDeploymentBrief
	// The SDK has no paginator for it; nextToken is followed here.
	for pages := 0; pages < listPages || !q.Since.IsZero() && pages < windowPages; pages++ {
		page, err := client.ListServiceDeployments(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list service deployments of %s/%s: %w", q.Cluster, q.Service, err)
		}
		out = append(out, page.ServiceDeployments...)
		if aws.ToString(page.NextToken) == "" {
			break
		}
		in.NextToken = page.NextToken
	}
	return out, nil
}

// revisionTaskDefinitions maps service revision ARNs (at most 20) to their
// task definitions.
func revisionTaskDefinitions(ctx context.Context, client ServiceDeploymentReader, arns []string) (map[string]string, error) {
	out, err := client.DescribeServiceRevisions(ctx, &ecs.DescribeServiceRevisionsInput{ServiceRevisionArns: arns})
	if err != nil {
		return nil, fmt.Errorf("describe service revisions %s: %w", strings.Join(arns, ", "), err)
	}
	tds := map[string]string{}
	for _, r := range out.ServiceRevisions {
		tds[aws.ToString(r.ServiceRevisionArn)] = aws.ToString(r.TaskDefinition)
	}
	return tds, nil
}

func describeDeployment(ctx context.Context, client ServiceDeploymentReader, arn string) (types.ServiceDeployment, error) {
	ds, err := describeDeployments(ctx, client, []string{arn})
	if err != nil {
		return types.ServiceDeployment{}, err
	}
	return ds[0], nil
}

// describeDeployments describes at most 20 service deployments; one ECS
// cannot describe is an error (MISSING: its revision predates service
// revisions, October 2024).
func describeDeployments(ctx context.Context, client ServiceDeploymentReader, arns []string) ([]types.ServiceDeployment, error) {
	out, err := client.DescribeServiceDeployments(ctx, &ecs.DescribeServiceDeploymentsInput{ServiceDeploymentArns: arns})
	if err != nil {
		return nil, fmt.Errorf("describe service deployments %s: %w", strings.Join(arns, ", "), err)
	}
	for _, f := range out.Failures {
		return nil, fmt.Errorf("describe service deployment %s: %s %s", aws.ToString(f.Arn), aws.ToString(f.Reason), aws.ToString(f.Detail))
	}
	if len(out.ServiceDeployments) != len(arns) {
		return nil, fmt.Errorf("describe service deployments %s: %d described", strings.Join(arns, ", "), len(out.ServiceDeployments))
	}
	return out.ServiceDeployments, nil
}
