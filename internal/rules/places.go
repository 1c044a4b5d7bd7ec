package rules

import (
	"cmp"
	"slices"
)

// TargetPlaces is every place besides central that the rules' targets
// name, each once, sorted by account and region: where the stack puts a
// target stack, and where the intake needs a work queue beside central's.
func (c *Config) TargetPlaces(central Place) []Place {
	seen := map[Place]bool{}
	var out []Place
	for _, r := range c.Rules {
		for _, t := range r.Targets {
			if at := t.Where(central); at != central && !seen[at] {
				seen[at] = true
				out = append(out, at)
			}
		}
	}
	slices.SortFunc(out, func(a, b Place) int {
		return cmp.Or(cmp.Compare(a.Account, b.Account), cmp.Compare(a.Region, b.Region))
	})
	return out
}
