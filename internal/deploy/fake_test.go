package deploy

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/lock"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/taskdef"
)

// fakeECS is an in-memory ECS for what moto cannot show: deployment
// controllers, inactive services, injected throttling, deployment ids.
type fakeECS struct {
	mu        sync.Mutex
	services  map[string]*types.Service // cluster/service
	taskDefs  map[string]*ecs.DescribeTaskDefinitionOutput
	revisions map[string]int32
	failures  map[string][]error // operation → errors returned, in order, before succeeding
	calls     map[string]int
	deploys   int
}

func newFakeECS() *fakeECS {
	return &fakeECS{services: map[string]*types.Service{}, taskDefs: map[string]*ecs.DescribeTaskDefinitionOutput{},
		revisions: map[string]int32{}, failures: map[string][]error{}, calls: map[string]int{}}
}

func (f *fakeECS) fail(op string) error {
	f.calls[op]++
	if errs := f.failures[op]; len(errs) > 0 {
		f.failures[op] = errs[1:]
		return errs[0]
	}
	return nil
}

// addTaskDef registers a task definition directly and returns its ARN.
func (f *fakeECS) addTaskDef(td types.TaskDefinition, tags []types.Tag) string {
	family := aws.ToString(td.Family)
	f.revisions[family]++
	arn := fmt.Sprintf("arn:aws:ecs:eu-west-1:123456789012:task-definition/%s:%d", family, f.revisions[family])
	td.TaskDefinitionArn, td.Revision, td.Status = aws.String(arn), f.revisions[family], types.TaskDefinitionStatusActive
	td.RegisteredAt = aws.Time(time.Now())
	f.taskDefs[arn] = &ecs.DescribeTaskDefinitionOutput{TaskDefinition: &td, Tags: tags}
	return arn
}

func (f *fakeECS) addService(cluster, name, taskDefARN string, mutate ...func(*types.Service)) {
	svc := &types.Service{ServiceName: aws.String(name), Status: aws.String("ACTIVE"), TaskDefinition: aws.String(taskDefARN),
		DeploymentController: &types.DeploymentController{Type: types.DeploymentControllerTypeEcs}}
	for _, m := range mutate {
		m(svc)
	}
	f.services[cluster+"/"+name] = svc
}

func (f *fakeECS) DescribeServices(_ context.Context, in *ecs.DescribeServicesInput, _ ...func(*ecs.Options)) (*ecs.DescribeServicesOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail("DescribeServices"); err != nil {
		return nil, err
	}
	out := &ecs.DescribeServicesOutput{}
	for _, name := range in.Services {
		if svc, ok := f.services[aws.ToString(in.Cluster)+"/"+name]; ok {
			out.Services = append(out.Services, *svc)
		} else {
			out.Failures = append(out.Failures, types.Failure{Arn: aws.String(name), Reason: aws.String("MISSING")})
		}
	}
	return out, nil
}

func (f *fakeECS) DescribeTaskDefinition(_ context.Context, in *ecs.DescribeTaskDefinitionInput, _ ...func(*ecs.Options)) (*ecs.DescribeTaskDefinitionOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail("DescribeTaskDefinition"); err != nil {
		return nil, err
	}
	td, ok := f.taskDefs[aws.ToString(in.TaskDefinition)]
	if !ok {
		return nil, &smithy.GenericAPIError{Code: "ClientException", Message: "Unable to describe task definition.", Fault: smithy.FaultClient}
	}
	out := *td
	if len(in.Include) == 0 {
		out.Tags = nil
	}
	return &out, nil
}

func (f *fakeECS) RegisterTaskDefinition(_ context.Context, in *ecs.RegisterTaskDefinitionInput, _ ...func(*ecs.Options)) (*ecs.RegisterTaskDefinitionOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail("RegisterTaskDefinition"); err != nil {
		return nil, err
	}
	if in.Tags != nil && len(in.Tags) == 0 {
		return nil, &smithy.GenericAPIError{Code: "InvalidParameterException", Message: "empty tags", Fault: smithy.FaultClient}
	}
	if len(in.Tags) > taskdef.MaxTags {
		return nil, &smithy.GenericAPIError{Code: "InvalidParameterException", Message: "too many tags", Fault: smithy.FaultClient}
	}
	td := types.TaskDefinition{
		Family: in.Family, ContainerDefinitions: in.ContainerDefinitions, Cpu: in.Cpu, Memory: in.Memory,
		NetworkMode: in.NetworkMode, IpcMode: in.IpcMode, PidMode: in.PidMode, TaskRoleArn: in.TaskRoleArn,
		ExecutionRoleArn: in.ExecutionRoleArn, Volumes: in.Volumes, RequiresCompatibilities: in.RequiresCompatibilities,
		RuntimePlatform: in.RuntimePlatform, EphemeralStorage: in.EphemeralStorage,
	}
	arn := f.addTaskDef(td, in.Tags)
	return &ecs.RegisterTaskDefinitionOutput{TaskDefinition: f.taskDefs[arn].TaskDefinition, Tags: in.Tags}, nil
}

