package rules

import (
	"fmt"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	"gopkg.in/yaml.v3"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecsarn"
)

// Keys returns the keys the loader accepts in each mapping of the file: ""
// (top level), "defaults", "reconcile", "rule", "target", "promote",
// "publish", "registry", "codedeploy", "hooks", "cleanup", "approval" and
// "scan". The JSON Schema test holds the schema to the same lists.
func Keys(mapping string) []string {
	switch mapping {
	case "":
		return []string{"version", "defaults", "reconcile", "rules"}
	case "reconcile":
		return []string{"every"}
	case "defaults":
		return []string{"pin", "order", "ignore-tags", "pass-roles", "publish", "registry", "cleanup", "approval", "scan", "promote"}
	case "rule":
		return []string{"name", "repository", "tags", "tag-regex", "semver", "pin", "order", "ignore-tags", "pass-roles", "publish", "registry", "targets", "promote", "cleanup", "approval", "scan"}
	case "registry":
		return []string{"account", "region"}
	case "publish":
		return []string{"ssm-prefix"}
	case "target":
		return []string{"cluster", "service", "containers", "account", "region", "role", "codedeploy"}
	case "codedeploy":
		return []string{"application", "deployment-group", "hooks"}
	case "hooks":
		return HookEvents
	case "promote":
		return []string{"tag", "bake", "alarms"}
	case "cleanup":
		return []string{"keep", "delete"}
	case "approval":
		return []string{"expires"}
	case "scan":
		return []string{"block", "wait"}
	}
	return nil
}

// Load reads and validates the rules file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read rules file: %w", err)
	}
	return Parse(path, data)
}

// Parse validates data as a rules file; file names it in errors. Every
// problem found is returned, as Errors.
func Parse(file string, data []byte) (*Config, error) {
	p := &parser{file: file}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		line, msg := yamlError(err)
		return nil, Errors{{File: file, Line: line, Msg: msg}}
	}
	if len(doc.Content) == 0 {
		return nil, Errors{{File: file, Line: 1, Msg: "the file is empty; it needs version: 1 and rules"}}
	}
	cfg := p.config(doc.Content[0])
	if len(p.errs) > 0 {
		return nil, p.errs
	}
	cfg.File, cfg.sha256 = file, digest(data)
	for _, r := range cfg.Rules {
		r.fileSHA256 = cfg.sha256
	}
	return cfg, nil
}

// yamlError moves the line yaml.v3 puts in its message to where ours go.
func yamlError(err error) (int, string) {
	msg := err.Error()
	m := yamlLineRE().FindStringSubmatch(msg)
	if m == nil {
		return 1, msg
	}
	line := 1
	if m[1] != "" {
		line, _ = strconv.Atoi(m[1])
	}
	return line, "not valid YAML: " + msg[len(m[0]):]
}

type parser struct {
	file string
	errs Errors
	// allowed caches Keys by mapping, asked once per target.
	allowed map[string][]string
	// everyOff is the `every: off` of reconcile, when the file says so.
	everyOff *yaml.Node
}

// keys is Keys(mapping), made once per parse.
func (p *parser) keys(mapping string) []string {
	if k, ok := p.allowed[mapping]; ok {
		return k
	}
	if p.allowed == nil {
		p.allowed = map[string][]string{}
	}
	k := Keys(mapping)
	p.allowed[mapping] = k
	return k
}

