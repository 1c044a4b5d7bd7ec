// Package rules loads autodeploy.yaml strictly and answers which rules a
// pushed image matches and whether it is newer than what runs.
//
// The same loader runs in the deployer at init, in `cdk synth` and in
// `autodeploy validate`, so a bad file fails the same way everywhere.
package rules

import (
	"regexp"

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

// Config is a loaded, validated rules file.
type Config struct {
	// File is the path the config was read from, used in messages.
	File  string
	Rules []*Rule
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
	Targets    []Target
	Promote    *Promote
	Line       int
}

// Target is one ECS service a rule deploys to.
type Target struct {
	Cluster    string
	Service    string
	Containers []string // empty: every container whose image is in the rule's repository
	Account    string   // empty: the event's account (or the role's account)
	Region     string   // empty: the event's region
	Role       string   // empty: the function's own credentials
	Line       int
}

// Promote tags the deployed digest once every target of the rule completed.
type Promote struct {
	Tag string // template; {tag} is replaced by the pushed tag
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
