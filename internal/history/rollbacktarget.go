package history

import (
	"slices"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// RollbackReach is how many of a service's latest records a rollback and
// the clean-up of its family read to find the revision a rollback returns
// to (and, for clean-up, the rollback candidates among them).
const RollbackReach = 50

// deployedOutcome is a record's Outcome when its deploy reached ECS (the
// deploy path's deploy.Deployed, which this package cannot import).
const deployedOutcome = "deployed"

// RollbackTarget is the revision `autodeploy rollback` of a service
// running current returns to by default: the revision the latest deploy
// that put current in place replaced, among recs (a service's records,
// newest first, as Recent reads them; RollbackReach of them). Rollbacks
// are passed over: after a rollback, the next one goes further back (to
// what the deploy that put the restored revision in place replaced), never
// forward. "" when no record put current in place (a rollback restored it,
// or it was deployed outside autodeploy). The deploy's own outcome does not
// matter: the deploy put current in place, whatever ECS made of it later.
// Clean-up protects this revision of every service it reads, so a default
// rollback never finds it gone.
func RollbackTarget(recs []Record, current string) string {
	for _, r := range recs {
		if r.Rule != rules.RollbackRule && r.Outcome == deployedOutcome && r.ToTaskDefinition == current && r.FromTaskDefinition != "" {
			return r.FromTaskDefinition
		}
	}
	return ""
}

// RollbackCandidates are the from and to revisions of the latest keep
// records of recs (newest first) that deployed and whose deployment
// completed or is not known to have ended otherwise (still rolling out,
// or ended before the watcher recorded outcomes); failed, rolled back and
// superseded deploys are passed over, so a run of failed pushes does not
// push the last good revisions out of the count. With RollbackTarget,
// what clean-up protects as a service's rollback candidates.
func RollbackCandidates(recs []Record, keep int) []string {
	var out []string
	n := 0
	for _, r := range recs {
		if n >= keep {
			break
		}
		if r.Outcome != deployedOutcome || (r.DeploymentOutcome != "" && r.DeploymentOutcome != Completed) {
			continue
		}
		n++
		for _, rev := range []string{r.FromTaskDefinition, r.ToTaskDefinition} {
			if rev != "" && !slices.Contains(out, rev) {
				out = append(out, rev)
			}
		}
	}
	return out
}
