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
// or registry stacks in several regions. Each central function has its own
// role there, with only what it calls: the worker deploys (target); the
// deployer, the intake, describes targets and repairs their published
// images in sweeps (sweep) and lists images (registry); the watcher reads
// CodeDeploy deployments (watcher) and tags promoted digests (promote).
const (
	targetRolePrefix   = "ecr-autodeploy-target-"
	sweepRolePrefix    = "ecr-autodeploy-sweep-"
	watcherRolePrefix  = "ecr-autodeploy-watcher-"
	registryRolePrefix = "ecr-autodeploy-registry-"
	promoteRolePrefix  = "ecr-autodeploy-promote-"
)

// TargetRoleName is the name of the role a target stack makes in region for
// the worker: it deploys.
func TargetRoleName(region string) string { return targetRolePrefix + region }

// SweepRoleName is the name of the role a target stack makes in region for
// the deployer (the intake): its sweeps describe services and revisions and
// read and repair published parameters there, and deploy nothing.
func SweepRoleName(region string) string { return sweepRolePrefix + region }

// WatcherRoleName is the name of the role a target stack makes in region for
// the watcher: it reads how CodeDeploy deployments and ECS-native service
// deployments ended, nothing else.
func WatcherRoleName(region string) string { return watcherRolePrefix + region }

// RegistryRoleName is the name of the role a registry stack makes in region
// for the deployer: it lists images for sweeps, nothing else.
func RegistryRoleName(region string) string { return registryRolePrefix + region }

// PromoteRoleName is the name of the role a registry stack makes in region
// for the watcher: it tags promoted digests.
func PromoteRoleName(region string) string { return promoteRolePrefix + region }

func roleARN(account, name string) string {
	return fmt.Sprintf("arn:aws:iam::%s:role/%s", account, name)
}

// RegistryOf is where the rule's images are pushed.
func (r *Rule) RegistryOf(central Place) Place { return r.Registry.Or(central) }

// RegistryRole is the role the deployer assumes to list the rule's images:
// "" (the functions' own credentials) in the central account, else the
// registry stack's read role there.
func (r *Rule) RegistryRole(central Place) string {
	return RegistryRole(r.RegistryOf(central), central)
}

// RegistryRole is the role that lets the deployer read registry from
// central.
func RegistryRole(registry, central Place) string {
	return registryRole(registry, central, RegistryRoleName)
}

// PromoteRole is the role the watcher assumes to tag a promoted digest in
// registry: "" in the central account, else the registry stack's promote
// role there.
func PromoteRole(registry, central Place) string {
	return registryRole(registry, central, PromoteRoleName)
}

func registryRole(registry, central Place, name func(region string) string) string {
	if registry.Account == central.Account {
		return ""
	}
	return roleARN(registry.Account, name(registry.Region))
}

// Where is the target's account and region.
func (t Target) Where(central Place) Place { return Place{t.Account, t.Region}.Or(central) }

// RoleFor is the role assumed to deploy the target (the worker's, and an
// in-process deployer's): the one the file names, else, in another account
// than the central one, its target stack's deploy role, else "" (the
// functions' own credentials).
func (t Target) RoleFor(central Place) string { return t.roleFor(central, TargetRoleName) }

// SweepRoleFor is the role the intake assumes to read the target in sweeps
// while the worker deploys it (a work queue): the one the file names, else,
// in another account than the central one, its target stack's sweep role,
// which deploys nothing, else "". A role the file names is both functions':
// it grants the intake whatever it grants, so a team that wants the intake
// kept to reads leaves role out and lets the target stack make both.
func (t Target) SweepRoleFor(central Place) string { return t.roleFor(central, SweepRoleName) }

func (t Target) roleFor(central Place, name func(region string) string) string {
	if t.Role != "" {
		return t.Role
	}
	at := t.Where(central)
	if at.Account == central.Account {
		return ""
	}
	return roleARN(at.Account, name(at.Region))
}

// WatcherRoleFor is the role the watcher assumes to read the target's
// CodeDeploy deployments and service deployments (see WatcherRole). A role the file names is the
// worker's and the deployer's alone.
func (t Target) WatcherRoleFor(central Place) string { return WatcherRole(t.Where(central), central) }

// WatcherRole is the role the watcher assumes to read CodeDeploy and ECS's
// service deployments at place: in another account than the central one,
// the watcher role of its target stack, else "" (the functions' own
// credentials). The target stack makes that role for every place with
// targets, whether or not the
// target names a role, so the watcher never holds what deploys; and it
// depends on the place only, which every deployment record carries.
func WatcherRole(at, central Place) string {
	at = at.Or(central)
	if at.Account == central.Account {
		return ""
	}
	return roleARN(at.Account, WatcherRoleName(at.Region))
}
