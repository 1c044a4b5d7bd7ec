package stack

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// The gates' events (DESIGN "Gates"): scan results of the repositories of
// rules with scan:, from ECR's basic scanning and from Amazon Inspector's
// enhanced scanning, and the state changes of the alarms that bakes watch.
// The watcher takes them all; registry and target stacks forward them from
// their places, as they forward pushes and deployments.
const (
	ecrScan          = "ECR Image Scan"
	inspectorSource  = "aws.inspector2"
	inspectorScan    = "Inspector2 Scan"
	cloudWatchSource = "aws.cloudwatch"
	alarmStateChange = "CloudWatch Alarm State Change"
)

// The scan results the watcher takes: basic scanning's end (a FAILED scan
// ends the gate too: no result will come), Inspector's first full scan.
var (
	ecrScanStatuses       = []string{"COMPLETE", "FAILED"}
	inspectorScanStatuses = []string{"INITIAL_SCAN_COMPLETE"}
)

func scans(r *rules.Rule) bool { return r.Scan != nil }

func bakes(r *rules.Rule) bool { return r.Promote != nil && r.Promote.Bake > 0 }

// gated reports whether some rule has a gate (approval, scan, a bake).
func gated(cfg *rules.Config) bool { return slices.ContainsFunc(cfg.Rules, (*rules.Rule).Gated) }

// scannedAt are the repositories, in file order, of the rules with scan:
// whose registry is at place.
func scannedAt(cfg *rules.Config, central, place rules.Place) []string {
	var out []string
	for _, r := range cfg.Rules {
		if scans(r) && r.RegistryOf(central) == place {
			out = appendNew(out, r.Repository)
		}
	}
	return out
}

// scanPlaces are the registries of the rules with scan:, sorted.
func scanPlaces(cfg *rules.Config, central rules.Place) []rules.Place {
	seen := map[rules.Place]bool{}
	for _, r := range cfg.Rules {
		if scans(r) {
			seen[r.RegistryOf(central)] = true
		}
	}
	return sortedPlaces(seen)
}

// repositoryARN is the repository name at place as an Fn::Sub string, the
// account and region of home as pseudo parameters (the stack's own).
func repositoryARN(place, home rules.Place, name string) string {
	return fmt.Sprintf("arn:${AWS::Partition}:ecr:%s:%s:repository/%s", regionAt(place, home), accountAt(place, home), name)
}

// alarmARN is the alarm name at place as an Fn::Sub string, as
// repositoryARN; "${" in a name is escaped for Fn::Sub.
func alarmARN(place, home rules.Place, name string) string {
	return fmt.Sprintf("arn:${AWS::Partition}:cloudwatch:%s:%s:alarm:%s", regionAt(place, home), accountAt(place, home), strings.ReplaceAll(name, "${", "${!"))
}

func accountAt(place, home rules.Place) string {
	if place.Account == home.Account {
		return "${AWS::AccountId}"
	}
	return place.Account
}

func regionAt(place, home rules.Place) string {
	if place.Region == home.Region {
		return "${AWS::Region}"
	}
	return place.Region
}

// bakeAlarms are the alarms the rules' bakes watch, by place (the alarm's
// account and region, rules.Alarm.Where), each place's names in file order.
func bakeAlarms(cfg *rules.Config, central rules.Place) map[rules.Place][]string {
	out := map[rules.Place][]string{}
	for _, r := range cfg.Rules {
		if !bakes(r) {
			continue
		}
		for _, a := range r.Promote.Alarms {
			place := a.Where(central)
			out[place] = appendNew(out[place], a.Name)
		}
	}
	return out
}

// alarmPlaces are the places of bakeAlarms, sorted.
func alarmPlaces(alarms map[rules.Place][]string) []rules.Place {
	seen := map[rules.Place]bool{}
	for p := range alarms {
		seen[p] = true
	}
	return sortedPlaces(seen)
}

// scanPatterns are the patterns of the scan results of the repositories
// named (names, and their ARNs): ECR's basic scanning by name, Inspector's
// by ARN, of accounts and regions.
func scanPatterns(accounts, regions []string, names, arns []string) (ecr *awsevents.EventPattern, ecrNames split, inspector *awsevents.EventPattern, inspectorARNs split) {
	ecr = &awsevents.EventPattern{
		Source:     jsii.Strings(ecrSource),
		DetailType: jsii.Strings(ecrScan),
		Account:    jsii.Strings(accounts...),
		Region:     jsii.Strings(regions...),
		Detail:     &map[string]any{"scan-status": ecrScanStatuses},
	}
	inspector = &awsevents.EventPattern{
		Source:     jsii.Strings(inspectorSource),
		DetailType: jsii.Strings(inspectorScan),
		Account:    jsii.Strings(accounts...),
		Region:     jsii.Strings(regions...),
		Detail:     &map[string]any{"scan-status": inspectorScanStatuses},
	}
	var values []any
	for _, a := range arns {
		values = append(values, sub(a))
	}
	return ecr, split{path: "detail.repository-name", values: anyStrings(names)}, inspector, split{path: "detail.repository-name", values: values}
}

