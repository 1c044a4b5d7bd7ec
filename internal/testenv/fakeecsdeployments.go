package testenv

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// FakeECSDeployments is an in-memory model of ECS service deployments,
// service revisions and lifecycle hooks, for what moto lacks entirely: its
// ECS backend (moto 5.2.5, checked in moto/ecs/models.py and responses.py)
// has no ListServiceDeployments, DescribeServiceDeployments,
// DescribeServiceRevisions, ContinueServiceDeployment or
// StopServiceDeployment, ignores deploymentConfiguration (so no strategy,
// bake or hooks), and its UpdateService starts no deployment. Tests that use
// it say so; moto stays the emulator for everything else.
//
// UpdateService here does what ECS does for an ECS-controlled service: it
// makes a service revision of the new task definition and a service
// deployment targeting it (PENDING), and answers with the service's
// currentServiceDeployment. Tests then move a deployment through its stages
// (Advance), pause it at a hook (Pause), trip alarms or the circuit breaker
// and end it (End), as ECS would. Where ECS's wording is not documented
// (error messages, the statusReason of a hook rollback) the fake's own is
// used, and says so.
//
// Failures can be injected per operation (FailNext), and LoseNext applies a
// call and then fails it, as a call whose answer was lost.
type FakeECSDeployments struct {
	// Now is the fake's clock; it defaults to time.Now.
	Now func() time.Time

	mu          sync.Mutex
	services    map[string]*fakeNativeService // "cluster/service"
	deployments map[string]*types.ServiceDeployment
	revisions   map[string]types.ServiceRevision
	failures    map[string][]error
	lose        map[string]int
	calls       map[string]int
	seq         int
}

type fakeNativeService struct {
	cluster, name string
	config        types.DeploymentConfiguration
	current       string // the service revision ARN now in production
}

// NewFakeECSDeployments returns an empty fake.
func NewFakeECSDeployments() *FakeECSDeployments {
	return &FakeECSDeployments{services: map[string]*fakeNativeService{}, deployments: map[string]*types.ServiceDeployment{},
		revisions: map[string]types.ServiceRevision{}, failures: map[string][]error{}, lose: map[string]int{}, calls: map[string]int{}}
}

func (f *FakeECSDeployments) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

func fakeClusterARN(cluster string) string { return arnPrefix(Region) + "cluster/" + cluster }
func fakeServiceARN(cluster, service string) string {
	return arnPrefix(Region) + "service/" + cluster + "/" + service
}

// AddService adds a service with its deployment configuration (strategy,
// bake time, canary or linear steps, hooks) and the task definition it runs
// (its first service revision).
func (f *FakeECSDeployments) AddService(cluster, service string, cfg types.DeploymentConfiguration, taskDefinition string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := &fakeNativeService{cluster: cluster, name: service, config: cfg}
	s.current = f.revisionLocked(s, taskDefinition)
	f.services[cluster+"/"+service] = s
}

// service finds a service named by name or ARN in a cluster named by name
// or ARN.
func (f *FakeECSDeployments) service(cluster, service string) (*fakeNativeService, error) {
	cluster = cluster[strings.LastIndex(cluster, "/")+1:]
	service = service[strings.LastIndex(service, "/")+1:]
	if s, ok := f.services[cluster+"/"+service]; ok {
		return s, nil
	}
	return nil, &types.ServiceNotFoundException{Message: aws.String("Service not found.")}
}

func (f *FakeECSDeployments) revisionLocked(s *fakeNativeService, taskDefinition string) string {
	f.seq++
	arn := fmt.Sprintf("%sservice-revision/%s/%s/%d%018d", arnPrefix(Region), s.cluster, s.name, f.seq, f.seq)
	f.revisions[arn] = types.ServiceRevision{ServiceRevisionArn: aws.String(arn), ServiceArn: aws.String(fakeServiceARN(s.cluster, s.name)),
		ClusterArn: aws.String(fakeClusterARN(s.cluster)), TaskDefinition: aws.String(taskDefinition), CreatedAt: aws.Time(f.now())}
	return arn
}

