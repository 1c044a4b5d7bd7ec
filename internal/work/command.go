package work

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecrevent"
)

// The other kinds of command. Each kind has its own version: a change a
// reader of the previous version would misread takes a new one; a new field
// an older reader may ignore does not.
const (
	// KindPush is a push the product hands the deployer itself (a
	// promotion's new tag, an approved digest): the deployer deploys it
	// to every target of every rule that takes it, as a push event.
	KindPush Kind = "push"
	// KindSweep asks the deployer for a sweep now (after a rollback, an
	// operator's request) instead of at the schedule's next turn.
	KindSweep Kind = "sweep"
)

const (
	pushVersion  = 1
	sweepVersion = 1
)

// Command is one of the product's messages to itself: DeployTarget,
// DeployPush, Sweep, Recheck, Cleanup or GateDue. DecodeCommand returns one by its
// kind.
type Command interface {
	Kind() Kind
	version() int
	// check refuses a command its writer left incomplete.
	check() error
}

// DeployPush is a push to deploy that no ECR event announced: the product
// made it (a promotion tagged a digest) and hands it over. Origin says, for
// logs and a person reading a parked one, where it came from ("promotion of
// rule web-staging to tag verified-main-1"). The push's event id is the
// writer's, stable for the same hand-off, so a repeated one is recognisable
// in tags and history; the deployer skips what already runs.
//
// Rule, when set, is the one rule the push is for: a gate let the digest
// through for that rule (an approval, a clean scan), and the repository's
// other rules took the push when it came. Empty: every rule that takes it
// (a promotion's new tag). An older reader ignores it and deploys to every
// rule, which skips what already runs.
type DeployPush struct {
	Origin string `json:"origin"`
	Push   Push   `json:"push"`
	Rule   string `json:"rule,omitempty"`
}

// Kind is the command's kind in its envelope.
func (DeployPush) Kind() Kind { return KindPush }

func (DeployPush) version() int { return pushVersion }

func (c DeployPush) check() error {
	var missing []string
	for _, f := range []struct{ name, value string }{
		{"origin", c.Origin}, {"push.event_id", c.Push.EventID}, {"push.registry_account", c.Push.RegistryAccount},
		{"push.registry_region", c.Push.RegistryRegion}, {"push.repository", c.Push.Repository},
		{"push.tag", c.Push.Tag}, {"push.digest", c.Push.Digest},
	} {
		if f.value == "" {
			missing = append(missing, f.name)
		}
	}
	if c.Push.PushedAt.IsZero() {
		missing = append(missing, "push.pushed_at")
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing %s", strings.Join(missing, ", "))
	}
	if !ecrevent.IsDigest(c.Push.Digest) {
		return fmt.Errorf("push.digest %q is not sha256:<64 hex digits>", c.Push.Digest)
	}
	return nil
}

// Sweep asks for a sweep of every target now. ID is the sweep's event id,
// as a schedule's event id is (its report, its log lines); Origin says who
// asked and why; DryRun reports what is behind and deploys nothing.
type Sweep struct {
	ID     string `json:"id"`
	Origin string `json:"origin"`
	DryRun bool   `json:"dry_run,omitempty"`
}

// Kind is the command's kind in its envelope.
func (Sweep) Kind() Kind { return KindSweep }

func (Sweep) version() int { return sweepVersion }

func (c Sweep) check() error {
	if c.ID == "" || c.Origin == "" {
		return errors.New("id and origin are required")
	}
	return nil
}

// EncodeCommand writes c in its envelope: its kind and version beside its
// own fields, in one JSON object.
func EncodeCommand(c Command) ([]byte, error) {
	head, err := json.Marshal(Envelope{Kind: c.Kind(), V: c.version()})
	if err != nil {
		return nil, fmt.Errorf("encode %s envelope: %w", c.Kind(), err)
	}
	body, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode %s command: %w", c.Kind(), err)
	}
	if len(body) < 2 || body[0] != '{' {
		return nil, fmt.Errorf("encode %s command: %s is not a JSON object", c.Kind(), body)
	}
	if string(body) == "{}" {
		return head, nil
	}
	return bytes.Join([][]byte{head[:len(head)-1], body[1:]}, []byte(",")), nil
}

// IsCommand reports whether body is in a command's envelope (a JSON object
// with a kind), whether or not this build knows the kind: an AWS event has
// none, so a reader can tell the two apart before decoding either.
func IsCommand(body []byte) bool {
	var env Envelope
	return json.Unmarshal(body, &env) == nil && env.Kind != ""
}

// DecodeCommand reads a command of any kind this build knows. Anything else
// — not JSON, no kind, a kind or version this build does not know, fields of
// the wrong type, an incomplete command — is a permanent *Error: a reader
// cannot guess what a newer writer meant, and a retry reads the same bytes.
func DecodeCommand(body []byte) (Command, error) {
	var env Envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, &Error{Msg: "not a command: " + err.Error()}
	}
	var c Command
	switch env.Kind {
	case "":
		return nil, &Error{Msg: "not a command: no kind"}
	case KindDeployTarget:
		c = &DeployTarget{}
	case KindPush:
		c = &DeployPush{}
	case KindSweep:
		c = &Sweep{}
	case KindRecheck:
		c = &Recheck{}
	case KindCleanup:
		c = &Cleanup{}
	case KindGateDue:
		c = &GateDue{}
	default:
		return nil, &Error{Msg: fmt.Sprintf("unknown command kind %q (version %d)", env.Kind, env.V)}
	}
	if env.V != c.version() {
		return nil, &Error{Msg: fmt.Sprintf("command %s version %d is not known to this build (it reads %d)", env.Kind, env.V, c.version())}
	}
	if err := json.Unmarshal(body, c); err != nil {
		return nil, &Error{Msg: fmt.Sprintf("malformed %s command: %v", env.Kind, err)}
	}
	c = deref(c)
	if err := c.check(); err != nil {
		return nil, &Error{Msg: fmt.Sprintf("incomplete %s command: %v", env.Kind, err)}
	}
	return c, nil
}

// deref turns the pointer DecodeCommand filled into the value callers
// switch on (work.Sweep, not *work.Sweep).
func deref(c Command) Command {
	switch c := c.(type) {
	case *DeployTarget:
		return *c
	case *DeployPush:
		return *c
	case *Sweep:
		return *c
	case *Recheck:
		return *c
	case *Cleanup:
		return *c
	case *GateDue:
		return *c
	}
	return c
}
