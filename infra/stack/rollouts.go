package stack

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecsarn"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecsevent"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// ECS-native rollouts (BLUE_GREEN, LINEAR, CANARY on the ECS controller):
// the kind is the service's (rollout.KindOf at deploy time), not the rules
// file's, so every target without `codedeploy:` may be one. For those the
// watcher takes the "ECS Hook State Change" events and reads the service
// deployments; CodeDeploy-controlled targets get neither.

// ecsHook is the detail type of ECS's lifecycle hook events.
const ecsHook = ecsevent.HookDetailType

// hookEvents are the hook events the watcher takes: a PAUSE hook that waits
// for a person (a notice), one that was continued, and a hook that failed
// or timed out (reported with its stage). HOOK_IN_PROGRESS, sent for every
// hook that starts, tells nothing the service deployment does not.
var hookEvents = []string{ecsevent.HookAwaitingAction, ecsevent.HookSucceeded, ecsevent.HookFailed, ecsevent.HookTimedOut}

// mayBeNative: a target whose service may run an ECS-native rollout (any
// that is not CodeDeploy-controlled).
func mayBeNative(t rules.Target) bool { return t.CodeDeploy == nil }

// nativeTargets reports whether any target keep selects may be ECS-native.
func nativeTargets(cfg *rules.Config, keep reach) bool {
	return len(serviceARNs(cfg, keep.and(mayBeNative))) > 0
}

// hookPattern matches the watched hook events of accounts (services are
// set by hookEntries at detail.serviceArn).
func hookPattern(accounts []string) *awsevents.EventPattern {
	return &awsevents.EventPattern{
		Source:     jsii.Strings(ecsSource),
		DetailType: jsii.Strings(ecsHook),
		Account:    jsii.Strings(accounts...),
		Detail:     &map[string]any{"eventName": hookEvents},
	}
}

// hookEntries are the pattern values for the hook events of the targets
// keep selects that may be ECS-native, at detail.serviceArn (a hook
// event's resources hold its service deployment, and the pause-hooks page
// of the ECS guide shows the event without them): each service's ARN when
// the list fits one pattern over base, else a prefix on each cluster's
// service ARNs (split across rules as needed) — the grain of the ECS
// deployment rules.
func hookEntries(cfg *rules.Config, keep reach, base *awsevents.EventPattern) split {
	native := keep.and(mayBeNative)
	sp := split{path: "detail.serviceArn", values: serviceEntries(cfg, native, perService)}
	if lists, err := chunks(base, sp); err == nil && len(lists) == 1 {
		return sp
	}
	return split{path: "detail.serviceArn", values: serviceEntries(cfg, native, perCluster)}
}

// hookRule sends the watcher the hook events of the rules' services that
// may be ECS-native (those of other accounts and regions forwarded by their
// target stacks), with its own dead-letter queue. Nothing when every
// target is CodeDeploy-controlled.
func hookRule(s awscdk.Stack, cfg *rules.Config, accounts []string, watcher function, alarms awssns.ITopic) awssqs.Queue {
	if !nativeTargets(cfg, everyTarget) {
		return nil
	}
	pattern := hookPattern(accounts)
	services := hookEntries(cfg, everyTarget, pattern)
	return ruleTo(s, "EcsHookRule", "ECS lifecycle hook state changes of the services of autodeploy.yaml (ECS-native blue/green, linear, canary)",
		pattern, &services, watcher.fn, "HookEventsDLQ", "ECS hook events EventBridge could not deliver to the watcher", alarms)
}

// serviceDeploymentScope are, for the targets keep selects, the resources
// the service-deployment reads need, as Fn::Sub ARNs: the service (each of
// ListServiceDeployments, DescribeServiceDeployments and
// DescribeServiceRevisions requires it), its service deployments and its
// service revisions — service/<cluster>/<service>,
// service-deployment/<cluster>/<service>/* and
// service-revision/<cluster>/<service>/* per service, the same with the
// cluster's * per cluster.
func serviceDeploymentScope(cfg *rules.Config, keep reach, g grain) []string {
	seen := map[string]bool{}
	for _, r := range cfg.Rules {
		for _, t := range r.Targets {
			if !keep(r, t) {
				continue
			}
			base := fmt.Sprintf("arn:${AWS::Partition}:ecs:%s:%s:", regionOf(t), accountOf(t))
			at := ecsarn.Name(t.Cluster) + "/" + ecsarn.Name(t.Service)
			if g == perCluster {
				seen[base+"service/"+ecsarn.Name(t.Cluster)+"/*"] = true
				at = ecsarn.Name(t.Cluster)
			} else {
				seen[base+"service/"+at] = true
			}
			seen[base+"service-deployment/"+at+"/*"] = true
			seen[base+"service-revision/"+at+"/*"] = true
		}
	}
	return sortedKeys(seen)
}

