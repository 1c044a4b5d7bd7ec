package work

import (
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

// DecodeRecheck reads a recheck command (DecodeCommand, and the kind
// checked); anything else is a permanent *Error, as DecodeCommand's are.
func DecodeRecheck(body []byte) (Recheck, error) {
	c, err := DecodeCommand(body)
	if err != nil {
		return Recheck{}, err
	}
	r, ok := c.(Recheck)
	if !ok {
		return Recheck{}, &Error{Msg: fmt.Sprintf("a %q command is not a %s", c.Kind(), KindRecheck)}
	}
	return r, nil
}