// StartDeployment makes a service deployment of taskDefinition on a
// service, as an UpdateService (by this product or anyone else) would, and
// returns its ARN.
func (f *FakeECSDeployments) StartDeployment(t testing.TB, cluster, service, taskDefinition string) string {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	s, err := f.service(cluster, service)
	if err != nil {
		t.Fatalf("testenv: StartDeployment on %s/%s: %v", cluster, service, err)
	}
	return f.startLocked(s, taskDefinition)
}

func (f *FakeECSDeployments) startLocked(s *fakeNativeService, taskDefinition string) string {
	target := f.revisionLocked(s, taskDefinition)
	now := f.now()
	arn := fmt.Sprintf("%sservice-deployment/%s/%s/Sd%019d", arnPrefix(Region), s.cluster, s.name, f.seq)
	cfg := s.config
	d := &types.ServiceDeployment{ServiceDeploymentArn: aws.String(arn), ServiceArn: aws.String(fakeServiceARN(s.cluster, s.name)),
		ClusterArn: aws.String(fakeClusterARN(s.cluster)), CreatedAt: aws.Time(now), UpdatedAt: aws.Time(now),
		Status: types.ServiceDeploymentStatusPending, DeploymentConfiguration: &cfg,
		SourceServiceRevisions: []types.ServiceRevisionSummary{{Arn: aws.String(s.current), RequestedProductionTrafficWeight: aws.Float64(100)}},
		TargetServiceRevision:  &types.ServiceRevisionSummary{Arn: aws.String(target), RequestedProductionTrafficWeight: aws.Float64(0)}}
	if a := cfg.Alarms; a != nil && a.Enable {
		d.Alarms = &types.ServiceDeploymentAlarms{AlarmNames: a.AlarmNames, Status: types.ServiceDeploymentRollbackMonitorsStatusMonitoring}
	}
	if cb := cfg.DeploymentCircuitBreaker; cb != nil && cb.Enable {
		d.DeploymentCircuitBreaker = &types.ServiceDeploymentCircuitBreaker{Status: types.ServiceDeploymentRollbackMonitorsStatusMonitoring, Threshold: 3}
	}
	f.deployments[arn] = d
	return arn
}

// Advance moves an in-flight deployment to stage, with the target revision
// taking weight percent of production traffic (negative: unchanged), as
// ECS does step by step; updatedAt becomes now.
func (f *FakeECSDeployments) Advance(arn string, stage types.ServiceDeploymentLifecycleStage, weight float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.deployments[arn]
	d.Status, d.LifecycleStage, d.UpdatedAt = types.ServiceDeploymentStatusInProgress, stage, aws.Time(f.now())
	if d.StartedAt == nil {
		d.StartedAt = aws.Time(f.now())
	}
	if weight >= 0 {
		d.TargetServiceRevision.RequestedProductionTrafficWeight = aws.Float64(weight)
		for i := range d.SourceServiceRevisions {
			d.SourceServiceRevisions[i].RequestedProductionTrafficWeight = aws.Float64(100 - weight)
		}
	}
}

// Pause stops an in-flight deployment at a PAUSE hook of stage (awaiting
// action, expiring after timeout) and returns the hook's id; for linear and
// canary each step's pause has an id of its own, as in ECS.
func (f *FakeECSDeployments) Pause(arn string, stage types.ServiceDeploymentLifecycleStage, timeout time.Duration) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.deployments[arn]
	f.seq++
	id := fmt.Sprintf("ecs-pause-%04dhook", f.seq)
	d.Status, d.LifecycleStage, d.UpdatedAt = types.ServiceDeploymentStatusInProgress, stage, aws.Time(f.now())
	d.LifecycleHookDetails = append(d.LifecycleHookDetails, types.DeploymentLifecycleHookDetail{HookId: aws.String(id),
		TargetType: types.DeploymentLifecycleHookTargetTypePause, Status: types.DeploymentLifecycleHookStatusAwaitingAction,
		ExpiresAt: aws.Time(f.now().Add(timeout)), TimeoutAction: types.DeploymentLifecycleHookActionRollback})
	return id
}

