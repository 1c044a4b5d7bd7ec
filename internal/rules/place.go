package rules

import "fmt"

// Place is an AWS account and region. The zero value, in a rule's registry
// or a target, means the central one: where the functions run.
type Place struct {
	Account string
	Region  string
}

// Or fills what p leaves empty from central.
func (p Place) Or(central Place) Place {
	if p.Account == "" {
		p.Account = central.Account
	}
	if p.Region == "" {
		p.Region = central.Region
	}
	return p
}

func (p Place) String() string { return p.Account + "/" + p.Region }

// Role names the stacks give what they make in other accounts. The region
// is in the name because IAM is global to an account that may host target
// or registry stacks in several regions.
const (
	targetRolePrefix   = "ecr-autodeploy-target-"
	registryRolePrefix = "ecr-autodeploy-registry-"
)

// TargetRoleName is the name of the role a target stack makes in region.
func TargetRoleName(region string) string { return targetRolePrefix + region }

// RegistryRoleName is the name of the role a registry stack makes in region.
func RegistryRoleName(region string) string { return registryRolePrefix + region }

func roleARN(account, name string) string {
	return fmt.Sprintf("arn:aws:iam::%s:role/%s", account, name)
}

// RegistryOf is where the rule's images are pushed.
func (r *Rule) RegistryOf(central Place) Place { return r.Registry.Or(central) }

// RegistryRole is the role that reaches the rule's registry: "" (the
// functions' own credentials) in the central account, else the registry
// stack's role there.
func (r *Rule) RegistryRole(central Place) string {
	return RegistryRole(r.RegistryOf(central), central)
}

// RegistryRole is the role that reaches registry from central.
func RegistryRole(registry, central Place) string {
	if registry.Account == central.Account {
		return ""
	}
	return roleARN(registry.Account, RegistryRoleName(registry.Region))
}

// Where is the target's account and region.
func (t Target) Where(central Place) Place { return Place{t.Account, t.Region}.Or(central) }

// RoleFor is the role assumed to reach the target: the one the file names,
// else, in another account than the central one, its target stack's role,
// else "" (the functions' own credentials).
func (t Target) RoleFor(central Place) string {
	if t.Role != "" {
		return t.Role
	}
	at := t.Where(central)
	if at.Account == central.Account {
		return ""
	}
	return roleARN(at.Account, TargetRoleName(at.Region))
}
