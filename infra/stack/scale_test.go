package stack

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// platform is a platform team's rules file: services in clusters of 20 in
// the central account and region (eu-west-1) and in other clusters of
// another account and region, each cluster's services from one
// repository (their app container; every other cluster publishes, every
// fifth promotes after a bake watching five alarms, the last two clusters
// at home are blue/green), and one log-router sidecar rule that reaches
// every service at once; every rule gates on its image's scan. The other
// account's app images come from its own registry.
func platform(central, other int) string {
	var b strings.Builder
	b.WriteString("version: 1\nreconcile: {every: 15m}\nrules:\n")
	type svc struct{ cluster, service, where, codedeploy string }
	var all []svc
	clusters := func(n int, prefix, where, registry, passRole, alarmAccount string, blueGreenFrom int) {
		for c := range n / 20 {
			cluster := fmt.Sprintf("%s-team-%02d", prefix, c)
			fmt.Fprintf(&b, "  - name: %s-app\n    repository: apps/%s\n    tags: [\"main-*\"]\n%s    pass-roles: [%q]\n", cluster, cluster, registry, passRole)
			if c%2 == 0 {
				b.WriteString("    publish: {ssm-prefix: /autodeploy/images}\n")
			}
			// Every rule gates on its scan; the promoting ones bake,
			// watching five alarms of their cluster (the other account's
			// there).
			b.WriteString("    scan: {block: [CRITICAL, HIGH]}\n")
			if c%5 == 0 {
				var alarms []string
				for _, a := range []string{"5xx-rate", "p99-latency", "unhealthy-hosts", "cpu-utilization", "memory-utilization"} {
					alarms = append(alarms, fmt.Sprintf("%q", alarmAccount+cluster+"-"+a+"-over-threshold"))
				}
				fmt.Fprintf(&b, "    promote: {tag: \"verified-{tag}\", bake: 15m, alarms: [%s]}\n", strings.Join(alarms, ", "))
			}
			// Clean-up on a third of the rules, deleting on half of those.
			switch c % 6 {
			case 0:
				b.WriteString("    cleanup: {keep: 5, delete: true}\n")
			case 3:
				b.WriteString("    cleanup: {keep: 10}\n")
			}
			b.WriteString("    targets:\n")
			for s := range 20 {
				v := svc{cluster: cluster, service: fmt.Sprintf("%s-svc-%02d", cluster, s), where: where}
				if c >= blueGreenFrom {
					v.codedeploy = fmt.Sprintf(", codedeploy: {application: %s, deployment-group: %s}", cluster, v.service)
				}
				fmt.Fprintf(&b, "      - {cluster: %s, service: %s, containers: [app]%s%s}\n", v.cluster, v.service, v.where, v.codedeploy)
				all = append(all, v)
			}
		}
	}
	clusters(central, "prod", "", "", "arn:aws:iam::111111111111:role/app-*", "", central/20-2)
	clusters(other, "emea", `, account: "222222222222", region: us-east-1`, "    registry: {account: \"222222222222\", region: us-east-1}\n",
		"arn:aws:iam::222222222222:role/app-*", "222222222222:", other)
	b.WriteString("  - name: log-router\n    repository: platform/log-router\n    tags: [stable]\n    publish: {ssm-prefix: /autodeploy/sidecars}\n    scan: {}\n" +
		"    pass-roles: [\"arn:aws:iam::111111111111:role/app-*\", \"arn:aws:iam::222222222222:role/app-*\"]\n    targets:\n")
	for _, v := range all {
		fmt.Fprintf(&b, "      - {cluster: %s, service: %s, containers: [log-router]%s%s}\n", v.cluster, v.service, v.where, v.codedeploy)
	}
	return b.String()
}

// AWS's limits on what the stacks make (AWS-FACTS "Scale"), in characters
// of the resolved documents, whitespace aside.
// (eventPatternLimit, inlinePolicyLimit, managedPolicyLimit and
// managedPerRole are the stack's own.)
const (
	trustPolicyLimit = 2048
	templateLimit    = 1 << 20 // from S3
	resourceLimit    = 500
)