// HookRuns adds a running Lambda hook at stage.
func (f *FakeECSDeployments) HookRuns(arn string, stage types.ServiceDeploymentLifecycleStage, function string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.deployments[arn]
	f.seq++
	d.Status, d.LifecycleStage, d.UpdatedAt = types.ServiceDeploymentStatusInProgress, stage, aws.Time(f.now())
	d.LifecycleHookDetails = append(d.LifecycleHookDetails, types.DeploymentLifecycleHookDetail{HookId: aws.String(fmt.Sprintf("ecs-lambda-%04dhook", f.seq)),
		TargetType: types.DeploymentLifecycleHookTargetTypeAwsLambda, TargetArn: aws.String(function),
		Status: types.DeploymentLifecycleHookStatusInProgress, TimeoutAction: types.DeploymentLifecycleHookActionRollback})
}

// SetHook sets the status of a hook (FAILED, TIMED_OUT, SUCCEEDED…).
func (f *FakeECSDeployments) SetHook(arn, hookID string, status types.DeploymentLifecycleHookStatus) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, h := range f.deployments[arn].LifecycleHookDetails {
		if aws.ToString(h.HookId) == hookID {
			f.deployments[arn].LifecycleHookDetails[i].Status = status
		}
	}
}

// TriggerAlarms records alarms that entered ALARM during the deployment.
func (f *FakeECSDeployments) TriggerAlarms(arn string, names ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.deployments[arn]
	if d.Alarms == nil {
		d.Alarms = &types.ServiceDeploymentAlarms{AlarmNames: names}
	}
	d.Alarms.Status, d.Alarms.TriggeredAlarmNames = types.ServiceDeploymentRollbackMonitorsStatusTriggered, names
}

// TripCircuitBreaker records failed tasks past the circuit breaker's threshold.
func (f *FakeECSDeployments) TripCircuitBreaker(arn string, failures int32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.deployments[arn]
	d.DeploymentCircuitBreaker = &types.ServiceDeploymentCircuitBreaker{Status: types.ServiceDeploymentRollbackMonitorsStatusTriggered,
		FailureCount: failures, Threshold: 3}
}

// End ends a deployment with status and ECS's statusReason; a ROLLBACK_*
// status also gets ECS's rollback (reason, the source revision, a start).
func (f *FakeECSDeployments) End(arn string, status types.ServiceDeploymentStatus, reason, rollbackReason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.endLocked(f.deployments[arn], status, reason, rollbackReason)
}

func (f *FakeECSDeployments) endLocked(d *types.ServiceDeployment, status types.ServiceDeploymentStatus, reason, rollbackReason string) {
	now := f.now()
	d.Status, d.UpdatedAt = status, aws.Time(now)
	if reason != "" {
		d.StatusReason = aws.String(reason)
	}
	switch status {
	case types.ServiceDeploymentStatusSuccessful, types.ServiceDeploymentStatusRollbackSuccessful, types.ServiceDeploymentStatusRollbackFailed:
		d.FinishedAt = aws.Time(now)
	case types.ServiceDeploymentStatusStopped:
		d.StoppedAt = aws.Time(now)
	}
	if status == types.ServiceDeploymentStatusSuccessful {
		d.LifecycleStage = types.ServiceDeploymentLifecycleStageCleanUp
		s, _ := f.service(aws.ToString(d.ClusterArn), aws.ToString(d.ServiceArn))
		s.current = aws.ToString(d.TargetServiceRevision.Arn)
	}
	if strings.HasPrefix(string(status), "ROLLBACK_") && d.Rollback == nil {
		var to *string
		if len(d.SourceServiceRevisions) > 0 {
			to = d.SourceServiceRevisions[0].Arn
		}
		d.Rollback = &types.Rollback{Reason: aws.String(rollbackReason), ServiceRevisionArn: to, StartedAt: aws.Time(now)}
	}
}

