package stack

import (
	"fmt"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// reach selects the targets one set of credentials deploys: the central
// functions' own, or a target stack's role.
type reach func(r *rules.Rule, t rules.Target) bool

// own: targets the central functions reach with their own credentials
// (the central account, any region).
func own(central rules.Place) reach {
	return func(_ *rules.Rule, t rules.Target) bool { return t.RoleFor(central) == "" }
}

// siteRole: targets reached through the role the target stack at place
// makes (those that name no role of their own).
func siteRole(central, place rules.Place) reach {
	return func(_ *rules.Rule, t rules.Target) bool { return t.Role == "" && t.Where(central) == place }
}

// at: every target at place, whatever reaches it (their events are
// forwarded from there).
func at(central, place rules.Place) reach {
	return func(_ *rules.Rule, t rules.Target) bool { return t.Where(central) == place }
}

func everyTarget(*rules.Rule, rules.Target) bool { return true }

// and narrows k by a test of the target.
func (k reach) and(pred func(rules.Target) bool) reach {
	return func(r *rules.Rule, t rules.Target) bool { return k(r, t) && pred(t) }
}

// accountOf and regionOf are a target's account and region for an ARN:
// what the file says, else the stack's own (a pseudo parameter).
func accountOf(t rules.Target) string { return orPseudo(t.Account, "${AWS::AccountId}") }
func regionOf(t rules.Target) string  { return orPseudo(t.Region, "${AWS::Region}") }

func orPseudo(v, pseudo string) string {
	if v == "" {
		return pseudo
	}
	return v
}

// serviceARN is a target's service as an Fn::Sub string.
func serviceARN(t rules.Target) string {
	return fmt.Sprintf("arn:${AWS::Partition}:ecs:%s:%s:service/%s/%s", regionOf(t), accountOf(t), t.Cluster, t.Service)
}