// sizes are what a template asks of AWS's limits, with its intrinsics
// resolved for its account and region.
type sizes struct {
	bytes, resources int
	patterns         map[string]int // rule id: event pattern
	inline, trust    map[string]int // role id: inline policies together, trust policy
	managed          map[string]int // managed policy id
	managedPerRole   map[string]int // role id: managed policies attached
}

func measure(t *testing.T, s synthesized) sizes {
	t.Helper()
	data, err := os.ReadFile(s.templatePath)
	if err != nil {
		t.Fatal(err)
	}
	r := newResolver(t, s)
	z := sizes{bytes: len(data), resources: len(s.template["Resources"].(map[string]any)),
		patterns: map[string]int{}, inline: map[string]int{}, trust: map[string]int{}, managed: map[string]int{}, managedPerRole: map[string]int{}}
	for id, p := range s.resources("AWS::Events::Rule") {
		if pattern, ok := p["EventPattern"]; ok {
			z.patterns[id] = r.length(pattern)
		}
	}
	for id, p := range s.resources("AWS::IAM::Role") {
		z.trust[id] = r.length(p["AssumeRolePolicyDocument"])
		for _, pol := range asList(p["Policies"]) {
			z.inline[id] += r.length(pol.(map[string]any)["PolicyDocument"])
		}
		z.managedPerRole[id] += len(asList(p["ManagedPolicyArns"]))
	}
	for _, p := range s.resources("AWS::IAM::Policy") {
		for _, role := range asList(p["Roles"]) {
			z.inline[role.(map[string]any)["Ref"].(string)] += r.length(p["PolicyDocument"])
		}
	}
	for id, p := range s.resources("AWS::IAM::ManagedPolicy") {
		z.managed[id] = r.length(p["PolicyDocument"])
		for _, role := range asList(p["Roles"]) {
			z.managedPerRole[role.(map[string]any)["Ref"].(string)]++
		}
	}
	return z
}

// check fails on every size past its limit.
func (z sizes) check(t *testing.T) {
	t.Helper()
	over := func(what string, n, limit int) {
		t.Helper()
		if n > limit {
			t.Errorf("%s: %d, over AWS's limit of %d", what, n, limit)
		}
	}
	over("template bytes", z.bytes, templateLimit)
	over("resources", z.resources, resourceLimit)
	for id, n := range z.patterns {
		over("event pattern of "+id, n, eventPatternLimit)
	}
	for id, n := range z.inline {
		over("inline policies of "+id, n, inlinePolicyLimit)
	}
	for id, n := range z.trust {
		over("trust policy of "+id, n, trustPolicyLimit)
	}
	for id, n := range z.managed {
		over("managed policy "+id, n, managedPolicyLimit)
	}
	for id, n := range z.managedPerRole {
		over("managed policies of "+id, n, managedPerRole)
	}
}

func (z sizes) String() string {
	return fmt.Sprintf("%d bytes, %d resources, %d rules (largest pattern %d), inline policies of the largest role %d, %d managed policies (largest %d, at most %d per role)",
		z.bytes, z.resources, len(z.patterns), largest(z.patterns), largest(z.inline), len(z.managed), largest(z.managed), largest(z.managedPerRole))
}

func largest(m map[string]int) int {
	n := 0
	for _, v := range m {
		n = max(n, v)
	}
	return n
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// resolver resolves the intrinsics the templates use (Ref, Fn::GetAtt,
// Fn::Sub, Fn::Join, Fn::Select, Fn::Split) as CloudFormation would in the
// stack's account and region: resources get physical names and ARNs of the
// length CloudFormation generates (stack-logicalid-suffix).
type resolver struct {
	t                      *testing.T
	stack, account, region string
	types                  map[string]string
	subVar                 *regexp.Regexp
}

func newResolver(t *testing.T, s synthesized) *resolver {
	types := map[string]string{}
	for id, r := range s.template["Resources"].(map[string]any) {
		types[id] = r.(map[string]any)["Type"].(string)
	}
	return &resolver{t: t, stack: *s.stack.StackName(), account: *s.stack.Account(), region: *s.stack.Region(), types: types,
		subVar: regexp.MustCompile(`\$\{([^}]+)\}`)}
}

// length is the size of v resolved, as compact JSON.
func (r *resolver) length(v any) int {
	data, err := json.Marshal(r.resolve(v))
	if err != nil {
		r.t.Fatal(err)
	}
	return len(data)
}

func (r *resolver) resolve(v any) any {
	switch v := v.(type) {
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = r.resolve(e)
		}
		return out
	case map[string]any:
		if len(v) == 1 {
			for k, arg := range v {
				if res, ok := r.intrinsic(k, arg); ok {
					return res
				}
			}
		}
		out := map[string]any{}
		for k, e := range v {
			out[k] = r.resolve(e)
		}
		return out
	}
	return v
}

