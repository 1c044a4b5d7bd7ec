// Package work holds the product's typed commands to itself and their JSON
// envelope (command.go): a deploy of one target of one push or sweep
// (deploy-target), which the intake writes to a work queue and the worker
// reads; a push to deploy that the product itself hands the deployer
// (push: a promotion's hand-off); and a request for a sweep (sweep). No
// function forges an AWS event for another: what the product says to itself
// is one of these.
package work

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/deploy"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecrevent"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// Kind names a command in its envelope.
type Kind string

// KindDeployTarget is a deploy of one target of one push (or sweep).
const KindDeployTarget Kind = "deploy-target"

// deployTargetVersion is the version this build writes and reads. A change
// a reader of the previous version would misread takes a new version.
const deployTargetVersion = 1

// Envelope is the header every command carries beside its own fields.
type Envelope struct {
	Kind Kind `json:"kind"`
	V    int  `json:"v"`
}

// Push is the pushed image a work item deploys, as the push event (or the
// sweep) named it. Time keeps its sub-second precision: pushed-at tags are
// written with milliseconds and idempotency of old revisions compares them.
type Push struct {
	EventID         string    `json:"event_id"`
	RegistryAccount string    `json:"registry_account"`
	RegistryRegion  string    `json:"registry_region"`
	Repository      string    `json:"repository"`
	Tag             string    `json:"tag"`
	Digest          string    `json:"digest"`
	PushedAt        time.Time `json:"pushed_at"`
}

// PushOf is the work item's form of a push.
func PushOf(p ecrevent.Push) Push {
	return Push{EventID: p.EventID, RegistryAccount: p.Account, RegistryRegion: p.Region, Repository: p.Repository,
		Tag: p.Tag, Digest: p.Digest, PushedAt: p.Time}
}

// Event is the push as the deployer takes it.
func (p Push) Event() ecrevent.Push {
	return ecrevent.Push{EventID: p.EventID, Account: p.RegistryAccount, Region: p.RegistryRegion, Time: p.PushedAt,
		Repository: p.Repository, Tag: p.Tag, Digest: p.Digest}
}

// DeployTarget is one target of one push. The target is named by its rule,
// the service key it resolved to when it was sent, and its index among the
// rule's targets then (a hint: see Resolve). The rules file may have changed
// in between, and a service the rule no longer targets must be a clear
// failure, never a deploy to the wrong service.
type DeployTarget struct {
	Push        Push   `json:"push"`
	Rule        string `json:"rule"`
	TargetIndex int    `json:"target_index"`
	ServiceKey  string `json:"service_key"`
	// RulesSHA256 is the SHA-256 of the rules file the intake resolved the
	// item with (rules.Config.SHA256; optional, so v1 still: a reader that
	// does not know it ignores it, and an item without it is read as
	// before). See OutOfStep.
	RulesSHA256 string `json:"rules_sha256,omitempty"`
}

// NewDeployTarget is the item for target index i of rule r, with the
// SHA-256 of the rules file r was parsed from.
func NewDeployTarget(push ecrevent.Push, r *rules.Rule, i int, central rules.Place) DeployTarget {
	return DeployTarget{Push: PushOf(push), Rule: r.Name, TargetIndex: i, ServiceKey: serviceKey(r.Targets[i], central),
		RulesSHA256: r.FileSHA256()}
}

// OutOfStep reports whether the item was resolved with another rules file
// than cfg (both SHA-256s known, and different): during a stack update the
// intake may run a newer file than a worker still warm, and an item that
// cfg refuses (Resolve) is then no proof that the target is gone — a
// worker with the intake's file takes it. An item or a Config without a
// SHA-256 is never out of step: Resolve's refusal stands.
func (it DeployTarget) OutOfStep(cfg *rules.Config) bool {
	return it.RulesSHA256 != "" && cfg.SHA256() != "" && it.RulesSHA256 != cfg.SHA256()
}

// Resolve finds the item's rule and target in cfg, and refuses, with a
// permanent *Error, an item the rules file no longer describes: the rule is
// gone, it no longer takes the item's push (its repository, registry,
// ignore-tags or tag selection changed: deploy.Accepts, the intake's own
// decision), or it no longer targets the item's service.
//
// The index is a hint, the service key the identity (a rule lists a service
// once): a target inserted or removed before the item's moves it, and the
// item then deploys its own service at the index it has now (the job's
// Index).
func (it DeployTarget) Resolve(cfg *rules.Config, central rules.Place) (deploy.Job, error) {
	for _, r := range cfg.Rules {
		if r.Name != it.Rule {
			continue
		}
		if ok, why := deploy.Accepts(r, central, it.Push.Event()); !ok {
			return deploy.Job{}, &Error{Msg: fmt.Sprintf("rule %s does not take the item's push %s:%s now (%s): the rules file changed since it was sent",
				r.Name, it.Push.Repository, it.Push.Tag, why)}
		}
		if i := it.TargetIndex; i >= 0 && i < len(r.Targets) && serviceKey(r.Targets[i], central) == it.ServiceKey {
			return deploy.Job{Rule: r, Target: r.Targets[i], Index: i}, nil
		}
		for i, t := range r.Targets {
			if serviceKey(t, central) == it.ServiceKey {
				return deploy.Job{Rule: r, Target: t, Index: i}, nil
			}
		}
		return deploy.Job{}, &Error{Msg: fmt.Sprintf("rule %s no longer targets %s (the item named its target %d): the rules file changed since it was sent",
			r.Name, it.ServiceKey, it.TargetIndex)}
	}
	return deploy.Job{}, &Error{Msg: fmt.Sprintf("no rule %s (the item was for %s): the rules file changed since it was sent", it.Rule, it.ServiceKey)}
}

// Target is the item's target as far as its service key says (account,
// region, cluster and service): what a notice of a refused item names when
// the rules file no longer has the target.
func (it DeployTarget) Target() (account, region, cluster, service string) {
	parts := strings.SplitN(it.ServiceKey, "/", 4)
	for len(parts) < 4 {
		parts = append(parts, "")
	}
	return parts[0], parts[1], parts[2], parts[3]
}

func serviceKey(t rules.Target, central rules.Place) string {
	at := t.Where(central)
	return history.ServiceKey(at.Account, at.Region, t.Cluster, t.Service)
}

// Error is a command that cannot be read or carried out, however often it is
// retried: malformed, of an unknown kind or version, or describing targets
// the rules file no longer has.
type Error struct{ Msg string }

func (e *Error) Error() string { return e.Msg }

// Encode writes a deploy-target item in its envelope (EncodeCommand).
func Encode(it DeployTarget) ([]byte, error) { return EncodeCommand(it) }

// Decode reads a deploy-target item, for a reader that takes nothing else
// (the worker): DecodeCommand, and any other kind is a permanent *Error.
func Decode(body []byte) (DeployTarget, error) {
	c, err := DecodeCommand(body)
	if err != nil {
		return DeployTarget{}, err
	}
	it, ok := c.(DeployTarget)
	if !ok {
		return DeployTarget{}, &Error{Msg: fmt.Sprintf("a %s command is not a work item (%s)", c.Kind(), KindDeployTarget)}
	}
	return it, nil
}

// Kind is the item's kind in its envelope.
func (DeployTarget) Kind() Kind { return KindDeployTarget }

func (DeployTarget) version() int { return deployTargetVersion }

func (it DeployTarget) check() error {
	if it.Rule == "" || it.ServiceKey == "" || it.Push.EventID == "" || it.Push.Digest == "" {
		return errors.New("rule, service_key, push.event_id and push.digest are required")
	}
	return nil
}
