package reconcile

import (
	"context"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecsarn"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
)

// tdARN prefixes the fakes' task definitions.
const tdARN = "arn:aws:ecs:eu-west-1:111111111111:task-definition/"

// familyECS is a fake ECS (not moto) for a clean-up run: the services it
// describes by name, the family's ACTIVE revisions (all the product's:
// tagged), and what was deregistered.
type familyECS struct {
	services     []types.Service
	active       []string
	deregistered []string
	lists        int // ListTaskDefinitions calls
}

func (f *familyECS) DescribeServices(_ context.Context, in *ecs.DescribeServicesInput, _ ...func(*ecs.Options)) (*ecs.DescribeServicesOutput, error) {
	out := &ecs.DescribeServicesOutput{}
	for _, s := range f.services {
		if slices.Contains(in.Services, aws.ToString(s.ServiceName)) {
			out.Services = append(out.Services, s)
		}
	}
	return out, nil
}
func (f *familyECS) ListTaskDefinitions(_ context.Context, in *ecs.ListTaskDefinitionsInput, _ ...func(*ecs.Options)) (*ecs.ListTaskDefinitionsOutput, error) {
	f.lists++
	if in.Status == types.TaskDefinitionStatusInactive {
		return &ecs.ListTaskDefinitionsOutput{}, nil
	}
	var out []string
	for _, r := range f.active {
		out = append(out, tdARN+r)
	}
	return &ecs.ListTaskDefinitionsOutput{TaskDefinitionArns: out}, nil
}
func (f *familyECS) DescribeTaskDefinition(context.Context, *ecs.DescribeTaskDefinitionInput, ...func(*ecs.Options)) (*ecs.DescribeTaskDefinitionOutput, error) {
	return &ecs.DescribeTaskDefinitionOutput{Tags: []types.Tag{{Key: aws.String("autodeploy:rule"), Value: aws.String("x")}}}, nil
}
func (f *familyECS) DeregisterTaskDefinition(_ context.Context, in *ecs.DeregisterTaskDefinitionInput, _ ...func(*ecs.Options)) (*ecs.DeregisterTaskDefinitionOutput, error) {
	rev := ecsarn.Revision(aws.ToString(in.TaskDefinition))
	f.active = slices.DeleteFunc(f.active, func(r string) bool { return r == rev })
	f.deregistered = append(f.deregistered, rev)
	return &ecs.DeregisterTaskDefinitionOutput{}, nil
}
func (f *familyECS) DeleteTaskDefinitions(context.Context, *ecs.DeleteTaskDefinitionsInput, ...func(*ecs.Options)) (*ecs.DeleteTaskDefinitionsOutput, error) {
	return &ecs.DeleteTaskDefinitionsOutput{}, nil
}

// fakeHistory is a service's records, newest first (nil: none).
type fakeHistory []history.Record // newest first

func (h fakeHistory) Recent(_ context.Context, _ string, limit int32) ([]history.Record, error) {
	return h[:min(int(limit), len(h))], nil
}
