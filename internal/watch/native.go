package watch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rollout"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work"
)

// Rechecker asks for the watcher to judge rec's deployment again at at
// (internal/timer: a one-time schedule that sends work.Recheck). Asked
// twice for the same deployment and due minute, it sets one schedule (a
// retry a minute later for a time already due sets a second: harmless);
// a recheck delivered twice records nothing twice anyway.
type Rechecker interface {
	Recheck(ctx context.Context, rec history.Record, at time.Time) error
}

// InProgress is the outcome the deployment line says while an ECS-native
// rollout is in flight; nothing is recorded.
const InProgress = "in_progress"

const (
	// noServiceDeploymentGrace is how long after its start a rollout's
	// missing service deployment is taken for ECS being late to list it
	// (the event fails, Lambda retries); later, the event's word is taken.
	noServiceDeploymentGrace = 15 * time.Minute
	// recheckInFlight is when an in-flight rollout with no bake to wait
	// for (a traffic shift, a Lambda hook running) is read again.
	recheckInFlight = time.Minute
	// recheckPaused is the backstop for a rollout paused at a hook: its
	// hook's next event (continued, failed, timed out) reads it at once.
	recheckPaused = time.Hour
)

// isNative reports whether rec's service ran an ECS-native rollout when
// deployed (Record.Rollout "ECS-native CANARY"…); rolling, CodeDeploy and
// records of older versions are not.
func isNative(rec history.Record) bool {
	return strings.HasPrefix(rec.Rollout, rollout.Kind{Family: rollout.ECSNative}.String())
}

// readOnly is the watcher's ECS client as an ECS-native rollout takes it:
// it reads service deployments and starts nothing.
type readOnly struct {
	rollout.ServiceDeploymentReader
}

func (readOnly) UpdateService(context.Context, *ecs.UpdateServiceInput, ...func(*ecs.Options)) (*ecs.UpdateServiceOutput, error) {
	return nil, errors.New("the watcher starts no rollouts")
}

// native judges an ECS-native rollout by its service deployment
// (rollout.NativeRollout.Outcome): completed only when SUCCESSFUL,
// rolled_back for ROLLBACK_* with ECS's reason, failed for STOPPED; in
// flight, nothing final (e.inFlight). hint is a service deployment ARN to
// try first (a hook event's), else the record's. The service deployment
// found is noted on the record. A failed read fails the event (Lambda
// retries), and so does no service deployment right after the start.
func (w *Watcher) native(ctx context.Context, e ending, ev rollout.Event, hint string) (ending, error) {
	rec := e.rec
	if w.ECS == nil {
		w.Log.WarnContext(ctx, "service deployment not read", "deployment_id", rec.DeploymentID, "rollout", rec.Rollout,
			"reason", "the watcher has no ECS client: the event's word is taken")
		return e, nil
	}
	recorded := rec.DeploymentOutcome
	if recorded == history.Failed {
		recorded = "" // a rollback may follow a failure: read it
	}
	kind := rollout.NativeRollout{Strategy: types.DeploymentStrategy(strings.TrimSpace(strings.TrimPrefix(rec.Rollout, rollout.Kind{Family: rollout.ECSNative}.String()))),
		ECS: readOnly{w.ECS(rec.Region, w.roleOf(rec))}, Now: w.Now}
	if hint == "" {
		hint = rec.ServiceDeploymentARN
	}
	o, err := kind.Outcome(ctx, rollout.End{Cluster: rec.Cluster, Service: rec.Service, TaskDefinition: rec.ToTaskDefinition,
		DeploymentID: rec.DeploymentID, ServiceDeploymentARN: hint, StartedAt: rec.DeployedAt, Recorded: recorded, Event: ev})
	if errors.Is(err, rollout.ErrNoServiceDeployment) && w.now().Sub(rec.DeployedAt) > noServiceDeploymentGrace {
		w.Log.WarnContext(ctx, "service deployment not found", "deployment_id", rec.DeploymentID, "cluster", rec.Cluster,
			"service", rec.Service, "task_definition", rec.ToTaskDefinition, "error", err.Error())
		if e.outcome == "" {
			e.ignored = "no service deployment targets the revision"
			return e, nil
		}
		e.reason = strings.TrimPrefix(e.reason+"; ", "; ") + "ECS lists no service deployment of the revision: the event's word"
		return e, nil
	}
	if err != nil {
		return ending{}, fmt.Errorf("how deployment %s on %s/%s ended: %w", rec.DeploymentID, rec.Cluster, rec.Service, err)
	}
	if o.ServiceDeploymentARN != "" && o.ServiceDeploymentARN != rec.ServiceDeploymentARN {
		if err := w.Store.NoteServiceDeployment(ctx, rec, o.ServiceDeploymentARN); err != nil {
			return ending{}, err
		}
		rec.ServiceDeploymentARN = o.ServiceDeploymentARN
	}
	e.rec = rec
	if o.InFlight() {
		e.outcome, e.inFlight = "", &o
		return e, nil
	}
	e.outcome, e.reason = o.Outcome, o.Reason
	if !o.At.IsZero() {
		// When ECS says it ended, not when an event or a timer (a minute
		// or more later) brought the watcher to read it.
		e.at = o.At
	}
	return e, nil
}