func (r *resolver) intrinsic(name string, arg any) (any, bool) {
	switch name {
	case "Ref":
		return r.ref(arg.(string)), true
	case "Fn::GetAtt":
		parts := asList(arg)
		return r.getAtt(parts[0].(string), parts[1].(string)), true
	case "Fn::Sub":
		text, vars := "", map[string]any{}
		switch a := arg.(type) {
		case string:
			text = a
		case []any:
			text = a[0].(string)
			if len(a) > 1 {
				vars = a[1].(map[string]any)
			}
		}
		return r.subVar.ReplaceAllStringFunc(text, func(m string) string {
			name := m[2 : len(m)-1]
			if v, ok := vars[name]; ok {
				return fmt.Sprint(r.resolve(v))
			}
			if id, attr, ok := strings.Cut(name, "."); ok {
				return r.getAtt(id, attr)
			}
			return r.ref(name)
		}), true
	case "Fn::Join":
		a := asList(arg)
		var parts []string
		for _, p := range asList(r.resolve(a[1])) {
			parts = append(parts, fmt.Sprint(p))
		}
		return strings.Join(parts, a[0].(string)), true
	case "Fn::Select":
		a := asList(arg)
		return asList(r.resolve(a[1]))[int(a[0].(float64))], true
	case "Fn::Split":
		a := asList(arg)
		var out []any
		for _, p := range strings.Split(fmt.Sprint(r.resolve(a[1])), a[0].(string)) {
			out = append(out, p)
		}
		return out, true
	}
	return nil, false
}

func (r *resolver) ref(name string) string {
	switch name {
	case "AWS::Region":
		return r.region
	case "AWS::AccountId":
		return r.account
	case "AWS::Partition":
		return "aws"
	case "AWS::URLSuffix":
		return "amazonaws.com"
	case "AWS::StackName":
		return r.stack
	}
	typ, ok := r.types[name]
	if !ok {
		r.t.Fatalf("Ref to %s: neither a pseudo parameter nor a resource", name)
	}
	switch typ {
	case "AWS::SNS::Topic":
		return r.arn("sns", name, ":")
	case "AWS::SQS::Queue":
		return "https://sqs." + r.region + ".amazonaws.com/" + r.account + "/" + r.physical(name)
	}
	return r.physical(name)
}

func (r *resolver) getAtt(id, attr string) string {
	typ := r.types[id]
	switch {
	case attr != "Arn":
		return r.physical(id)
	case typ == "AWS::IAM::Role":
		return "arn:aws:iam::" + r.account + ":role/" + r.physical(id)
	case typ == "AWS::Lambda::Function":
		return r.arn("lambda", id, ":function:")
	case typ == "AWS::DynamoDB::Table":
		return r.arn("dynamodb", id, ":table/")
	case typ == "AWS::Logs::LogGroup":
		return r.arn("logs", id, ":log-group:") + ":*"
	case typ == "AWS::KMS::Key":
		return "arn:aws:kms:" + r.region + ":" + r.account + ":key/12345678-1234-1234-1234-123456789012"
	}
	return r.arn(strings.ToLower(strings.Split(typ, "::")[1]), id, ":")
}

func (r *resolver) arn(service, id, sep string) string {
	return "arn:aws:" + service + ":" + r.region + ":" + r.account + sep + r.physical(id)
}

// physical is the name CloudFormation generates: stack-logicalid-suffix.
func (r *resolver) physical(id string) string { return r.stack + "-" + id + "-ABCDEFGHIJ12" }

