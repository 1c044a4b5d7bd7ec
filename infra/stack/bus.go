package stack

import (
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// What the registry and target stacks forward to the central bus: the
// sources and detail types of their rules, which the bus admits and no
// other.
const (
	ecrSource        = "aws.ecr"
	ecrPush          = "ECR Image Action"
	ecsSource        = "aws.ecs"
	ecsDeployment    = "ECS Deployment State Change"
	codeDeploySource = "aws.codedeploy"
	codeDeployEnding = "CodeDeploy Deployment State-change Notification"
)

// The kinds of events a stack forwards: pushes (registry stacks) and
// deployments (target stacks), each with its own forwarding role.
const (
	forwardsPushes      = "pushes"
	forwardsDeployments = "deployments"
)

// forwardRoleName is the role the rules of a stack forwarding kind in region
// put events on the central bus with. Fixed, as the derived roles are, so
// the central bus policy names it before it exists; the region is in it
// because IAM is global to the account.
func forwardRoleName(kind, region string) string {
	return "ecr-autodeploy-forward-" + kind + "-" + region
}

// admission is one statement of the central bus policy: an account may put
// events of these sources and detail types, as these roles only.
type admission struct {
	account, kind string
	roles         []string // ARNs of the forwarding roles
	sources       []string
	detailTypes   []string
}

// admissions are what each other account forwards: pushes from its registry
// stacks, deployment events from its target stacks (CodeDeploy's only where
// a target there is blue/green), each as that stack's forwarding role.
func admissions(cfg *rules.Config, tp Topology) []admission {
	var out []admission
	for _, account := range tp.OtherAccounts() {
		pushes := admission{account: account, kind: forwardsPushes, sources: []string{ecrSource}, detailTypes: []string{ecrPush}}
		for _, place := range tp.Registries {
			if place.Account == account {
				pushes.roles = append(pushes.roles, roleARN(account, forwardRoleName(forwardsPushes, place.Region)))
			}
		}
		deployments := admission{account: account, kind: forwardsDeployments, sources: []string{ecsSource}, detailTypes: []string{ecsDeployment}}
		blueGreen := false
		for _, place := range tp.Targets {
			if place.Account == account {
				deployments.roles = append(deployments.roles, roleARN(account, forwardRoleName(forwardsDeployments, place.Region)))
				blueGreen = blueGreen || len(blueGreenTargets(cfg, at(tp.Central, place))) > 0
			}
		}
		if blueGreen {
			deployments.sources = append(deployments.sources, codeDeploySource)
			deployments.detailTypes = append(deployments.detailTypes, codeDeployEnding)
		}
		for _, a := range []admission{pushes, deployments} {
			if len(a.roles) > 0 {
				out = append(out, a)
			}
		}
	}
	return out
}

// admitToBus lets the registry and target accounts put exactly what their
// stacks forward on the central account's default bus, which every other
// rule of the account reads: one statement per account and kind, on
// condition of the forwarding roles' ARNs (not the account's every
// principal) and of the events' sources and detail types.
func admitToBus(s awscdk.Stack, cfg *rules.Config, tp Topology) {
	for _, a := range admissions(cfg, tp) {
		id := "ecr-autodeploy-" + a.account + "-" + a.kind
		// A plain resource: the L1 construct warns on every synth of its
		// deprecated Principal property, which this does not use.
		awscdk.NewCfnResource(s, jsii.String("BusAdmits"+a.account+strings.ToUpper(a.kind[:1])+a.kind[1:]), &awscdk.CfnResourceProps{
			Type: jsii.String("AWS::Events::EventBusPolicy"),
			Properties: &map[string]any{
				"EventBusName": "default",
				"StatementId":  id,
				"Statement": map[string]any{
					"Sid":       id,
					"Effect":    "Allow",
					"Principal": map[string]any{"AWS": "arn:aws:iam::" + a.account + ":root"},
					"Action":    "events:PutEvents",
					"Resource":  centralBusARN(tp.Central),
					"Condition": map[string]any{
						// The role EventBridge assumes for a rule's target is
						// the principal of the PutEvents it makes.
						"ArnEquals": map[string]any{"aws:PrincipalArn": a.roles},
						// events:source is multivalued (one per entry); the
						// detail type is one value.
						"ForAllValues:StringEquals": map[string]any{"events:source": a.sources},
						"StringEquals":              map[string]any{"events:detail-type": a.detailTypes},
					},
				},
			},
		})
	}
}

// accountsOf and regionsOf are the accounts and regions of places, besides
// central's, sorted.
func accountsOf(places []rules.Place, central rules.Place) []string {
	return distinct(places, func(p rules.Place) string { return p.Account }, central)
}

func regionsOf(places []rules.Place, central rules.Place) []string {
	return distinct(places, func(p rules.Place) string { return p.Region }, central)
}

func distinct(places []rules.Place, part func(rules.Place) string, central rules.Place) []string {
	var out []string
	for _, p := range places {
		if v := part(p); v != part(central) && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return out
}

// withOthers is own followed by others.
func withOthers(own string, others []string) []string { return append([]string{own}, others...) }

// roleARN is the ARN of the role name in account (the aws partition, as the
// derived roles of internal/rules).
func roleARN(account, name string) string {
	return fmt.Sprintf("arn:aws:iam::%s:role/%s", account, name)
}
