package work

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// KindCleanup asks the worker to clean up old revisions of one
// task-definition family in one place (internal/cleanup): a sweep sends it
// after its deploys, the watcher after a deploy completed. It never holds a
// service's lock and is never part of a push's fan-out.
const KindCleanup Kind = "cleanup"

const cleanupVersion = 1

// Cleanup is one family of one place (account and region, read and
// deregistered through Role: the deploy role of the place's targets, ""
// for the function's own credentials) to clean up, keeping Keep and, with
// Delete, deleting what was deregistered. Services are the rules' targets
// in the place that run, or may run, the family: the worker describes them
// and protects what each runs, deploys, and could roll back to. Rules are
// the rules whose cleanup: asked for it (for logs and a person reading a
// parked one), Origin who sent it and why. Carrying it out twice is
// harmless: a second run finds the first one's work done.
type Cleanup struct {
	Account  string           `json:"account"`
	Region   string           `json:"region"`
	Role     string           `json:"role,omitempty"`
	Family   string           `json:"family"`
	Keep     int              `json:"keep"`
	Delete   bool             `json:"delete,omitempty"`
	Services []CleanupService `json:"services"`
	Rules    []string         `json:"rules"`
	Origin   string           `json:"origin"`
}

// CleanupService is one service of a cleanup: its cluster and service (names
// or ARNs, as the rules file gives them), the role it is described and its
// parameters read with (its target's, rules.Target.RoleFor; "" for the
// cleanup's Role — what a sender before this field meant, and what an older
// reader ignoring it does: its describe of a service of another role fails,
// and nothing is cleaned), and the published parameters whose image must
// stay deployable (Parameter Store names; none when its rule does not
// publish).
type CleanupService struct {
	Cluster   string   `json:"cluster"`
	Service   string   `json:"service"`
	Role      string   `json:"role,omitempty"`
	Published []string `json:"published,omitempty"`
}

// RoleOf is the role s is described with: its own, else the cleanup's.
func (c Cleanup) RoleOf(s CleanupService) string {
	if s.Role != "" {
		return s.Role
	}
	return c.Role
}

// Place is the cleanup's account and region.
func (c Cleanup) Place() rules.Place { return rules.Place{Account: c.Account, Region: c.Region} }

// Kind is the command's kind in its envelope.
func (Cleanup) Kind() Kind { return KindCleanup }

func (Cleanup) version() int { return cleanupVersion }

func (c Cleanup) check() error {
	var missing []string
	for _, f := range []struct{ name, value string }{
		{"account", c.Account}, {"region", c.Region}, {"family", c.Family}, {"origin", c.Origin},
	} {
		if f.value == "" {
			missing = append(missing, f.name)
		}
	}
	if len(c.Services) == 0 {
		missing = append(missing, "services")
	}
	if len(c.Rules) == 0 {
		missing = append(missing, "rules")
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing %s", strings.Join(missing, ", "))
	}
	if c.Keep < rules.MinCleanupKeep || c.Keep > rules.MaxCleanupKeep {
		return fmt.Errorf("keep %d: want %d to %d", c.Keep, rules.MinCleanupKeep, rules.MaxCleanupKeep)
	}
	for i, s := range c.Services {
		if s.Cluster == "" || s.Service == "" {
			return errors.New("services[" + fmt.Sprint(i) + "]: cluster and service are required")
		}
	}
	return nil
}
