package work

import (
	"errors"
	"fmt"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecrevent"
)

// KindGateDue asks the watcher to end one gate whose time is up: an
// approval that expires, a scan that waited long enough, a bake that ran
// its time. A timer (an EventBridge Scheduler one-time schedule) delivers
// it at the gate's due time; a duplicate or a late one ends nothing twice
// (the gate's transitions are conditional writes).
const KindGateDue Kind = "gate-due"

const gateDueVersion = 1

// GateDue is {"kind":"gate-due","v":1,"gate":"bake","rule":"web-staging","digest":"sha256:…"}.
type GateDue struct {
	// Gate is the gate's kind: approval, scan or bake.
	Gate   string `json:"gate"`
	Rule   string `json:"rule"`
	Digest string `json:"digest"`
}

// Kind is the command's kind in its envelope.
func (GateDue) Kind() Kind { return KindGateDue }

func (GateDue) version() int { return gateDueVersion }

func (c GateDue) check() error {
	switch c.Gate {
	case "approval", "scan", "bake":
	case "":
		return errors.New("gate is required")
	default:
		return fmt.Errorf("gate %q is none of approval, scan, bake", c.Gate)
	}
	if c.Rule == "" {
		return errors.New("rule is required")
	}
	if !ecrevent.IsDigest(c.Digest) {
		return fmt.Errorf("digest %q is not sha256:<64 hex digits>", c.Digest)
	}
	return nil
}
