// Package rules loads autodeploy.yaml strictly and answers which rules a
// pushed image matches and whether it is newer than what runs.
//
// The same loader runs in the deployer at init, in `cdk synth` and in
// `autodeploy validate`, so a bad file fails the same way everywhere.
package rules

import (
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
)

// Pin says how the deployed image is referenced in the task definition.
type Pin string

const (
	// PinDigest deploys <registry>/<repo>@sha256:…, immune to tag moves.
	PinDigest Pin = "digest"
	// PinTag deploys <registry>/<repo>:<tag>.
	PinTag Pin = "tag"
)

// Order says how two images of one rule are compared to refuse downgrades.
type Order string

const (
	OrderAuto   Order = "auto"
	OrderSemver Order = "semver"
	OrderPushed Order = "pushed"
	OrderNone   Order = "none"
	// orderVersionGroup is what auto resolves to for a tag-regex rule with a
	// named group "version"; it is never written in a file.
	orderVersionGroup Order = "version-group"
)

// RollbackRule is the rule name history records `autodeploy rollback`
// under; no rule of a file may take it.
const RollbackRule = "rollback"

// Config is a loaded, validated rules file.
type Config struct {
	Rules     []*Rule
	Reconcile Reconcile
	File      string // as loaded, for errors found later (CheckOwners)
	sha256    string // of the file's bytes as parsed (see SHA256)
}

// DefaultReconcileEvery is how often sweeps run when the file does not say.
const DefaultReconcileEvery = 10 * time.Minute

// Reconcile is how often the stack sends the deployer a sweep; Every 0 is off.
type Reconcile struct {
	Every time.Duration
}

// Rule maps pushes to one repository, with tags selected one way, onto targets.
type Rule struct {
	Name       string
	Repository string
	// Exactly one of Tags, TagRegex and Semver is set.
	Tags       []string
	TagRegex   *regexp.Regexp
	Semver     *semver.Constraints
	SemverText string

	Pin        Pin
	Order      Order // as written (auto stays auto); see EffectiveOrder
	IgnoreTags []string
	// PassRoles are the task and execution roles (ARN patterns, '*' in the
	// name) the rule's revisions may carry: the deployer's iam:PassRole is
	// limited to them. Empty: any role of the target's own account.
	PassRoles []string
	Targets   []Target
	Promote   *Promote
	// Publish, when set, makes every deploy write the running image to
	// Parameter Store, for infrastructure code to read instead of an image.
	Publish *Publish
	// Registry is where the repository is (zero: the central account and
	// region); only pushes from there match the rule.
	Registry Place
	// Cleanup, when set, says how old revisions of the targets' families
	// are to be cleaned up (internal/cleanup: sweeps, and after a
	// completion). nil: never cleaned up.
	Cleanup *Cleanup
	// Approval, when set, makes each digest wait for a person's approval
	// before it deploys to the targets; Scan, for its image scan
	// (internal/gate carries them out). nil: no gate.
	Approval *Approval
	Scan     *Scan
	Line     int

	fileSHA256 string // of the rules file it was parsed from (see FileSHA256)
}

// Publish says where the running image is published.
type Publish struct {
	SSMPrefix string // "/ecr-autodeploy": parameters <prefix>/<cluster>/<service>/<container>
}

// Parameter is the name of the parameter holding a container's image.
func (p *Publish) Parameter(cluster, service, container string) string {
	return p.SSMPrefix + "/" + cluster + "/" + service + "/" + container
}

// Target is one ECS service a rule deploys to.
type Target struct {
	Cluster    string
	Service    string
	Containers []string // empty: every container whose image is in the rule's repository
	Account    string   // empty: the central account (or the role's account)
	Region     string   // empty: the central region
	Role       string   // empty: derived (see RoleFor)
	// CodeDeploy, when set, says the service is blue/green (CODE_DEPLOY
	// controller): it is deployed through a CodeDeploy deployment.
	CodeDeploy *CodeDeploy
	Line       int
}

// CodeDeploy names the deployment group that deploys a blue/green service,
// or leaves both names empty to find it by the service.
type CodeDeploy struct {
	Application     string
	DeploymentGroup string
	Hooks           []Hook // in lifecycle order
}

// Discovers reports whether the group is found by listing, not named.
func (c *CodeDeploy) Discovers() bool { return c.Application == "" }

// Hook is one AppSpec lifecycle hook: the Lambda function CodeDeploy
// invokes at that event.
type Hook struct {
	Event    string
	Function string
}

// HookEvents are the AppSpec lifecycle events of an ECS deployment, in the
// order CodeDeploy runs them.
var HookEvents = []string{"BeforeInstall", "AfterInstall", "AfterAllowTestTraffic", "BeforeAllowTraffic", "AfterAllowTraffic"}

// Promote tags the deployed digest once every target of the rule completed
// and, with a Bake, once it then ran that long with none of Alarms
// entering ALARM (internal/gate's bake).
type Promote struct {
	Tag    string        // template; {tag} is replaced by the pushed tag
	Bake   time.Duration // 0: promote at once; else MinBake to MaxBake
	Alarms []Alarm       // set exactly when Bake is
}

// clone is a copy of defaults' promote for one rule, whose alarms it
// resolves against that rule's targets.
func (p *Promote) clone() *Promote {
	c := *p
	c.Alarms = append([]Alarm(nil), p.Alarms...)
	return &c
}

// Selector describes how the rule selects tags, for people.
func (r *Rule) Selector() string {
	switch {
	case r.Semver != nil:
		return "semver " + r.SemverText
	case r.TagRegex != nil:
		return "regex " + strings.TrimSuffix(strings.TrimPrefix(r.TagRegex.String(), "^(?:"), ")$")
	}
	return "tags " + strings.Join(r.Tags, ",")
}

// RulesFor returns the rules of one repository, in file order.
func (c *Config) RulesFor(repository string) []*Rule {
	var out []*Rule
	for _, r := range c.Rules {
		if r.Repository == repository {
			out = append(out, r)
		}
	}
	return out
}

// Repositories returns every repository named by a rule, once, in file order.
func (c *Config) Repositories() []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range c.Rules {
		if !seen[r.Repository] {
			seen[r.Repository] = true
			out = append(out, r.Repository)
		}
	}
	return out
}

// EffectiveOrder resolves auto to the order the rule really uses.
func (r *Rule) EffectiveOrder() Order {
	if r.Order != OrderAuto {
		return r.Order
	}
	switch {
	case r.Semver != nil:
		return OrderSemver
	case r.TagRegex != nil && r.TagRegex.SubexpIndex("version") >= 0:
		return orderVersionGroup
	default:
		return OrderPushed
	}
}

// MayPass reports whether a revision of this rule may carry role (a task or
// execution role ARN); "" (no role) always may.
func (r *Rule) MayPass(role string) bool {
	if role == "" || len(r.PassRoles) == 0 {
		return true
	}
	for _, pattern := range r.PassRoles {
		if ok, _ := path.Match(strings.ReplaceAll(pattern, "/", "\x00"), strings.ReplaceAll(role, "/", "\x00")); ok {
			return true
		}
	}
	return false
}
