package rules

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"

	"github.com/Masterminds/semver/v3"
)

// compileTagRegex compiles a rule's tag-regex, anchored (a tag matches
// whole). Its errors quote the expression as the file writes it, not the
// anchored one the loader compiles, and say what RE2 lacks when a Perl
// construct (look-behind, look-ahead) is used.
func compileTagRegex(s string) (*regexp.Regexp, error) {
	if _, err := regexp.Compile(s); err != nil {
		msg := err.Error()
		var se *syntax.Error
		if errors.As(err, &se) {
			msg = se.Code.String()
			if se.Expr != "" && se.Expr != s {
				msg += " at `" + se.Expr + "`"
			}
		}
		for _, p := range []struct{ op, what string }{
			{"(?<=", "look-behind"}, {"(?<!", "look-behind"}, {"(?=", "look-ahead"}, {"(?!", "look-ahead"},
		} {
			if strings.Contains(s, p.op) {
				// Go's own words ("invalid named capture") would mislead.
				msg = "Go's regular expressions (RE2) have no " + p.what + " " + p.op + "…): the tag is matched whole, so write what it is, not what precedes or follows it"
				break
			}
		}
		return nil, fmt.Errorf("bad regular expression `%s`: %s", s, msg)
	}
	return regexp.Compile(`^(?:` + s + `)$`)
}

// versionInConstraint finds the versions a constraint names ("1.2", "2.x",
// "v3.0.0-rc.1").
var versionInConstraint = regexp.MustCompile(`v?[0-9]+(?:\.(?:[0-9]+|[xX*]))?(?:\.(?:[0-9]+|[xX*]))?(?:-[0-9A-Za-z.-]+)?`)

// satisfiable reports whether some version meets c. A constraint such as
// ">= 2.0.0, < 1.0.0" is written by mistake and would silently deploy
// nothing. Each alternative of a constraint is an interval (less the
// versions != takes out) whose ends are versions it names, so a version
// that meets it is one it names or one just above: those, and the
// bounds of the version space, are tried.
func satisfiable(text string, c *semver.Constraints) bool {
	candidates := []*semver.Version{semver.MustParse("0.0.0"), semver.MustParse("0.0.1"), semver.MustParse("0.1.0"), semver.MustParse("999999.0.0")}
	for _, m := range versionInConstraint.FindAllString(text, -1) {
		m = strings.NewReplacer("x", "0", "X", "0", "*", "0").Replace(m)
		v, err := semver.NewVersion(m)
		if err != nil {
			continue
		}
		p1 := v.IncPatch()
		p2 := p1.IncPatch()
		minor, major := v.IncMinor(), v.IncMajor()
		candidates = append(candidates, v, &p1, &p2, &minor, &major)
		if w, err := semver.NewVersion(fmt.Sprintf("%d.%d.%d", v.Major(), v.Minor(), v.Patch())); err == nil {
			candidates = append(candidates, w)
		}
	}
	for _, v := range candidates {
		if c.Check(v) {
			return true
		}
	}
	return false
}
