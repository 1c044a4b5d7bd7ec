package stack

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecsarn"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// AWS's limits the stacks meet, in characters of the documents once
// CloudFormation resolved their intrinsics.
const (
	// eventPatternLimit is EventBridge's default quota on a rule's pattern.
	eventPatternLimit = 2048
	// managedPolicyLimit is IAM's limit on one managed policy;
	// managedPerRole is how many may be attached to a role.
	managedPolicyLimit = 6144
	managedPerRole     = 10
	// inlinePolicyLimit is IAM's limit on all of one role's inline
	// policies together.
	inlinePolicyLimit = 10240
	// listInlineBudget is what the list-valued statements of a role
	// (roleGrants) may take of inlinePolicyLimit: the rest is the
	// function's own grants (logs, table, topic, key, queues, invoking).
	listInlineBudget = 4096
)

// resolvedLength estimates the length of a string once CloudFormation
// resolved it, pseudo parameters and tokens at their longest, so that an
// estimate that fits fits wherever the stack is deployed.
func resolvedLength(s string) int {
	return len(tokenRE.ReplaceAllStringFunc(pseudoLongest.Replace(s), tokenLongest))
}

var (
	pseudoLongest = strings.NewReplacer("${AWS::Partition}", "aws-us-gov", "${AWS::Region}", "ap-southeast-2", "${AWS::AccountId}", "123456789012")
	// tokenRE: CDK's string tokens (${Token[AWS.Region.12]}); in patterns
	// and policies here the pseudo parameters of an environment-agnostic
	// stack.
	tokenRE = regexp.MustCompile(`\$\{Token\[([^\]]*)\]\}`)
)

// tokenLongest is the longest value of a CDK string token, by its kind: a
// pseudo parameter at its longest (pseudoValue), any other at
// generatedLength.
func tokenLongest(token string) string {
	name := tokenRE.FindStringSubmatch(token)[1]
	if i := strings.LastIndex(name, "."); i > 0 {
		name = name[:i] // AWS.Region.12: the token's number
	}
	if v, ok := pseudoValue[strings.Replace(name, ".", "::", 1)]; ok {
		return v
	}
	return strings.Repeat("x", generatedLength)
}

// resolvedJSON is the length of v as compact JSON, its strings resolved.
func resolvedJSON(v any) int {
	data, _ := json.Marshal(v)
	return resolvedLength(string(data))
}

// sub is a CloudFormation value for an ARN: an Fn::Sub for a string with
// pseudo parameters, the string itself otherwise (cfn-lint W1020).
func sub(arn string) any {
	if strings.Contains(arn, "${") {
		return map[string]any{"Fn::Sub": arn}
	}
	return arn
}

// split names the list of a pattern (a dotted path: resources,
// detail.repository-name) that may be split across rules, and its values.
type split struct {
	path   string
	values []any
}

// patternMap is the pattern as EventBridge reads it (the fields used here).
func patternMap(p *awsevents.EventPattern) map[string]any {
	m := map[string]any{}
	for k, v := range map[string]*[]*string{"source": p.Source, "detail-type": p.DetailType, "account": p.Account, "region": p.Region} {
		if v != nil {
			var list []string
			for _, e := range *v {
				list = append(list, *e)
			}
			m[k] = list
		}
	}
	if p.Detail != nil {
		m["detail"] = *p.Detail
	}
	return m
}

// chunks splits the values of sp into as few lists as keep base, with one
// list at sp.path, within EventBridge's pattern limit once resolved.
func chunks(base *awsevents.EventPattern, sp split) ([][]any, error) {
	probe := patternMap(base)
	set := func(list []any) {
		parts := strings.Split(sp.path, ".")
		m := probe
		for _, p := range parts[:len(parts)-1] {
			inner := map[string]any{}
			for k, v := range m[p].(map[string]any) {
				inner[k] = v
			}
			m[p] = inner
			m = inner
		}
		m[parts[len(parts)-1]] = list
	}
	var out [][]any
	var cur []any
	for _, v := range sp.values {
		set(append(slices.Clone(cur), v))
		if resolvedJSON(probe) <= eventPatternLimit {
			cur = append(cur, v)
			continue
		}
		if len(cur) == 0 {
			return nil, fmt.Errorf("event pattern with %s %v alone is over EventBridge's %d characters", sp.path, v, eventPatternLimit)
		}
		out, cur = append(out, cur), []any{v}
	}
	return append(out, cur), nil
}