// stillInFlight reports an ECS-native rollout not ended yet: one
// msg="deployment" line with outcome in_progress and its stage, and a
// recheck when its bake ends (else soon, or, paused, as a backstop).
func (w *Watcher) stillInFlight(ctx context.Context, e ending) (Result, error) {
	rec, o := e.rec, e.inFlight
	at := w.recheckAt(*o)
	w.Log.InfoContext(ctx, "deployment", "rule", rec.Rule, "repository", rec.Repository, "tag", rec.Tag, "digest", rec.Digest,
		"cluster", rec.Cluster, "service", rec.Service, "deployment_id", rec.DeploymentID, "task_definition", rec.ToTaskDefinition,
		"rollout", rec.Rollout, "service_deployment_arn", o.ServiceDeploymentARN, "status", string(o.Status),
		"outcome", InProgress, "stage", o.Stage, "recheck_at", at, "event_id", rec.EventID)
	if w.Rechecker != nil {
		// ECS sends no event when a bake ends: without the recheck the
		// outcome would never be read. Failing the event retries it.
		if err := w.Rechecker.Recheck(ctx, rec, at); err != nil {
			return Result{}, fmt.Errorf("recheck deployment %s at %s: %w", rec.DeploymentID, at.Format(time.RFC3339), err)
		}
	}
	return Result{DeploymentID: rec.DeploymentID, Outcome: InProgress, Stage: o.Stage}, nil
}

// recheckAt is when an in-flight rollout may have moved on: its bake's end
// (Outcome.RecheckAt, not before now), else a minute on, or an hour for a
// rollout paused at a hook (its hook's events come first).
func (w *Watcher) recheckAt(o rollout.Outcome) time.Time {
	now := w.now()
	switch {
	case !o.RecheckAt.IsZero():
		return maxTime(o.RecheckAt, now)
	case o.Paused:
		return now.Add(recheckPaused)
	}
	return now.Add(recheckInFlight)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// recheckEnding judges an ECS-native rollout again when a timer says
// (work.Recheck): its record, read by deployment id, is judged exactly as
// an event's would be. A malformed command is logged and dropped (a retry
// reads the same bytes).
func (w *Watcher) recheckEnding(ctx context.Context, raw json.RawMessage) (ending, error) {
	c, err := work.DecodeRecheck(raw)
	if err != nil {
		w.Log.ErrorContext(ctx, "invalid command", "error", err.Error())
		return ending{ignored: "invalid command: " + err.Error()}, nil
	}
	e := ending{at: w.now(), eventID: "recheck/" + c.DeploymentID, deploymentID: c.DeploymentID, log: []any{"event", work.KindRecheck}}
	rec, found, err := w.Store.ByDeployment(ctx, c.DeploymentID)
	switch {
	case err != nil:
		return ending{}, err
	case !found:
		e.ignored = "deployment not started by autodeploy"
		return e, nil
	case !isNative(rec):
		e.ignored = "not an ECS-native rollout (" + rec.Rollout + ")"
		return e, nil
	}
	e.rec = rec
	return w.native(ctx, e, rollout.Event{Name: string(work.KindRecheck)}, "")
}
