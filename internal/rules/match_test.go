package rules

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func mustRule(t testing.TB, selector string) *Rule {
	t.Helper()
	src := fmt.Sprintf("version: 1\nrules:\n  - name: r\n    repository: web\n    %s\n    targets: [{cluster: c, service: s}]\n", selector)
	cfg, err := Parse("t.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse(%s): %v", selector, err)
	}
	return cfg.Rules[0]
}

func TestMatches(t *testing.T) {
	tests := []struct {
		selector string
		tag      string
		want     bool
	}{
		{`tags: ["main-*", latest]`, "main-abc123", true},
		{`tags: ["main-*", latest]`, "latest", true},
		{`tags: ["main-*", latest]`, "main", false},
		{`tags: ["main-*", latest]`, "feature-x", false},
		{`tags: ["v?.*"]`, "v1.2", true},
		{`tags: ["*"]`, "anything", true},
		{"tags: [\"*\"]\n    ignore-tags: [\"*-dirty\"]", "1.0-dirty", false},
		{`tag-regex: 'build-(?P<version>\d+)'`, "build-42", true},
		{`tag-regex: 'build-(?P<version>\d+)'`, "build-42-x", false}, // whole tag only
		{`tag-regex: 'build-(?P<version>\d+)'`, "xbuild-42", false},
		{`tag-regex: 'a|b'`, "ab", false}, // alternation is still anchored
		{`semver: ">= 1.0.0"`, "1.0.0", true},
		{`semver: ">= 1.0.0"`, "v1.4.2", true},
		{`semver: ">= 1.0.0"`, "0.9.9", false},
		{`semver: ">= 1.0.0"`, "2.0.0-rc.1", false}, // no pre-release unless the constraint names one
		{`semver: ">= 2.0.0-rc.0"`, "2.0.0-rc.1", true},
		{`semver: ">= 1.0.0"`, "1.2", false}, // not a full version
		{`semver: ">= 1.0.0"`, "latest", false},
		{`semver: "~1.2"`, "1.2.9", true},
		{`semver: "~1.2"`, "1.3.0", false},
	}
	for _, tt := range tests {
		t.Run(tt.selector+"/"+tt.tag, func(t *testing.T) {
			got, reason := mustRule(t, tt.selector).Matches(tt.tag)
			if got != tt.want {
				t.Errorf("Matches(%q) = %v (%s), want %v", tt.tag, got, reason, tt.want)
			}
			if !got && reason == "" {
				t.Error("a non-match must say why")
			}
		})
	}
}

func TestReplaces(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	later := t0.Add(time.Minute)
	tests := []struct {
		name      string
		selector  string
		candidate Image
		running   Image
		want      bool
	}{
		{"semver newer", `semver: ">=1.0.0"`, Image{Tag: "1.2.0"}, Image{Tag: "1.1.9"}, true},
		{"semver older", `semver: ">=1.0.0"`, Image{Tag: "1.1.9"}, Image{Tag: "1.2.0"}, false},
		{"semver v prefix", `semver: ">=1.0.0"`, Image{Tag: "v1.10.0"}, Image{Tag: "1.9.0"}, true},
		{"semver release beats rc", `semver: ">=1.0.0-0"`, Image{Tag: "2.0.0"}, Image{Tag: "2.0.0-rc.1"}, true},
		{"semver equal, pushed later", `semver: ">=1.0.0"`, Image{Tag: "1.0.0", PushedAt: later}, Image{Tag: "1.0.0", PushedAt: t0}, true},
		{"semver equal, pushed earlier", `semver: ">=1.0.0"`, Image{Tag: "1.0.0", PushedAt: t0}, Image{Tag: "1.0.0", PushedAt: later}, false},
		{"semver, running unknown", `semver: ">=1.0.0"`, Image{Tag: "1.0.0"}, Image{}, true},
		{"semver, running not semver", `semver: ">=1.0.0"`, Image{Tag: "1.0.0"}, Image{Tag: "latest"}, true},
		{"explicit semver order, candidate not semver", "tags: [\"*\"]\n    order: semver", Image{Tag: "latest"}, Image{Tag: "1.0.0"}, false},
		{"version group numeric", `tag-regex: 'build-(?P<version>\d+)'`, Image{Tag: "build-10"}, Image{Tag: "build-9"}, true},
		{"version group numeric older", `tag-regex: 'build-(?P<version>\d+)'`, Image{Tag: "build-9"}, Image{Tag: "build-10"}, false},
		{"version group huge numbers", `tag-regex: 'b-(?P<version>\d+)'`, Image{Tag: "b-100000000000000000000001"}, Image{Tag: "b-99999999999999999999999"}, true},
		{"version group semver", `tag-regex: 'rel-(?P<version>.+)'`, Image{Tag: "rel-1.10.0"}, Image{Tag: "rel-1.9.0"}, true},
		{"version group text", `tag-regex: 'd-(?P<version>.+)'`, Image{Tag: "d-2026-11-25"}, Image{Tag: "d-2026-11-24"}, true},
		{"version group text older", `tag-regex: 'd-(?P<version>.+)'`, Image{Tag: "d-2026-11-23"}, Image{Tag: "d-2026-11-24"}, false},
		{"regex without group orders by push", `tag-regex: 'main-.+'`, Image{Tag: "main-a", PushedAt: t0}, Image{Tag: "main-b", PushedAt: later}, false},
		{"pushed newer", `tags: ["main-*"]`, Image{Tag: "main-a", PushedAt: later}, Image{Tag: "main-b", PushedAt: t0}, true},
		{"pushed older", `tags: ["main-*"]`, Image{Tag: "main-a", PushedAt: t0}, Image{Tag: "main-b", PushedAt: later}, false},
		{"pushed, running unknown", `tags: ["main-*"]`, Image{Tag: "main-a", PushedAt: t0}, Image{}, true},
		{"order none", "tags: [\"*\"]\n    order: none", Image{Tag: "a", PushedAt: t0}, Image{Tag: "b", PushedAt: later}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason := mustRule(t, tt.selector).Replaces(tt.candidate, tt.running)
			if got != tt.want {
				t.Errorf("Replaces(%+v, %+v) = %v (%s), want %v", tt.candidate, tt.running, got, reason, tt.want)
			}
			if !got && reason == "" {
				t.Error("a refusal must say why")
			}
		})
	}
}

