package rules

import (
	"os"
	"testing"
)

func BenchmarkMatches(b *testing.B) {
	rules := []*Rule{
		mustRule(b, `tags: ["main-*", "release-*", latest]`),
		mustRule(b, `tag-regex: 'build-(?P<version>\d+)'`),
		mustRule(b, `semver: ">= 1.0.0, < 3.0.0"`),
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, r := range rules {
			r.Matches("v2.3.4")
		}
	}
}

func BenchmarkLoad(b *testing.B) {
	data, err := os.ReadFile("testdata/full.yaml")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("full.yaml", data); err != nil {
			b.Fatal(err)
		}
	}
}
