package rules

import "testing"

// TestEachFunctionItsOwnRole: in another account the worker (deploys), the
// deployer (sweeps read) and the watcher assume different roles, so neither
// the intake nor the watcher holds what deploys and the deployer never what
// writes images; an explicit target role is the worker's and the
// deployer's (both), never the watcher's.
func TestEachFunctionItsOwnRole(t *testing.T) {
	central := Place{"111111111111", "eu-west-1"}
	for _, tc := range []struct {
		name                 string
		target               Target
		deploy, sweep, watch string
	}{
		{"central account", Target{Cluster: "c", Service: "s"}, "", "", ""},
		{"central account, other region", Target{Cluster: "c", Service: "s", Region: "us-east-1"}, "", "", ""},
		{"other account", Target{Cluster: "c", Service: "s", Account: "222222222222", Region: "us-east-1"},
			"arn:aws:iam::222222222222:role/ecr-autodeploy-target-us-east-1",
			"arn:aws:iam::222222222222:role/ecr-autodeploy-sweep-us-east-1",
			"arn:aws:iam::222222222222:role/ecr-autodeploy-watcher-us-east-1"},
		{"other account, central region", Target{Cluster: "c", Service: "s", Account: "222222222222"},
			"arn:aws:iam::222222222222:role/ecr-autodeploy-target-eu-west-1",
			"arn:aws:iam::222222222222:role/ecr-autodeploy-sweep-eu-west-1",
			"arn:aws:iam::222222222222:role/ecr-autodeploy-watcher-eu-west-1"},
		{"other account, named role", Target{Cluster: "c", Service: "s", Account: "222222222222", Role: "arn:aws:iam::222222222222:role/custom"},
			"arn:aws:iam::222222222222:role/custom",
			"arn:aws:iam::222222222222:role/custom",
			"arn:aws:iam::222222222222:role/ecr-autodeploy-watcher-eu-west-1"},
		{"central account, named role", Target{Cluster: "c", Service: "s", Role: "arn:aws:iam::111111111111:role/custom"},
			"arn:aws:iam::111111111111:role/custom", "arn:aws:iam::111111111111:role/custom", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.target.RoleFor(central); got != tc.deploy {
				t.Errorf("worker's (deploy) role = %q, want %q", got, tc.deploy)
			}
			if got := tc.target.SweepRoleFor(central); got != tc.sweep {
				t.Errorf("deployer's (sweep) role = %q, want %q", got, tc.sweep)
			}
			if got := tc.target.WatcherRoleFor(central); got != tc.watch {
				t.Errorf("watcher's role = %q, want %q", got, tc.watch)
			}
		})
	}
}

func TestRegistryRoles(t *testing.T) {
	central := Place{"111111111111", "eu-west-1"}
	for _, tc := range []struct {
		name          string
		registry      Place
		read, promote string
	}{
		{"central account", central, "", ""},
		{"central account, other region", Place{"111111111111", "us-east-1"}, "", ""},
		{"other account", Place{"333333333333", "eu-central-1"},
			"arn:aws:iam::333333333333:role/ecr-autodeploy-registry-eu-central-1",
			"arn:aws:iam::333333333333:role/ecr-autodeploy-promote-eu-central-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := RegistryRole(tc.registry, central); got != tc.read {
				t.Errorf("deployer's (read) role = %q, want %q", got, tc.read)
			}
			if got := PromoteRole(tc.registry, central); got != tc.promote {
				t.Errorf("watcher's (promote) role = %q, want %q", got, tc.promote)
			}
		})
	}
}
