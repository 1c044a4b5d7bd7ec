package bluegreen

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"
	"github.com/aws/smithy-go"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// CodeDeploy is the part of the CodeDeploy API deploys and the watcher use.
type CodeDeploy interface {
	GetDeploymentGroup(ctx context.Context, in *codedeploy.GetDeploymentGroupInput, optFns ...func(*codedeploy.Options)) (*codedeploy.GetDeploymentGroupOutput, error)
	ListApplications(ctx context.Context, in *codedeploy.ListApplicationsInput, optFns ...func(*codedeploy.Options)) (*codedeploy.ListApplicationsOutput, error)
	BatchGetApplications(ctx context.Context, in *codedeploy.BatchGetApplicationsInput, optFns ...func(*codedeploy.Options)) (*codedeploy.BatchGetApplicationsOutput, error)
	ListDeploymentGroups(ctx context.Context, in *codedeploy.ListDeploymentGroupsInput, optFns ...func(*codedeploy.Options)) (*codedeploy.ListDeploymentGroupsOutput, error)
	BatchGetDeploymentGroups(ctx context.Context, in *codedeploy.BatchGetDeploymentGroupsInput, optFns ...func(*codedeploy.Options)) (*codedeploy.BatchGetDeploymentGroupsOutput, error)
	CreateDeployment(ctx context.Context, in *codedeploy.CreateDeploymentInput, optFns ...func(*codedeploy.Options)) (*codedeploy.CreateDeploymentOutput, error)
	ListDeployments(ctx context.Context, in *codedeploy.ListDeploymentsInput, optFns ...func(*codedeploy.Options)) (*codedeploy.ListDeploymentsOutput, error)
	GetDeployment(ctx context.Context, in *codedeploy.GetDeploymentInput, optFns ...func(*codedeploy.Options)) (*codedeploy.GetDeploymentOutput, error)
}

// Group is a CodeDeploy deployment group.
type Group struct {
	Application string
	Name        string
}

func (g Group) String() string { return g.Application + "/" + g.Name }

// Groups finds the deployment group of each blue/green service and keeps
// what it found for the life of the execution environment: groups are set
// up once and rarely move. Failures are not kept, so a fixed group is found
// on the next try. The zero value is ready to use.
type Groups struct {
	mu    sync.Mutex
	found map[string]Group
}

// Find returns the group that deploys cluster/service: the one the target
// names (checked to deploy that service and to have load balancer info),
// else the only group of an ECS application whose ecsServices name it.
// scope tells apart clients of different accounts and regions.
func (g *Groups) Find(ctx context.Context, client CodeDeploy, scope, cluster, service string, cd *rules.CodeDeploy) (Group, error) {
	key := cacheKey(scope, cluster, service, cd)
	g.mu.Lock()
	grp, ok := g.found[key]
	g.mu.Unlock()
	if ok {
		return grp, nil
	}
	var err error
	if cd != nil && !cd.Discovers() {
		grp, err = named(ctx, client, Group{cd.Application, cd.DeploymentGroup}, cluster, service)
	} else {
		grp, err = discover(ctx, client, cluster, service)
	}
	if err != nil {
		return Group{}, err
	}
	g.mu.Lock()
	if g.found == nil {
		g.found = map[string]Group{}
	}
	g.found[key] = grp
	g.mu.Unlock()
	return grp, nil
}

// With runs fn with the group of cluster/service (Find's). When fn finds
// the group (or its application) gone, the kept one is stale — deleted, or
// re-created under another name — so it is forgotten, found again, and fn
// runs once more with what was found. It returns the group fn last ran with.
func (g *Groups) With(ctx context.Context, client CodeDeploy, scope, cluster, service string, cd *rules.CodeDeploy, fn func(Group) error) (Group, error) {
	grp, err := g.Find(ctx, client, scope, cluster, service, cd)
	if err != nil {
		return Group{}, err
	}
	err = fn(grp)
	if !IsGroupMissing(err) {
		return grp, err
	}
	g.forget(cacheKey(scope, cluster, service, cd), grp)
	again, ferr := g.Find(ctx, client, scope, cluster, service, cd)
	if ferr != nil {
		return Group{}, fmt.Errorf("deployment group %s is gone (%v); finding it again: %w", grp, err, ferr)
	}
	return again, fn(again)
}

// forget drops the kept group of key if it is still grp (a concurrent
// deploy may have found the new one already).
func (g *Groups) forget(key string, grp Group) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.found[key] == grp {
		delete(g.found, key)
	}
}

func cacheKey(scope, cluster, service string, cd *rules.CodeDeploy) string {
	key := strings.Join([]string{scope, cluster, service}, "|")
	if cd != nil {
		key += "|" + cd.Application + "/" + cd.DeploymentGroup
	}
	return key
}

// IsGroupMissing reports whether CodeDeploy said a deployment group or its
// application does not exist (by the error's code, which typed and generic
// API errors both carry).
func IsGroupMissing(err error) bool {
	var api smithy.APIError
	if !errors.As(err, &api) {
		return false
	}
	switch api.ErrorCode() {
	case (&types.DeploymentGroupDoesNotExistException{}).ErrorCode(), (&types.ApplicationDoesNotExistException{}).ErrorCode():
		return true
	}
	return false
}