// alarmPattern matches the ALARM state changes of account and region (the
// alarm names are set by a split at detail.alarmName).
func alarmPattern(accounts, regions []string) *awsevents.EventPattern {
	return &awsevents.EventPattern{
		Source:     jsii.Strings(cloudWatchSource),
		DetailType: jsii.Strings(alarmStateChange),
		Account:    jsii.Strings(accounts...),
		Region:     optionalStrings(regions),
		Detail:     &map[string]any{"state": map[string]any{"value": []string{"ALARM"}}},
	}
}

func optionalStrings(list []string) *[]*string {
	if len(list) == 0 {
		return nil
	}
	return jsii.Strings(list...)
}

// gateRules send the watcher the scan results of the repositories of the
// rules with scan: (pushed to the central registry, or forwarded by the
// registry stacks) and the ALARM state changes of the alarms the rules'
// bakes watch (of the central account and region, or forwarded by the
// target stacks): one rule per kind — per alarm place for alarms, so that a
// place's names match only its events — split as EventBridge's pattern
// limit needs, all with one dead-letter queue. Nothing without scan: or a
// bake.
func gateRules(s awscdk.Stack, cfg *rules.Config, central rules.Place, watcher function, alarms awssns.ITopic) awssqs.Queue {
	places := scanPlaces(cfg, central)
	baked := bakeAlarms(cfg, central)
	if len(places) == 0 && len(baked) == 0 {
		return nil
	}
	dlq := secureQueue(s, "GateEventsDLQ", "scan results and alarm state changes EventBridge could not deliver to the watcher")
	props := func(description string) awsevents.RuleProps {
		return awsevents.RuleProps{
			Description: jsii.String(description),
			Targets: &[]awsevents.IRuleTarget{awseventstargets.NewLambdaFunction(watcher.fn, &awseventstargets.LambdaFunctionProps{
				DeadLetterQueue: dlq,
				MaxEventAge:     awscdk.Duration_Hours(jsii.Number(24)),
				RetryAttempts:   jsii.Number(185),
			})},
		}
	}
	if len(places) > 0 {
		accounts, regions := placeLists(s, places, central)
		var names, arns []string
		for _, place := range places {
			for _, name := range scannedAt(cfg, central, place) {
				names = appendNew(names, name)
				arns = append(arns, repositoryARN(place, central, name))
			}
		}
		ecr, ecrNames, inspector, inspectorARNs := scanPatterns(accounts, regions, names, arns)
		eventRules(s, "EcrScanRule", ecr, ecrNames, props("ECR basic scanning results of the repositories of autodeploy.yaml's rules with scan:"))
		eventRules(s, "InspectorScanRule", inspector, inspectorARNs,
			props("Amazon Inspector (enhanced scanning) results of the repositories of autodeploy.yaml's rules with scan:"))
	}
	for _, place := range alarmPlaces(baked) {
		accounts, regions := placeLists(s, []rules.Place{place}, central)
		id := "BakeAlarmRule"
		if place != central {
			id += "At" + place.Account + camel(place.Region)
		}
		eventRules(s, id, alarmPattern(accounts, regions), split{path: "detail.alarmName", values: anyStrings(baked[place])},
			props(fmt.Sprintf("ALARM state changes of the alarms autodeploy.yaml's bakes watch in %s", placeName(place, central))))
	}
	queueAlarm(s, "GateEventsDLQ", dlq, alarms)
	return dlq
}

// placeLists are the accounts and regions of places for a pattern of the
// central bus, the stack's own as its tokens (first), the others sorted.
func placeLists(s awscdk.Stack, places []rules.Place, central rules.Place) (accounts, regions []string) {
	accounts, regions = accountsOf(places, central), regionsOf(places, central)
	if slices.ContainsFunc(places, func(p rules.Place) bool { return p.Account == central.Account }) {
		accounts = withOthers(*s.Account(), accounts)
	}
	if slices.ContainsFunc(places, func(p rules.Place) bool { return p.Region == central.Region }) {
		regions = withOthers(*s.Region(), regions)
	}
	return accounts, regions
}

func placeName(place, central rules.Place) string {
	if place == central {
		return "the central account and region"
	}
	return place.String()
}

var nonAlnum = regexp.MustCompile(`[^A-Za-z0-9]+`)

