package stack

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// gatesYAML: every gate, and each place a gate's events come from — scans
// of the central registry, of the central account's registry in another
// region and of a registry account; alarms of the central account and
// region, of a target account, and of the central account in another
// region (each named as the rules file allows).
const gatesYAML = `version: 1
rules:
  - name: web-prod
    repository: web
    semver: ">= 1.0.0"
    approval: {expires: 24h}
    scan: {block: [CRITICAL, HIGH], wait: 30m}
    targets: [{cluster: prod, service: web}]
  - name: web-staging
    repository: web
    tags: ["main-*"]
    targets:
      - {cluster: staging, service: web}
      - {cluster: stage, service: web, account: "222222222222"}
      - {cluster: dev, service: web, account: "111111111111", region: us-west-2}
    promote: {tag: "verified-{tag}", bake: 15m, alarms: [web-staging-5xx, "222222222222:web-stage-5xx", "111111111111:web-dev-5xx"]}
  - name: api
    repository: team/api
    tags: [latest]
    registry: {account: "333333333333"}
    scan: {}
    targets: [{cluster: prod, service: api}]
  - name: batch
    repository: batch
    tags: [latest]
    registry: {region: us-east-1}
    scan: {block: [CRITICAL]}
    targets: [{cluster: prod, service: batch}]
  - name: tools
    repository: tools
    tags: [latest]
    targets: [{cluster: prod, service: tools}]
`

// rulesOn are a stack's EventBridge rules on events of detail type, by
// logical id.
func (s synthesized) rulesOn(detailType string) map[string]map[string]any {
	out := map[string]map[string]any{}
	for id, r := range s.resources("AWS::Events::Rule") {
		if p, _ := r["EventPattern"].(map[string]any); cmp.Equal([]any{detailType}, p["detail-type"]) {
			out[id] = r
		}
	}
	return out
}

// patternsOn are the patterns of rulesOn, by construct id (the logical
// id without CDK's hash).
func (s synthesized) patternsOn(detailType string) map[string]any {
	out := map[string]any{}
	for id, r := range s.rulesOn(detailType) {
		out[cdkHash.ReplaceAllString(id, "")] = r["EventPattern"]
	}
	return out
}

var cdkHash = regexp.MustCompile(`[0-9A-F]{8}$`)

// allActions are the actions any policy of the stack allows.
func (s synthesized) allActions() map[string]bool {
	out := map[string]bool{}
	for _, typ := range []string{"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"} {
		for _, p := range s.resources(typ) {
			var sts []map[string]any
			for _, st := range asList(p["PolicyDocument"].(map[string]any)["Statement"]) {
				sts = append(sts, st.(map[string]any))
			}
			for a := range actions(sts) {
				out[a] = true
			}
		}
	}
	return out
}

// bySid are statements by Sid.
func bySid(statements []map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, st := range statements {
		if sid, ok := st["Sid"].(string); ok {
			out[sid] = st
		}
	}
	return out
}

