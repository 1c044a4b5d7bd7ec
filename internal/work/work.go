// Package work holds the product's typed commands to itself and their JSON
// envelope: today one kind, a deploy of one target of one push or sweep,
// which the intake writes to a work queue and the worker reads. Later
// commands (approvals, redrives, promotion hand-offs) share the envelope.
package work

import (
	"encoding/json"
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

// DeployTarget is one target of one push. The target is named by its rule
// and its index among the rule's targets, and checked on receipt against
// the service key it resolved to when it was sent: the rules file may have
// changed in between, and a different service at that index must be a
// clear failure, never a deploy to the wrong service.
type DeployTarget struct {
	Push        Push   `json:"push"`
	Rule        string `json:"rule"`
	TargetIndex int    `json:"target_index"`
	ServiceKey  string `json:"service_key"`
}

// NewDeployTarget is the item for target index i of rule r.
func NewDeployTarget(push ecrevent.Push, r *rules.Rule, i int, central rules.Place) DeployTarget {
	return DeployTarget{Push: PushOf(push), Rule: r.Name, TargetIndex: i, ServiceKey: serviceKey(r.Targets[i], central)}
}

// Place is where the item's target runs (account/region): queues and the
// worker's concurrency are per place, as ECS's rate limits are.
func (it DeployTarget) Place() (rules.Place, error) {
	parts := strings.SplitN(it.ServiceKey, "/", 3)
	if len(parts) < 3 || parts[0] == "" || parts[1] == "" {
		return rules.Place{}, &Error{Msg: "service key " + it.ServiceKey + " names no place"}
	}
	return rules.Place{Account: parts[0], Region: parts[1]}, nil
}

// Resolve finds the item's rule and target in cfg, and refuses, with a
// permanent *Error, an item the rules file no longer describes: the rule is
// gone, it no longer takes the item's push (its repository, registry,
// ignore-tags or tag selection changed: deploy.Accepts, the intake's own
// decision), or the target at the index is another service now.
func (it DeployTarget) Resolve(cfg *rules.Config, central rules.Place) (*rules.Rule, rules.Target, error) {
	for _, r := range cfg.Rules {
		if r.Name != it.Rule {
			continue
		}
		if ok, why := deploy.Accepts(r, central, it.Push.Event()); !ok {
			return nil, rules.Target{}, &Error{Msg: fmt.Sprintf("rule %s does not take the item's push %s:%s now (%s): the rules file changed since it was sent",
				r.Name, it.Push.Repository, it.Push.Tag, why)}
		}
		if it.TargetIndex < 0 || it.TargetIndex >= len(r.Targets) {
			return nil, rules.Target{}, &Error{Msg: fmt.Sprintf("rule %s has %d targets, the item names target %d (%s): the rules file changed since it was sent",
				r.Name, len(r.Targets), it.TargetIndex, it.ServiceKey)}
		}
		t := r.Targets[it.TargetIndex]
		if key := serviceKey(t, central); key != it.ServiceKey {
			return nil, rules.Target{}, &Error{Msg: fmt.Sprintf("rule %s's target %d is %s now, the item was for %s: the rules file changed since it was sent",
				r.Name, it.TargetIndex, key, it.ServiceKey)}
		}
		return r, t, nil
	}
	return nil, rules.Target{}, &Error{Msg: fmt.Sprintf("no rule %s (the item was for %s): the rules file changed since it was sent", it.Rule, it.ServiceKey)}
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

// Encode writes a deploy-target item in its envelope.
func Encode(it DeployTarget) ([]byte, error) {
	return json.Marshal(struct {
		Envelope
		DeployTarget
	}{Envelope{KindDeployTarget, deployTargetVersion}, it})
}

// Decode reads a command. Anything but a deploy-target item of a version
// this build knows is a permanent *Error: a reader cannot guess what a newer
// writer meant.
func Decode(body []byte) (DeployTarget, error) {
	var env Envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return DeployTarget{}, &Error{Msg: "not a work item: " + err.Error()}
	}
	switch {
	case env.Kind == "":
		return DeployTarget{}, &Error{Msg: "not a work item: no kind"}
	case env.Kind != KindDeployTarget:
		return DeployTarget{}, &Error{Msg: fmt.Sprintf("unknown work item kind %q (version %d)", env.Kind, env.V)}
	case env.V != deployTargetVersion:
		return DeployTarget{}, &Error{Msg: fmt.Sprintf("work item %s version %d is not known to this build (it reads %d)", env.Kind, env.V, deployTargetVersion)}
	}
	var it DeployTarget
	if err := json.Unmarshal(body, &it); err != nil {
		return DeployTarget{}, &Error{Msg: fmt.Sprintf("malformed %s item: %v", env.Kind, err)}
	}
	if it.Rule == "" || it.ServiceKey == "" || it.Push.EventID == "" || it.Push.Digest == "" {
		return DeployTarget{}, &Error{Msg: fmt.Sprintf("incomplete %s item: rule, service_key, push.event_id and push.digest are required", env.Kind)}
	}
	return it, nil
}