func named(ctx context.Context, client CodeDeploy, grp Group, cluster, service string) (Group, error) {
	out, err := client.GetDeploymentGroup(ctx, &codedeploy.GetDeploymentGroupInput{
		ApplicationName: aws.String(grp.Application), DeploymentGroupName: aws.String(grp.Name),
	})
	var missingGroup *types.DeploymentGroupDoesNotExistException
	var missingApp *types.ApplicationDoesNotExistException
	switch {
	case errors.As(err, &missingGroup), errors.As(err, &missingApp):
		return Group{}, Permanent("deployment group %s named for service %s/%s does not exist: %v", grp, cluster, service, err)
	case err != nil:
		return Group{}, fmt.Errorf("get deployment group %s: %w", grp, err)
	}
	info := out.DeploymentGroupInfo
	if info == nil || !deploys(info, cluster, service) {
		return Group{}, Permanent("deployment group %s deploys %s, not service %s/%s", grp, describeServices(info), cluster, service)
	}
	return grp, checkLoadBalancer(grp, info)
}

// discover lists every ECS application's groups for the one deploying
// cluster/service.
func discover(ctx context.Context, client CodeDeploy, cluster, service string) (Group, error) {
	var apps []string
	for p := codedeploy.NewListApplicationsPaginator(client, &codedeploy.ListApplicationsInput{}); p.HasMorePages(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			return Group{}, fmt.Errorf("find the deployment group of %s/%s: list applications: %w", cluster, service, err)
		}
		apps = append(apps, page.Applications...)
	}
	var ecsApps []string
	for batch := range slices.Chunk(apps, 100) {
		out, err := client.BatchGetApplications(ctx, &codedeploy.BatchGetApplicationsInput{ApplicationNames: batch})
		if err != nil {
			return Group{}, fmt.Errorf("find the deployment group of %s/%s: get applications: %w", cluster, service, err)
		}
		for _, a := range out.ApplicationsInfo {
			if a.ComputePlatform == types.ComputePlatformEcs {
				ecsApps = append(ecsApps, aws.ToString(a.ApplicationName))
			}
		}
	}
	slices.Sort(ecsApps)
	var matches []Group
	var matched []*types.DeploymentGroupInfo
	for _, app := range ecsApps {
		var names []string
		for p := codedeploy.NewListDeploymentGroupsPaginator(client, &codedeploy.ListDeploymentGroupsInput{ApplicationName: aws.String(app)}); p.HasMorePages(); {
			page, err := p.NextPage(ctx)
			if err != nil {
				return Group{}, fmt.Errorf("find the deployment group of %s/%s: list groups of %s: %w", cluster, service, app, err)
			}
			names = append(names, page.DeploymentGroups...)
		}
		for batch := range slices.Chunk(names, 100) {
			out, err := client.BatchGetDeploymentGroups(ctx, &codedeploy.BatchGetDeploymentGroupsInput{ApplicationName: aws.String(app), DeploymentGroupNames: batch})
			if err != nil {
				return Group{}, fmt.Errorf("find the deployment group of %s/%s: get groups of %s: %w", cluster, service, app, err)
			}
			for i := range out.DeploymentGroupsInfo {
				info := &out.DeploymentGroupsInfo[i]
				if deploys(info, cluster, service) {
					matches = append(matches, Group{app, aws.ToString(info.DeploymentGroupName)})
					matched = append(matched, info)
				}
			}
		}
	}
	switch len(matches) {
	case 0:
		return Group{}, Permanent("no CodeDeploy deployment group deploys service %s/%s: searched the groups of %d ECS application(s) (%s); create one, or name it in the target's codedeploy",
			cluster, service, len(ecsApps), cmpList(ecsApps))
	case 1:
		return matches[0], checkLoadBalancer(matches[0], matched[0])
	}
	var names []string
	for _, m := range matches {
		names = append(names, m.String())
	}
	return Group{}, Permanent("%d CodeDeploy deployment groups deploy service %s/%s (%s): name the one to use in the target's codedeploy: {application, deployment-group}",
		len(matches), cluster, service, strings.Join(names, ", "))
}

func deploys(info *types.DeploymentGroupInfo, cluster, service string) bool {
	for _, s := range info.EcsServices {
		if aws.ToString(s.ClusterName) == cluster && aws.ToString(s.ServiceName) == service {
			return true
		}
	}
	return false
}

func describeServices(info *types.DeploymentGroupInfo) string {
	if info == nil || len(info.EcsServices) == 0 {
		return "no ECS service"
	}
	var out []string
	for _, s := range info.EcsServices {
		out = append(out, aws.ToString(s.ClusterName)+"/"+aws.ToString(s.ServiceName))
	}
	return strings.Join(out, ", ")
}

func checkLoadBalancer(grp Group, info *types.DeploymentGroupInfo) error {
	lb := info.LoadBalancerInfo
	if lb == nil || len(lb.TargetGroupPairInfoList) == 0 {
		return Permanent("deployment group %s has no load balancer info (a target group pair): CodeDeploy cannot shift an ECS service's traffic without it", grp)
	}
	return nil
}

func cmpList(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
