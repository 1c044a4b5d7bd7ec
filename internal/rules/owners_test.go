package rules

import (
	"strings"
	"testing"
)

// One owner per container: two rules that can put an image into one
// container of one service are a load error naming both rules and lines.
func TestOneOwnerPerContainer(t *testing.T) {
	const head = "version: 1\nrules:\n"
	rule := func(name, repo, selector, target string) string {
		return "  - name: " + name + "\n    repository: " + repo + "\n    " + selector + "\n    targets:\n      - " + target + "\n"
	}
	tests := []struct {
		name string
		yaml string
		want string // "" for a valid file, else the whole error line
	}{
		{"tags and semver rules on one service fight",
			head + rule("web-main", "web", "tags: [main-*]", "{cluster: prod, service: web}") +
				rule("web-release", "web", "semver: '>= 1.0.0'", "{cluster: prod, service: web}"),
			"f.yaml:12: rules[1].targets[0]: every container from repository web of service prod/web is also deployed by rule web-main (line 3, its target at line 7): " +
				"one owner per container, or the two rules' orders fight and every sweep flips the service; give each rule its own containers (containers: [...])"},
		{"same named container",
			head + rule("a", "web", "tags: [x]", "{cluster: prod, service: web, containers: [app, log]}") +
				rule("b", "logs", "tags: [y]", "{cluster: prod, service: web, containers: [log]}"),
			"f.yaml:12: rules[1].targets[0]: container log of service prod/web is also deployed by rule a (line 3, its target at line 7)"},
		{"named container of the repository the other rule chooses by",
			head + rule("a", "web", "tags: [x]", "{cluster: prod, service: web}") +
				rule("b", "web", "tags: [y]", "{cluster: prod, service: web, containers: [app]}"),
			"f.yaml:12: rules[1].targets[0]: container app (from repository web) of service prod/web is also deployed by rule a"},
		{"ARN and name of one service",
			head + rule("a", "web", "tags: [x]", "{cluster: prod, service: web}") +
				rule("b", "web", "tags: [y]", "{cluster: prod, service: 'arn:aws:ecs:eu-west-1:123456789012:service/prod/web', region: eu-west-1, account: '123456789012'}"),
			""}, // the first names no account or region: the loader cannot know they are one service
		{"two containers, two rules", head + rule("app", "web", "tags: [x]", "{cluster: prod, service: web, containers: [app]}") +
			rule("sidecar", "log-router", "tags: [y]", "{cluster: prod, service: web, containers: [log]}"), ""},
		{"two repositories by default", head + rule("app", "web", "tags: [x]", "{cluster: prod, service: web}") +
			rule("sidecar", "log-router", "tags: [y]", "{cluster: prod, service: web}"), ""},
		{"a named container of another repository", head + rule("app", "web", "tags: [x]", "{cluster: prod, service: web}") +
			rule("sidecar", "log-router", "tags: [y]", "{cluster: prod, service: web, containers: [log]}"), ""},
		{"same repository, other services", head + rule("a", "web", "tags: [x]", "{cluster: prod, service: web}") +
			rule("b", "web", "tags: [y]", "{cluster: staging, service: web}"), ""},
		{"same service name, other region", head + rule("a", "web", "tags: [x]", "{cluster: prod, service: web, region: eu-west-1}") +
			rule("b", "web", "tags: [y]", "{cluster: prod, service: web, region: us-east-1}"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(tt.yaml))
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Parse: %v", err)
			case tt.want == "":
			case err == nil:
				t.Fatalf("Parse succeeded, want %q", tt.want)
			case !strings.HasPrefix(err.Error(), tt.want):
				t.Errorf("error:\n got %q\nwant %q", err, tt.want)
			}
		})
	}
}