// camel is a region as part of a logical id: us-east-1 → UsEast1.
func camel(s string) string {
	var b strings.Builder
	for _, part := range nonAlnum.Split(s, -1) {
		if part != "" {
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	return b.String()
}

// forwardScans forwards, from a registry stack, the scan results of the
// repositories here of the rules with scan: (nothing when none), as the
// stack's push forwarder (the central bus admits those events from it:
// admissions).
func (p SiteProps) forwardScans(s awscdk.Stack, role awsiam.IRole) {
	names := scannedAt(p.Rules, p.Topology.Central, p.Place)
	if len(names) == 0 {
		return
	}
	var arns []string
	for _, n := range names {
		arns = append(arns, repositoryARN(p.Place, p.Place, n))
	}
	ecr, ecrNames, inspector, inspectorARNs := scanPatterns([]string{p.Place.Account}, []string{p.Place.Region}, names, arns)
	p.forward(s, role, "ForwardEcrScans", "ECR basic scanning results of the repositories of autodeploy.yaml's rules with scan:", ecr, &ecrNames)
	p.forward(s, role, "ForwardInspectorScans", "Amazon Inspector (enhanced scanning) results of the repositories of autodeploy.yaml's rules with scan:",
		inspector, &inspectorARNs)
}

// forwardAlarms forwards, from a target stack, the ALARM state changes of
// the alarms here that the rules' bakes watch (nothing when none), as the
// stack's deployment forwarder.
func (p SiteProps) forwardAlarms(s awscdk.Stack, role awsiam.IRole) {
	names := bakeAlarms(p.Rules, p.Topology.Central)[p.Place]
	if len(names) == 0 {
		return
	}
	p.forward(s, role, "ForwardBakeAlarms", "ALARM state changes of the alarms autodeploy.yaml's bakes watch",
		alarmPattern([]string{p.Place.Account}, nil), &split{path: "detail.alarmName", values: anyStrings(names)})
}

// readAlarms is the statement that reads the state of the alarms at the
// places where reads (DescribeAlarms on each alarm's ARN, home's account
// and region as pseudo parameters): the watcher's own for those it reads
// with its own credentials, a target stack's watcher role for those there.
func readAlarms(cfg *rules.Config, central, home rules.Place, where func(rules.Place) bool) policyStatement {
	var arns []string
	baked := bakeAlarms(cfg, central)
	for _, place := range alarmPlaces(baked) {
		if !where(place) {
			continue
		}
		for _, name := range baked[place] {
			arns = append(arns, alarmARN(place, home, name))
		}
	}
	return policyStatement{sid: "ReadBakeAlarms", actions: []string{"cloudwatch:DescribeAlarms"}, resources: arns}
}

// repositoryReads are the deployer's (or a registry read role's) ECR reads
// on repositories (Fn::Sub ARNs): with sweeps, DescribeImages on every one;
// DescribeImageScanFindings on those scanned (sweeps re-read a pending
// scan) — one statement with both actions on the scanned ones, so a rules
// file that scans every repository lists them once.
func repositoryReads(all, scanned []string, sweeping bool) []policyStatement {
	if !sweeping {
		return []policyStatement{{sid: "ReadScanFindings", actions: []string{"ecr:DescribeImageScanFindings"}, resources: scanned}}
	}
	var rest []string
	for _, r := range all {
		if !slices.Contains(scanned, r) {
			rest = append(rest, r)
		}
	}
	return []policyStatement{
		{sid: "ListImagesForSweeps", actions: []string{"ecr:DescribeImages"}, resources: rest},
		{sid: "ListImagesAndReadScanFindings", actions: []string{"ecr:DescribeImages", "ecr:DescribeImageScanFindings"}, resources: scanned},
	}
}

// grantEnhancedFindings lets role read the findings of enhanced scanning:
// ECR's DescribeImageScanFindings answers Amazon Inspector's findings only
// to a caller that may list them (inspector2:ListFindings, ListCoverage —
// AWS's "IAM permissions required for enhanced scanning"), actions that
// take no resource scope. Read-only; nothing else of Inspector.
func grantEnhancedFindings(role awsiam.Role) {
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("ReadEnhancedScanFindings"),
		Actions:   jsii.Strings("inspector2:ListFindings", "inspector2:ListCoverage"),
		Resources: jsii.Strings("*"),
	}))
	cdknag.NagSuppressions_AddResourceSuppressions(role, &[]*cdknag.NagPackSuppression{{
		Id:        jsii.String("AwsSolutions-IAM5"),
		Reason:    jsii.String("inspector2:ListFindings and ListCoverage take no resource-level permissions; DescribeImageScanFindings needs them for enhanced scanning's findings."),
		AppliesTo: &[]any{"Resource::*"},
	}}, jsii.Bool(true))
}
