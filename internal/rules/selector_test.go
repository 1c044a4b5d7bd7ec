package rules

import (
	"testing"

	"github.com/Masterminds/semver/v3"
)

// Constraints some version meets are never refused as unsatisfiable.
func TestSatisfiable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		constraint string
		want       bool
	}{
		{">= 1.0.0", true}, {"~1.2", true}, {"^0.0.1", true}, {"1.x", true}, {"!=1.0.0", true}, {"< 0.0.1", true},
		{">1.0.0 <1.0.3 !=1.0.1 !=1.0.2", false}, {">1.0.0 <1.0.4 !=1.0.1 !=1.0.2", true},
		{">= 1.0.0-rc.1, < 1.0.0", true}, {"1.2 - 1.4", true}, {">= 2.0.0 || < 1.0.0", true},
		{">= 2.0.0, < 1.0.0", false}, {"< 0.0.0", false}, {"=3.0.0 !=3.0.0", false},
	} {
		c, err := semver.NewConstraint(tc.constraint)
		if err != nil {
			t.Fatalf("%s: %v", tc.constraint, err)
		}
		if got := satisfiable(tc.constraint, c); got != tc.want {
			t.Errorf("satisfiable(%q) = %v, want %v", tc.constraint, got, tc.want)
		}
	}
}