// Once the central place is known (the functions, synth, the CLI), a target
// that names the central region, account or an ARN is the same service as
// one that leaves them out, and a registry naming the central account the
// same registry as none.
func TestOneOwnerPerContainerResolved(t *testing.T) {
	central := Place{Account: "123456789012", Region: "eu-west-1"}
	const head = "version: 1\nrules:\n  - {name: web-main, repository: web, tags: [main-*], targets: [{cluster: prod, service: web}]}\n"
	tests := []struct{ name, second, want string }{
		{"central region named", "  - {name: web-release, repository: web, semver: '>= 1.0.0', targets: [{cluster: prod, service: web, region: eu-west-1}]}\n",
			"f.yaml:4: rules[1].targets[0]: every container from repository web of service prod/web is also deployed by rule web-main (line 3"},
		{"service ARN", "  - {name: web-release, repository: web, semver: '>= 1.0.0', targets: [{cluster: prod, service: 'arn:aws:ecs:eu-west-1:123456789012:service/prod/web'}]}\n",
			"f.yaml:4: rules[1].targets[0]: every container from repository web"},
		{"central registry named", "  - {name: web-release, repository: web, semver: '>= 1.0.0', registry: {account: '123456789012'}, targets: [{cluster: prod, service: web, account: '123456789012'}]}\n",
			"f.yaml:4: rules[1].targets[0]: every container from repository web"},
		{"another region", "  - {name: web-release, repository: web, semver: '>= 1.0.0', targets: [{cluster: prod, service: web, region: us-east-1}]}\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("f.yaml", []byte(head+tt.second))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			err = cfg.CheckOwners(central)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("CheckOwners: %v", err)
			case tt.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.want)):
				t.Errorf("CheckOwners: %v\nwant prefix %q", err, tt.want)
			}
		})
	}
}

// A rule lists a service once (its rollout, items and notice count each
// target as a service of its own): twice, however written — by name and by
// ARN, with the central region named and left out, on other containers — is
// an error naming both lines, found at load when the two are written alike
// and by CheckOwners once the central place resolves them.
func TestServiceListedTwiceInOneRule(t *testing.T) {
	central := Place{Account: "111111111111", Region: "eu-west-1"}
	const head = "version: 1\nrules:\n  - name: web\n    repository: web\n    tags: [\"*\"]\n    targets:\n      - {cluster: prod, service: web, containers: [app]}\n"
	tests := []struct {
		name, second string
		atLoad       bool   // the loader finds it without the central place
		want         string // "" for a valid file
	}{
		{"a name and an ARN", "      - {cluster: prod, service: 'arn:aws:ecs:eu-west-1:111111111111:service/prod/web', containers: [app]}\n", false,
			"f.yaml:8: rules[0].targets[1]: service prod/web is listed twice in this rule (first at line 7)"},
		{"the central region named", "      - {cluster: prod, service: web, region: eu-west-1, containers: [app]}\n", false,
			"f.yaml:8: rules[0].targets[1]: service prod/web is listed twice in this rule (first at line 7)"},
		{"written alike, other containers", "      - {cluster: prod, service: web, containers: [log]}\n", true,
			"f.yaml:8: rules[0].targets[1]: service prod/web is listed twice in this rule (first at line 7)"},
		{"a cluster ARN", "      - {cluster: 'arn:aws:ecs:eu-west-1:111111111111:cluster/prod', service: web, containers: [app]}\n", false,
			"f.yaml:8: rules[0].targets[1]: service prod/web is listed twice in this rule (first at line 7)"},
		{"another region", "      - {cluster: prod, service: web, region: us-east-1, containers: [app]}\n", false, ""},
		{"another cluster", "      - {cluster: staging, service: web, containers: [app]}\n", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("f.yaml", []byte(head+tt.second))
			if tt.atLoad {
				if err == nil || err.Error() != tt.want {
					t.Errorf("Parse: %v\nwant %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			err = cfg.CheckOwners(central)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("CheckOwners: %v", err)
			case tt.want != "" && (err == nil || err.Error() != tt.want):
				t.Errorf("CheckOwners: %v\nwant %q", err, tt.want)
			}
		})
	}
}