// A rules file of a platform team: 1,000 services in 50 clusters at home,
// 200 in another account and region, one sidecar rule on all of them.
// Every stack NewAll makes stays inside AWS's limits once its intrinsics
// are resolved, and passes cdk-nag and cfn-lint. One synth (jsii is slow at
// this size), read by the subtests.
func TestThousandServicesWithinAWSLimits(t *testing.T) {
	all := synthAll(t, platform(1000, 200))
	ids := make([]string, 0, len(all))
	for id := range all {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		s := all[id]
		t.Run(id, func(t *testing.T) {
			z := measure(t, s)
			t.Logf("%s: %s", id, z)
			z.check(t)
			s.noWiderThanClusters(t)
			s.nagClean(t)
			s.lintClean(t)
		})
	}
	t.Run("the gates' rules name every scanned repository and baked alarm", func(t *testing.T) {
		central := all["Test"]
		count := func(detailType, field string) int {
			n := 0
			for _, p := range central.patternsOn(detailType) {
				n += len(asList(p.(map[string]any)["detail"].(map[string]any)[field]))
			}
			return n
		}
		// 50 + 10 app repositories and the log router's; 10 + 2 baking
		// rules with five alarms each.
		for _, c := range []struct {
			detailType, field string
			want              int
		}{{ecrScan, "repository-name", 61}, {inspectorScan, "repository-name", 61}, {alarmStateChange, "alarmName", 60}} {
			if got := count(c.detailType, c.field); got != c.want {
				t.Errorf("%s rules name %d at %s, want %d", c.detailType, got, c.field, c.want)
			}
		}
		if got := len(central.rulesOn(inspectorScan)); got < 2 {
			t.Errorf("%d Inspector rules: the ARNs were meant to need more than one pattern", got)
		}
		// Packed into the watcher's managed policies, a statement's
		// resources may be split across them.
		reads := 0
		for _, st := range central.policiesOf(t, "WatcherRole") {
			if st["Sid"] == "ReadBakeAlarms" {
				reads += len(asList(st["Resource"]))
			}
		}
		if reads != 50 {
			t.Errorf("the watcher reads %d alarms with its own credentials, want the central 50", reads)
		}
	})
}

// noWiderThanClusters fails when ecs:UpdateService, or the ECS rules'
// resources, reach past the clusters the rules name (platform's clusters
// are prod-team-NN and emea-team-NN).
func (s synthesized) noWiderThanClusters(t *testing.T) {
	t.Helper()
	r := newResolver(t, s)
	named := regexp.MustCompile(`^arn:aws:ecs:[a-z0-9-]+:\d{12}:service/(prod|emea)-team-\d\d/(\*|(prod|emea)-team-\d\d-svc-\d\d)$`)
	updates := 0
	for _, typ := range []string{"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"} {
		for id, p := range s.resources(typ) {
			for _, st := range asList(r.resolve(p["PolicyDocument"]).(map[string]any)["Statement"]) {
				m := st.(map[string]any)
				if !strings.Contains(jsonString(m["Action"]), "ecs:UpdateService") {
					continue
				}
				for _, res := range append(asList(m["Resource"]), m["Resource"]) {
					if str, ok := res.(string); ok {
						updates++
						if !named.MatchString(str) {
							t.Errorf("%s: ecs:UpdateService on %s, wider than a named cluster", id, str)
						}
					}
				}
			}
		}
	}
	// The service-deployment reads (ListServiceDeployments and friends)
	// name the same services or clusters, and their deployments and
	// revisions.
	reads := regexp.MustCompile(`^arn:aws:ecs:[a-z0-9-]+:\d{12}:(service|service-deployment|service-revision)/(prod|emea)-team-\d\d/(\*|(prod|emea)-team-\d\d-svc-\d\d(/\*)?)$`)
	for _, typ := range []string{"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"} {
		for id, p := range s.resources(typ) {
			for _, st := range asList(r.resolve(p["PolicyDocument"]).(map[string]any)["Statement"]) {
				m := st.(map[string]any)
				if !strings.Contains(jsonString(m["Action"]), "ecs:ListServiceDeployments") {
					continue
				}
				for _, res := range append(asList(m["Resource"]), m["Resource"]) {
					if str, ok := res.(string); ok && !reads.MatchString(str) {
						t.Errorf("%s: service-deployment reads on %s, wider than a named cluster", id, str)
					}
				}
			}
		}
	}
	for id, rule := range s.resources("AWS::Events::Rule") {
		pattern, _ := r.resolve(rule["EventPattern"]).(map[string]any)
		// A hook rule names services at detail.serviceArn.
		detail, _ := pattern["detail"].(map[string]any)
		for _, res := range append(asList(pattern["resources"]), asList(detail["serviceArn"])...) {
			arn, ok := res.(string)
			if m, isPrefix := res.(map[string]any); isPrefix {
				arn, ok = m["prefix"].(string)
				arn += "*"
			}
			if !ok || !named.MatchString(arn) {
				t.Errorf("%s: resources entry %v is wider than a named cluster", id, res)
			}
		}
	}
	t.Logf("%d ecs:UpdateService resources, each a named service or cluster", updates)
	s.codeDeployGroupsNamed(t)
}

