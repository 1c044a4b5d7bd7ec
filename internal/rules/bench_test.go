package rules

import (
	"fmt"
	"os"
	"strings"
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

// BenchmarkLoadFleet loads a rules file of 1,000 targets in 50 clusters
// and checks its owners against a central place, as a function's init does.
func BenchmarkLoadFleet(b *testing.B) {
	data := fleetFile(1000)
	central := Place{Account: "111111111111", Region: "eu-west-1"}
	b.ReportAllocs()
	for b.Loop() {
		cfg, err := Parse("fleet.yaml", data)
		if err != nil {
			b.Fatal(err)
		}
		if err := cfg.CheckOwners(central); err != nil {
			b.Fatal(err)
		}
	}
}

// fleetFile is a rules file of one rule with n targets, 20 per cluster:
// the scale benchmarks' shape.
func fleetFile(n int) []byte {
	var sb strings.Builder
	sb.WriteString("version: 1\nrules:\n  - {name: fleet, repository: fleet, tags: [\"*\"], targets: [\n")
	for i := range n {
		fmt.Fprintf(&sb, "    {cluster: c%02d, service: s%04d},\n", i/20, i)
	}
	sb.WriteString("  ]}\n")
	return []byte(sb.String())
}
