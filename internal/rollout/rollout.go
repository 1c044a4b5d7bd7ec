package rollout

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// Rollout is one kind's way to roll a new revision out on a service and to
// read how it ended.
type Rollout interface {
	Kind() Kind
	// Start rolls rev out; the caller registered its task definition.
	Start(ctx context.Context, rev Revision) (Started, error)
	// Outcome reads how the rollout an event reports on ended, from the
	// event and, where the event is not the whole truth, the APIs.
	Outcome(ctx context.Context, end End) (Outcome, error)
}

// Revision is a revision to roll out.
type Revision struct {
	Cluster, Service string
	// TaskDefinition is the ARN the caller registered.
	TaskDefinition string
	// Described is the service as the caller described it: CodeDeploy's
	// AppSpec takes its load balancer, platform version, network
	// configuration and capacity provider strategy.
	Described *types.Service
	// Origin says what asked for the rollout; CodeDeploy's deployment
	// description carries it (bluegreen.Mark).
	Origin Origin
}

// Origin is the push (or sweep) and rule a rollout is for.
type Origin struct {
	Event, Rule, Digest string
}

// Started is a rollout Start began (or found begun).
type Started struct {
	// DeploymentID is the ECS controller's PRIMARY deployment (ecs-svc/…)
	// or CodeDeploy's deployment (d-…): the id history and the events
	// share.
	DeploymentID string
	// TaskDefinition is what the rollout deploys: the revision's or, for a
	// CodeDeploy deployment an earlier attempt created (its answer lost),
	// that attempt's.
	TaskDefinition string
	// ServiceDeploymentARN is the service's currentServiceDeployment in
	// UpdateService's answer (ECS controller), when ECS gives one. It is a
	// hint for Outcome (End.ServiceDeploymentARN), checked before use.
	ServiceDeploymentARN string
}

// End is what the watcher knows when an event reports on a rollout the
// product started: its history record and the event.
type End struct {
	Cluster, Service string
	// TaskDefinition is the revision the product registered (history's to).
	TaskDefinition string
	// DeploymentID is history's deployment id (ecs-svc/… or d-…).
	DeploymentID string
	// ServiceDeploymentARN is the one Start returned, if any.
	ServiceDeploymentARN string
	// StartedAt is when the product started the rollout (history's
	// deployed_at); ECS-native lists the service's deployments from a
	// little before it.
	StartedAt time.Time
	// Recorded is an outcome history already holds (a duplicate event):
	// no kind reads anything then. ECS-native returns it; CodeDeploy maps
	// the state without GetDeployment (as the watcher did); rolling reads
	// nothing in any case.
	Recorded string
	// Event is what the event says.
	Event Event
}

// Event is the part of an ECS or CodeDeploy event a kind reads.
type Event struct {
	// Name is the ECS event's eventName (ecsevent.Completed, Failed,
	// InProgress) or CodeDeploy's state (codedeployevent.Success,
	// Failure, Stop, Start, Ready).
	Name string
	// RollingBack: an ECS in-progress event of a circuit-breaker rollback
	// (ecsevent.Deployment.RollingBackTo).
	RollingBack bool
	// Reason is the event's reason, if it has one.
	Reason string
}

// Outcome is how a rollout ended, in history's vocabulary, or where it
// stands while in flight.
type Outcome struct {
	// Outcome is history.Completed, history.Failed or history.RolledBack;
	// "" while the rollout is in flight.
	Outcome string
	Reason  string
	// Stage is, in flight, where an ECS-native rollout stands ("CANARY
	// 10% · bake 4 min left", "BLUE_GREEN 0% · paused at
	// PRE_PRODUCTION_TRAFFIC_SHIFT"); see Stage.
	Stage string
	// RecheckAt is, in flight, when a bake ends: the next moment the
	// outcome may be known without another event.
	RecheckAt time.Time
	// Paused is, in flight, a deployment waiting at a PAUSE hook for a
	// person (autodeploy continue or rollback).
	Paused bool
	// At is, once ended, when ECS says it ended (the service deployment's
	// finishedAt, else stoppedAt, else updatedAt); zero when not known.
	At time.Time
	// ServiceDeploymentARN and Status are ECS-native's service deployment.
	ServiceDeploymentARN string
	Status               types.ServiceDeploymentStatus
}