// FuzzMatches checks that matching never panics and that a semver rule only
// ever selects tags that parse as a version inside its constraint.
func FuzzMatches(f *testing.F) {
	for _, s := range []string{"1.0.0", "v2.3.4-rc.1", "main-abc", "latest", "", "build-123", "sha256-abc.sig", "[", "v", "1.0.0+meta"} {
		f.Add(s)
	}
	globRule := mustRule(f, `tags: ["main-*", "v?.*", latest]`)
	regexRule := mustRule(f, `tag-regex: 'build-(?P<version>\d+)'`)
	semverRule := mustRule(f, `semver: ">= 1.0.0, < 3.0.0"`)
	f.Fuzz(func(t *testing.T, tag string) {
		globRule.Matches(tag)
		if ok, _ := regexRule.Matches(tag); ok && !strings.HasPrefix(tag, "build-") {
			t.Fatalf("regex rule matched %q", tag)
		}
		if ok, _ := semverRule.Matches(tag); ok {
			v, parsed := parseSemver(tag)
			if !parsed || v.Major() < 1 || v.Major() >= 3 || v.Prerelease() != "" {
				t.Fatalf("semver rule matched %q", tag)
			}
		}
		for _, r := range []*Rule{globRule, regexRule, semverRule} {
			r.Replaces(Image{Tag: tag}, Image{Tag: "1.0.0"})
		}
	})
}

func TestNewest(t *testing.T) {
	at := func(min int) time.Time { return time.Date(2026, 11, 26, 10, min, 0, 0, time.UTC) }
	parse := func(yaml string) *Rule {
		t.Helper()
		cfg, err := Parse("f.yaml", []byte("version: 1\nrules:\n  - {name: r, repository: web, targets: [{cluster: c, service: s}], "+yaml+"}\n"))
		if err != nil {
			t.Fatal(err)
		}
		return cfg.Rules[0]
	}
	for _, tt := range []struct {
		name   string
		rule   string
		images []Image
		want   string // tag; "" = none selected
	}{
		{"semver: highest version, not latest push", `semver: ">= 1.0.0"`,
			[]Image{{Tag: "v1.10.0", PushedAt: at(1)}, {Tag: "v1.9.0", PushedAt: at(5)}, {Tag: "v0.9.0", PushedAt: at(9)}}, "v1.10.0"},
		{"semver: pre-releases only when the constraint names one", `semver: ">= 1.0.0"`,
			[]Image{{Tag: "v1.2.0", PushedAt: at(1)}, {Tag: "v1.3.0-rc.1", PushedAt: at(2)}}, "v1.2.0"},
		{"semver: pre-release selected when asked", `semver: ">= 1.3.0-0"`,
			[]Image{{Tag: "v1.2.0", PushedAt: at(1)}, {Tag: "v1.3.0-rc.1", PushedAt: at(2)}, {Tag: "v1.3.0-rc.2", PushedAt: at(3)}}, "v1.3.0-rc.2"},
		{"semver: same version twice, the later push", `semver: ">= 1.0.0"`,
			[]Image{{Tag: "1.2.0", PushedAt: at(1)}, {Tag: "v1.2.0", PushedAt: at(4)}}, "v1.2.0"},
		{"pushed: latest push", `tags: ["main-*"]`,
			[]Image{{Tag: "main-b", PushedAt: at(3)}, {Tag: "main-a", PushedAt: at(7)}, {Tag: "other", PushedAt: at(9)}}, "main-a"},
		{"pushed: a tie goes to the greater tag", `tags: ["main-*"]`,
			[]Image{{Tag: "main-a", PushedAt: at(3)}, {Tag: "main-b", PushedAt: at(3)}}, "main-b"},
		{"version group: numeric, not text", `tag-regex: 'build-(?P<version>[0-9]+)'`,
			[]Image{{Tag: "build-9", PushedAt: at(5)}, {Tag: "build-10", PushedAt: at(1)}}, "build-10"},
		{"ignored tags never selected", `tags: ["*"], ignore-tags: ["*-debug"]`,
			[]Image{{Tag: "main-1", PushedAt: at(1)}, {Tag: "main-2-debug", PushedAt: at(2)}}, "main-1"},
		{"order none: the latest push", `tags: ["*"], order: none`,
			[]Image{{Tag: "b", PushedAt: at(1)}, {Tag: "a", PushedAt: at(2)}}, "a"},
		{"nothing matches", `semver: ">= 2.0.0"`, []Image{{Tag: "v1.0.0", PushedAt: at(1)}}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parse(tt.rule).Newest(tt.images)
			if got.Tag != tt.want || ok != (tt.want != "") {
				t.Errorf("Newest = %q, %v; want %q", got.Tag, ok, tt.want)
			}
		})
	}
}
