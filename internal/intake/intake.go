// Package intake is the deployer function's handler: it reads one
// invocation's payload and routes it to what takes it. AWS events come from
// AWS (ECR's push, the stack schedule's "Scheduled Event"); what the product
// says to itself (a promotion's hand-off, a sweep after a rollback) comes as
// a typed command of package work. Nothing else is taken.
package intake

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/deploy"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/reconcile"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work"
)

// Request is one payload, read: exactly one field is set.
type Request struct {
	// Sweep is a sweep's options: the schedule's event or a sweep command.
	Sweep *reconcile.Options
	// Push is a push command: a push the product hands over itself.
	Push *work.DeployPush
	// Event is an ECR "ECR Image Action" event, for deploy.Deployer.Handle
	// (which also ignores what is not a deployable push).
	Event json.RawMessage
	// Command is the command's kind, "" for an AWS event.
	Command work.Kind
	// From says what the payload was and who sent it, for the log.
	From string
}

// header is what tells AWS events apart.
type header struct {
	ID         string `json:"id"`
	Source     string `json:"source"`
	DetailType string `json:"detail-type"`
}

// Read routes a payload. One that is neither a command this build reads nor
// an event the deployer takes is a permanent *work.Error: the same bytes
// are refused however often they come.
func Read(raw []byte) (Request, error) {
	if work.IsCommand(raw) {
		c, err := work.DecodeCommand(raw)
		if err != nil {
			return Request{}, err
		}
		switch c := c.(type) {
		case work.Sweep:
			return Request{Sweep: &reconcile.Options{EventID: c.ID, DryRun: c.DryRun}, Command: c.Kind(), From: c.Origin}, nil
		case work.DeployPush:
			return Request{Push: &c, Command: c.Kind(), From: c.Origin}, nil
		default:
			return Request{}, &work.Error{Msg: fmt.Sprintf("a %s command is not the deployer's (a deploy-target or a cleanup is the worker's, from a work queue; a recheck the watcher's)", c.Kind())}
		}
	}
	var h header
	if err := json.Unmarshal(raw, &h); err != nil {
		return Request{}, &work.Error{Msg: "payload is not a JSON object: " + err.Error()}
	}
	switch {
	case h.Source == "aws.events" && h.DetailType == "Scheduled Event":
		o, _ := reconcile.Scheduled(raw)
		return Request{Sweep: &o, From: "the schedule's event"}, nil
	case h.Source == "aws.ecr" && h.DetailType == "ECR Image Action":
		return Request{Event: raw, From: "ECR event"}, nil
	case h.Source == "" && h.DetailType == "":
		return Request{}, &work.Error{Msg: "payload is neither a command (no kind) nor an AWS event (no source and detail-type)"}
	}
	return Request{}, &work.Error{Msg: fmt.Sprintf("an event (source %q, detail-type %q, id %q) the deployer does not take: "+
		"it takes ECR's \"ECR Image Action\", the schedule's \"Scheduled Event\" and the push and sweep commands", h.Source, h.DetailType, h.ID)}
}

// Handler is the deployer function's Lambda handler.
type Handler struct {
	Deployer *deploy.Deployer
	Sweeper  *reconcile.Sweeper
	Log      *slog.Logger
}

// maxLogged bounds the part of a refused payload a log line quotes.
const maxLogged = 300

// Handle takes one invocation: a sweep answers with its report, a push
// (event or command) with the deployer's summary. A payload Read refuses
// is logged (msg="refused", ERROR) and returned as its permanent error:
// Lambda's bounded retries end in the function's failure queue, where
// `autodeploy redrive` shows what it is.
func (h Handler) Handle(ctx context.Context, raw json.RawMessage) (any, error) {
	req, err := Read(raw)
	if err != nil {
		quoted := string(raw)
		if len(quoted) > maxLogged {
			quoted = quoted[:maxLogged] + "…"
		}
		h.Log.ErrorContext(ctx, "refused", "reason", err.Error(), "payload", quoted)
		return nil, fmt.Errorf("refused: %w", err)
	}
	switch {
	case req.Sweep != nil:
		if req.Command != "" {
			h.Log.InfoContext(ctx, "command", "kind", string(req.Command), "origin", req.From, "event_id", req.Sweep.EventID,
				"dry_run", req.Sweep.DryRun)
		}
		return h.Sweeper.Sweep(ctx, *req.Sweep)
	case req.Push != nil:
		p := req.Push.Push
		h.Log.InfoContext(ctx, "command", "kind", string(req.Command), "origin", req.From, "event_id", p.EventID,
			"repository", p.Repository, "tag", p.Tag, "digest", p.Digest, "rule", req.Push.Rule)
		return h.Deployer.DeployRule(ctx, p.Event(), req.Push.Rule)
	}
	return h.Deployer.Handle(ctx, req.Event)
}