func (p *parser) errorf(n *yaml.Node, key, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: n.Line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

// field is one key of a mapping with the node of its key (for its line).
type field struct {
	key   *yaml.Node
	value *yaml.Node
}

// mapping checks that n is a mapping with only allowed keys, each once.
func (p *parser) mapping(n *yaml.Node, at string, allowed ...string) map[string]field {
	if n.Kind != yaml.MappingNode {
		p.errorf(n, at, "must be a mapping (key: value), got %s", kindName(n))
		return nil
	}
	out := make(map[string]field, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		name := k.Value
		if !slices.Contains(allowed, name) {
			p.errorf(k, join(at, name), "unknown key (allowed: %s)", strings.Join(allowed, ", "))
			continue
		}
		if _, dup := out[name]; dup {
			p.errorf(k, join(at, name), "key given twice")
			continue
		}
		out[name] = field{key: k, value: v}
	}
	return out
}

func (p *parser) str(f field, at string) (string, bool) {
	if f.value.Kind != yaml.ScalarNode || f.value.Tag == "!!null" {
		p.errorf(f.value, at, "must be a string, got %s", kindName(f.value))
		return "", false
	}
	if f.value.Value == "" {
		p.errorf(f.value, at, "must not be empty")
		return "", false
	}
	return f.value.Value, true
}

func (p *parser) strList(f field, at string) ([]string, bool) {
	if f.value.Kind != yaml.SequenceNode {
		p.errorf(f.value, at, "must be a list, got %s", kindName(f.value))
		return nil, false
	}
	out := make([]string, 0, len(f.value.Content))
	ok := true
	for i, item := range f.value.Content {
		s, good := p.str(field{key: f.key, value: item}, fmt.Sprintf("%s[%d]", at, i))
		ok = ok && good
		out = append(out, s)
	}
	return out, ok
}

type defaults struct {
	pin        Pin
	order      Order
	ignoreTags []string
	passRoles  []string
	publish    *Publish
	registry   Place
	cleanup    *Cleanup
	approval   *Approval
	scan       *Scan
	promote    *Promote
	// promoteAt is defaults' promote key, to locate what a rule that takes
	// it finds wrong with it (a tag too long for the rule's tags, an alarm
	// of an account the rule has no target in).
	promoteAt field
}

func (p *parser) config(root *yaml.Node) *Config {
	top := p.mapping(root, "", p.keys("")...)
	if top == nil {
		return &Config{}
	}
	if f, ok := top["version"]; !ok {
		p.errorf(root, "version", "missing; write version: 1")
	} else if f.value.Value != "1" || f.value.Kind != yaml.ScalarNode {
		p.errorf(f.value, "version", "unsupported version %q; this build reads version 1", f.value.Value)
	}
	d := defaults{pin: PinDigest, order: OrderAuto}
	if f, ok := top["defaults"]; ok {
		d = p.defaults(f.value, d)
	}
	cfg := &Config{Reconcile: Reconcile{Every: DefaultReconcileEvery}}
	if f, ok := top["reconcile"]; ok {
		cfg.Reconcile = p.reconcile(f.value)
	}
	f, ok := top["rules"]
	if !ok {
		p.errorf(root, "rules", "missing; at least one rule is needed")
		return cfg
	}
	if f.value.Kind != yaml.SequenceNode || len(f.value.Content) == 0 {
		p.errorf(f.value, "rules", "must be a non-empty list of rules")
		return cfg
	}
	names := map[string]int{}
	var ats []string
	for i, n := range f.value.Content {
		at := fmt.Sprintf("rules[%d]", i)
		r := p.rule(n, at, d)
		if r == nil {
			continue
		}
		ats = append(ats, at)
		if r.Name != "" {
			if line, dup := names[r.Name]; dup {
				p.errorf(n, at+".name", "duplicate rule name %q (first at line %d)", r.Name, line)
			} else {
				names[r.Name] = r.Line
			}
		}
		cfg.Rules = append(cfg.Rules, r)
	}
	p.checkOwners(cfg.Rules, ats, Place{})
	p.checkGatesSwept(cfg)
	return cfg
}

// checkGatesSwept refuses gates without sweeps: the sweep's schedule is
// what sets approvals' and scans' timers and ends the gates whose timers
// were lost, so without it a push could wait for ever, untold.
func (p *parser) checkGatesSwept(cfg *Config) {
	if p.everyOff == nil {
		return
	}
	if gated := cfg.GateRules(); len(gated) > 0 {
		p.errorf(p.everyOff, "reconcile.every", "off, but rules %s have gates (approval:, scan:, promote.bake): the sweep's schedule sets their timers "+
			"and ends those a lost timer left open; give every (1m to 24h)", strings.Join(gated, ", "))
	}
}

// reconcile reads `reconcile: {every: 10m}`: a duration of whole minutes
// from 1m to 24h (EventBridge schedules count minutes), or off.
func (p *parser) reconcile(n *yaml.Node) Reconcile {
	m := p.mapping(n, "reconcile", p.keys("reconcile")...)
	f, ok := m["every"]
	if !ok {
		return Reconcile{Every: DefaultReconcileEvery}
	}
	s, ok := p.str(f, "reconcile.every")
	if !ok {
		return Reconcile{}
	}
	if s == "off" {
		p.everyOff = f.value
		return Reconcile{}
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		p.errorf(f.value, "reconcile.every", "%q is not a duration like 10m or 1h, nor off", s)
	case d < time.Minute || d > 24*time.Hour || d%time.Minute != 0:
		p.errorf(f.value, "reconcile.every", "%s: want whole minutes from 1m to 24h (or off)", s)
	}
	return Reconcile{Every: d}
}

func (p *parser) defaults(n *yaml.Node, d defaults) defaults {
	m := p.mapping(n, "defaults", p.keys("defaults")...)
	if f, ok := m["pin"]; ok {
		d.pin = p.pin(f, "defaults.pin")
	}
	if f, ok := m["order"]; ok {
		d.order = p.order(f, "defaults.order")
	}
	if f, ok := m["ignore-tags"]; ok {
		d.ignoreTags = p.globs(f, "defaults.ignore-tags")
	}
	if f, ok := m["pass-roles"]; ok {
		d.passRoles = p.passRoles(f, "defaults.pass-roles")
	}
	if f, ok := m["publish"]; ok {
		d.publish = p.publish(f, "defaults.publish")
	}
	if f, ok := m["registry"]; ok {
		d.registry = p.registry(f, "defaults.registry")
	}
	if f, ok := m["cleanup"]; ok {
		d.cleanup = p.cleanup(f, "defaults.cleanup")
	}
	if f, ok := m["approval"]; ok {
		d.approval = p.approval(f, "defaults.approval")
	}
	if f, ok := m["scan"]; ok {
		d.scan = p.scan(f, "defaults.scan")
	}
	if f, ok := m["promote"]; ok {
		d.promote, d.promoteAt = p.promote(f, "defaults.promote"), f
	}
	return d
}

// registry reads `registry: {account: "…", region: …}`; either may be
// left out for the central one.
func (p *parser) registry(f field, at string) Place {
	m := p.mapping(f.value, at, p.keys("registry")...)
	if m != nil && len(m) == 0 {
		p.errorf(f.value, at, "must name an account, a region or both (leave it out for the central registry)")
	}
	var reg Place
	if af, ok := m["account"]; ok {
		reg.Account = p.account(af, at+".account")
	}
	if rf, ok := m["region"]; ok {
		reg.Region = p.region(rf, at+".region")
	}
	return reg
}

// account reads a 12-digit account id (quoted or not).
func (p *parser) account(f field, at string) string {
	s, ok := p.str(f, at)
	if !ok {
		return ""
	}
	if !isAccount(s) {
		p.errorf(f.value, at, "%q is not a 12-digit AWS account id (quote it to keep leading zeros)", s)
		return ""
	}
	return s
}

// region reads a region name AWS has.
func (p *parser) region(f field, at string) string {
	s, ok := p.str(f, at)
	if !ok {
		return ""
	}
	if !KnownRegion(s) {
		if regionRE().MatchString(s) {
			p.errorf(f.value, at, "unknown AWS region %q", s)
		} else {
			p.errorf(f.value, at, "%q is not an AWS region name (like eu-west-1)", s)
		}
		return ""
	}
	return s
}

// publish reads `publish: {ssm-prefix: /ecr-autodeploy}`.
func (p *parser) publish(f field, at string) *Publish {
	m := p.mapping(f.value, at, p.keys("publish")...)
	if m == nil {
		return nil
	}
	pf, ok := m["ssm-prefix"]
	if !ok {
		p.errorf(f.value, at+".ssm-prefix", "missing; e.g. ssm-prefix: /ecr-autodeploy")
		return nil
	}
	s, ok := p.str(pf, at+".ssm-prefix")
	if !ok {
		return nil
	}
	lower := strings.ToLower(s)
	switch {
	case !strings.HasPrefix(s, "/"):
		p.errorf(pf.value, at+".ssm-prefix", "%q must start with /", s)
	case strings.HasSuffix(s, "/"):
		p.errorf(pf.value, at+".ssm-prefix", "%q must not end with / (the deployer adds /<cluster>/<service>/<container>)", s)
	case !ssmPrefixRE().MatchString(s):
		p.errorf(pf.value, at+".ssm-prefix", "%q: a parameter path is /-separated names of a-z, A-Z, 0-9, _, . and -", s)
	case strings.HasPrefix(lower, "/aws") || strings.HasPrefix(lower, "/ssm"):
		p.errorf(pf.value, at+".ssm-prefix", "%q: names beginning with aws or ssm are reserved by Parameter Store", s)
	case strings.Count(s, "/") > 12 || len(s) > 500:
		p.errorf(pf.value, at+".ssm-prefix", "%q is too deep or long: a parameter name has at most 15 levels (the deployer adds 3) and 1011 characters", s)
	default:
		return &Publish{SSMPrefix: s}
	}
	return nil
}

// passRoles reads IAM role ARNs, '*' allowed in the role's path and name.
func (p *parser) passRoles(f field, at string) []string {
	list, _ := p.strList(f, at)
	for i, s := range list {
		if !isPassRole(s) {
			p.errorf(f.value.Content[i], fmt.Sprintf("%s[%d]", at, i),
				"%q is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME; '*' may stand in the name, e.g. role/web-*)", s)
		}
	}
	return list
}

func (p *parser) pin(f field, at string) Pin {
	s, _ := p.str(f, at)
	switch Pin(s) {
	case PinDigest, PinTag:
		return Pin(s)
	}
	p.errorf(f.value, at, "must be digest or tag, got %q", s)
	return PinDigest
}

func (p *parser) order(f field, at string) Order {
	s, _ := p.str(f, at)
	switch Order(s) {
	case OrderAuto, OrderSemver, OrderPushed, OrderNone:
		return Order(s)
	}
	p.errorf(f.value, at, "must be auto, semver, pushed or none, got %q", s)
	return OrderAuto
}

func (p *parser) globs(f field, at string) []string {
	list, _ := p.strList(f, at)
	for i, g := range list {
		if g == "" {
			continue
		}
		if _, err := path.Match(g, ""); err != nil {
			p.errorf(f.value.Content[i], fmt.Sprintf("%s[%d]", at, i), "bad glob %q: %v", g, err)
		}
	}
	return list
}

func (p *parser) rule(n *yaml.Node, at string, d defaults) *Rule {
	m := p.mapping(n, at, p.keys("rule")...)
	if m == nil {
		return nil
	}
	r := &Rule{Line: n.Line, Pin: d.pin, Order: d.order, IgnoreTags: d.ignoreTags, PassRoles: d.passRoles, Publish: d.publish, Registry: d.registry, Cleanup: d.cleanup,
		Approval: d.approval, Scan: d.scan}
	if f, ok := m["name"]; !ok {
		p.errorf(n, at+".name", "missing; every rule needs a unique name")
	} else if s, ok := p.str(f, at+".name"); ok {
		if !isRuleName(s) {
			p.errorf(f.value, at+".name", "%q must be 1-64 characters of a-z, 0-9 and -", s)
		} else if s == RollbackRule {
			p.errorf(f.value, at+".name", "%q is reserved: history records the CLI's rollbacks under it, and the watcher would take them for this rule's deploys", s)
		}
		r.Name = s
	}
	if f, ok := m["repository"]; !ok {
		p.errorf(n, at+".repository", "missing; name the ECR repository")
	} else if s, ok := p.str(f, at+".repository"); ok {
		if len(s) < 2 || len(s) > 256 || !repositoryRE().MatchString(s) {
			p.errorf(f.value, at+".repository", "%q is not a valid ECR repository name", s)
		}
		r.Repository = s
	}
	p.selector(n, m, at, r)
	if f, ok := m["pin"]; ok {
		r.Pin = p.pin(f, at+".pin")
	}
	if f, ok := m["order"]; ok {
		r.Order = p.order(f, at+".order")
	}
	if f, ok := m["ignore-tags"]; ok {
		r.IgnoreTags = p.globs(f, at+".ignore-tags")
	}
	if f, ok := m["pass-roles"]; ok {
		r.PassRoles = p.passRoles(f, at+".pass-roles")
	}
	if f, ok := m["publish"]; ok {
		r.Publish = p.publish(f, at+".publish")
	}
	if f, ok := m["registry"]; ok {
		r.Registry = p.registry(f, at+".registry")
	}
	if f, ok := m["cleanup"]; ok {
		r.Cleanup = p.cleanup(f, at+".cleanup")
	}
	if f, ok := m["approval"]; ok {
		r.Approval = p.approval(f, at+".approval")
	}
	if f, ok := m["scan"]; ok {
		r.Scan = p.scan(f, at+".scan")
	}
	if r.Pin == PinTag && (r.Approval != nil || r.Scan != nil) {
		// The gates pass one digest; a tag in the task definition is
		// looked up again at every ECS deployment and may name another.
		pinAt, node := at+".pin", n
		if f, ok := m["pin"]; ok {
			node = f.value
		} else {
			pinAt = "defaults.pin"
		}
		p.errorf(node, pinAt, "tag, but rule %q has approval: or scan:, which pass a digest: pin: digest (the default) deploys what passed", r.Name)
	}
	if f, ok := m["targets"]; !ok {
		p.errorf(n, at+".targets", "missing; a rule needs at least one target")
	} else {
		r.Targets = p.targets(f, at+".targets")
	}
	// A rule's promote replaces the default's whole; one taken from
	// defaults is checked against each rule that takes it, and located there.
	promoteAt, pf, of := at+".promote", d.promoteAt, ""
	if f, ok := m["promote"]; ok {
		r.Promote, pf = p.promote(f, at+".promote"), f
	} else if d.promote != nil {
		r.Promote, promoteAt, of = d.promote.clone(), "defaults.promote", " (from defaults)"
	}
	if r.Promote != nil {
		if longest, ok := r.longestTag(); ok {
			if tag := RenderPromoteTag(r.Promote.Tag, longest); len(tag) > MaxTagLength {
				which := "this rule"
				if of != "" {
					which = fmt.Sprintf("rule %q", r.Name)
				}
				p.errorf(pf.value, promoteAt+".tag", "renders %q (%d characters) for the longest tag %s selects, %q; an image tag has at most %d",
					tag, len(tag), which, longest, MaxTagLength)
			}
		}
		p.checkAlarms(r, promoteAt, of)
	}
	return r
}

// MaxTagLength is the longest image tag ECR and the OCI reference grammar accept.
const MaxTagLength = 128

// longestTag is the longest tag the rule can select, when that is bounded:
// only a tags list without '*' is (each '?' or [...] stands for one
// character, shown as x). Regexes, semver and '*' select tags of any length;
// their promotions are checked when they happen.
func (r *Rule) longestTag() (string, bool) {
	if len(r.Tags) == 0 {
		return "", false
	}
	var longest string
	for _, g := range r.Tags {
		if strings.Contains(g, "*") {
			return "", false
		}
		t := globClassRE().ReplaceAllString(g, "x")
		t = strings.ReplaceAll(strings.ReplaceAll(t, "?", "x"), `\`, "")
		if len(t) > len(longest) {
			longest = t
		}
	}
	return longest, true
}

// selector reads exactly one of tags, tag-regex and semver.
func (p *parser) selector(n *yaml.Node, m map[string]field, at string, r *Rule) {
	var given []string
	for _, k := range []string{"tags", "tag-regex", "semver"} {
		if _, ok := m[k]; ok {
			given = append(given, k)
		}
	}
	if len(given) != 1 {
		key := at + ".tags"
		if len(given) > 1 {
			key = at + "." + given[1]
		}
		p.errorf(n, key, "exactly one of tags, tag-regex and semver is needed, got %d", len(given))
	}
	if f, ok := m["tags"]; ok {
		r.Tags = p.globs(f, at+".tags")
		if f.value.Kind == yaml.SequenceNode && len(r.Tags) == 0 {
			p.errorf(f.value, at+".tags", "must list at least one tag or glob")
		}
	}
	if f, ok := m["tag-regex"]; ok {
		if s, ok := p.str(f, at+".tag-regex"); ok {
			re, err := compileTagRegex(s)
			if err != nil {
				p.errorf(f.value, at+".tag-regex", "%v", err)
			} else {
				r.TagRegex = re
			}
		}
	}
	if f, ok := m["semver"]; ok {
		if s, ok := p.str(f, at+".semver"); ok {
			c, err := semver.NewConstraint(s)
			switch {
			case err != nil:
				p.errorf(f.value, at+".semver", "bad semver constraint %q: %v", s, err)
			case !satisfiable(s, c):
				p.errorf(f.value, at+".semver", "semver constraint %q is met by no version: the rule would deploy nothing", s)
			default:
				r.Semver, r.SemverText = c, s
			}
		}
	}
}

func (p *parser) targets(f field, at string) []Target {
	if f.value.Kind != yaml.SequenceNode || len(f.value.Content) == 0 {
		p.errorf(f.value, at, "must be a non-empty list of targets")
		return nil
	}
	// A service listed twice is checkOwners' to find, on the service's
	// resolved key (a name and an ARN, or the central region written out
	// and left out, are one service).
	out := make([]Target, 0, len(f.value.Content))
	for i, n := range f.value.Content {
		if t, ok := p.target(n, at+"["+strconv.Itoa(i)+"]"); ok {
			out = append(out, t)
		}
	}
	return out
}

func (p *parser) target(n *yaml.Node, at string) (Target, bool) {
	m := p.mapping(n, at, p.keys("target")...)
	if m == nil {
		return Target{}, false
	}
	before := len(p.errs)
	t := Target{Line: n.Line}
	for _, k := range []string{"cluster", "service"} {
		if _, ok := m[k]; !ok {
			p.errorf(n, at+"."+k, "missing")
		}
	}
	if f, ok := m["account"]; ok {
		t.Account = p.account(f, at+".account")
	}
	if f, ok := m["region"]; ok {
		t.Region = p.region(f, at+".region")
	}
	if f, ok := m["role"]; ok {
		s, ok := p.str(f, at+".role")
		if account, isRole := roleARNAccount(s); ok && !isRole {
			p.errorf(f.value, at+".role", "%q is not an IAM role ARN", s)
		} else if ok {
			t.Role = s
			switch {
			case t.Account == "":
				t.Account = account
			case t.Account != account:
				p.errorf(f.value, at+".role", "role is in account %s but the target's account is %s", account, t.Account)
			}
		}
	}
	if f, ok := m["cluster"]; ok {
		if s, ok := p.str(f, at+".cluster"); ok {
			t.Cluster = p.ecsRef(f, at+".cluster", s, "cluster", &t)
		}
	}
	if f, ok := m["service"]; ok {
		if s, ok := p.str(f, at+".service"); ok {
			t.Service = p.ecsRef(f, at+".service", s, "service", &t)
		}
	}
	if f, ok := m["containers"]; ok {
		list, _ := p.strList(f, at+".containers")
		if f.value.Kind == yaml.SequenceNode && len(list) == 0 {
			p.errorf(f.value, at+".containers", "must name at least one container, or be left out for every container of the repository")
		}
		dup := map[string]bool{}
		for i, c := range list {
			if dup[c] {
				p.errorf(f.value.Content[i], fmt.Sprintf("%s.containers[%d]", at, i), "container %q listed twice", c)
			}
			dup[c] = true
		}
		t.Containers = list
	}
	if f, ok := m["codedeploy"]; ok {
		t.CodeDeploy = p.codeDeploy(f, at+".codedeploy")
	}
	return t, len(p.errs) == before
}

// codeDeploy reads a target's blue/green settings: the application and
// deployment group together (or neither, to find the group by the
// service) and the lifecycle hooks.
func (p *parser) codeDeploy(f field, at string) *CodeDeploy {
	cd := &CodeDeploy{}
	if f.value.Tag == "!!null" || (f.value.Kind == yaml.MappingNode && len(f.value.Content) == 0) {
		return cd // `codedeploy: {}`: blue/green, group found by the service
	}
	m := p.mapping(f.value, at, p.keys("codedeploy")...)
	for _, k := range []struct {
		key string
		to  *string
	}{{"application", &cd.Application}, {"deployment-group", &cd.DeploymentGroup}} {
		kf, ok := m[k.key]
		if !ok {
			continue
		}
		if s, ok := p.str(kf, at+"."+k.key); ok {
			if !isCodeDeployName(s) {
				p.errorf(kf.value, at+"."+k.key, "%q is not a CodeDeploy name (1-100 letters, digits, '.', '_', '+', '-')", s)
			}
			*k.to = s
		}
	}
	_, app := m["application"]
	_, group := m["deployment-group"]
	if app != group {
		p.errorf(f.value, at, "application and deployment-group go together: name both, or neither to find the group that deploys this service")
	}
	if hf, ok := m["hooks"]; ok {
		hm := p.mapping(hf.value, at+".hooks", p.keys("hooks")...)
		if hm != nil && len(hm) == 0 {
			p.errorf(hf.value, at+".hooks", "must name at least one lifecycle hook (%s), or be left out", strings.Join(HookEvents, ", "))
		}
		for _, event := range HookEvents {
			ef, ok := hm[event]
			if !ok {
				continue
			}
			s, ok := p.str(ef, at+".hooks."+event)
			if !ok {
				continue
			}
			if !isLambdaFunction(s) {
				p.errorf(ef.value, at+".hooks."+event, "%q is not a Lambda function name or ARN", s)
			}
			cd.Hooks = append(cd.Hooks, Hook{Event: event, Function: s})
		}
	}
	return cd
}

// ecsRef accepts a cluster or service as a name or an ARN. An ARN's account
// and region must agree with the target's, and become them when unset; its
// name part is what is kept.
func (p *parser) ecsRef(f field, at, s, kind string, t *Target) string {
	if !strings.HasPrefix(s, "arn:") {
		if !isECSName(s) {
			p.errorf(f.value, at, "%q is not a valid %s name (1-255 letters, digits, - and _) or ARN", s, kind)
		}
		return s
	}
	a, err := ecsarn.Parse(s)
	if err != nil || a.Kind != kind {
		p.errorf(f.value, at, "%q is not an ECS %s ARN", s, kind)
		return s
	}
	if t.Account == "" {
		t.Account = a.Account
	} else if t.Account != a.Account {
		p.errorf(f.value, at, "ARN is in account %s but the target's account is %s", a.Account, t.Account)
	}
	if t.Region == "" {
		t.Region = a.Region
	} else if t.Region != a.Region {
		p.errorf(f.value, at, "ARN is in region %s but the target's region is %s", a.Region, t.Region)
	}
	if kind == "service" && a.Cluster == "" {
		// The stacks grant and match service/<cluster>/<name>, the form ECS
		// events carry once the account has opted in to the long ARN format.
		p.errorf(f.value, at, "%q is a short (old-format) service ARN without its cluster; use arn:aws:ecs:%s:%s:service/<cluster>/%s "+
			"or the service's name (migrate the service to the long ARN format: "+
			"https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-arn-migration.html)", s, a.Region, a.Account, a.Name)
		return a.Name
	}
	if kind == "service" && a.Cluster != "" && t.Cluster != "" && t.Cluster != a.Cluster {
		p.errorf(f.value, at, "service ARN is in cluster %s but the target's cluster is %s", a.Cluster, t.Cluster)
	}
	return a.Name
}

func (p *parser) promote(f field, at string) *Promote {
	m := p.mapping(f.value, at, p.keys("promote")...)
	if m == nil {
		return nil
	}
	tf, ok := m["tag"]
	if !ok {
		p.errorf(f.value, at+".tag", "missing; e.g. tag: \"verified-{tag}\"")
		return nil
	}
	s, ok := p.str(tf, at+".tag")
	if !ok {
		return nil
	}
	for _, ph := range placeholder().FindAllString(s, -1) {
		if ph != "{tag}" {
			p.errorf(tf.value, at+".tag", "unknown placeholder %s; only {tag} is replaced", ph)
			return nil
		}
	}
	if sample := RenderPromoteTag(s, "1.2.3"); !isDockerTag(sample) {
		p.errorf(tf.value, at+".tag", "%q does not render to a valid image tag (got %q for tag 1.2.3)", s, sample)
		return nil
	}
	pr := &Promote{Tag: s}
	if !p.bake(f, m, at, pr) {
		return nil
	}
	return pr
}

// RenderPromoteTag fills a promote template with the pushed tag.
func RenderPromoteTag(template, tag string) string {
	return strings.ReplaceAll(template, "{tag}", tag)
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	if n.Tag == "!!null" {
		return "nothing"
	}
	return fmt.Sprintf("%q", n.Value)
}

func join(at, key string) string {
	if at == "" {
		return key
	}
	return at + "." + key
}
