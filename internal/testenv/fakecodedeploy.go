package testenv

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy/types"
)

// FakeCodeDeploy is an in-memory CodeDeploy client for what moto lacks:
// deployments that change state (moto's stay "Created"), the one active
// deployment per group (DeploymentLimitExceededException),
// BatchGetDeploymentGroups, and a group deleted and re-created under another
// name (DeleteGroup, then AddGroup). Failures can be injected per operation, and
// LoseCreate applies a CreateDeployment but loses its answer.
type FakeCodeDeploy struct {
	mu          sync.Mutex
	apps        map[string]types.ComputePlatform
	groups      map[string][]types.DeploymentGroupInfo // application → groups
	deployments map[string]*types.DeploymentInfo
	order       []string
	failures    map[string][]error
	calls       map[string]int
	// LoseCreate: the next CreateDeployments are applied, then fail.
	LoseCreate int
}

// NewFakeCodeDeploy returns an empty fake.
func NewFakeCodeDeploy() *FakeCodeDeploy {
	return &FakeCodeDeploy{apps: map[string]types.ComputePlatform{}, groups: map[string][]types.DeploymentGroupInfo{},
		deployments: map[string]*types.DeploymentInfo{}, failures: map[string][]error{}, calls: map[string]int{}}
}

// AddApplication adds an application of the given compute platform.
func (f *FakeCodeDeploy) AddApplication(name string, platform types.ComputePlatform) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.apps[name] = platform
}

// AddGroup adds a group deploying cluster/service; withLB gives it the
// target group pair blue/green needs.
func (f *FakeCodeDeploy) AddGroup(app, group, cluster, service string, withLB bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	info := types.DeploymentGroupInfo{ApplicationName: aws.String(app), DeploymentGroupName: aws.String(group),
		ComputePlatform: f.apps[app]}
	if cluster != "" {
		info.EcsServices = []types.ECSService{{ClusterName: aws.String(cluster), ServiceName: aws.String(service)}}
	}
	if withLB {
		info.LoadBalancerInfo = &types.LoadBalancerInfo{TargetGroupPairInfoList: []types.TargetGroupPairInfo{{
			TargetGroups: []types.TargetGroupInfo{{Name: aws.String(group + "-blue")}, {Name: aws.String(group + "-green")}},
		}}}
	}
	f.groups[app] = append(f.groups[app], info)
}

// DeleteGroup deletes a group, as an operator re-creating it under another
// name would (AddGroup makes the new one). Its deployments stay readable.
func (f *FakeCodeDeploy) DeleteGroup(app, group string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.groups[app] = slices.DeleteFunc(f.groups[app], func(g types.DeploymentGroupInfo) bool {
		return aws.ToString(g.DeploymentGroupName) == group
	})
}

// FailNext makes the next calls of op fail with errs, in order.
func (f *FakeCodeDeploy) FailNext(op string, errs ...error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures[op] = append(f.failures[op], errs...)
}

// Calls returns how often op was called.
func (f *FakeCodeDeploy) Calls(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

// Deployments returns the deployments created, oldest first.
func (f *FakeCodeDeploy) Deployments() []types.DeploymentInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []types.DeploymentInfo
	for _, id := range f.order {
		out = append(out, *f.deployments[id])
	}
	return out
}

// End moves deployment id to status, as CodeDeploy would; rolledBackBy
// names the rollback deployment CodeDeploy started for it, if any.
func (f *FakeCodeDeploy) End(id string, status types.DeploymentStatus, message, rolledBackBy string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.deployments[id]
	d.Status = status
	if message != "" {
		d.ErrorInformation = &types.ErrorInformation{Code: types.ErrorCodeEcsUpdateError, Message: aws.String(message)}
	}
	if rolledBackBy != "" {
		d.RollbackInfo = &types.RollbackInfo{RollbackDeploymentId: aws.String(rolledBackBy), RollbackMessage: aws.String("Automatic rollback triggered by a failed deployment")}
	}
}

func (f *FakeCodeDeploy) fail(op string) error {
	f.calls[op]++
	if errs := f.failures[op]; len(errs) > 0 {
		f.failures[op] = errs[1:]
		return errs[0]
	}
	return nil
}

func (f *FakeCodeDeploy) group(app, name string) (*types.DeploymentGroupInfo, error) {
	if _, ok := f.apps[app]; !ok {
		return nil, &types.ApplicationDoesNotExistException{Message: aws.String("No application found for name: " + app)}
	}
	for i, g := range f.groups[app] {
		if aws.ToString(g.DeploymentGroupName) == name {
			return &f.groups[app][i], nil
		}
	}
	return nil, &types.DeploymentGroupDoesNotExistException{Message: aws.String("No Deployment Group found for name: " + name)}
}

func (f *FakeCodeDeploy) GetDeploymentGroup(_ context.Context, in *codedeploy.GetDeploymentGroupInput, _ ...func(*codedeploy.Options)) (*codedeploy.GetDeploymentGroupOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail("GetDeploymentGroup"); err != nil {
		return nil, err
	}
	g, err := f.group(aws.ToString(in.ApplicationName), aws.ToString(in.DeploymentGroupName))
	if err != nil {
		return nil, err
	}
	out := *g
	return &codedeploy.GetDeploymentGroupOutput{DeploymentGroupInfo: &out}, nil
}

func (f *FakeCodeDeploy) ListApplications(_ context.Context, in *codedeploy.ListApplicationsInput, _ ...func(*codedeploy.Options)) (*codedeploy.ListApplicationsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail("ListApplications"); err != nil {
		return nil, err
	}
	var names []string
	for n := range f.apps {
		names = append(names, n)
	}
	slices.Sort(names)
	// Pages of two, so callers must follow nextToken.
	start := 0
	if in.NextToken != nil {
		fmt.Sscan(aws.ToString(in.NextToken), &start)
	}
	end := min(start+2, len(names))
	out := &codedeploy.ListApplicationsOutput{Applications: names[start:end]}
	if end < len(names) {
		out.NextToken = aws.String(fmt.Sprint(end))
	}
	return out, nil
}