// Deployment returns a copy of a service deployment.
func (f *FakeECSDeployments) Deployment(arn string) types.ServiceDeployment {
	f.mu.Lock()
	defer f.mu.Unlock()
	return copyDeployment(f.deployments[arn])
}

// HookStatus is the status of hook hookID of service deployment arn, ""
// when it has no such hook.
func (f *FakeECSDeployments) HookStatus(arn, hookID string) types.DeploymentLifecycleHookStatus {
	for _, h := range f.Deployment(arn).LifecycleHookDetails {
		if aws.ToString(h.HookId) == hookID {
			return h.Status
		}
	}
	return ""
}

func copyDeployment(d *types.ServiceDeployment) types.ServiceDeployment {
	out := *d
	out.LifecycleHookDetails = slices.Clone(d.LifecycleHookDetails)
	out.SourceServiceRevisions = slices.Clone(d.SourceServiceRevisions)
	if d.TargetServiceRevision != nil {
		t := *d.TargetServiceRevision
		out.TargetServiceRevision = &t
	}
	if d.Alarms != nil {
		a := *d.Alarms
		out.Alarms = &a
	}
	if d.Rollback != nil {
		r := *d.Rollback
		out.Rollback = &r
	}
	return out
}

// FailNext makes the next calls of op fail with errs, in order, before
// anything is applied.
func (f *FakeECSDeployments) FailNext(op string, errs ...error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures[op] = append(f.failures[op], errs...)
}

// LoseNext makes the next n calls of op apply and then fail with a
// transient error, as a call whose answer was lost.
func (f *FakeECSDeployments) LoseNext(op string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lose[op] += n
}

// Calls returns how often op was called.
func (f *FakeECSDeployments) Calls(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

// fail counts a call of op and returns its injected failure, or the
// context's error (a call cut off by its deadline).
func (f *FakeECSDeployments) fail(ctx context.Context, op string) error {
	f.calls[op]++
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("testenv: %s: %w", op, err)
	}
	if errs := f.failures[op]; len(errs) > 0 {
		f.failures[op] = errs[1:]
		return errs[0]
	}
	return nil
}

// lost reports whether this applied call's answer is to be lost.
func (f *FakeECSDeployments) lost(op string) error {
	if f.lose[op] == 0 {
		return nil
	}
	f.lose[op]--
	return &types.ServerException{Message: aws.String("testenv: " + op + " applied, its answer lost")}
}

// UpdateService starts a service deployment of the new task definition
// (only taskDefinition is read) and answers as ECS does, with the
// service's currentServiceDeployment and its PRIMARY deployment.
func (f *FakeECSDeployments) UpdateService(ctx context.Context, in *ecs.UpdateServiceInput, _ ...func(*ecs.Options)) (*ecs.UpdateServiceOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(ctx, "UpdateService"); err != nil {
		return nil, err
	}
	s, err := f.service(aws.ToString(in.Cluster), aws.ToString(in.Service))
	if err != nil {
		return nil, err
	}
	td := aws.ToString(in.TaskDefinition)
	arn := f.startLocked(s, td)
	cfg := s.config
	out := &ecs.UpdateServiceOutput{Service: &types.Service{ServiceArn: aws.String(fakeServiceARN(s.cluster, s.name)),
		ServiceName: aws.String(s.name), ClusterArn: aws.String(fakeClusterARN(s.cluster)), Status: aws.String("ACTIVE"),
		TaskDefinition: aws.String(td), DeploymentConfiguration: &cfg, CurrentServiceDeployment: aws.String(arn),
		DeploymentController: &types.DeploymentController{Type: types.DeploymentControllerTypeEcs},
		Deployments: []types.Deployment{{Id: aws.String(fmt.Sprintf("ecs-svc/%019d", f.seq)), Status: aws.String("PRIMARY"),
			TaskDefinition: aws.String(td), RolloutState: types.DeploymentRolloutStateInProgress}}}}
	if err := f.lost("UpdateService"); err != nil {
		return nil, err
	}
	return out, nil
}