func (f *fakeECS) UpdateService(_ context.Context, in *ecs.UpdateServiceInput, _ ...func(*ecs.Options)) (*ecs.UpdateServiceOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail("UpdateService"); err != nil {
		return nil, err
	}
	if in.DesiredCount != nil || in.LoadBalancers != nil || in.NetworkConfiguration != nil || in.CapacityProviderStrategy != nil {
		return nil, fmt.Errorf("UpdateService must only change the task definition, got %+v", in)
	}
	svc := f.services[aws.ToString(in.Cluster)+"/"+aws.ToString(in.Service)]
	if dc := svc.DeploymentController; dc != nil && dc.Type == types.DeploymentControllerTypeCodeDeploy && in.TaskDefinition != nil {
		return nil, &smithy.GenericAPIError{Code: "InvalidParameterException", Message: "Unable to update task definition on services with a CODE_DEPLOY deployment controller. Use AWS CodeDeploy to trigger a new deployment.", Fault: smithy.FaultClient}
	}
	f.deploys++
	svc.TaskDefinition = in.TaskDefinition
	svc.Deployments = []types.Deployment{
		{Id: aws.String(fmt.Sprintf("ecs-svc/%d", 1000+f.deploys)), Status: aws.String("PRIMARY"), TaskDefinition: in.TaskDefinition,
			CreatedAt: aws.Time(time.Now())},
	}
	out := *svc
	return &ecs.UpdateServiceOutput{Service: &out}, nil
}

// ListTaskDefinitions lists a family's revisions as moto does: the exact
// family, oldest first, in one page.
func (f *fakeECS) ListTaskDefinitions(_ context.Context, in *ecs.ListTaskDefinitionsInput, _ ...func(*ecs.Options)) (*ecs.ListTaskDefinitionsOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail("ListTaskDefinitions"); err != nil {
		return nil, err
	}
	out := &ecs.ListTaskDefinitionsOutput{}
	family := aws.ToString(in.FamilyPrefix)
	for n := int32(1); n <= f.revisions[family]; n++ {
		out.TaskDefinitionArns = append(out.TaskDefinitionArns, fmt.Sprintf("arn:aws:ecs:eu-west-1:123456789012:task-definition/%s:%d", family, n))
	}
	return out, nil
}

// current returns the task definition a service runs now.
func (f *fakeECS) current(cluster, service string) *ecs.DescribeTaskDefinitionOutput {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.taskDefs[aws.ToString(f.services[cluster+"/"+service].TaskDefinition)]
}

// memServices is an in-process Services: per-service locks and state, with
// failures to inject where DynamoDB can fail.
type memServices struct {
	mu      sync.Mutex
	cond    *sync.Cond
	held    map[string]bool
	state   map[string]history.ServiceState
	records []history.Record
	taken   []string
	fail    error // Take fails with it
	lost    bool  // Check reports the lease lost
	// deadHolder is the holder a Take takes over, as from a worker that
	// died holding the lease ("" : the lock was free).
	deadHolder string
}

func newMemServices() *memServices {
	s := &memServices{held: map[string]bool{}, state: map[string]history.ServiceState{}}
	s.cond = sync.NewCond(&s.mu)
	return s
}

func (s *memServices) Take(_ context.Context, key, _ string) (history.Held, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return nil, s.fail
	}
	for s.held[key] {
		s.cond.Wait()
	}
	s.held[key] = true
	s.taken = append(s.taken, key)
	return &memHeld{s: s, key: key, state: s.state[key], tookOver: s.deadHolder}, nil
}

// fixState changes a service's state as the watcher would.
func (s *memServices) fixState(key string, change func(*history.ServiceState)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state[key]
	change(&st)
	s.state[key] = st
}

func (s *memServices) recorded() []history.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.records)
}

type memHeld struct {
	s        *memServices
	key      string
	state    history.ServiceState
	tookOver string
}

func (h *memHeld) State() history.ServiceState { return h.state }

func (h *memHeld) Check() error {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	if h.s.lost {
		return lock.ErrLeaseLost
	}
	return nil
}

func (h *memHeld) Release(context.Context) error {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	delete(h.s.held, h.key)
	h.s.cond.Broadcast()
	return nil
}

func (h *memHeld) TookOver() string { return h.tookOver }

func (h *memHeld) Finish(ctx context.Context, r history.Record) error {
	h.s.mu.Lock()
	h.s.records = append(h.s.records, r)
	st := h.s.state[h.key]
	if r.Outcome == history.Failed {
		if st.LastFailures == nil {
			st.LastFailures = map[string]string{}
		}
		st.LastFailures[r.Rule] = history.FailureKey(r.EventID, r.Rule)
	} else {
		st.LastTaskDefinition = r.ToTaskDefinition
		if r.DeploymentID != "" && r.DeploymentOutcome == "" {
			st.UnderWay = append(st.UnderWay, r.DeploymentID)
		}
	}
	h.s.state[h.key] = st
	h.s.mu.Unlock()
	return h.Release(ctx)
}
