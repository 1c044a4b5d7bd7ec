package rules

import (
	"cmp"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
)

// Matches reports whether a pushed tag selects this rule, and if not, why.
func (r *Rule) Matches(tag string) (bool, string) {
	for _, g := range r.IgnoreTags {
		if ok, _ := path.Match(g, tag); ok {
			return false, fmt.Sprintf("tag %s is ignored by %q", tag, g)
		}
	}
	switch {
	case r.Semver != nil:
		v, ok := parseSemver(tag)
		if !ok {
			return false, fmt.Sprintf("tag %s is not a semantic version", tag)
		}
		if !r.Semver.Check(v) {
			return false, fmt.Sprintf("version %s is outside %q", tag, r.SemverText)
		}
		return true, ""
	case r.TagRegex != nil:
		if !r.TagRegex.MatchString(tag) {
			return false, fmt.Sprintf("tag %s does not match %s", tag, r.TagRegex)
		}
		return true, ""
	default:
		for _, g := range r.Tags {
			if ok, _ := path.Match(g, tag); ok {
				return true, ""
			}
		}
		return false, fmt.Sprintf("tag %s matches none of %s", tag, strings.Join(r.Tags, ", "))
	}
}

// parseSemver accepts MAJOR.MINOR.PATCH[-pre][+build] with an optional v,
// and nothing looser: "1" or "latest" are not versions to order by.
func parseSemver(tag string) (*semver.Version, bool) {
	v, err := semver.StrictNewVersion(strings.TrimPrefix(tag, "v"))
	return v, err == nil
}

// Image is what is known of one image for ordering: its tag and when it was
// pushed (and, for a listed image, its digest). A zero field is unknown.
type Image struct {
	Tag      string
	PushedAt time.Time
	Digest   string
}

// Newest is the image the rule would deploy among images (one per tag, as a
// registry lists them): of those whose tag the rule matches, the latest by
// the rule's order — the highest version for semver and version-group
// orders (a tag without one never wins over one with), else the latest
// push; ties go to the later push, then to the greater tag. ok is false
// when the rule matches none.
func (r *Rule) Newest(images []Image) (newest Image, ok bool) {
	for _, im := range images {
		if match, _ := r.Matches(im.Tag); !match {
			continue
		}
		if !ok || r.newer(im, newest) {
			newest, ok = im, true
		}
	}
	return newest, ok
}

// newer reports whether a sorts after b by the rule's order.
func (r *Rule) newer(a, b Image) bool {
	switch order := r.EffectiveOrder(); order {
	case OrderSemver, orderVersionGroup:
		av, aok := r.version(order, a.Tag)
		bv, bok := r.version(order, b.Tag)
		if aok != bok {
			return aok
		}
		if aok {
			if c := compareVersions(av, bv); c != 0 {
				return c > 0
			}
		}
	}
	if !a.PushedAt.Equal(b.PushedAt) {
		return a.PushedAt.After(b.PushedAt)
	}
	return a.Tag > b.Tag
}

// Replaces reports whether candidate may replace running under the rule's
// order, and if not, why. Unknown running state never blocks a deploy:
// refusing would strand a service that was set up by hand.
func (r *Rule) Replaces(candidate, running Image) (bool, string) {
	order := r.EffectiveOrder()
	switch order {
	case OrderNone:
		return true, ""
	case OrderPushed:
		return byPushTime(candidate, running)
	}
	cv, ok := r.version(order, candidate.Tag)
	if !ok {
		return false, fmt.Sprintf("tag %s has no version to order by (order %s)", candidate.Tag, order)
	}
	if running.Tag == "" {
		return true, ""
	}
	rv, ok := r.version(order, running.Tag)
	if !ok {
		return true, ""
	}
	switch c := compareVersions(cv, rv); {
	case c < 0:
		return false, fmt.Sprintf("%s is older than the running %s", candidate.Tag, running.Tag)
	case c > 0:
		return true, ""
	}
	return byPushTime(candidate, running)
}

func byPushTime(candidate, running Image) (bool, string) {
	if running.PushedAt.IsZero() || candidate.PushedAt.IsZero() || !candidate.PushedAt.Before(running.PushedAt) {
		return true, ""
	}
	return false, fmt.Sprintf("pushed at %s, before the running image (pushed at %s)",
		candidate.PushedAt.UTC().Format(time.RFC3339), running.PushedAt.UTC().Format(time.RFC3339))
}

// version is the part of a tag that orders it: a semver, a number or text.
type version struct {
	text string
	sv   *semver.Version
}

func (r *Rule) version(order Order, tag string) (version, bool) {
	switch order {
	case OrderSemver:
		sv, ok := parseSemver(tag)
		return version{text: tag, sv: sv}, ok
	case orderVersionGroup:
		m := r.TagRegex.FindStringSubmatch(tag)
		i := r.TagRegex.SubexpIndex("version")
		if m == nil || i < 0 || m[i] == "" {
			return version{}, false
		}
		sv, _ := parseSemver(m[i])
		return version{text: m[i], sv: sv}, true
	}
	return version{}, false
}

// compareVersions orders by semver when both parse, else as whole numbers
// when both are digits, else as text.
func compareVersions(a, b version) int {
	if a.sv != nil && b.sv != nil {
		return a.sv.Compare(b.sv)
	}
	if isDigits(a.text) && isDigits(b.text) {
		x, y := strings.TrimLeft(a.text, "0"), strings.TrimLeft(b.text, "0")
		if len(x) != len(y) {
			return cmp.Compare(len(x), len(y))
		}
		return strings.Compare(x, y)
	}
	return strings.Compare(a.text, b.text)
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