// eventRules makes the rules (id, id2, id3…) that together match base with
// sp's values, each pattern within EventBridge's limit; props (pattern
// aside) is each rule's.
func eventRules(s awscdk.Stack, id string, base *awsevents.EventPattern, sp split, props awsevents.RuleProps) {
	lists, err := chunks(base, sp)
	if err != nil {
		awscdk.Annotations_Of(s).AddError(jsii.String(fmt.Sprintf("%s: %v", id, err)))
		return
	}
	for i, list := range lists {
		name := id
		if i > 0 {
			name = fmt.Sprintf("%s%d", id, i+1)
		}
		props.EventPattern = base
		rule := awsevents.NewRule(s, jsii.String(name), &props)
		rule.Node().DefaultChild().(awsevents.CfnRule).AddPropertyOverride(jsii.String("EventPattern."+sp.path), list)
	}
}

// grain is how finely a role's grants and a rule's pattern name targets:
// each service while that fits AWS's limits, else each cluster (never
// wider than the clusters the rules name).
type grain int

const (
	perService grain = iota
	perCluster
)

// serviceEntries are the services of the targets keep selects as pattern
// values: their ARNs per service, or a prefix on each cluster's service
// ARNs per cluster.
func serviceEntries(cfg *rules.Config, keep reach, g grain) []any {
	var out []any
	for _, arn := range serviceScope(cfg, keep, g) {
		if g == perCluster {
			out = append(out, map[string]any{"prefix": sub(strings.TrimSuffix(arn, "*"))})
		} else {
			out = append(out, sub(arn))
		}
	}
	return out
}

// serviceScope are the services of the targets keep selects, as Fn::Sub
// ARNs: each service's, or service/<cluster>/* per cluster.
func serviceScope(cfg *rules.Config, keep reach, g grain) []string {
	if g == perService {
		return serviceARNs(cfg, keep)
	}
	seen := map[string]bool{}
	for _, r := range cfg.Rules {
		for _, t := range r.Targets {
			if keep(r, t) {
				seen[fmt.Sprintf("arn:${AWS::Partition}:ecs:%s:%s:service/%s/*", regionOf(t), accountOf(t), ecsarn.Name(t.Cluster))] = true
			}
		}
	}
	return sortedKeys(seen)
}

// deploymentEntries are the pattern values for the ECS deployment events
// of the targets keep selects: per service when the list fits one pattern
// over base, else per cluster (split across rules as needed).
func deploymentEntries(cfg *rules.Config, keep reach, base *awsevents.EventPattern) split {
	sp := split{path: "resources", values: serviceEntries(cfg, keep, perService)}
	if lists, err := chunks(base, sp); err == nil && len(lists) == 1 {
		return sp
	}
	return split{path: "resources", values: serviceEntries(cfg, keep, perCluster)}
}

func anyStrings(list []string) []any {
	out := make([]any, len(list))
	for i, s := range list {
		out[i] = s
	}
	return out
}

// policyStatement is a statement before it is placed in a policy.
type policyStatement struct {
	sid        string
	actions    []string
	resources  []string // Fn::Sub strings or literal ARNs
	conditions map[string]any
}

func (p policyStatement) doc(resources []string) map[string]any {
	res := make([]any, len(resources))
	for i, r := range resources {
		res[i] = sub(r)
	}
	m := map[string]any{"Sid": p.sid, "Effect": "Allow", "Action": p.actions, "Resource": res}
	if p.conditions != nil {
		m["Condition"] = p.conditions
	}
	return m
}

func (p policyStatement) statement(resources []string) awsiam.PolicyStatement {
	return awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid: jsii.String(p.sid), Actions: jsii.Strings(p.actions...), Resources: subs(resources), Conditions: optionalMap(p.conditions),
	})
}

func optionalMap(m map[string]any) *map[string]any {
	if m == nil {
		return nil
	}
	return &m
}

// roleGrants holds a role's list-valued statements (their resource lists
// grow with the rules: services, parameters, CodeDeploy groups, pass-roles,
// repositories, roles to assume) until they are placed together: inline
// while they fit listInlineBudget, else packed into managed policies of the
// role's own, each within IAM's limit. Every role with such lists places
// them here, so none is left to CDK's OverflowPolicy (which cannot split a
// statement, so its policies pass IAM's limits); guardRole makes one a
// synth error, and measures the role's whole inline policy.
type roleGrants struct {
	role       awsiam.Role
	statements []policyStatement
	// suppressions are the cdk-nag findings the statements make, with
	// their reasons: they go where the statements go (the role, or its
	// managed policies), so nothing else is covered by them.
	suppressions []*cdknag.NagPackSuppression
}

// suppress adds findings the statements make.
func (g *roleGrants) suppress(s *[]*cdknag.NagPackSuppression) {
	g.suppressions = append(g.suppressions, *s...)
}

