package work

import (
	"encoding/json"
	"errors"
	"fmt"
)

// KindRecheck asks the watcher to judge an ECS-native deployment again: its
// service deployment was still in flight (a bake, a pause) when an event or
// an earlier recheck read it, and ECS sends no event when a bake ends. A
// timer (an EventBridge Scheduler one-time schedule) delivers it to the
// watcher at the moment the outcome may be known.
const KindRecheck Kind = "recheck"

const recheckVersion = 1

// Recheck is {"kind":"recheck","v":1,"deployment_id":"ecs-svc/…"}: the
// deployment is named by history's deployment id, so the watcher reads its
// record and judges it exactly as it judges an event. A duplicate or a
// retry records nothing twice (history's outcome is written once).
type Recheck struct {
	DeploymentID string `json:"deployment_id"`
}

// Kind is the command's kind in its envelope.
func (Recheck) Kind() Kind { return KindRecheck }

func (Recheck) version() int { return recheckVersion }

func (c Recheck) check() error {
	if c.DeploymentID == "" {
		return errors.New("deployment_id is required")
	}
	return nil
}

// DecodeRecheck reads a recheck command; anything else (another kind, an
// unknown version, an incomplete one) is a permanent *Error, as
// DecodeCommand's are.
func DecodeRecheck(body []byte) (Recheck, error) {
	var env Envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return Recheck{}, &Error{Msg: "not a command: " + err.Error()}
	}
	if env.Kind != KindRecheck {
		return Recheck{}, &Error{Msg: fmt.Sprintf("a %q command is not a %s", env.Kind, KindRecheck)}
	}
	var c Recheck
	if env.V != c.version() {
		return Recheck{}, &Error{Msg: fmt.Sprintf("command %s version %d is not known to this build (it reads %d)", env.Kind, env.V, c.version())}
	}
	if err := json.Unmarshal(body, &c); err != nil {
		return Recheck{}, &Error{Msg: fmt.Sprintf("malformed %s command: %v", env.Kind, err)}
	}
	if err := c.check(); err != nil {
		return Recheck{}, &Error{Msg: fmt.Sprintf("incomplete %s command: %v", env.Kind, err)}
	}
	return c, nil
}
