package deploy

import (
	"context"
	"errors"
	"fmt"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecrevent"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/gate"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// Gates says whether a rule deploys a digest now (internal/gate's Gates):
// the one place pushes, hand-offs, redrives and sweeps ask.
type Gates interface {
	Admit(ctx context.Context, r *rules.Rule, push ecrevent.Push, mode gate.Mode) (gate.Verdict, error)
}

// GateReason is a target's reason when a gate holds its rule's push.
func GateReason(v gate.Verdict) string { return string(v.Gate) + ": " + v.Reason }

// admitted keeps the jobs whose rule's gates let push through (asking once
// per rule); the others are results, skipped with the gate's reason, and
// logged. A gate that could not be read fails its rule's targets
// transiently and is the error returned: the push is retried, not lost.
// A rule with gates and a deployer without them deploys nothing.
func (d *Deployer) admitted(ctx context.Context, push ecrevent.Push, jobs []Job, mode gate.Mode) ([]Job, []Result, error) {
	type verdict struct {
		v   gate.Verdict
		err error
	}
	verdicts := map[*rules.Rule]verdict{}
	var kept []Job
	var held []Result
	var errs []error
	for _, j := range jobs {
		if !gate.GatedBeforeDeploy(j.Rule) {
			kept = append(kept, j)
			continue
		}
		v, seen := verdicts[j.Rule]
		if !seen {
			if d.Gates == nil {
				v.err = Permanent("rule %s has gates (approval:, scan:), and this deployer is built without them", j.Rule.Name)
			} else {
				v.v, v.err = d.Gates.Admit(ctx, j.Rule, push, mode)
				if v.err != nil {
					v.err = fmt.Errorf("read the gates of rule %s for %s: %w", j.Rule.Name, push.Digest, v.err)
					errs = append(errs, v.err)
				}
			}
			verdicts[j.Rule] = v
		}
		if v.err == nil && v.v.Pass {
			kept = append(kept, j)
			continue
		}
		at := j.Target.Where(d.Central)
		res := Result{Rule: j.Rule.Name, Account: at.Account, Region: at.Region, Cluster: j.Target.Cluster, Service: j.Target.Service, Outcome: Skipped}
		switch {
		case v.err != nil && IsPermanent(v.err):
			res.Outcome, res.Reason = Failed, v.err.Error()
		case v.err != nil:
			res.Outcome, res.Reason, res.Retryable = Failed, v.err.Error()+" (will retry)", true
		default:
			res.Reason = GateReason(v.v)
		}
		d.logResult(ctx, push, res)
		held = append(held, res)
	}
	return kept, held, errors.Join(errs...)
}
