package rules

import (
	"strconv"

	"gopkg.in/yaml.v3"
)

// MinCleanupKeep is the fewest revisions a clean-up may keep: the running
// one and one to roll back to.
const MinCleanupKeep = 2

// MaxCleanupKeep bounds keep so a typo (keep: 10000) reads as one.
const MaxCleanupKeep = 1000

// Cleanup says how a rule's task-definition families are cleaned up: the
// newest Keep revisions stay ACTIVE (with the protected ones, see
// internal/cleanup), older ones are deregistered and, with Delete, deleted.
type Cleanup struct {
	Keep   int
	Delete bool
}

// cleanup reads `cleanup: {keep: N, delete: true|false}`.
func (p *parser) cleanup(f field, at string) *Cleanup {
	m := p.mapping(f.value, at, p.keys("cleanup")...)
	if m == nil {
		return nil
	}
	c := &Cleanup{}
	ok := true
	if kf, has := m["keep"]; !has {
		p.errorf(f.value, at+".keep", "missing; e.g. keep: 10 (at least %d: the running revision and one to roll back to)", MinCleanupKeep)
		ok = false
	} else if n, good := p.cleanupKeep(kf, at+".keep"); good {
		c.Keep = n
	} else {
		ok = false
	}
	if df, has := m["delete"]; has {
		var b bool
		if df.value.Kind != yaml.ScalarNode || df.value.Tag != "!!bool" || df.value.Decode(&b) != nil {
			p.errorf(df.value, at+".delete", "must be true or false, got %s", kindName(df.value))
			ok = false
		} else {
			c.Delete = b
		}
	}
	if !ok {
		return nil
	}
	return c
}

func (p *parser) cleanupKeep(f field, at string) (int, bool) {
	if f.value.Kind != yaml.ScalarNode || f.value.Tag != "!!int" {
		p.errorf(f.value, at, "must be a whole number, got %s", kindName(f.value))
		return 0, false
	}
	n, err := strconv.Atoi(f.value.Value)
	if err != nil || n < MinCleanupKeep || n > MaxCleanupKeep {
		p.errorf(f.value, at, "%s: want %d to %d (the running revision and at least one to roll back to)", f.value.Value, MinCleanupKeep, MaxCleanupKeep)
		return 0, false
	}
	return n, true
}

// CleanupRules are the names of the rules that would clean up (a cleanup:
// of their own or of the defaults), in file order.
func (c *Config) CleanupRules() []string {
	var out []string
	for _, r := range c.Rules {
		if r.Cleanup != nil {
			out = append(out, r.Name)
		}
	}
	return out
}