func (g *roleGrants) add(p policyStatement) {
	if len(p.resources) > 0 {
		g.statements = append(g.statements, p)
	}
}

// size is the statements' length, the larger of CDK's measure (the
// intrinsics unresolved, by which it splits a role's policy) and IAM's
// (resolved, pseudo parameters at their longest).
func (g *roleGrants) size() int {
	n := 0
	for _, p := range g.statements {
		n += max(rawJSON(p.doc(p.resources)), resolvedJSON(p.doc(p.resources))) + 1
	}
	return n
}

// fits is whether the statements stay inline.
func (g *roleGrants) fits() bool { return g.size() <= listInlineBudget }

func rawJSON(v any) int {
	data, _ := json.Marshal(v)
	return len(data)
}

// place puts the statements inline when they fit, else packs them (their
// resource lists split where one would not fit) into managed policies
// attached to the role. More than IAM allows per role is a synth error.
func (g *roleGrants) place() {
	guardRole(g.role)
	if len(g.statements) == 0 {
		return
	}
	if g.fits() {
		for _, p := range g.statements {
			g.role.AddToPolicy(p.statement(p.resources))
		}
		if len(g.suppressions) > 0 {
			cdknag.NagSuppressions_AddResourceSuppressions(g.role, &g.suppressions, jsii.Bool(true))
		}
		return
	}
	policies := pack(g.statements)
	if len(policies) > managedPerRole {
		awscdk.Annotations_Of(g.role).AddError(jsii.String(fmt.Sprintf(
			"the grants of this role on the targets and repositories of the rules need %d managed policies, over IAM's %d per role: "+
				"split the rules file across stacks", len(policies), managedPerRole)))
	}
	id := *g.role.Node().Id()
	for i, statements := range policies {
		mp := awsiam.NewManagedPolicy(awscdk.Stack_Of(g.role), jsii.String(fmt.Sprintf("%sTargets%d", id, i+1)), &awsiam.ManagedPolicyProps{
			Description: jsii.String(fmt.Sprintf("ecr-autodeploy: %s's grants on the targets and repositories of autodeploy.yaml (%d of %d)", id, i+1, len(policies))),
			Statements:  &statements,
			Roles:       &[]awsiam.IRole{g.role},
		})
		if len(g.suppressions) > 0 {
			cdknag.NagSuppressions_AddResourceSuppressions(mp, &g.suppressions, jsii.Bool(true))
		}
	}
}

// pack puts statements into as few policies as keep each within IAM's
// managed policy limit once resolved, splitting a statement's resources
// where the whole list would not fit.
func pack(statements []policyStatement) [][]awsiam.PolicyStatement {
	const envelope = len(`{"Version":"2012-10-17","Statement":[]}`)
	var policies [][]awsiam.PolicyStatement
	var cur []awsiam.PolicyStatement
	used := envelope
	flush := func() {
		if len(cur) > 0 {
			policies, cur, used = append(policies, cur), nil, envelope
		}
	}
	for _, p := range statements {
		var part []string
		emit := func() {
			if len(part) > 0 {
				cur = append(cur, p.statement(part))
				used += resolvedJSON(p.doc(part)) + 1
				part = nil
			}
		}
		for _, r := range p.resources {
			if used+resolvedJSON(p.doc(append(slices.Clone(part), r)))+1 > managedPolicyLimit {
				emit()
				flush()
			}
			part = append(part, r)
		}
		emit()
	}
	flush()
	return policies
}

// guardRole makes it a synth error when CDK moved statements of role to an
// OverflowPolicy, or when the role's inline policies, resolved at their
// longest, pass IAM's 10,240 characters.
func guardRole(role awsiam.Role) {
	if role.Node().TryFindChild(jsii.String("AutodeployGuard")) != nil {
		return
	}
	constructs.NewConstruct(role, jsii.String("AutodeployGuard")) // marks the role guarded; no resource
	role.Node().AddValidation(&roleGuard{role})
}

type roleGuard struct{ role awsiam.Role }

func (v *roleGuard) Validate() *[]*string {
	var errs []string
	inline := 0
	for _, c := range *v.role.Node().Children() {
		id := *c.Node().Id()
		if strings.HasPrefix(id, "OverflowPolicy") {
			errs = append(errs, fmt.Sprintf("CDK moved statements of %s to %s, whose policies IAM may refuse (a statement is never split): "+
				"place list-valued grants with roleGrants", *v.role.Node().Path(), id))
		}
		if p, ok := c.(awsiam.Policy); ok {
			inline += estimateResolved(awscdk.Stack_Of(v.role).Resolve(p.Document()))
		}
	}
	if inline > inlinePolicyLimit {
		errs = append(errs, fmt.Sprintf("the inline policies of %s are about %d characters once resolved, over IAM's %d per role",
			*v.role.Node().Path(), inline, inlinePolicyLimit))
	}
	return jsii.Strings(errs...)
}