func (f *FakeCodeDeploy) BatchGetApplications(_ context.Context, in *codedeploy.BatchGetApplicationsInput, _ ...func(*codedeploy.Options)) (*codedeploy.BatchGetApplicationsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail("BatchGetApplications"); err != nil {
		return nil, err
	}
	out := &codedeploy.BatchGetApplicationsOutput{}
	for _, n := range in.ApplicationNames {
		out.ApplicationsInfo = append(out.ApplicationsInfo, types.ApplicationInfo{ApplicationName: aws.String(n), ComputePlatform: f.apps[n]})
	}
	return out, nil
}

func (f *FakeCodeDeploy) ListDeploymentGroups(_ context.Context, in *codedeploy.ListDeploymentGroupsInput, _ ...func(*codedeploy.Options)) (*codedeploy.ListDeploymentGroupsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail("ListDeploymentGroups"); err != nil {
		return nil, err
	}
	out := &codedeploy.ListDeploymentGroupsOutput{ApplicationName: in.ApplicationName}
	for _, g := range f.groups[aws.ToString(in.ApplicationName)] {
		out.DeploymentGroups = append(out.DeploymentGroups, aws.ToString(g.DeploymentGroupName))
	}
	return out, nil
}

func (f *FakeCodeDeploy) BatchGetDeploymentGroups(_ context.Context, in *codedeploy.BatchGetDeploymentGroupsInput, _ ...func(*codedeploy.Options)) (*codedeploy.BatchGetDeploymentGroupsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail("BatchGetDeploymentGroups"); err != nil {
		return nil, err
	}
	out := &codedeploy.BatchGetDeploymentGroupsOutput{}
	for _, n := range in.DeploymentGroupNames {
		g, err := f.group(aws.ToString(in.ApplicationName), n)
		if err != nil {
			return nil, err
		}
		out.DeploymentGroupsInfo = append(out.DeploymentGroupsInfo, *g)
	}
	return out, nil
}

func active(d *types.DeploymentInfo) bool {
	switch d.Status {
	case types.DeploymentStatusCreated, types.DeploymentStatusQueued, types.DeploymentStatusInProgress,
		types.DeploymentStatusBaking, types.DeploymentStatusReady:
		return true
	}
	return false
}

func (f *FakeCodeDeploy) CreateDeployment(_ context.Context, in *codedeploy.CreateDeploymentInput, _ ...func(*codedeploy.Options)) (*codedeploy.CreateDeploymentOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail("CreateDeployment"); err != nil {
		return nil, err
	}
	app, name := aws.ToString(in.ApplicationName), aws.ToString(in.DeploymentGroupName)
	if _, err := f.group(app, name); err != nil {
		return nil, err
	}
	for _, id := range f.order {
		d := f.deployments[id]
		if aws.ToString(d.ApplicationName) == app && aws.ToString(d.DeploymentGroupName) == name && active(d) {
			return nil, &types.DeploymentLimitExceededException{Message: aws.String(fmt.Sprintf("The Deployment Group '%s' already has an active Deployment '%s'", name, id))}
		}
	}
	id := fmt.Sprintf("d-FAKE%05d", len(f.order)+1)
	f.deployments[id] = &types.DeploymentInfo{DeploymentId: aws.String(id), ApplicationName: in.ApplicationName,
		DeploymentGroupName: in.DeploymentGroupName, Description: in.Description, Revision: in.Revision,
		Status: types.DeploymentStatusInProgress}
	f.order = append(f.order, id)
	if f.LoseCreate > 0 {
		f.LoseCreate--
		return nil, fmt.Errorf("connection reset after CreateDeployment was applied: %w", context.DeadlineExceeded)
	}
	return &codedeploy.CreateDeploymentOutput{DeploymentId: aws.String(id)}, nil
}

func (f *FakeCodeDeploy) ListDeployments(_ context.Context, in *codedeploy.ListDeploymentsInput, _ ...func(*codedeploy.Options)) (*codedeploy.ListDeploymentsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail("ListDeployments"); err != nil {
		return nil, err
	}
	// As CodeDeploy: a group that does not exist is an error, not an empty list.
	if _, err := f.group(aws.ToString(in.ApplicationName), aws.ToString(in.DeploymentGroupName)); err != nil {
		return nil, err
	}
	out := &codedeploy.ListDeploymentsOutput{}
	for _, id := range f.order {
		d := f.deployments[id]
		if aws.ToString(d.ApplicationName) == aws.ToString(in.ApplicationName) &&
			aws.ToString(d.DeploymentGroupName) == aws.ToString(in.DeploymentGroupName) &&
			(len(in.IncludeOnlyStatuses) == 0 || slices.Contains(in.IncludeOnlyStatuses, d.Status)) {
			out.Deployments = append(out.Deployments, id)
		}
	}
	return out, nil
}

func (f *FakeCodeDeploy) GetDeployment(_ context.Context, in *codedeploy.GetDeploymentInput, _ ...func(*codedeploy.Options)) (*codedeploy.GetDeploymentOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail("GetDeployment"); err != nil {
		return nil, err
	}
	d, ok := f.deployments[aws.ToString(in.DeploymentId)]
	if !ok {
		return nil, &types.DeploymentDoesNotExistException{Message: aws.String("no deployment " + aws.ToString(in.DeploymentId))}
	}
	out := *d
	return &codedeploy.GetDeploymentOutput{DeploymentInfo: &out}, nil
}
