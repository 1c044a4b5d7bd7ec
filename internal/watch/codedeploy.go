package watch

import (
	"context"
	"encoding/json"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/codedeployevent"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rollout"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// codeDeployEnding reads a CodeDeploy deployment state change of a
// deployment autodeploy started; how it ended is the CodeDeploy rollout's
// to say (rollout.CodeDeployRollout.Outcome: SUCCESS completed, FAILURE
// failed or rolled back, STOP failed). A rollback is a deployment of its
// own, which autodeploy did not start: ignored.
func (w *Watcher) codeDeployEnding(ctx context.Context, raw json.RawMessage) (ending, error) {
	ev, err := codedeployevent.Parse(raw)
	if err != nil {
		w.Log.ErrorContext(ctx, "invalid event", "error", err.Error())
		return ending{}, err
	}
	e := ending{at: ev.Time, eventID: ev.EventID, deploymentID: ev.DeploymentID,
		log: []any{"event", ev.State, "deployment_group", ev.Application + "/" + ev.DeploymentGroup}}
	switch ev.State {
	case codedeployevent.Success, codedeployevent.Failure, codedeployevent.Stop:
	default:
		e.ignored = "deployment still in progress"
		return e, nil
	}
	rec, found, err := w.Store.ByDeployment(ctx, ev.DeploymentID)
	if err != nil {
		return ending{}, err
	}
	if !found {
		e.ignored = "deployment not started by autodeploy"
		return e, nil
	}
	e.rec = rec
	kind := rollout.CodeDeployRollout{}
	if w.CodeDeploy != nil {
		kind.Client = w.CodeDeploy(rec.Region, w.roleOf(rec))
	}
	o, err := kind.Outcome(ctx, rollout.End{
		Cluster: rec.Cluster, Service: rec.Service, TaskDefinition: rec.ToTaskDefinition, DeploymentID: rec.DeploymentID, StartedAt: rec.DeployedAt,
		Recorded: rec.DeploymentOutcome, Event: rollout.Event{Name: ev.State},
	})
	if err != nil {
		return ending{}, err // transient: Lambda retries the event
	}
	e.outcome, e.reason = o.Outcome, o.Reason
	return e, nil
}

// roleOf is the role that reads CodeDeploy where rec deployed: the target
// stack's watcher role in another account (never the deployer's, which may
// deploy), else "" (the function's own credentials).
func (w *Watcher) roleOf(rec history.Record) string {
	return rules.WatcherRole(rules.Place{Account: rec.Account, Region: rec.Region}, w.Central)
}
