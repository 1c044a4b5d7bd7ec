package deploy

import (
	"testing"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// The intake reads a target in another account through its sweep role only
// while a work queue's worker deploys it; a deployer that deploys itself
// (no dispatcher, or InProcess) reads with the deploy role it deploys
// with; a named role is both.
func TestReadRole(t *testing.T) {
	central := rules.Place{Account: "111111111111", Region: "eu-west-1"}
	elsewhere := rules.Target{Cluster: "c", Service: "s", Account: "222222222222"}
	named := rules.Target{Cluster: "c", Service: "s", Account: "222222222222", Role: "arn:aws:iam::222222222222:role/custom"}
	home := rules.Target{Cluster: "c", Service: "s"}
	for _, tc := range []struct {
		name       string
		dispatcher func(d *Deployer) Dispatcher
		target     rules.Target
		queued     bool
		want       string
	}{
		{"no dispatcher", func(*Deployer) Dispatcher { return nil }, elsewhere, false, "arn:aws:iam::222222222222:role/ecr-autodeploy-target-eu-west-1"},
		{"in-process", func(d *Deployer) Dispatcher { return InProcess{Deployer: d} }, elsewhere, false, "arn:aws:iam::222222222222:role/ecr-autodeploy-target-eu-west-1"},
		{"work queue", func(*Deployer) Dispatcher { return &recordingDispatcher{} }, elsewhere, true, "arn:aws:iam::222222222222:role/ecr-autodeploy-sweep-eu-west-1"},
		{"work queue, named role", func(*Deployer) Dispatcher { return &recordingDispatcher{} }, named, true, "arn:aws:iam::222222222222:role/custom"},
		{"work queue, central account", func(*Deployer) Dispatcher { return &recordingDispatcher{} }, home, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &Deployer{Central: central}
			d.Dispatcher = tc.dispatcher(d)
			if got := d.Queued(); got != tc.queued {
				t.Errorf("Queued() = %v, want %v", got, tc.queued)
			}
			if got := d.ReadRole(tc.target); got != tc.want {
				t.Errorf("ReadRole = %q, want %q", got, tc.want)
			}
		})
	}
}
