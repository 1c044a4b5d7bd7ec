package rules

import (
	"fmt"
	"slices"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecsarn"
)

// claim is one rule's claim on the containers of one target service.
type claim struct {
	rule   *Rule
	target *Target
	// rule and target index the key path of the target, for the error:
	// <ats[rule]>.targets[<target>], written only for an error.
	ruleAt, targetAt int
}

// serviceAt names a target's service in place at (its account and region).
func serviceAt(at Place, t Target) string {
	return at.Account + "|" + at.Region + "|" + ecsarn.Name(t.Cluster) + "|" + ecsarn.Name(t.Service)
}

// CheckOwners checks one owner per container again with every target and
// registry resolved against the central place: a target that names the
// central region (or account, or gives an ARN) and one that leaves it out are
// one service, which the loader cannot know. The functions, synth and the CLI
// call it once they know where they run; a zero central leaves those fields
// as written.
func (c *Config) CheckOwners(central Place) error {
	p := &parser{file: c.File}
	ats := make([]string, len(c.Rules))
	for i := range c.Rules {
		ats[i] = fmt.Sprintf("rules[%d]", i)
	}
	p.checkOwners(c.Rules, ats, central)
	if len(p.errs) > 0 {
		return p.errs
	}
	return nil
}

// checkOwners makes two rules that can put an image into the same
// container of one service a load error: their orders fight (a tags rule
// and a semver rule each see the other's image as older, and every sweep
// flips the service). Rules on different containers of one service are
// fine; one rule listing a service twice, on the service's resolved key,
// is an error whatever its containers. A rule without `containers` chooses every container whose image is
// from its repository, so two such rules clash exactly when they name the
// same repository in the same registry, and one clashes with a rule naming
// containers of that same repository.
func (p *parser) checkOwners(rules []*Rule, ats []string, central Place) {
	// Each service's claims, in file order; only a service claimed twice
	// or more is compared, pair by pair, so the check is linear in the
	// targets and quadratic only in the rules sharing one service.
	n := 0
	for _, r := range rules {
		n += len(r.Targets)
	}
	byService := make(map[string][]claim, n)
	order := make([]string, 0, n)
	for i, r := range rules {
		for j := range r.Targets {
			t := &r.Targets[j]
			k := serviceAt(t.Where(central), *t)
			claims, ok := byService[k]
			if !ok {
				order = append(order, k)
			}
			byService[k] = append(claims, claim{r, t, i, j})
		}
	}
	for _, k := range order {
		claims := byService[k]
		if len(claims) < 2 {
			continue
		}
		for i := 1; i < len(claims); i++ {
			for _, first := range claims[:i] {
				later := claims[i]
				key := fmt.Sprintf("%s.targets[%d]", ats[later.ruleAt], later.targetAt)
				if first.rule == later.rule {
					// A rule deploys a service once: its rollout, items and
					// notice count each target it lists as another service.
					p.errs = append(p.errs, &Error{File: p.file, Line: later.target.Line, Key: key,
						Msg: fmt.Sprintf("service %s/%s is listed twice in this rule (first at line %d)",
							ecsarn.Name(later.target.Cluster), ecsarn.Name(later.target.Service), first.target.Line)})
					break
				}
				if shared, ok := clash(first, later, central); ok {
					p.errs = append(p.errs, &Error{File: p.file, Line: later.target.Line, Key: key,
						Msg: fmt.Sprintf("%s of service %s/%s is also deployed by rule %s (line %d, its target at line %d): "+
							"one owner per container, or the two rules' orders fight and every sweep flips the service; "+
							"give each rule its own containers (containers: [...])",
							shared, later.target.Cluster, later.target.Service, first.rule.Name, first.rule.Line, first.target.Line)})
					break
				}
			}
		}
	}
}

// clash reports whether two claims on one service can choose one container,
// and names it ("container app", or "every container from repository web").
func clash(a, b claim, central Place) (string, bool) {
	sameRepo := a.rule.Repository == b.rule.Repository && a.rule.RegistryOf(central) == b.rule.RegistryOf(central)
	switch {
	case len(a.target.Containers) > 0 && len(b.target.Containers) > 0:
		for _, c := range a.target.Containers {
			if slices.Contains(b.target.Containers, c) {
				return "container " + c, true
			}
		}
		return "", false
	case len(a.target.Containers) > 0 && sameRepo:
		return "container " + a.target.Containers[0] + " (from repository " + a.rule.Repository + ")", true
	case len(b.target.Containers) > 0 && sameRepo:
		return "container " + b.target.Containers[0] + " (from repository " + b.rule.Repository + ")", true
	case len(a.target.Containers) == 0 && len(b.target.Containers) == 0 && sameRepo:
		return "every container from repository " + a.rule.Repository, true
	}
	return "", false
}
