package stack

import (
	"encoding/json"
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

// admission is one statement of the central bus policy: these accounts may
// put events of these sources and detail types, as these roles only.
type admission struct {
	kind        string   // statement id suffix
	accounts    []string // principals (their roots), sorted
	roles       []string // the forwarding roles, as ARN patterns of any of the accounts
	sources     []string
	detailTypes []string
}

// admissions are what the other accounts forward: pushes from their registry
// stacks, deployment events from their target stacks — ECS's deployments
// always, ECS's hooks from accounts with a target that may be ECS-native (one
// without `codedeploy:`), CodeDeploy's from accounts with a CodeDeploy-
// controlled target — and the gates' events (scan results, alarm state
// changes) from the stacks that forward them, each as that stack's
// forwarding role. One statement per
// kind, listing every account, and the forwarding roles by name per region
// (arn:aws:iam::*:role/NAME, the accounts being the principals), rather than
// one statement per account with each role's ARN: the bus policy is limited
// to 10,240 characters for the whole account, and per-account statements
// reached that at about ten accounts. The grant is as tight: only those
// accounts, only as the roles their stacks create.
func admissions(cfg *rules.Config, tp Topology) []admission {
	pushes := admission{kind: forwardsPushes, sources: []string{ecrSource}, detailTypes: []string{ecrPush}}
	deployments := admission{kind: forwardsDeployments, sources: []string{ecsSource}, detailTypes: []string{ecsDeployment, ecsHook}}
	blueGreen := admission{kind: forwardsDeployments + "-bluegreen", sources: []string{ecsSource, codeDeploySource},
		detailTypes: []string{ecsDeployment, codeDeployEnding}}
	mixed := admission{kind: forwardsDeployments + "-mixed", sources: []string{ecsSource, codeDeploySource},
		detailTypes: []string{ecsDeployment, ecsHook, codeDeployEnding}}
	// The gates' events, from the stacks that forward them: scan results
	// from registries with a rule with scan:, alarm state changes from
	// target places with an alarm a bake watches; each as the stack's
	// forwarder, in a statement of its own (accounts without them are not
	// admitted them).
	scanResults := admission{kind: "scans", sources: []string{ecrSource, inspectorSource}, detailTypes: []string{ecrScan, inspectorScan}}
	alarmChanges := admission{kind: "alarms", sources: []string{cloudWatchSource}, detailTypes: []string{alarmStateChange}}
	baked := bakeAlarms(cfg, tp.Central)
	for _, account := range tp.OtherAccounts() {
		for _, place := range tp.Registries {
			if place.Account == account {
				pushes.add(account, roleARN("*", forwardRoleName(forwardsPushes, place.Region)))
				if len(scannedAt(cfg, tp.Central, place)) > 0 {
					scanResults.add(account, roleARN("*", forwardRoleName(forwardsPushes, place.Region)))
				}
			}
		}
		var roles []string
		bg := false
		for _, place := range tp.Targets {
			if place.Account == account {
				roles = append(roles, roleARN("*", forwardRoleName(forwardsDeployments, place.Region)))
				bg = bg || len(blueGreenTargets(cfg, at(tp.Central, place))) > 0
				if len(baked[place]) > 0 {
					alarmChanges.add(account, roleARN("*", forwardRoleName(forwardsDeployments, place.Region)))
				}
			}
		}
		into := &deployments
		switch native := hookAdmitted(cfg, tp, account); {
		case bg && native:
			into = &mixed
		case bg:
			into = &blueGreen
		}
		for _, r := range roles {
			into.add(account, r)
		}
	}
	var out []admission
	for _, a := range []admission{pushes, scanResults, deployments, blueGreen, mixed, alarmChanges} {
		if len(a.roles) > 0 {
			out = append(out, a)
		}
	}
	return out
}

func (a *admission) add(account, role string) {
	if !slices.Contains(a.accounts, account) {
		a.accounts = append(a.accounts, account)
	}
	if !slices.Contains(a.roles, role) {
		a.roles = append(a.roles, role)
	}
}

// busPolicyLimit is EventBridge's limit on an event bus's whole policy, in
// characters; the account's other statements share it, so synth refuses a
// policy that leaves less than busPolicyHeadroom of it.
const (
	busPolicyLimit    = 10240
	busPolicyHeadroom = 2048
)

// admitToBus lets the registry and target accounts put exactly what their
// stacks forward on the central account's default bus, which every other
// rule of the account reads: one statement per kind, on condition of the
// forwarding roles' ARNs (not the accounts' every principal) and of the
// events' sources and detail types.
func admitToBus(s awscdk.Stack, cfg *rules.Config, tp Topology) error {
	statements, err := busStatements(cfg, tp)
	if err != nil {
		return err
	}
	for _, st := range statements {
		id := st["Sid"].(string)
		var name string
		for _, part := range strings.Split(strings.TrimPrefix(id, "ecr-autodeploy-"), "-") {
			name += strings.ToUpper(part[:1]) + part[1:]
		}
		// A plain resource: the L1 construct warns on every synth of its
		// deprecated Principal property, which this does not use.
		awscdk.NewCfnResource(s, jsii.String("BusAdmits"+name), &awscdk.CfnResourceProps{
			Type: jsii.String("AWS::Events::EventBusPolicy"),
			Properties: &map[string]any{
				"EventBusName": "default",
				"StatementId":  id,
				"Statement":    st,
			},
		})
	}
	return nil
}

// busStatements are the central bus policy's statements, refused when the
// policy they make would leave the account less than busPolicyHeadroom of
// EventBridge's limit.
func busStatements(cfg *rules.Config, tp Topology) ([]map[string]any, error) {
	var statements []map[string]any
	for _, a := range admissions(cfg, tp) {
		var roots []string
		for _, acct := range a.accounts {
			roots = append(roots, "arn:aws:iam::"+acct+":root")
		}
		statements = append(statements, map[string]any{
			"Sid":       "ecr-autodeploy-" + a.kind,
			"Effect":    "Allow",
			"Principal": map[string]any{"AWS": roots},
			"Action":    "events:PutEvents",
			"Resource":  centralBusARN(tp.Central),
			"Condition": map[string]any{
				// The role EventBridge assumes for a rule's target is the
				// principal of the PutEvents it makes.
				"ArnLike": map[string]any{"aws:PrincipalArn": a.roles},
				// events:source is multivalued (one per entry); the detail
				// type is one value.
				"ForAllValues:StringEquals": map[string]any{"events:source": a.sources},
				"StringEquals":              map[string]any{"events:detail-type": a.detailTypes},
			},
		})
	}
	if len(statements) == 0 {
		return nil, nil
	}
	policy, err := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": statements})
	if err != nil {
		return nil, fmt.Errorf("central bus policy: %w", err)
	}
	if n := len(policy); n > busPolicyLimit-busPolicyHeadroom {
		return nil, fmt.Errorf("central bus policy: %d characters for %d other accounts, over EventBridge's %d less %d left for the account's own statements",
			n, len(tp.OtherAccounts()), busPolicyLimit, busPolicyHeadroom)
	}
	return statements, nil
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