// InFlight reports whether the rollout has not ended yet.
func (o Outcome) InFlight() bool { return o.Outcome == "" }

// ECSControlled is the rollout of a service on the ECS controller of kind
// k: ECS-native for BLUE_GREEN, LINEAR and CANARY, else rolling. Both start
// with the same UpdateService; only how they end differs.
func ECSControlled(k Kind, client UpdateServiceAPI) Rollout {
	if k.IsECSNative() {
		return NativeRollout{Strategy: k.Strategy, ECS: client}
	}
	return RollingRollout{ECS: client}
}

// UpdateServiceAPI is the one call rolling and ECS-native rollouts start with.
type UpdateServiceAPI interface {
	UpdateService(ctx context.Context, in *ecs.UpdateServiceInput, optFns ...func(*ecs.Options)) (*ecs.UpdateServiceOutput, error)
}

// ServiceDeploymentReader reads a service's service deployments and the
// revisions they target.
type ServiceDeploymentReader interface {
	ListServiceDeployments(ctx context.Context, in *ecs.ListServiceDeploymentsInput, optFns ...func(*ecs.Options)) (*ecs.ListServiceDeploymentsOutput, error)
	DescribeServiceDeployments(ctx context.Context, in *ecs.DescribeServiceDeploymentsInput, optFns ...func(*ecs.Options)) (*ecs.DescribeServiceDeploymentsOutput, error)
	DescribeServiceRevisions(ctx context.Context, in *ecs.DescribeServiceRevisionsInput, optFns ...func(*ecs.Options)) (*ecs.DescribeServiceRevisionsOutput, error)
}

// ServiceDeploymentController also continues and stops service deployments
// (the CLI's continue and rollback).
type ServiceDeploymentController interface {
	ServiceDeploymentReader
	ContinueServiceDeployment(ctx context.Context, in *ecs.ContinueServiceDeploymentInput, optFns ...func(*ecs.Options)) (*ecs.ContinueServiceDeploymentOutput, error)
	StopServiceDeployment(ctx context.Context, in *ecs.StopServiceDeploymentInput, optFns ...func(*ecs.Options)) (*ecs.StopServiceDeploymentOutput, error)
}

// updateService is the start of rolling and ECS-native rollouts: the task
// definition only, so desired count, autoscaling, load balancers and the
// deployment configuration (the strategy too) stay their owners'.
func updateService(ctx context.Context, client UpdateServiceAPI, rev Revision) (Started, error) {
	if client == nil {
		return Started{}, fmt.Errorf("update service %s/%s: no ECS client", rev.Cluster, rev.Service)
	}
	out, err := client.UpdateService(ctx, &ecs.UpdateServiceInput{
		Cluster:        aws.String(rev.Cluster),
		Service:        aws.String(rev.Service),
		TaskDefinition: aws.String(rev.TaskDefinition),
	})
	if err != nil {
		return Started{}, fmt.Errorf("update service %s/%s to %s: %w", rev.Cluster, rev.Service, rev.TaskDefinition, err)
	}
	s := Started{TaskDefinition: rev.TaskDefinition}
	if svc := out.Service; svc != nil {
		s.DeploymentID = PrimaryDeployment(svc, rev.TaskDefinition)
		s.ServiceDeploymentARN = aws.ToString(svc.CurrentServiceDeployment)
	}
	return s, nil
}

// PrimaryDeployment is the id of the PRIMARY deployment running taskDef,
// else of the first PRIMARY deployment; "" for no service. The deploy path
// reads an UpdateService answer (and a described service) with it too.
func PrimaryDeployment(svc *types.Service, taskDef string) string {
	if dep := Primary(svc, taskDef); dep != nil {
		return aws.ToString(dep.Id)
	}
	return ""
}

// Primary is the PRIMARY deployment running taskDef, else the first
// PRIMARY deployment; nil for none.
func Primary(svc *types.Service, taskDef string) *types.Deployment {
	if svc == nil {
		return nil
	}
	var primary *types.Deployment
	for i, dep := range svc.Deployments {
		if aws.ToString(dep.Status) != "PRIMARY" {
			continue
		}
		if aws.ToString(dep.TaskDefinition) == taskDef {
			return &svc.Deployments[i]
		}
		if primary == nil {
			primary = &svc.Deployments[i]
		}
	}
	return primary
}