// codeDeployGroupsNamed fails on a CodeDeploy grant on an application's
// groups (deploymentgroup:<application>/*): a group names its own cluster and
// service, and CodeDeploy has no condition key to bound it by cluster.
func (s synthesized) codeDeployGroupsNamed(t *testing.T) {
	t.Helper()
	r := newResolver(t, s)
	wide := regexp.MustCompile(`:codedeploy:[^:]+:\d{12}:deploymentgroup:[^/*]+/\*$`)
	for _, typ := range []string{"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"} {
		for id, p := range s.resources(typ) {
			for _, st := range asList(r.resolve(p["PolicyDocument"]).(map[string]any)["Statement"]) {
				m := st.(map[string]any)
				for _, res := range append(asList(m["Resource"]), m["Resource"]) {
					if str, ok := res.(string); ok && wide.MatchString(str) {
						t.Errorf("%s: %v on %s, every group of an application", id, m["Action"], str)
					}
				}
			}
		}
	}
}

// perServiceRules is the other common layout: one rule per service, each
// with its own repository and task role, promoting, publishing and swept;
// the last blueGreen services of each place are blue/green with a CodeDeploy
// application of their own (the console's AppECS-<cluster>-<service>).
// central services are in the central account and region, other in
// another account and region (images from the central registry).
func perServiceRules(central, other, blueGreen int) string {
	var b strings.Builder
	b.WriteString("version: 1\nreconcile: {every: 15m}\nrules:\n")
	services := func(n int, prefix, account, where string) {
		for i := range n {
			cluster := fmt.Sprintf("%s-team-%02d", prefix, i/20)
			service := fmt.Sprintf("%s-svc-%02d", cluster, i%20)
			fmt.Fprintf(&b, "  - name: %s\n    repository: apps/%s\n    tags: [\"main-*\"]\n    pass-roles: [\"arn:aws:iam::%s:role/%s-task\"]\n"+
				"    publish: {ssm-prefix: /autodeploy/images}\n    promote: {tag: \"verified-{tag}\"}\n    targets:\n", service, service, account, service)
			codedeploy := ""
			if i >= n-blueGreen {
				codedeploy = fmt.Sprintf(", codedeploy: {application: AppECS-%s-%s, deployment-group: DgpECS-%s-%s}", cluster, service, cluster, service)
			}
			fmt.Fprintf(&b, "      - {cluster: %s, service: %s, containers: [app]%s%s}\n", cluster, service, where, codedeploy)
		}
	}
	services(central, "prod", "111111111111", "")
	services(other, "emea", "222222222222", `, account: "222222222222", region: us-east-1`)
	return b.String()
}

// One rule per service (rulesAtHome, rulesElsewhere, rulesBlueGreen of
// each place blue/green with an application each): every list that grows
// with the rules — pass-roles, promoted and swept repositories, CodeDeploy
// groups and applications (in grants and in the CodeDeploy rules), the
// dashboard's lines — stays inside AWS's limits.
func TestThousandRulesWithinAWSLimits(t *testing.T) {
	all := synthAll(t, perServiceRules(rulesAtHome, rulesElsewhere, rulesBlueGreen))
	ids := make([]string, 0, len(all))
	for id := range all {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		s := all[id]
		t.Run(id, func(t *testing.T) {
			z := measure(t, s)
			t.Logf("%s: %s", id, z)
			z.check(t)
			s.noSynthErrors(t)
			s.codeDeployGroupsNamed(t)
			if dash := s.resources("AWS::CloudWatch::Dashboard"); len(dash) > 0 {
				if n := len(jsonString(dash)); n > 20000 {
					t.Errorf("dashboard: %d characters for %d rules, not bounded", n, rulesAtHome+rulesElsewhere)
				}
			}
			s.nagClean(t)
			s.lintClean(t)
		})
	}
}

