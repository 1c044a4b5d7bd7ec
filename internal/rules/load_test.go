package rules

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestLoadFull(t *testing.T) {
	cfg, err := Load("testdata/full.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	type summary struct {
		Name, Repository string
		Pin              Pin
		Order            Order
		Ignore           []string
		Targets          []Target
		Promote          *Promote
		Line             int
	}
	var got []summary
	for _, r := range cfg.Rules {
		got = append(got, summary{r.Name, r.Repository, r.Pin, r.EffectiveOrder(), r.IgnoreTags, r.Targets, r.Promote, r.Line})
	}
	want := []summary{
		{"web-staging", "web", PinDigest, OrderPushed, []string{"tmp-*"},
			[]Target{{Cluster: "staging", Service: "web", Containers: []string{"app"}, Line: 11}},
			&Promote{Tag: "verified-{tag}"}, 7},
		{"web-prod", "web", PinTag, OrderSemver, []string{"tmp-*"},
			[]Target{{Cluster: "prod", Service: "web", Line: 19}}, nil, 15},
		{"api-builds", "team/api", PinDigest, orderVersionGroup, []string{},
			[]Target{{Cluster: "shared", Service: "api", Account: "222222222222", Region: "eu-west-1",
				Role: "arn:aws:iam::222222222222:role/autodeploy-target", Line: 25}}, nil, 20},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rules (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"web", "team/api"}, cfg.Repositories()); diff != "" {
		t.Errorf("Repositories (-want +got):\n%s", diff)
	}
	if n := len(cfg.RulesFor("web")); n != 2 {
		t.Errorf("RulesFor(web) = %d rules, want 2", n)
	}
}

