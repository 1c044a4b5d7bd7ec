package reconcile

import (
	"context"
	"sync"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/deploy"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecrevent"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/gate"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// verdicts asks the gates once per rule and digest in one sweep: every
// target of a rule behind the same newest image shares the answer (and a
// sweep asks for an approval once, not once per target).
type verdicts struct {
	mu   sync.Mutex
	asks map[string]*verdictOnce
}

type verdictOnce struct {
	once sync.Once
	v    gate.Verdict
	err  error
}

// admit is the gates' verdict on push for rule r: a sweep opens gates (a
// lost push event heals: its approval is asked, its scan re-read) but
// never asks again for an approval that ended; a dry run, or a sweep
// that reads the gates only (Options.ReadGates), reads only. A
// rule with gates and a deployer without them deploys nothing.
func (s *Sweeper) admit(ctx context.Context, o Options, vs *verdicts, r *rules.Rule, push ecrevent.Push) (gate.Verdict, error) {
	if s.Deployer.Gates == nil {
		return gate.Verdict{}, deploy.Permanent("rule %s has gates (approval:, scan:), and this sweep is built without them", r.Name)
	}
	mode := gate.FromSweep
	switch {
	case o.ReadGates:
		mode = gate.ReadRecorded // it deploys: only what the gates recorded as passed
	case o.DryRun:
		mode = gate.ReadOnly
	}
	key := r.Name + "\x00" + push.Digest
	vs.mu.Lock()
	if vs.asks == nil {
		vs.asks = map[string]*verdictOnce{}
	}
	ask, ok := vs.asks[key]
	if !ok {
		ask = &verdictOnce{}
		vs.asks[key] = ask
	}
	vs.mu.Unlock()
	ask.once.Do(func() { ask.v, ask.err = s.Deployer.Gates.Admit(ctx, r, push, mode) })
	return ask.v, ask.err
}
