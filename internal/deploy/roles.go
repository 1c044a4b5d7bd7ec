package deploy

import "github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"

// Queued says whether d hands its targets to a work queue, whose worker
// deploys them, rather than deploying them itself (no dispatcher, or
// InProcess).
func (d *Deployer) Queued() bool {
	_, inProcess := d.Dispatcher.(InProcess)
	return d.Dispatcher != nil && !inProcess
}

// ReadRole is the role d reads target t with outside a deploy: a sweep's
// describes and a published parameter's check and repair. With a work
// queue, d is the intake and deploys nothing, so it reads through t's
// sweep role (rules.Target.SweepRoleFor), which cannot deploy; in-process
// it deploys too, through t's deploy role (RoleFor), and reads with it.
func (d *Deployer) ReadRole(t rules.Target) string {
	if d.Queued() {
		return t.SweepRoleFor(d.Central)
	}
	return t.RoleFor(d.Central)
}
