package timer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work"
)

// PurposeGate names gate timers: "gate-<hash>-<minute>".
const PurposeGate = "gate"

// GateTimers sets the gates' timers (gate.Timers): a schedule that hands
// the watcher work.GateDue for a gate at its due time (a bake's end, an
// approval's or a scan's expiry).
type GateTimers struct {
	Timers *Timers
	// Watcher is the ARN of the function the schedule invokes. Empty: the
	// function this invocation runs in, as Rechecker's (the watcher: the
	// stack cannot name a function's own ARN in its environment).
	Watcher string
}

// NewGateTimers is the gates' timers on ts (the Rechecker's, so one
// Scheduler client serves both); nil when ts is nil (no timers).
func NewGateTimers(ts *Timers) *GateTimers {
	if ts == nil {
		return nil
	}
	return &GateTimers{Timers: ts}
}

// SetGateTimer sets the timer that ends gate (approval, scan, bake) of
// digest for rule at due. Asked twice for the same gate and due time, it
// sets one schedule.
func (g *GateTimers) SetGateTimer(ctx context.Context, gate, rule, digest string, due time.Time) error {
	_, err := g.Set(ctx, gate, rule, digest, due)
	return err
}

// Set is SetGateTimer, saying which schedule it set (or found).
func (g *GateTimers) Set(ctx context.Context, gate, rule, digest string, due time.Time) (Set, error) {
	key := gate + "#" + rule + "#" + digest
	if g.Timers == nil {
		return Set{}, errors.New("set the timer of " + key + ": no timers")
	}
	target := invoked(ctx, g.Watcher)
	if target == "" {
		return Set{}, fmt.Errorf("set the timer of %s: no watcher ARN (not in a Lambda invocation, and none configured)", key)
	}
	s, err := g.Timers.Set(ctx, Timer{Purpose: PurposeGate, Key: key, Due: due, Target: target,
		Command: work.GateDue{Gate: gate, Rule: rule, Digest: digest}})
	if err != nil {
		return Set{}, fmt.Errorf("set the timer of %s gate of %s for rule %s: %w", gate, digest, rule, err)
	}
	return s, nil
}
