package watch

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/bluegreen"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/codedeployevent"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// codeDeployEnding reads a CodeDeploy deployment state change: SUCCESS is
// completed; FAILURE is failed, or rolled back when CodeDeploy rolled it
// back (GetDeployment's rollbackInfo says so); STOP is failed. A rollback
// is a deployment of its own, which autodeploy did not start: ignored.
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
	if ev.State == codedeployevent.Success {
		e.outcome = history.Completed
		return e, nil
	}
	e.outcome, e.reason = history.Failed, "CodeDeploy deployment failed"
	if ev.State == codedeployevent.Stop {
		e.reason = "CodeDeploy deployment stopped"
	}
	if rec.DeploymentOutcome != "" {
		return e, nil // a duplicate: recorded already, nothing to look up
	}
	end, err := w.readEnding(ctx, rec)
	switch {
	case err != nil && awsenv.IsTransient(err):
		return ending{}, err // Lambda retries the event
	case err != nil:
		e.reason += fmt.Sprintf(" (whether it was rolled back is unknown: %v)", err)
	default:
		if end.RolledBack && ev.State == codedeployevent.Failure {
			e.outcome = history.RolledBack
		}
		if end.Reason != "" {
			e.reason += ": " + end.Reason
		}
	}
	return e, nil
}

// readEnding asks CodeDeploy, in the target's account and region, how the
// deployment of rec ended.
func (w *Watcher) readEnding(ctx context.Context, rec history.Record) (bluegreen.Ending, error) {
	if w.CodeDeploy == nil {
		return bluegreen.Ending{}, fmt.Errorf("this watcher has no CodeDeploy client")
	}
	return bluegreen.Ended(ctx, w.CodeDeploy(rec.Region, w.roleOf(rec)), rec.DeploymentID)
}

// roleOf is the role that reads CodeDeploy where rec deployed: the target
// stack's watcher role in another account (never the deployer's, which may
// deploy), else "" (the function's own credentials).
func (w *Watcher) roleOf(rec history.Record) string {
	return rules.WatcherRole(rules.Place{Account: rec.Account, Region: rec.Region}, w.Central)
}