// The layout of TestThousandRulesWithinAWSLimits: about as many one-rule
// services as one stack's deployer can be granted (each service's
// repository, task role and CodeDeploy group listed), at home and
// elsewhere, the last rulesBlueGreen of each place blue/green.
const rulesAtHome, rulesElsewhere, rulesBlueGreen = 150, 150, 60

// noSynthErrors fails on every error annotation of the stack (the stack's
// own limit checks among them).
func (s synthesized) noSynthErrors(t *testing.T) {
	t.Helper()
	for _, m := range *assertions.Annotations_FromStack(s.stack).FindError(jsii.String("*"), assertions.Match_AnyValue()) {
		t.Errorf("synth error: %s", jsonString(m))
	}
}

// bareRole is a role in a stack of its own, for the limit checks.
func bareRole() (awscdk.App, awscdk.Stack, awsiam.Role) {
	app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(os.TempDir() + "/bare-role.out")})
	s := awscdk.NewStack(app, jsii.String("S"), nil)
	role := awsiam.NewRole(s, jsii.String("R"), &awsiam.RoleProps{AssumedBy: awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil)})
	return app, s, role
}

func roleARNs(n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("arn:aws:iam::111111111111:role/service-%04d-task", i))
	}
	return out
}

// Lists past what a role holds fail the synth: more than IAM's managed
// policies per role (an error annotation), and any statement CDK moved to
// an OverflowPolicy or an inline policy over IAM's limit (a validation
// error).
func TestRoleGrantsPastIAMsLimitsFailSynth(t *testing.T) {
	_, s, role := bareRole()
	g := &roleGrants{role: role}
	g.add(policyStatement{sid: "Pass", actions: []string{"iam:PassRole"}, resources: roleARNs(1500)})
	g.place()
	if errs := *assertions.Annotations_FromStack(s).FindError(jsii.String("*"), assertions.Match_StringLikeRegexp(jsii.String("managed policies"))); len(errs) != 1 {
		t.Errorf("1,500 pass-roles: %d errors on the managed policies a role needs, want 1", len(errs))
	}

	synthErr := func(add func(awsiam.Role)) (msg string) {
		app, _, role := bareRole()
		(&roleGrants{role: role}).place()
		add(role)
		defer func() { msg = fmt.Sprint(recover()) }()
		app.Synth(nil)
		return ""
	}
	overflow := synthErr(func(role awsiam.Role) {
		role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{Actions: jsii.Strings("iam:PassRole"), Resources: jsii.Strings(roleARNs(250)...)}))
	})
	if !strings.Contains(overflow, "OverflowPolicy") {
		t.Errorf("a statement CDK moves to an OverflowPolicy: synth says %q", overflow)
	}
	inline := synthErr(func(role awsiam.Role) {
		for i := range 3 {
			role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{Sid: jsii.String(fmt.Sprintf("Part%d", i)),
				Actions: jsii.Strings("iam:PassRole"), Resources: &[]*string{awscdk.Fn_Sub(jsii.String(strings.Repeat("${AWS::Region}", 240)), nil)}}))
		}
	})
	if !strings.Contains(inline, "over IAM's 10240") {
		t.Errorf("inline policies over IAM's limit once resolved: synth says %q", inline)
	}
}

