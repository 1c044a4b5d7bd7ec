package cli

import (
	"cmp"
	"context"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/deploy"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecsarn"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rollout"
)

// ECS is what the CLI calls on ECS: the deploy path's calls (plan and
// status run its planner and a dry sweep; rollback describes, reads
// revisions and updates the service) and the service-deployment calls of
// an ECS-native rollout (status and plan read where it stands; continue
// and rollback act on it). Each function takes the narrower interface of
// the calls it makes.
type ECS interface {
	deploy.ECS
	rollout.ServiceDeploymentController
	// ListTaskDefinitions lists a family's revisions (rollback offers the
	// ACTIVE ones; status and plan preview the clean-up).
	ListTaskDefinitions(ctx context.Context, in *ecs.ListTaskDefinitionsInput, optFns ...func(*ecs.Options)) (*ecs.ListTaskDefinitionsOutput, error)
}

// ecsClient is the ECS client the commands use, made from the SDK's:
// Env.ECS may wrap it (tests answer the service-deployment calls moto does
// not have from a fake).
func (env Env) ecsClient(c *ecs.Client) ECS {
	if env.ECS != nil {
		return env.ECS(c)
	}
	return c
}

// serviceDescriber describes services.
type serviceDescriber interface {
	DescribeServices(ctx context.Context, in *ecs.DescribeServicesInput, optFns ...func(*ecs.Options)) (*ecs.DescribeServicesOutput, error)
}

// taskDefinitionReader reads revisions.
type taskDefinitionReader interface {
	DescribeTaskDefinition(ctx context.Context, in *ecs.DescribeTaskDefinitionInput, optFns ...func(*ecs.Options)) (*ecs.DescribeTaskDefinitionOutput, error)
}

// inFlightDeployment is the service's newest service deployment in flight
// (rollout.InFlight); found is false when nothing is in flight. Status and
// plan show where it stands; rollback shows what it would roll back.
func inFlightDeployment(ctx context.Context, client rollout.ServiceDeploymentReader, cluster, service string) (d types.ServiceDeployment, found bool, err error) {
	all, err := rollout.InFlight(ctx, client, cluster, service)
	if err != nil || len(all) == 0 {
		return d, false, err
	}
	return all[0], true, nil
}

// stageOf is where an in-flight service deployment stands, in the words of
// status and plan: rollout.Stage, or that ECS is rolling it back.
func stageOf(d types.ServiceDeployment, now time.Time) string {
	if rollout.RollingBack(d) {
		return "rolling back (" + string(d.Status) + ")"
	}
	return rollout.Stage(d, now)
}

// nativeStage is, for an ECS-native service, where its in-flight
// deployment stands ("" when none is); any other kind costs no call.
func nativeStage(ctx context.Context, client rollout.ServiceDeploymentReader, kind rollout.Kind, cluster, service string, now time.Time) (string, error) {
	if !kind.IsECSNative() {
		return "", nil
	}
	d, found, err := inFlightDeployment(ctx, client, cluster, service)
	if err != nil || !found {
		return "", err
	}
	return stageOf(d, now), nil
}

// rolloutLabel is a service's kind with, in flight, its stage: "rolling",
// "ECS-native CANARY 10% · bake 4 min left" (the stage leads with the
// strategy the kind ends with).
func rolloutLabel(kind rollout.Kind, stage string) string {
	switch {
	case stage == "":
		return kind.String()
	case kind.Strategy != "" && strings.HasPrefix(stage, string(kind.Strategy)):
		return "ECS-native " + stage
	}
	return kind.String() + " · " + stage
}

// kinds remembers each service the sweep described — its kind, and the
// client that described it (its account, region and role) — so that
// status names every target's kind without a call of its own and reads an
// ECS-native service's stage where it runs.
type kinds struct {
	mu   sync.Mutex
	seen map[string]seenService // by history.ServiceKey
}

type seenService struct {
	kind   rollout.Kind
	client ECS
	// svc is the service as described (status previews clean-up from it).
	svc *types.Service
}

func newKinds() *kinds { return &kinds{seen: map[string]seenService{}} }

// observe wraps client so that its DescribeServices answers are noted.
func (k *kinds) observe(client ECS) ECS { return observed{ECS: client, kinds: k} }

func (k *kinds) get(serviceKey string) (seenService, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	s, ok := k.seen[serviceKey]
	return s, ok
}

type observed struct {
	ECS
	kinds *kinds
}

func (o observed) DescribeServices(ctx context.Context, in *ecs.DescribeServicesInput, optFns ...func(*ecs.Options)) (*ecs.DescribeServicesOutput, error) {
	out, err := o.ECS.DescribeServices(ctx, in, optFns...)
	if err != nil {
		return out, err
	}
	o.kinds.mu.Lock()
	defer o.kinds.mu.Unlock()
	for i := range out.Services {
		svc := &out.Services[i]
		a, perr := ecsarn.Parse(aws.ToString(svc.ServiceArn))
		if perr != nil {
			continue
		}
		cluster := cmp.Or(a.Cluster, ecsarn.Name(aws.ToString(svc.ClusterArn)))
		o.kinds.seen[history.ServiceKey(a.Account, a.Region, cluster, a.Name)] = seenService{kind: rollout.KindOf(*svc), client: o.ECS, svc: svc}
	}
	return out, nil
}