// ListServiceDeployments lists a service's deployments, newest first, in
// pages of at most two (so callers follow nextToken), filtered by status
// and createdAt as ECS does.
func (f *FakeECSDeployments) ListServiceDeployments(ctx context.Context, in *ecs.ListServiceDeploymentsInput, _ ...func(*ecs.Options)) (*ecs.ListServiceDeploymentsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(ctx, "ListServiceDeployments"); err != nil {
		return nil, err
	}
	s, err := f.service(aws.ToString(in.Cluster), aws.ToString(in.Service))
	if err != nil {
		return nil, err
	}
	svcARN := fakeServiceARN(s.cluster, s.name)
	var all []types.ServiceDeploymentBrief
	for _, d := range f.deployments {
		if aws.ToString(d.ServiceArn) != svcARN {
			continue
		}
		if len(in.Status) > 0 && !slices.Contains(in.Status, d.Status) {
			continue
		}
		if c := in.CreatedAt; c != nil && (c.After != nil && d.CreatedAt.Before(*c.After) || c.Before != nil && d.CreatedAt.After(*c.Before)) {
			continue
		}
		all = append(all, types.ServiceDeploymentBrief{ServiceDeploymentArn: d.ServiceDeploymentArn, ServiceArn: d.ServiceArn,
			ClusterArn: d.ClusterArn, CreatedAt: d.CreatedAt, StartedAt: d.StartedAt, FinishedAt: d.FinishedAt,
			Status: d.Status, StatusReason: d.StatusReason, TargetServiceRevisionArn: d.TargetServiceRevision.Arn})
	}
	slices.SortFunc(all, func(a, b types.ServiceDeploymentBrief) int {
		if c := b.CreatedAt.Compare(*a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(aws.ToString(b.ServiceDeploymentArn), aws.ToString(a.ServiceDeploymentArn))
	})
	start := 0
	if in.NextToken != nil {
		fmt.Sscan(aws.ToString(in.NextToken), &start)
	}
	size := 2
	if in.MaxResults != nil && int(*in.MaxResults) < size {
		size = int(*in.MaxResults)
	}
	end := min(start+size, len(all))
	out := &ecs.ListServiceDeploymentsOutput{ServiceDeployments: all[start:end]}
	if end < len(all) {
		out.NextToken = aws.String(fmt.Sprint(end))
	}
	return out, nil
}

// DescribeServiceDeployments describes up to 20 deployments; an unknown ARN
// is a failure with reason MISSING, as ECS reports one.
func (f *FakeECSDeployments) DescribeServiceDeployments(ctx context.Context, in *ecs.DescribeServiceDeploymentsInput, _ ...func(*ecs.Options)) (*ecs.DescribeServiceDeploymentsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(ctx, "DescribeServiceDeployments"); err != nil {
		return nil, err
	}
	if len(in.ServiceDeploymentArns) == 0 || len(in.ServiceDeploymentArns) > 20 {
		return nil, &types.InvalidParameterException{Message: aws.String("testenv: between 1 and 20 service deployment ARNs")}
	}
	out := &ecs.DescribeServiceDeploymentsOutput{}
	for _, arn := range in.ServiceDeploymentArns {
		d, ok := f.deployments[arn]
		if !ok {
			out.Failures = append(out.Failures, types.Failure{Arn: aws.String(arn), Reason: aws.String("MISSING")})
			continue
		}
		out.ServiceDeployments = append(out.ServiceDeployments, copyDeployment(d))
	}
	return out, nil
}

// DescribeServiceRevisions describes up to 20 service revisions.
func (f *FakeECSDeployments) DescribeServiceRevisions(ctx context.Context, in *ecs.DescribeServiceRevisionsInput, _ ...func(*ecs.Options)) (*ecs.DescribeServiceRevisionsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(ctx, "DescribeServiceRevisions"); err != nil {
		return nil, err
	}
	if len(in.ServiceRevisionArns) == 0 || len(in.ServiceRevisionArns) > 20 {
		return nil, &types.InvalidParameterException{Message: aws.String("testenv: between 1 and 20 service revision ARNs")}
	}
	out := &ecs.DescribeServiceRevisionsOutput{}
	for _, arn := range in.ServiceRevisionArns {
		r, ok := f.revisions[arn]
		if !ok {
			out.Failures = append(out.Failures, types.Failure{Arn: aws.String(arn), Reason: aws.String("MISSING")})
			continue
		}
		out.ServiceRevisions = append(out.ServiceRevisions, r)
	}
	return out, nil
}

// ContinueServiceDeployment acts on a hook that awaits action: CONTINUE
// marks it SUCCEEDED (the test advances the deployment), ROLLBACK marks it
// FAILED and the deployment ROLLBACK_REQUESTED. A hook that does not await
// action is a ConflictException (ECS's exact error for it is not
// documented; this is the fake's).
func (f *FakeECSDeployments) ContinueServiceDeployment(ctx context.Context, in *ecs.ContinueServiceDeploymentInput, _ ...func(*ecs.Options)) (*ecs.ContinueServiceDeploymentOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(ctx, "ContinueServiceDeployment"); err != nil {
		return nil, err
	}
	arn := aws.ToString(in.ServiceDeploymentArn)
	d, ok := f.deployments[arn]
	if !ok {
		return nil, &types.ServiceDeploymentNotFoundException{Message: aws.String("Service deployment not found.")}
	}
	i := slices.IndexFunc(d.LifecycleHookDetails, func(h types.DeploymentLifecycleHookDetail) bool {
		return aws.ToString(h.HookId) == aws.ToString(in.HookId)
	})
	if i < 0 || d.LifecycleHookDetails[i].Status != types.DeploymentLifecycleHookStatusAwaitingAction {
		return nil, &types.ConflictException{Message: aws.String("testenv: hook " + aws.ToString(in.HookId) + " is not awaiting action")}
	}
	now := f.now()
	d.UpdatedAt = aws.Time(now)
	if in.Action == types.DeploymentLifecycleHookActionRollback {
		d.LifecycleHookDetails[i].Status = types.DeploymentLifecycleHookStatusFailed
		// The fake's wording; ECS's is not documented.
		f.endLocked(d, types.ServiceDeploymentStatusRollbackRequested, "", "testenv: rolled back at lifecycle hook "+aws.ToString(in.HookId))
	} else {
		d.LifecycleHookDetails[i].Status = types.DeploymentLifecycleHookStatusSucceeded
	}
	if err := f.lost("ContinueServiceDeployment"); err != nil {
		return nil, err
	}
	return &ecs.ContinueServiceDeploymentOutput{ServiceDeploymentArn: aws.String(arn)}, nil
}

// StopServiceDeployment stops a PENDING or IN_PROGRESS deployment: with
// ROLLBACK it becomes ROLLBACK_REQUESTED, else STOP_REQUESTED. Any other
// status is a ConflictException (the fake's choice, as above).
func (f *FakeECSDeployments) StopServiceDeployment(ctx context.Context, in *ecs.StopServiceDeploymentInput, _ ...func(*ecs.Options)) (*ecs.StopServiceDeploymentOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(ctx, "StopServiceDeployment"); err != nil {
		return nil, err
	}
	arn := aws.ToString(in.ServiceDeploymentArn)
	d, ok := f.deployments[arn]
	if !ok {
		return nil, &types.ServiceDeploymentNotFoundException{Message: aws.String("Service deployment not found.")}
	}
	if d.Status != types.ServiceDeploymentStatusPending && d.Status != types.ServiceDeploymentStatusInProgress {
		return nil, &types.ConflictException{Message: aws.String("testenv: service deployment is " + string(d.Status))}
	}
	if in.StopType == types.StopServiceDeploymentStopTypeRollback {
		f.endLocked(d, types.ServiceDeploymentStatusRollbackRequested, "", "testenv: stopped with rollback by StopServiceDeployment")
	} else {
		f.endLocked(d, types.ServiceDeploymentStatusStopRequested, "", "")
	}
	if err := f.lost("StopServiceDeployment"); err != nil {
		return nil, err
	}
	return &ecs.StopServiceDeploymentOutput{ServiceDeploymentArn: aws.String(arn)}, nil
}