// The gates' side of the stacks (issue 21 item 4): the watcher takes the
// scan results of exactly the scanned repositories (by name from ECR, by
// ARN from Inspector) and the ALARM changes of exactly the baked alarms,
// one rule per alarm place, with a dead-letter queue; registry and target
// stacks forward theirs and the central bus admits them from exactly those
// stacks; the sweep's schedule wakes the watcher too; the watcher sets
// every gate's timers, the deployer none; the deployer reads scan
// findings of the scanned repositories only (elsewhere through the
// registry's read role), the watcher the baked alarms only (elsewhere
// through the target's watcher role).
func TestGates(t *testing.T) {
	all := synthAll(t, gatesYAML)
	central := all["Test"]
	repo := func(region, account, name string) map[string]any {
		return fnSub("arn:${AWS::Partition}:ecr:" + region + ":" + account + ":repository/" + name)
	}
	alarm := func(region, account, name string) map[string]any {
		return fnSub("arn:${AWS::Partition}:cloudwatch:" + region + ":" + account + ":alarm:" + name)
	}
	here, acct := "${AWS::Region}", "${AWS::AccountId}"
	alarmPattern := func(account, region, name string) map[string]any {
		p := map[string]any{"source": []any{"aws.cloudwatch"}, "detail-type": []any{"CloudWatch Alarm State Change"}, "account": []any{account},
			"detail": map[string]any{"state": map[string]any{"value": []any{"ALARM"}}, "alarmName": []any{name}}}
		if region != "" {
			p["region"] = []any{region}
		}
		return p
	}

	t.Run("central rules", func(t *testing.T) {
		places := map[string]any{"account": []any{"111111111111", "333333333333"}, "region": []any{"eu-west-1", "us-east-1"}}
		if diff := cmp.Diff(map[string]any{"EcrScanRule": map[string]any{
			"source": []any{"aws.ecr"}, "detail-type": []any{"ECR Image Scan"}, "account": places["account"], "region": places["region"],
			"detail": map[string]any{"scan-status": []any{"COMPLETE", "FAILED"}, "repository-name": []any{"web", "batch", "team/api"}},
		}}, central.patternsOn(ecrScan)); diff != "" {
			t.Errorf("ECR scan rules (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(map[string]any{"InspectorScanRule": map[string]any{
			"source": []any{"aws.inspector2"}, "detail-type": []any{"Inspector2 Scan"}, "account": places["account"], "region": places["region"],
			"detail": map[string]any{"scan-status": []any{"INITIAL_SCAN_COMPLETE"}, "repository-name": []any{
				repo(here, acct, "web"), repo("us-east-1", acct, "batch"), repo(here, "333333333333", "team/api")}},
		}}, central.patternsOn(inspectorScan)); diff != "" {
			t.Errorf("Inspector scan rules (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(map[string]any{
			"BakeAlarmRule":                      alarmPattern("111111111111", "eu-west-1", "web-staging-5xx"),
			"BakeAlarmRuleAt111111111111UsWest2": alarmPattern("111111111111", "us-west-2", "web-dev-5xx"),
			"BakeAlarmRuleAt222222222222EuWest1": alarmPattern("222222222222", "eu-west-1", "web-stage-5xx"),
		}, central.patternsOn(alarmStateChange)); diff != "" {
			t.Errorf("alarm rules (-want +got):\n%s", diff)
		}
		watcher := central.resourceID(t, "AWS::Lambda::Function", "Watcher")
		for _, dt := range []string{ecrScan, inspectorScan, alarmStateChange} {
			for id, r := range central.rulesOn(dt) {
				targets := asList(r["Targets"])
				if len(targets) != 1 || !strings.Contains(jsonString(targets[0]), watcher) || !strings.Contains(jsonString(targets[0]), "GateEventsDLQ") {
					t.Errorf("%s targets %s: want the watcher with GateEventsDLQ", id, jsonString(targets))
				}
			}
		}
		central.resourceID(t, "AWS::SQS::Queue", "GateEventsDLQ")
		central.resourceID(t, "AWS::CloudWatch::Alarm", "GateEventsDLQAlarm")
	})

	t.Run("the sweep's schedule wakes the watcher", func(t *testing.T) {
		schedule := central.resources("AWS::Events::Rule")[central.resourceID(t, "AWS::Events::Rule", "ReconcileSchedule")]
		var arns []string
		for _, target := range asList(schedule["Targets"]) {
			arns = append(arns, jsonString(target.(map[string]any)["Arn"]))
		}
		want := []string{jsonString(map[string]any{"Fn::GetAtt": []any{central.resourceID(t, "AWS::Lambda::Function", "Deployer"), "Arn"}}),
			jsonString(map[string]any{"Fn::GetAtt": []any{central.resourceID(t, "AWS::Lambda::Function", "Watcher"), "Arn"}})}
		if diff := cmp.Diff(want, arns); diff != "" {
			t.Errorf("schedule targets (-want +got):\n%s", diff)
		}
	})

	t.Run("the watcher sets every gate's timers, the deployer none", func(t *testing.T) {
		roleID := central.resourceID(t, "AWS::IAM::Role", "TimerRole")
		invokes := map[string]any{}
		for _, st := range central.policiesOf(t, "TimerRole") {
			invokes[st["Sid"].(string)] = st["Resource"]
		}
		if diff := cmp.Diff(map[string]any{
			"InvokeTheWatcher": map[string]any{"Fn::GetAtt": []any{central.resourceID(t, "AWS::Lambda::Function", "Watcher"), "Arn"}},
		}, invokes); diff != "" {
			t.Errorf("timer role invokes (-want +got):\n%s", diff)
		}
		st := bySid(central.policiesOf(t, "WatcherRole"))
		if diff := cmp.Diff(fnSub("arn:${AWS::Partition}:scheduler:${AWS::Region}:${AWS::AccountId}:schedule/ecr-autodeploy/*"), st["SetTimers"]["Resource"]); diff != "" ||
			st["SetTimers"]["Action"] != "scheduler:CreateSchedule" {
			t.Errorf("Watcher SetTimers = %v", st["SetTimers"])
		}
		if diff := cmp.Diff(map[string]any{"Fn::GetAtt": []any{roleID, "Arn"}}, st["PassTheTimerRoleToScheduler"]["Resource"]); diff != "" {
			t.Errorf("Watcher passes (-want +got):\n%s", diff)
		}
		vars := central.resources("AWS::Lambda::Function")[central.resourceID(t, "AWS::Lambda::Function", "Watcher")]["Environment"].(map[string]any)["Variables"].(map[string]any)
		if vars["AUTODEPLOY_SCHEDULE_GROUP"] == nil || vars["AUTODEPLOY_SCHEDULER_ROLE_ARN"] == nil {
			t.Errorf("the watcher is not told the timers' group and role: %v", vars)
		}
		for _, fn := range []string{"DeployerRole", "WorkerRole"} {
			acts := actions(central.policiesOf(t, fn))
			if _, ok := acts["scheduler:CreateSchedule"]; ok {
				t.Errorf("%s sets timers", fn)
			}
			if _, ok := acts["iam:PassRole"]; ok && fn == "DeployerRole" {
				t.Errorf("the deployer may pass a role")
			}
		}
	})

	t.Run("the deployer reads the scanned repositories' findings", func(t *testing.T) {
		st := bySid(central.policiesOf(t, "DeployerRole"))
		if diff := cmp.Diff([]any{"ecr:DescribeImages", "ecr:DescribeImageScanFindings"}, st["ListImagesAndReadScanFindings"]["Action"]); diff != "" {
			t.Errorf("actions (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]any{repo("us-east-1", acct, "batch"), repo(here, acct, "web")}, st["ListImagesAndReadScanFindings"]["Resource"], sortAny()); diff != "" {
			t.Errorf("scan findings read on (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(repo(here, acct, "tools"), st["ListImagesForSweeps"]["Resource"]); diff != "" || st["ListImagesForSweeps"]["Action"] != "ecr:DescribeImages" {
			t.Errorf("an unscanned repository is only listed: %v", st["ListImagesForSweeps"])
		}
		if !slices.Contains(asStrings(jsonString(st["AssumeSweepRoles"]["Resource"])), "arn:aws:iam::333333333333:role/ecr-autodeploy-registry-eu-west-1") {
			t.Errorf("the deployer does not assume the registry's read role: %v", st["AssumeSweepRoles"])
		}
		for _, fn := range []string{"WatcherRole", "WorkerRole"} {
			if _, ok := actions(central.policiesOf(t, fn))["ecr:DescribeImageScanFindings"]; ok {
				t.Errorf("%s reads scan findings", fn)
			}
		}
		// Enhanced scanning's findings come through Inspector: ECR answers
		// them only to a caller that may list them (no resource scope).
		if e := st["ReadEnhancedScanFindings"]; e == nil || e["Resource"] != "*" ||
			cmp.Diff([]any{"inspector2:ListFindings", "inspector2:ListCoverage"}, e["Action"]) != "" {
			t.Errorf("ReadEnhancedScanFindings = %v", e)
		}
	})

	t.Run("the watcher reads the baked alarms", func(t *testing.T) {
		reads := central.watcherStatement(t, "ReadBakeAlarms")
		if reads == nil || reads["Action"] != "cloudwatch:DescribeAlarms" {
			t.Fatalf("ReadBakeAlarms = %v", reads)
		}
		// 222222222222's through its target stack's watcher role.
		if diff := cmp.Diff([]any{alarm("us-west-2", acct, "web-dev-5xx"), alarm(here, acct, "web-staging-5xx")}, reads["Resource"], sortAny()); diff != "" {
			t.Errorf("alarms read (-want +got):\n%s", diff)
		}
		for _, fn := range []string{"DeployerRole", "WorkerRole"} {
			if _, ok := actions(central.policiesOf(t, fn))["cloudwatch:DescribeAlarms"]; ok {
				t.Errorf("%s reads alarms", fn)
			}
		}
	})

	t.Run("registry stacks forward scans; the read role reads findings", func(t *testing.T) {
		reg := all["Test-Registry-333333333333-eu-west-1"]
		if diff := cmp.Diff(map[string]any{"ForwardEcrScans": map[string]any{
			"source": []any{"aws.ecr"}, "detail-type": []any{"ECR Image Scan"}, "account": []any{"333333333333"}, "region": []any{"eu-west-1"},
			"detail": map[string]any{"scan-status": []any{"COMPLETE", "FAILED"}, "repository-name": []any{"team/api"}},
		}}, reg.patternsOn(ecrScan)); diff != "" {
			t.Errorf("forwarded ECR scans (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(map[string]any{"ForwardInspectorScans": map[string]any{
			"source": []any{"aws.inspector2"}, "detail-type": []any{"Inspector2 Scan"}, "account": []any{"333333333333"}, "region": []any{"eu-west-1"},
			"detail": map[string]any{"scan-status": []any{"INITIAL_SCAN_COMPLETE"}, "repository-name": []any{repo(here, acct, "team/api")}},
		}}, reg.patternsOn(inspectorScan)); diff != "" {
			t.Errorf("forwarded Inspector scans (-want +got):\n%s", diff)
		}
		for _, dt := range []string{ecrScan, inspectorScan} {
			for id, r := range reg.rulesOn(dt) {
				if target := jsonString(r["Targets"]); !strings.Contains(target, "arn:aws:events:eu-west-1:111111111111:event-bus/default") ||
					!strings.Contains(target, "DeadLetterConfig") || !strings.Contains(target, "ForwardRole") {
					t.Errorf("%s forwards to %s", id, target)
				}
			}
		}
		read := reg.roleStatements(t, "ecr-autodeploy-registry-eu-west-1")
		if diff := cmp.Diff([]string{"ListImagesAndReadScanFindings", "ReadEnhancedScanFindings"}, sortedKeys(setOf(mapKeys(read)))); diff != "" {
			t.Errorf("read role's statements (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(repo(here, acct, "team/api"), read["ListImagesAndReadScanFindings"]["Resource"]); diff != "" {
			t.Errorf("read role's repositories (-want +got):\n%s", diff)
		}
		east := all["Test-Registry-111111111111-us-east-1"]
		if got := east.patternsOn(ecrScan)["ForwardEcrScans"].(map[string]any)["detail"].(map[string]any)["repository-name"]; !cmp.Equal([]any{"batch"}, got) {
			t.Errorf("the central account's other registry forwards scans of %v", got)
		}
		if east.roleNamed("ecr-autodeploy-registry-us-east-1") != nil {
			t.Error("a read role in the central account")
		}
	})

	t.Run("target stacks forward alarms; the watcher role reads them", func(t *testing.T) {
		stage := all["Test-Target-222222222222-eu-west-1"]
		if diff := cmp.Diff(map[string]any{"ForwardBakeAlarms": alarmPattern("222222222222", "", "web-stage-5xx")}, stage.patternsOn(alarmStateChange)); diff != "" {
			t.Errorf("forwarded alarms (-want +got):\n%s", diff)
		}
		for id, r := range stage.rulesOn(alarmStateChange) {
			if target := jsonString(r["Targets"]); !strings.Contains(target, "event-bus/default") || !strings.Contains(target, "DeadLetterConfig") {
				t.Errorf("%s forwards to %s", id, target)
			}
		}
		st := stage.roleStatements(t, "ecr-autodeploy-watcher-eu-west-1")
		if diff := cmp.Diff(alarm(here, acct, "web-stage-5xx"), st["ReadBakeAlarms"]["Resource"]); diff != "" || st["ReadBakeAlarms"]["Action"] != "cloudwatch:DescribeAlarms" {
			t.Errorf("watcher role's alarm reads %v (-want +got):\n%s", st["ReadBakeAlarms"], diff)
		}
		dev := all["Test-Target-111111111111-us-west-2"]
		if diff := cmp.Diff(map[string]any{"ForwardBakeAlarms": alarmPattern("111111111111", "", "web-dev-5xx")}, dev.patternsOn(alarmStateChange)); diff != "" {
			t.Errorf("forwarded alarms of the central account's other region (-want +got):\n%s", diff)
		}
	})

	t.Run("the central bus admits gate events from the stacks that forward them", func(t *testing.T) {
		got := map[string]any{}
		for id, p := range central.resources("AWS::Events::EventBusPolicy") {
			if id == "BusAdmitsScans" || id == "BusAdmitsAlarms" {
				got[id] = p["Statement"].(map[string]any)
			}
		}
		admit := func(root, role string, sources, detailTypes []any, sid string) map[string]any {
			return map[string]any{"Sid": sid, "Effect": "Allow", "Principal": map[string]any{"AWS": []any{root}}, "Action": "events:PutEvents",
				"Resource": "arn:aws:events:eu-west-1:111111111111:event-bus/default",
				"Condition": map[string]any{"ArnLike": map[string]any{"aws:PrincipalArn": []any{role}},
					"ForAllValues:StringEquals": map[string]any{"events:source": sources}, "StringEquals": map[string]any{"events:detail-type": detailTypes}}}
		}
		if diff := cmp.Diff(map[string]any{
			"BusAdmitsScans": admit("arn:aws:iam::333333333333:root", "arn:aws:iam::*:role/ecr-autodeploy-forward-pushes-eu-west-1",
				[]any{"aws.ecr", "aws.inspector2"}, []any{"ECR Image Scan", "Inspector2 Scan"}, "ecr-autodeploy-scans"),
			"BusAdmitsAlarms": admit("arn:aws:iam::222222222222:root", "arn:aws:iam::*:role/ecr-autodeploy-forward-deployments-eu-west-1",
				[]any{"aws.cloudwatch"}, []any{"CloudWatch Alarm State Change"}, "ecr-autodeploy-alarms"),
		}, got); diff != "" {
			t.Errorf("gate admissions (-want +got):\n%s", diff)
		}
	})

	ids := mapKeys(all)
	slices.Sort(ids)
	for _, id := range ids {
		t.Run("nag and lint "+id, func(t *testing.T) {
			all[id].nagClean(t)
			all[id].lintClean(t)
		})
	}
}

// Without gates nothing of them is there: no rule on scan results or alarm
// changes, no queue for them, no reads of findings or alarms, no
// admission of their events, and the sweep wakes only
// the deployer (the default stack and severalAccounts, synthesized for the
// other tests).
func TestNothingOfTheGatesWithoutGates(t *testing.T) {
	check := func(t *testing.T, s synthesized) {
		for _, dt := range []string{ecrScan, inspectorScan, alarmStateChange} {
			if rs := s.rulesOn(dt); len(rs) != 0 {
				t.Errorf("rules on %s without gates: %v", dt, mapKeys(rs))
			}
		}
		for _, a := range []string{"ecr:DescribeImageScanFindings", "cloudwatch:DescribeAlarms", "inspector2:ListFindings"} {
			if s.allActions()[a] {
				t.Errorf("%s allowed without gates", a)
			}
		}
		for _, typ := range []string{"AWS::SQS::Queue", "AWS::Events::EventBusPolicy"} {
			for id := range s.resources(typ) {
				if strings.HasPrefix(id, "GateEvents") || id == "BusAdmitsScans" || id == "BusAdmitsAlarms" {
					t.Errorf("%s without gates", id)
				}
			}
		}
	}
	t.Run("central", func(t *testing.T) {
		s := synth(t)
		check(t, s)
		schedule := s.resources("AWS::Events::Rule")[s.resourceID(t, "AWS::Events::Rule", "ReconcileSchedule")]
		if n := len(asList(schedule["Targets"])); n != 1 {
			t.Errorf("the sweep's schedule has %d targets without gates, want the deployer's", n)
		}
		for _, st := range s.policiesOf(t, "DeployerRole") {
			if sid := st["Sid"]; sid == "SetTimers" || sid == "PassTheTimerRoleToScheduler" {
				t.Errorf("deployer statement %s without approval: or scan:", sid)
			}
		}
		for _, st := range s.policiesOf(t, "TimerRole") {
			if st["Sid"] != "InvokeTheWatcher" {
				t.Errorf("timer role statement %v without approval: or scan:", st["Sid"])
			}
		}
	})
	for id, s := range synthAll(t, severalAccounts) {
		t.Run(id, func(t *testing.T) { check(t, s) })
	}
}

// Who sets timers: the watcher, for ECS-native rechecks and every gate;
// the deployer never.
func TestTimerSetters(t *testing.T) {
	const codeDeployOnly = "version: 1\nrules:\n  - name: app\n    repository: app\n    tags: [x]\n%s    targets: [{cluster: c, service: s, codedeploy: {application: a, deployment-group: g}}]\n"
	for _, tc := range []struct {
		gate string
		want bool
	}{
		{"", false},
		{"    approval: {}\n", true},
		{"    scan: {}\n", true},
		{"    promote: {tag: \"v-{tag}\", bake: 5m, alarms: [a-5xx]}\n", true},
		{"    approval: {}\n    promote: {tag: \"v-{tag}\", bake: 5m, alarms: [a-5xx]}\n", true},
	} {
		if got := setsTimers(mustParse(t, strings.Replace(codeDeployOnly, "%s", tc.gate, 1))); got != tc.want {
			t.Errorf("%q: the watcher sets timers %v, want %v", tc.gate, got, tc.want)
		}
	}
	if !setsTimers(mustParse(t, rulesYAML)) {
		t.Error("ECS-native targets without gates: no timers, want the watcher's")
	}
}

// Without sweeps, scan: alone reads findings and lists no images; with
// sweeps, a repository both listed and scanned is named once.
func TestRepositoryReads(t *testing.T) {
	if diff := cmp.Diff([]policyStatement{{sid: "ReadScanFindings", actions: []string{"ecr:DescribeImageScanFindings"}, resources: []string{"b"}}},
		repositoryReads([]string{"a", "b"}, []string{"b"}, false), cmp.AllowUnexported(policyStatement{})); diff != "" {
		t.Errorf("no sweeps (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]policyStatement{
		{sid: "ListImagesForSweeps", actions: []string{"ecr:DescribeImages"}, resources: []string{"a"}},
		{sid: "ListImagesAndReadScanFindings", actions: []string{"ecr:DescribeImages", "ecr:DescribeImageScanFindings"}, resources: []string{"b"}},
	}, repositoryReads([]string{"a", "b"}, []string{"b"}, true), cmp.AllowUnexported(policyStatement{})); diff != "" {
		t.Errorf("sweeps (-want +got):\n%s", diff)
	}
}