// The suppressions of the packed grants cover exactly what the rules name:
// a deliberately over-wide statement beside them (any region or account, a
// parameter prefix no rule publishes, every group of an application) is
// reported by cdk-nag, and so is a cluster wildcard on the role itself
// (its suppressions went to the managed policies with the grants).
func TestClusterSuppressionsNoWiderThanTheGrants(t *testing.T) {
	cfg, err := rules.Parse("nag.yaml", []byte("version: 1\nrules:\n  - name: web\n    repository: web\n    tags: [main]\n"+
		"    publish: {ssm-prefix: /autodeploy/images}\n    pass-roles: [\"arn:aws:iam::111111111111:role/web-*\"]\n"+
		"    targets: [{cluster: c00, service: web}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, s, role := bareRole()
	g := &roleGrants{role: role}
	g.suppress(clusterWildcards(cfg))
	g.suppress(passRoleWildcards())
	var named []string
	for i := range 80 {
		named = append(named, fmt.Sprintf("arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:service/c%02d/*", i),
			fmt.Sprintf("arn:${AWS::Partition}:ssm:us-east-1:${AWS::AccountId}:parameter/autodeploy/images/c%02d/*", i))
	}
	named = append(named, "arn:aws:iam::111111111111:role/web-*")
	wide := []string{
		"arn:${AWS::Partition}:ecs:*:*:service/c00/*",
		"arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:service/*/*",
		"arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/other/c00/*",
		"arn:${AWS::Partition}:ssm:*:${AWS::AccountId}:parameter/autodeploy/images/c00/*",
		"arn:${AWS::Partition}:ssm:${AWS::Region}:*:parameter/autodeploy/images/c00/*",
		"arn:${AWS::Partition}:codedeploy:${AWS::Region}:${AWS::AccountId}:deploymentgroup:app/*",
		"arn:aws:iam::*:role/web-*",
	}
	g.add(policyStatement{sid: "Named", actions: []string{"ecs:UpdateService"}, resources: named})
	g.add(policyStatement{sid: "Wide", actions: []string{"ecs:UpdateService"}, resources: wide})
	g.place()
	if g.fits() {
		t.Fatal("the test's grants fit inline; they are meant to be packed")
	}
	role.AddToPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{Actions: jsii.Strings("ecs:DescribeServices"),
		Resources: subs([]string{"arn:${AWS::Partition}:ecs:eu-west-1:${AWS::AccountId}:service/c01/*"})}))
	awscdk.Aspects_Of(s).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
	found := map[string]bool{}
	finding := regexp.MustCompile(`AwsSolutions-IAM5\[Resource::([^\]]*)\]`)
	for _, m := range *assertions.Annotations_FromStack(s).FindError(jsii.String("*"), assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-IAM5"))) {
		if f := finding.FindStringSubmatch(strings.NewReplacer(`\u003c`, "<", `\u003e`, ">").Replace(jsonString(m))); f != nil {
			found[strings.NewReplacer("<AWS::Partition>", "${AWS::Partition}", "<AWS::Region>", "${AWS::Region}", "<AWS::AccountId>", "${AWS::AccountId}").Replace(f[1])] = true
		}
	}
	for _, w := range append(wide, "arn:${AWS::Partition}:ecs:eu-west-1:${AWS::AccountId}:service/c01/*") {
		if !found[w] {
			t.Errorf("cdk-nag does not report %s", w)
		}
		delete(found, w)
	}
	for f := range found {
		t.Errorf("cdk-nag reports %s, which the rules name", f)
	}
}

// An environment-agnostic stack's tokens count at their longest, by kind:
// a region at 14 characters (ap-southeast-2), a partition at 10
// (aws-us-gov), an account at 12; a pattern one character over the limit
// at those lengths is refused.
func TestTokensAtTheirLongest(t *testing.T) {
	for token, want := range map[string]int{*awscdk.Aws_REGION(): 14, *awscdk.Aws_PARTITION(): 10, *awscdk.Aws_ACCOUNT_ID(): 12} {
		if got := resolvedLength(token); got != want {
			t.Errorf("%s: %d characters, want %d", token, got, want)
		}
	}
	base := &awsevents.EventPattern{Source: jsii.Strings("aws.ecs"), Region: jsii.Strings(*awscdk.Aws_REGION())}
	literal, _ := json.Marshal(map[string]any{"source": []string{"aws.ecs"}, "region": []string{"ap-southeast-2"}, "resources": []string{""}})
	fill := eventPatternLimit - len(literal) // the resource that makes the pattern exactly 2,048 in ap-southeast-2
	if lists, err := chunks(base, split{path: "resources", values: []any{strings.Repeat("a", fill)}}); err != nil || len(lists) != 1 {
		t.Errorf("a pattern of exactly %d characters: %v, %v", eventPatternLimit, lists, err)
	}
	if _, err := chunks(base, split{path: "resources", values: []any{strings.Repeat("a", fill+1)}}); err == nil {
		t.Errorf("a pattern of %d characters in ap-southeast-2 was accepted", eventPatternLimit+1)
	}
}