func TestLoadErrors(t *testing.T) {
	const head = "version: 1\nrules:\n"
	tests := []struct {
		name string
		yaml string
		want []string // each must appear, in order, as whole error lines
	}{
		{"empty", "", []string{"f.yaml:1: the file is empty; it needs version: 1 and rules"}},
		{"not yaml", "version: [1\n", []string{"f.yaml:1: not valid YAML: did not find expected ',' or ']'"}},
		{"missing version", "rules: []\n", []string{"f.yaml:1: version: missing; write version: 1", "f.yaml:1: rules: must be a non-empty list of rules"}},
		{"bad version", "version: 2\nrules: []\n", []string{"f.yaml:1: version: unsupported version \"2\"; this build reads version 1"}},
		{"unknown top key", "version: 1\nrulez: []\n", []string{"f.yaml:2: rulez: unknown key (allowed: version, defaults, reconcile, rules)"}},
		{"unknown rule key", head + "  - name: a\n    repository: web\n    tags: [x]\n    target: []\n    targets: [{cluster: c, service: s}]\n",
			[]string{"f.yaml:6: rules[0].target: unknown key (allowed: name, repository, tags, tag-regex, semver, pin, order, ignore-tags, pass-roles, publish, registry, targets, promote, cleanup, approval, scan)"}},
		{"unknown target key", head + "  - name: a\n    repository: web\n    tags: [x]\n    targets:\n      - cluster: c\n        service: s\n        containr: [app]\n",
			[]string{"f.yaml:9: rules[0].targets[0].containr: unknown key (allowed: cluster, service, containers, account, region, role, codedeploy)"}},
		{"duplicate name", head + "  - name: a\n    repository: web\n    tags: [x]\n    targets: [{cluster: c, service: s}]\n  - name: a\n    repository: web\n    tags: [y]\n    targets: [{cluster: c, service: s}]\n",
			[]string{"f.yaml:7: rules[1].name: duplicate rule name \"a\" (first at line 3)"}},
		{"bad name", head + "  - name: Web_Staging\n    repository: web\n    tags: [x]\n    targets: [{cluster: c, service: s}]\n",
			[]string{"f.yaml:3: rules[0].name: \"Web_Staging\" must be 1-64 characters of a-z, 0-9 and -"}},
		{"reserved name", head + "  - name: rollback\n    repository: web\n    tags: [x]\n    targets: [{cluster: c, service: s}]\n",
			[]string{"f.yaml:3: rules[0].name: \"rollback\" is reserved: history records the CLI's rollbacks under it"}},
		{"bad glob", head + "  - name: a\n    repository: web\n    tags: [\"main-[\"]\n    targets: [{cluster: c, service: s}]\n",
			[]string{"f.yaml:5: rules[0].tags[0]: bad glob \"main-[\": syntax error in pattern"}},
		{"bad regex", head + "  - name: a\n    repository: web\n    tag-regex: 'v(\\d+'\n    targets: [{cluster: c, service: s}]\n",
			[]string{"f.yaml:5: rules[0].tag-regex: bad regular expression `v(\\d+`: missing closing )"}},
		{"look-behind", head + "  - name: a\n    repository: web\n    tag-regex: '(?<!rc-)v[0-9]+'\n    targets: [{cluster: c, service: s}]\n",
			[]string{"f.yaml:5: rules[0].tag-regex: bad regular expression `(?<!rc-)v[0-9]+`: Go's regular expressions (RE2) have no look-behind (?<!…): the tag is matched whole, so write what it is, not what precedes or follows it"}},
		{"look-ahead", head + "  - name: a\n    repository: web\n    tag-regex: 'v(?=[0-9])'\n    targets: [{cluster: c, service: s}]\n",
			[]string{"f.yaml:5: rules[0].tag-regex: bad regular expression `v(?=[0-9])`: Go's regular expressions (RE2) have no look-ahead (?=…): the tag is matched whole, so write what it is, not what precedes or follows it"}},
		{"unsatisfiable semver", head + "  - name: a\n    repository: web\n    semver: '>= 2.0.0, < 1.0.0'\n    targets: [{cluster: c, service: s}]\n",
			[]string{"f.yaml:5: rules[0].semver: semver constraint \">= 2.0.0, < 1.0.0\" is met by no version: the rule would deploy nothing"}},
		{"unsatisfiable semver, each alternative", head + "  - name: a\n    repository: web\n    semver: '>1.0.0 <1.0.1 || =3.0.0 !=3.0.0'\n    targets: [{cluster: c, service: s}]\n",
			[]string{"f.yaml:5: rules[0].semver: semver constraint \">1.0.0 <1.0.1 || =3.0.0 !=3.0.0\" is met by no version: the rule would deploy nothing"}},
		{"bad semver", head + "  - name: a\n    repository: web\n    semver: '>= one'\n    targets: [{cluster: c, service: s}]\n",
			[]string{"f.yaml:5: rules[0].semver: bad semver constraint \">= one\""}},
		{"two selectors", head + "  - name: a\n    repository: web\n    tags: [x]\n    semver: '>=1.0.0'\n    targets: [{cluster: c, service: s}]\n",
			[]string{"f.yaml:3: rules[0].semver: exactly one of tags, tag-regex and semver is needed, got 2"}},
		{"no selector", head + "  - name: a\n    repository: web\n    targets: [{cluster: c, service: s}]\n",
			[]string{"f.yaml:3: rules[0].tags: exactly one of tags, tag-regex and semver is needed, got 0"}},
		{"missing targets", head + "  - name: a\n    repository: web\n    tags: [x]\n",
			[]string{"f.yaml:3: rules[0].targets: missing; a rule needs at least one target"}},
		{"empty targets", head + "  - name: a\n    repository: web\n    tags: [x]\n    targets: []\n",
			[]string{"f.yaml:6: rules[0].targets: must be a non-empty list of targets"}},
		{"missing service", head + "  - name: a\n    repository: web\n    tags: [x]\n    targets: [{cluster: c}]\n",
			[]string{"f.yaml:6: rules[0].targets[0].service: missing"}},
		{"role in other account", head + "  - name: a\n    repository: web\n    tags: [x]\n    targets:\n      - cluster: c\n        service: s\n        account: \"222222222222\"\n        role: arn:aws:iam::333333333333:role/r\n",
			[]string{"f.yaml:10: rules[0].targets[0].role: role is in account 333333333333 but the target's account is 222222222222"}},
		{"bad account", head + "  - name: a\n    repository: web\n    tags: [x]\n    targets:\n      - {cluster: c, service: s, account: \"12\", role: \"arn:aws:iam::222222222222:role/r\"}\n",
			[]string{"f.yaml:7: rules[0].targets[0].account: \"12\" is not a 12-digit AWS account id"}},
		{"bad repository", head + "  - name: a\n    repository: Web\n    tags: [x]\n    targets: [{cluster: c, service: s}]\n",
			[]string{"f.yaml:4: rules[0].repository: \"Web\" is not a valid ECR repository name"}},
		{"bad pin", head + "  - name: a\n    repository: web\n    tags: [x]\n    pin: sha\n    targets: [{cluster: c, service: s}]\n",
			[]string{"f.yaml:6: rules[0].pin: must be digest or tag, got \"sha\""}},
		{"bad order", "version: 1\ndefaults:\n  order: newest\nrules:\n  - name: a\n    repository: web\n    tags: [x]\n    targets: [{cluster: c, service: s}]\n",
			[]string{"f.yaml:3: defaults.order: must be auto, semver, pushed or none, got \"newest\""}},
		{"bad promote placeholder", head + "  - name: a\n    repository: web\n    tags: [x]\n    targets: [{cluster: c, service: s}]\n    promote: {tag: \"ok-{digest}\"}\n",
			[]string{"f.yaml:7: rules[0].promote.tag: unknown placeholder {digest}; only {tag} is replaced"}},
		{"promoted tag too long", head + "  - name: a\n    repository: web\n    tags: [short, \"release-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\", \"release-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx?\"]\n    targets: [{cluster: c, service: s}]\n    promote: {tag: \"verified-by-the-release-train-{tag}\"}\n",
			[]string{"f.yaml:7: rules[0].promote.tag: renders \"verified-by-the-release-train-release-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\" (138 characters) for the longest tag this rule selects, \"release-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"; an image tag has at most 128"}},
		{"bad pass-roles", "version: 1\ndefaults:\n  pass-roles: [\"arn:aws:iam::123456789012:role/web-*\", \"web-task\"]\nrules:\n  - name: a\n    repository: web\n    tags: [x]\n    targets: [{cluster: c, service: s}]\n",
			[]string{"f.yaml:3: defaults.pass-roles[1]: \"web-task\" is not an IAM role ARN"}},
		{"cluster ARN in other region", head + "  - name: a\n    repository: web\n    tags: [x]\n    targets:\n      - cluster: arn:aws:ecs:eu-west-1:222222222222:cluster/c\n        service: s\n        region: us-east-1\n        role: arn:aws:iam::222222222222:role/r\n",
			[]string{"f.yaml:7: rules[0].targets[0].cluster: ARN is in region eu-west-1 but the target's region is us-east-1"}},
		{"short service ARN", head + "  - name: a\n    repository: web\n    tags: [x]\n    targets:\n      - cluster: c\n        service: arn:aws:ecs:eu-west-1:111111111111:service/web\n",
			[]string{"f.yaml:8: rules[0].targets[0].service: \"arn:aws:ecs:eu-west-1:111111111111:service/web\" is a short (old-format) service ARN without its cluster; " +
				"use arn:aws:ecs:eu-west-1:111111111111:service/<cluster>/web or the service's name (migrate the service to the long ARN format: " +
				"https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-arn-migration.html)"}},
		{"same service twice", head + "  - name: a\n    repository: web\n    tags: [x]\n    targets:\n      - {cluster: c, service: s}\n      - {cluster: c, service: s}\n",
			[]string{"f.yaml:8: rules[0].targets[1]: service c/s is listed twice in this rule (first at line 7)"}},
		{"tags not a list", head + "  - name: a\n    repository: web\n    tags: latest\n    targets: [{cluster: c, service: s}]\n",
			[]string{"f.yaml:5: rules[0].tags: must be a list, got \"latest\""}},
		{"bad reconcile interval", "version: 1\nreconcile: {every: 30s}\nrules:\n  - {name: a, repository: web, tags: [x], targets: [{cluster: c, service: s}]}\n",
			[]string{"f.yaml:2: reconcile.every: 30s: want whole minutes from 1m to 24h (or off)"}},
		{"reconcile interval not a duration", "version: 1\nreconcile:\n  every: sometimes\nrules:\n  - {name: a, repository: web, tags: [x], targets: [{cluster: c, service: s}]}\n",
			[]string{"f.yaml:3: reconcile.every: \"sometimes\" is not a duration like 10m or 1h, nor off"}},
		{"unknown reconcile key", "version: 1\nreconcile: {each: 5m}\nrules:\n  - {name: a, repository: web, tags: [x], targets: [{cluster: c, service: s}]}\n",
			[]string{"f.yaml:2: reconcile.each: unknown key (allowed: every)"}},
		{"publish prefix without slash", head + "  - name: a\n    repository: web\n    tags: [x]\n    publish: {ssm-prefix: ecr-autodeploy}\n    targets: [{cluster: c, service: s}]\n",
			[]string{"f.yaml:6: rules[0].publish.ssm-prefix: \"ecr-autodeploy\" must start with /"}},
		{"publish prefix trailing slash", "version: 1\ndefaults:\n  publish:\n    ssm-prefix: /ecr-autodeploy/\nrules:\n  - {name: a, repository: web, tags: [x], targets: [{cluster: c, service: s}]}\n",
			[]string{"f.yaml:4: defaults.publish.ssm-prefix: \"/ecr-autodeploy/\" must not end with /"}},
		{"publish prefix bad characters", head + "  - name: a\n    repository: web\n    tags: [x]\n    publish: {ssm-prefix: \"/ecr autodeploy\"}\n    targets: [{cluster: c, service: s}]\n",
			[]string{"f.yaml:6: rules[0].publish.ssm-prefix: \"/ecr autodeploy\": a parameter path is /-separated names"}},
		{"publish prefix reserved", head + "  - name: a\n    repository: web\n    tags: [x]\n    publish: {ssm-prefix: /aws/images}\n    targets: [{cluster: c, service: s}]\n",
			[]string{"f.yaml:6: rules[0].publish.ssm-prefix: \"/aws/images\": names beginning with aws or ssm are reserved"}},
		{"publish without prefix", head + "  - name: a\n    repository: web\n    tags: [x]\n    publish: {}\n    targets: [{cluster: c, service: s}]\n",
			[]string{"f.yaml:6: rules[0].publish.ssm-prefix: missing; e.g. ssm-prefix: /ecr-autodeploy"}},
		{"publish unknown key", head + "  - name: a\n    repository: web\n    tags: [x]\n    publish: {prefix: /x}\n    targets: [{cluster: c, service: s}]\n",
			[]string{"f.yaml:6: rules[0].publish.prefix: unknown key (allowed: ssm-prefix)"}},
		{"codedeploy unknown hook", head + "  - name: a\n    repository: web\n    tags: [x]\n    targets:\n      - cluster: c\n        service: s\n        codedeploy:\n          hooks: {BeforeTraffic: check}\n",
			[]string{"f.yaml:10: rules[0].targets[0].codedeploy.hooks.BeforeTraffic: unknown key (allowed: BeforeInstall, AfterInstall, AfterAllowTestTraffic, BeforeAllowTraffic, AfterAllowTraffic)"}},
		{"codedeploy empty hook", head + "  - name: a\n    repository: web\n    tags: [x]\n    targets:\n      - cluster: c\n        service: s\n        codedeploy:\n          hooks:\n            AfterAllowTestTraffic: \"\"\n",
			[]string{"f.yaml:11: rules[0].targets[0].codedeploy.hooks.AfterAllowTestTraffic: must not be empty"}},
		{"codedeploy hook not a function", head + "  - name: a\n    repository: web\n    tags: [x]\n    targets:\n      - cluster: c\n        service: s\n        codedeploy:\n          hooks: {BeforeAllowTraffic: \"my check\"}\n",
			[]string{"f.yaml:10: rules[0].targets[0].codedeploy.hooks.BeforeAllowTraffic: \"my check\" is not a Lambda function name or ARN"}},
		{"codedeploy no hooks", head + "  - name: a\n    repository: web\n    tags: [x]\n    targets:\n      - cluster: c\n        service: s\n        codedeploy:\n          hooks: {}\n",
			[]string{"f.yaml:10: rules[0].targets[0].codedeploy.hooks: must name at least one lifecycle hook"}},
		{"codedeploy application alone", head + "  - name: a\n    repository: web\n    tags: [x]\n    targets:\n      - cluster: c\n        service: s\n        codedeploy:\n          application: web\n",
			[]string{"f.yaml:10: rules[0].targets[0].codedeploy: application and deployment-group go together"}},
		{"codedeploy empty group", head + "  - name: a\n    repository: web\n    tags: [x]\n    targets:\n      - cluster: c\n        service: s\n        codedeploy:\n          application: web\n          deployment-group: \"\"\n",
			[]string{"f.yaml:11: rules[0].targets[0].codedeploy.deployment-group: must not be empty"}},
		{"codedeploy unknown key", head + "  - name: a\n    repository: web\n    tags: [x]\n    targets:\n      - cluster: c\n        service: s\n        codedeploy:\n          group: web\n",
			[]string{"f.yaml:10: rules[0].targets[0].codedeploy.group: unknown key (allowed: application, deployment-group, hooks)"}},
		{"registry account malformed", head + "  - name: a\n    repository: web\n    tags: [x]\n    registry: {account: \"3333\"}\n    targets: [{cluster: c, service: s}]\n",
			[]string{"f.yaml:6: rules[0].registry.account: \"3333\" is not a 12-digit AWS account id"}},
		{"registry region unknown", "version: 1\ndefaults:\n  registry: {account: \"333333333333\", region: eu-west-9}\nrules:\n  - {name: a, repository: web, tags: [x], targets: [{cluster: c, service: s}]}\n",
			[]string{"f.yaml:3: defaults.registry.region: unknown AWS region \"eu-west-9\""}},
		{"registry empty", head + "  - name: a\n    repository: web\n    tags: [x]\n    registry: {}\n    targets: [{cluster: c, service: s}]\n",
			[]string{"f.yaml:6: rules[0].registry: must name an account, a region or both"}},
		{"registry unknown key", head + "  - name: a\n    repository: web\n    tags: [x]\n    registry: {acount: \"333333333333\"}\n    targets: [{cluster: c, service: s}]\n",
			[]string{"f.yaml:6: rules[0].registry.acount: unknown key (allowed: account, region)"}},
		{"target region not a region", head + "  - name: a\n    repository: web\n    tags: [x]\n    targets: [{cluster: c, service: s, region: Ireland}]\n",
			[]string{"f.yaml:6: rules[0].targets[0].region: \"Ireland\" is not an AWS region name (like eu-west-1)"}},
		{"target region unknown", head + "  - name: a\n    repository: web\n    tags: [x]\n    targets: [{cluster: c, service: s, region: us-middle-1}]\n",
			[]string{"f.yaml:6: rules[0].targets[0].region: unknown AWS region \"us-middle-1\""}},
		{"role in another account", head + "  - name: a\n    repository: web\n    tags: [x]\n    targets:\n      - cluster: c\n        service: s\n        account: \"222222222222\"\n        role: arn:aws:iam::444444444444:role/deploy\n",
			[]string{"f.yaml:10: rules[0].targets[0].role: role is in account 444444444444 but the target's account is 222222222222"}},
		{"every error reported", head + "  - name: A\n    repository: web\n    tags: [x]\n    targets: []\n",
			[]string{"f.yaml:3: rules[0].name:", "f.yaml:6: rules[0].targets:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatal("Parse succeeded, want an error")
			}
			var one *Error
			if !errors.As(err, &one) {
				t.Fatalf("error %T does not unwrap to *rules.Error: %v", err, err)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) < len(tt.want) {
				t.Fatalf("got %d error lines, want at least %d:\n%s", len(lines), len(tt.want), err)
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(lines[i], w) {
					t.Errorf("error line %d:\n got %q\nwant prefix %q", i, lines[i], w)
				}
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/nope.yaml")
	if err == nil || !strings.Contains(err.Error(), "testdata/nope.yaml") {
		t.Fatalf("Load of a missing file = %v, want an error naming it", err)
	}
}

func TestTargetWhereAndSelector(t *testing.T) {
	cfg, err := Load("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	central := Place{"111111111111", "us-east-1"}
	var got []Place
	var selectors []string
	for _, r := range cfg.Rules {
		selectors = append(selectors, r.Selector())
		got = append(got, r.Targets[0].Where(central))
	}
	want := []Place{{"111111111111", "us-east-1"}, {"111111111111", "us-east-1"}, {"222222222222", "eu-west-1"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Where (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"tags main-*,latest", "semver >= 1.0.0", "regex build-(?P<version>[0-9]+)"}, selectors); diff != "" {
		t.Errorf("Selector (-want +got):\n%s", diff)
	}
}

func TestMayPass(t *testing.T) {
	r := &Rule{PassRoles: []string{"arn:aws:iam::123456789012:role/web-*", "arn:aws:iam::123456789012:role/ecs/exec"}}
	for role, want := range map[string]bool{
		"": true,
		"arn:aws:iam::123456789012:role/web-task":    true,
		"arn:aws:iam::123456789012:role/ecs/exec":    true,
		"arn:aws:iam::123456789012:role/admin":       false,
		"arn:aws:iam::123456789012:role/web-x/admin": true, // as in IAM, * spans path segments
		"arn:aws:iam::999999999999:role/web-task":    false,
	} {
		if got := r.MayPass(role); got != want {
			t.Errorf("MayPass(%q) = %v, want %v", role, got, want)
		}
	}
	if !(&Rule{}).MayPass("arn:aws:iam::123456789012:role/anything") {
		t.Error("a rule without pass-roles refused a role")
	}
}

func TestReconcileInterval(t *testing.T) {
	for _, tt := range []struct {
		yaml string
		want time.Duration
	}{
		{"", DefaultReconcileEvery},
		{"reconcile: {every: 5m}\n", 5 * time.Minute},
		{"reconcile: {every: 1h}\n", time.Hour},
		{"reconcile: {every: \"off\"}\n", 0},
		{"reconcile: {every: off}\n", 0},
	} {
		cfg, err := Parse("f.yaml", []byte("version: 1\n"+tt.yaml+"rules:\n  - {name: a, repository: web, tags: [x], targets: [{cluster: c, service: s}]}\n"))
		if err != nil {
			t.Fatalf("%q: %v", tt.yaml, err)
		}
		if cfg.Reconcile.Every != tt.want {
			t.Errorf("%q: every = %s, want %s", tt.yaml, cfg.Reconcile.Every, tt.want)
		}
	}
}

func TestPublish(t *testing.T) {
	cfg, err := Parse("f.yaml", []byte("version: 1\ndefaults:\n  publish: {ssm-prefix: /ecr-autodeploy}\nrules:\n"+
		"  - {name: a, repository: web, tags: [x], targets: [{cluster: c, service: s}]}\n"+
		"  - {name: b, repository: web, tags: [y], publish: {ssm-prefix: /teams/web}, targets: [{cluster: c, service: s2}]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Rules[0].Publish.Parameter("prod", "web", "app"); got != "/ecr-autodeploy/prod/web/app" {
		t.Errorf("default prefix: %q", got)
	}
	if got := cfg.Rules[1].Publish.Parameter("prod", "web", "app"); got != "/teams/web/prod/web/app" {
		t.Errorf("rule's own prefix: %q", got)
	}
	cfg, err = Parse("f.yaml", []byte("version: 1\nrules:\n  - {name: a, repository: web, tags: [x], targets: [{cluster: c, service: s}]}\n"))
	if err != nil || cfg.Rules[0].Publish != nil {
		t.Errorf("no publish: %+v, %v", cfg.Rules[0].Publish, err)
	}
}

func TestLoadCodeDeploy(t *testing.T) {
	const file = `version: 1
rules:
  - name: a
    repository: web
    tags: [x]
    targets:
      - cluster: c
        service: named
        codedeploy:
          application: web
          deployment-group: web-prod
          hooks:
            AfterAllowTraffic: arn:aws:lambda:eu-west-1:111111111111:function:smoke:live
            BeforeInstall: prepare
      - cluster: c
        service: found
        codedeploy: {}
      - cluster: c
        service: found-with-hooks
        codedeploy: {hooks: {AfterAllowTestTraffic: check}}
      - {cluster: c, service: rolling}
`
	cfg, err := Parse("f.yaml", []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	var got []*CodeDeploy
	for _, tg := range cfg.Rules[0].Targets {
		got = append(got, tg.CodeDeploy)
	}
	want := []*CodeDeploy{
		{Application: "web", DeploymentGroup: "web-prod", Hooks: []Hook{ // lifecycle order, not file order
			{"BeforeInstall", "prepare"},
			{"AfterAllowTraffic", "arn:aws:lambda:eu-west-1:111111111111:function:smoke:live"}}},
		{},
		{Hooks: []Hook{{"AfterAllowTestTraffic", "check"}}},
		nil,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("codedeploy (-want +got):\n%s", diff)
	}
	if !got[1].Discovers() || got[0].Discovers() {
		t.Errorf("Discovers: named %v, empty %v", got[0].Discovers(), got[1].Discovers())
	}
}

func TestRegionsSorted(t *testing.T) {
	if !slices.IsSorted(knownRegions) {
		t.Error("knownRegions must stay sorted: KnownRegion searches it")
	}
	for _, r := range []string{"eu-west-1", "us-gov-west-1", "us-west-2", "cn-north-1"} {
		if !KnownRegion(r) {
			t.Errorf("%s unknown", r)
		}
	}
}

// TestSeveralAccounts: registries per rule or in defaults, targets
// defaulting to the central account and region, roles derived for targets
// and registries in other accounts, an explicit role winning.
func TestSeveralAccounts(t *testing.T) {
	cfg, err := Parse("f.yaml", []byte(`version: 1
defaults:
  registry: {account: "333333333333", region: eu-central-1}
rules:
  - name: shared
    repository: web
    tags: [x]
    targets:
      - {cluster: dev, service: web}
      - {cluster: stage, service: web, account: "222222222222"}
      - {cluster: prod, service: web, account: "444444444444", region: us-east-1}
      - {cluster: prod, service: api, account: "444444444444", role: "arn:aws:iam::444444444444:role/custom"}
  - name: local
    repository: api
    tags: [x]
    registry: {account: "111111111111"}
    targets: [{cluster: dev, service: api, region: eu-west-1}]
`))
	if err != nil {
		t.Fatal(err)
	}
	central := Place{"111111111111", "eu-west-1"}
	shared, local := cfg.Rules[0], cfg.Rules[1]
	if got := shared.RegistryOf(central); got != (Place{"333333333333", "eu-central-1"}) {
		t.Errorf("shared registry = %v", got)
	}
	if got := shared.RegistryRole(central); got != "arn:aws:iam::333333333333:role/ecr-autodeploy-registry-eu-central-1" {
		t.Errorf("shared registry role = %q", got)
	}
	if got := local.RegistryOf(central); got != (Place{"111111111111", "eu-west-1"}) || local.RegistryRole(central) != "" {
		t.Errorf("local registry = %v, role %q", got, local.RegistryRole(central))
	}
	type where struct {
		At   Place
		Role string
	}
	var got []where
	for _, tg := range shared.Targets {
		got = append(got, where{tg.Where(central), tg.RoleFor(central)})
	}
	want := []where{
		{Place{"111111111111", "eu-west-1"}, ""},
		{Place{"222222222222", "eu-west-1"}, "arn:aws:iam::222222222222:role/ecr-autodeploy-target-eu-west-1"},
		{Place{"444444444444", "us-east-1"}, "arn:aws:iam::444444444444:role/ecr-autodeploy-target-us-east-1"},
		{Place{"444444444444", "eu-west-1"}, "arn:aws:iam::444444444444:role/custom"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("targets (-want +got):\n%s", diff)
	}
}
