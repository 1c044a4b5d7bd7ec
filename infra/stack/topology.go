package stack

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// Topology is where a rules file puts things: the central account and
// region (where the functions run), and every other place a registry or a
// target is, each of which gets a stack of its own.
type Topology struct {
	Central    rules.Place
	Registries []rules.Place // other registries, sorted
	Targets    []rules.Place // other target places, sorted
}

// NewTopology reads the places of cfg around central. A rules file that
// names another account or region needs central pinned: the stacks there
// trust and forward to it by account and region.
func NewTopology(cfg *rules.Config, central rules.Place) (Topology, error) {
	tp := Topology{Central: central, Targets: cfg.TargetPlaces(central)}
	regs := map[rules.Place]bool{}
	for _, r := range cfg.Rules {
		if reg := r.RegistryOf(central); reg != central {
			regs[reg] = true
		}
	}
	if (len(regs) > 0 || len(tp.Targets) > 0) && (central.Account == "" || central.Region == "") {
		return tp, fmt.Errorf("the rules name other accounts or regions, so the central stack's account and region must be known: " +
			"give context account=… and region=… (make synth ACCOUNT=… REGION=…), or AWS credentials with a region")
	}
	tp.Registries = sortedPlaces(regs)
	return tp, nil
}

// OtherAccounts are the accounts, besides the central one, whose registry
// or target stacks send events to the central bus, sorted.
func (tp Topology) OtherAccounts() []string {
	return accountsOf(append(slices.Clone(tp.Registries), tp.Targets...), tp.Central)
}

// Multi reports whether anything lives outside the central place.
func (tp Topology) Multi() bool { return len(tp.Registries) > 0 || len(tp.Targets) > 0 }

func sortedPlaces(m map[rules.Place]bool) []rules.Place {
	out := make([]rules.Place, 0, len(m))
	for p := range m {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b rules.Place) int {
		return cmp.Or(cmp.Compare(a.Account, b.Account), cmp.Compare(a.Region, b.Region))
	})
	return out
}

// Role names of the central functions, fixed so that the stacks in other
// accounts can trust them by ARN before (or without) reading the central
// stack. The region keeps two central stacks of one account apart.
func deployerRoleName(stack string, central rules.Place) string {
	return fmt.Sprintf("%s-deployer-%s", stack, central.Region)
}

func workerRoleName(stack string, central rules.Place) string {
	return fmt.Sprintf("%s-worker-%s", stack, central.Region)
}

func watcherRoleName(stack string, central rules.Place) string {
	return fmt.Sprintf("%s-watcher-%s", stack, central.Region)
}

// centralBusARN is the central account's default event bus.
func centralBusARN(central rules.Place) string {
	return fmt.Sprintf("arn:aws:events:%s:%s:event-bus/default", central.Region, central.Account)
}