// estimateResolved is the length of a resolved CloudFormation value as
// IAM counts it once deployed: pseudo parameters at their longest, a
// resource's name or ARN at generatedLength.
func estimateResolved(v any) int {
	data, _ := json.Marshal(longest(v))
	return len(data)
}

// generatedLength bounds a name or ARN CloudFormation generates for a
// resource of the stacks (an ARN with the stack, logical id and suffix).
const generatedLength = 160

func longest(v any) any {
	switch v := v.(type) {
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = longest(e)
		}
		return out
	case map[string]any:
		if len(v) == 1 {
			for k, arg := range v {
				switch k {
				case "Ref":
					if name, _ := arg.(string); pseudoValue[name] != "" {
						return pseudoValue[name]
					}
					return strings.Repeat("x", generatedLength)
				case "Fn::GetAtt", "Fn::ImportValue":
					return strings.Repeat("x", generatedLength)
				case "Fn::Join":
					a, _ := arg.([]any)
					if len(a) == 2 {
						sep, _ := a[0].(string)
						var parts []string
						for _, p := range asAnyList(longest(a[1])) {
							parts = append(parts, fmt.Sprint(p))
						}
						return strings.Join(parts, sep)
					}
				case "Fn::Sub":
					text, _ := arg.(string)
					if a, ok := arg.([]any); ok && len(a) > 0 {
						text, _ = a[0].(string)
					}
					return subVarRE.ReplaceAllStringFunc(pseudoLongest.Replace(text), func(string) string { return strings.Repeat("x", generatedLength) })
				}
			}
		}
		out := map[string]any{}
		for k, e := range v {
			out[k] = longest(e)
		}
		return out
	}
	return v
}

func asAnyList(v any) []any {
	l, _ := v.([]any)
	return l
}

var (
	pseudoValue = map[string]string{"AWS::Partition": "aws-us-gov", "AWS::Region": "ap-southeast-2", "AWS::AccountId": "123456789012",
		"AWS::URLSuffix": "amazonaws.com.cn", "AWS::StackName": strings.Repeat("x", 128)}
	subVarRE = regexp.MustCompile(`\$\{[^}]+\}`)
)

// Patterns of the places in the ARNs cdk-nag reports: a region or the
// stack's, an account or the stack's.
const (
	nagRegion  = `([a-z0-9-]+|<AWS::Region>)`
	nagAccount = `(\d{12}|<AWS::AccountId>)`
)

// clusterWildcards are the findings the per-cluster grants make, each
// bounded by a cluster or a published parameter prefix and cluster the
// rules name (CodeDeploy groups are always listed by name).
func clusterWildcards(cfg *rules.Config) *[]*cdknag.NagPackSuppression {
	applies := []any{map[string]string{"regex": `/^Resource::arn:<AWS::Partition>:ecs:` + nagRegion + `:` + nagAccount + `:service\/[^\/*]+\/\*$/`}}
	if prefixes := nagPrefixes(cfg); prefixes != "" {
		applies = append(applies, map[string]string{"regex": `/^Resource::arn:<AWS::Partition>:ssm:` + nagRegion + `:<AWS::AccountId>:parameter` +
			prefixes + `\/[^\/*]+\/\*$/`})
	}
	return &[]*cdknag.NagPackSuppression{{
		Id: jsii.String("AwsSolutions-IAM5"),
		Reason: jsii.String("Past what IAM holds per service, the grants name each cluster of the rules (service/<cluster>/*) and " +
			"the published parameters of each cluster (<prefix>/<cluster>/*); never wider than what the rules name. CodeDeploy " +
			"deployment groups stay listed by name (CodeDeploy has no condition key for a group's cluster)."),
		AppliesTo: &applies,
	}}
}

// nagPrefixes is a regular expression alternative of the rules' published
// parameter prefixes, "" when no rule publishes.
func nagPrefixes(cfg *rules.Config) string {
	seen := map[string]bool{}
	for _, r := range cfg.Rules {
		if r.Publish != nil {
			seen[strings.ReplaceAll(regexp.QuoteMeta(r.Publish.SSMPrefix), "/", `\/`)] = true
		}
	}
	if len(seen) == 0 {
		return ""
	}
	return "(" + strings.Join(sortedKeys(seen), "|") + ")"
}