// readServiceDeployments adds to grants (a watcher's) reading the service
// deployments of the targets keep selects that may be ECS-native:
// rollout.NativeRollout's ListServiceDeployments → DescribeServiceRevisions
// → DescribeServiceDeployments. Nothing for CodeDeploy-controlled targets.
func readServiceDeployments(grants *roleGrants, cfg *rules.Config, keep reach, g grain) {
	resources := serviceDeploymentScope(cfg, keep.and(mayBeNative), g)
	if len(resources) == 0 {
		return
	}
	grants.add(policyStatement{sid: "ReadServiceDeployments",
		actions:   []string{"ecs:ListServiceDeployments", "ecs:DescribeServiceDeployments", "ecs:DescribeServiceRevisions"},
		resources: resources})
	grants.suppress(serviceDeploymentWildcards())
}

// operateServiceDeployments adds to grants (a target stack's deploy role,
// which operators assume there) what the CLI calls on an ECS-native
// deployment of the targets keep selects: status and plan read its stage,
// continue continues a paused hook, rollback continues with ROLLBACK or
// stops it. Each action requires the service and the service deployment
// (the reads also the service revision). Nothing for CodeDeploy-controlled
// targets. The worker at home gets none of it (operators there use their
// own credentials: README's operator policy).
func operateServiceDeployments(grants *roleGrants, cfg *rules.Config, keep reach, g grain) {
	resources := serviceDeploymentScope(cfg, keep.and(mayBeNative), g)
	if len(resources) == 0 {
		return
	}
	grants.add(policyStatement{sid: "OperateServiceDeployments",
		actions: []string{"ecs:ListServiceDeployments", "ecs:DescribeServiceDeployments", "ecs:DescribeServiceRevisions",
			"ecs:ContinueServiceDeployment", "ecs:StopServiceDeployment"},
		resources: resources})
	grants.suppress(serviceDeploymentWildcards())
}

// serviceDeploymentWildcards is the finding of the service-deployment
// reads: a service's deployments and revisions are named by ids ECS makes
// (service-deployment/<cluster>/<service>/*), and per cluster the
// cluster's services (service/<cluster>/*, service-deployment/<cluster>/*).
func serviceDeploymentWildcards() *[]*cdknag.NagPackSuppression {
	return &[]*cdknag.NagPackSuppression{{
		Id: jsii.String("AwsSolutions-IAM5"),
		Reason: jsii.String("Service deployments and revisions are named by ids ECS makes: the watcher reads those of the rules' services " +
			"(service-deployment/<cluster>/<service>/*, service-revision/<cluster>/<service>/*), or of the rules' clusters past what IAM holds per service."),
		AppliesTo: &[]any{map[string]string{"regex": `/^Resource::arn:<AWS::Partition>:ecs:` + nagRegion + `:` + nagAccount +
			`:(service|service-deployment|service-revision)\/[^\/*]+\/([^\/*]+\/)?\*$/`}},
	}}
}

// watchStatements are a watcher's grants on the targets keep selects:
// how their CodeDeploy deployments ended (readBlueGreenEndings) and their
// service deployments (readServiceDeployments), at grain g.
func watchStatements(grants *roleGrants, cfg *rules.Config, keep reach, g grain) {
	readBlueGreenEndings(grants, cfg, keep)
	readServiceDeployments(grants, cfg, keep, g)
}

// hookAdmitted reports whether the central bus admits hook events from
// account: one of its target places has a target that may be ECS-native.
func hookAdmitted(cfg *rules.Config, tp Topology, account string) bool {
	for _, place := range tp.Targets {
		if place.Account == account && nativeTargets(cfg, at(tp.Central, place)) {
			return true
		}
	}
	return false
}
