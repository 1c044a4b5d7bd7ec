package rules

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// gated is what a rule says of its gates, for comparing.
type gated struct {
	Approval *Approval
	Scan     *Scan
	Promote  *Promote
}

func TestGates(t *testing.T) {
	const rule = "  - name: a\n    repository: web\n    tags: [x]\n    targets:\n      - {cluster: c, service: s}\n      - {cluster: c, service: t, account: \"222222222222\", region: eu-central-1}\n"
	const second = "  - name: b\n    repository: web\n    tags: [y]\n    targets: [{cluster: c, service: s2}]\n"
	day := 24 * time.Hour
	crit := []string{"CRITICAL", "HIGH"}
	tests := []struct {
		name     string
		defaults string // under defaults:, "" for none
		rule     string // extra lines of the first rule
		want     []gated
	}{
		{"none", "", "", []gated{{}, {}}},
		{"approval's default expiry", "", "    approval: {}\n",
			[]gated{{Approval: &Approval{Expires: day}}, {}}},
		{"approval in days, hours and minutes", "", "    approval: {expires: 1d12h30m}\n",
			[]gated{{Approval: &Approval{Expires: 36*time.Hour + 30*time.Minute}}, {}}},
		{"approval at its bounds", "  approval: {expires: 14d}\n", "    approval: {expires: 1m}\n",
			[]gated{{Approval: &Approval{Expires: time.Minute}}, {Approval: &Approval{Expires: 14 * day}}}},
		{"scan's defaults", "", "    scan: {}\n",
			[]gated{{Scan: &Scan{Block: crit, Wait: 30 * time.Minute}}, {}}},
		{"scan as written, in its order", "", "    scan: {block: [LOW, CRITICAL, UNDEFINED], wait: 90s}\n",
			[]gated{{Scan: &Scan{Block: []string{"LOW", "CRITICAL", "UNDEFINED"}, Wait: 90 * time.Second}}, {}}},
		{"a rule's scan replaces the default whole", "  scan: {block: [MEDIUM], wait: 2h}\n", "    scan: {wait: 24h}\n",
			[]gated{{Scan: &Scan{Block: crit, Wait: day}}, {Scan: &Scan{Block: []string{"MEDIUM"}, Wait: 2 * time.Hour}}}},
		{"defaults for every rule", "  approval: {expires: 8h}\n  scan: {block: [HIGH]}\n", "",
			[]gated{
				{Approval: &Approval{Expires: 8 * time.Hour}, Scan: &Scan{Block: []string{"HIGH"}, Wait: 30 * time.Minute}},
				{Approval: &Approval{Expires: 8 * time.Hour}, Scan: &Scan{Block: []string{"HIGH"}, Wait: 30 * time.Minute}}}},
		{"promote without a bake is today's", "", "    promote: {tag: \"ok-{tag}\"}\n",
			[]gated{{Promote: &Promote{Tag: "ok-{tag}"}}, {}}},
		{"bake with alarms of three kinds", "",
			"    promote:\n      tag: v-{tag}\n      bake: 15m\n      alarms: [web-5xx, \"222222222222:web:latency\", \"arn:aws:cloudwatch:eu-central-1:222222222222:alarm:p99\"]\n",
			[]gated{{Promote: &Promote{Tag: "v-{tag}", Bake: 15 * time.Minute, Alarms: []Alarm{
				{Name: "web-5xx", Line: 12},
				{Account: "222222222222", Region: "eu-central-1", Name: "web:latency", Line: 12},
				{Account: "222222222222", Region: "eu-central-1", Name: "p99", Line: 12}}}}, {}}},
		{"bake at its bounds", "", "    promote: {tag: \"v-{tag}\", bake: 1d, alarms: [a]}\n",
			[]gated{{Promote: &Promote{Tag: "v-{tag}", Bake: day, Alarms: []Alarm{{Name: "a", Line: 9}}}}, {}}},
		{"a name that is not an account keeps its colon", "", "    promote: {tag: v, bake: 1m, alarms: [\"12345:x\", \"prod:5xx\"]}\n",
			[]gated{{Promote: &Promote{Tag: "v", Bake: time.Minute, Alarms: []Alarm{{Name: "12345:x", Line: 9}, {Name: "prod:5xx", Line: 9}}}}, {}}},
		{"promote in defaults, a rule's replaces it whole",
			"  promote: {tag: \"verified-{tag}\", bake: 10m, alarms: [shared-5xx]}\n", "    promote: {tag: \"ok-{tag}\"}\n",
			[]gated{{Promote: &Promote{Tag: "ok-{tag}"}},
				{Promote: &Promote{Tag: "verified-{tag}", Bake: 10 * time.Minute, Alarms: []Alarm{{Name: "shared-5xx", Line: 3}}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "version: 1\n"
			if tt.defaults != "" {
				src += "defaults:\n" + tt.defaults
			}
			src += "rules:\n" + rule + tt.rule + second
			cfg, err := Parse("f.yaml", []byte(src))
			if err != nil {
				t.Fatalf("Parse:\n%s\n%v", src, err)
			}
			var got []gated
			var gatedNames []string
			for i, r := range cfg.Rules {
				got = append(got, gated{r.Approval, r.Scan, r.Promote})
				if w := tt.want[i]; w.Approval != nil || w.Scan != nil || (w.Promote != nil && w.Promote.Bake > 0) {
					gatedNames = append(gatedNames, r.Name)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("gates per rule (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(gatedNames, cfg.GateRules()); diff != "" {
				t.Errorf("GateRules (-want +got):\n%s", diff)
			}
		})
	}
}

// A default promote's alarm of a target account resolves to each rule's
// own targets there; the default itself is not changed by one rule.
func TestDefaultAlarmPerRule(t *testing.T) {
	src := "version: 1\ndefaults:\n  promote: {tag: \"v-{tag}\", bake: 5m, alarms: [\"222222222222:5xx\"]}\nrules:\n" +
		"  - {name: a, repository: web, tags: [x], targets: [{cluster: c, service: s, account: \"222222222222\", region: eu-west-1}]}\n" +
		"  - {name: b, repository: web, tags: [y], targets: [{cluster: c, service: s, account: \"222222222222\", region: us-east-1}]}\n"
	cfg, err := Parse("f.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	central := Place{Account: "111111111111", Region: "eu-west-1"}
	for i, want := range []Place{{"222222222222", "eu-west-1"}, {"222222222222", "us-east-1"}} {
		if got := cfg.Rules[i].Promote.Alarms[0].Where(central); got != want {
			t.Errorf("rule %s: alarm at %v, want %v", cfg.Rules[i].Name, got, want)
		}
	}
	if got := (Alarm{Name: "x"}).Where(central); got != central {
		t.Errorf("plain alarm at %v, want the central place", got)
	}
}

func TestGatesErrors(t *testing.T) {
	const head = "version: 1\nrules:\n  - name: a\n    repository: web\n    tags: [x]\n    targets: [{cluster: c, service: s}]\n"
	const other = "  - name: b\n    repository: web\n    tags: [y]\n    targets: [{cluster: c, service: s2, account: \"222222222222\"}]\n"
	tests := []struct {
		name string
		yaml string
		want []string // whole error lines, in order
	}{
		{"expires over 14 days", head + "    approval: {expires: 15d}\n",
			[]string{"f.yaml:7: rules[0].approval.expires: 15d: want 1m to 14d"}},
		{"expires in hours over 14 days", head + "    approval: {expires: 337h}\n",
			[]string{"f.yaml:7: rules[0].approval.expires: 337h: want 1m to 14d"}},
		{"expires under a minute", head + "    approval: {expires: 30s}\n",
			[]string{"f.yaml:7: rules[0].approval.expires: 30s: want 1m to 14d"}},
		{"expires a fraction", head + "    approval: {expires: 1.5h}\n",
			[]string{`f.yaml:7: rules[0].approval.expires: "1.5h" is not a duration like 15m, 24h, 1h30m or 14d (whole days, hours, minutes and seconds)`}},
		{"expires without a unit", "version: 1\ndefaults:\n  approval:\n    expires: 24\nrules:\n  - {name: a, repository: web, tags: [x], targets: [{cluster: c, service: s}]}\n",
			[]string{`f.yaml:4: defaults.approval.expires: "24" is not a duration like 15m`}},
		{"expires a huge number", head + "    approval: {expires: 99999999999d}\n",
			[]string{`f.yaml:7: rules[0].approval.expires: "99999999999d" is not a duration`}},
		{"expires empty", head + "    approval: {expires: \"\"}\n",
			[]string{"f.yaml:7: rules[0].approval.expires: must not be empty"}},
		{"gates without sweeps", "version: 1\nreconcile: {every: off}\n" + head[len("version: 1\n"):] + "    approval: {expires: 1h}\n" + other + "    scan: {}\n",
			[]string{"f.yaml:2: reconcile.every: off, but rules a, b have gates (approval:, scan:, promote.bake): the sweep's schedule sets their timers"}},
		{"gates with pin: tag", head + "    pin: tag\n    approval: {expires: 1h}\n",
			[]string{`f.yaml:7: rules[0].pin: tag, but rule "a" has approval: or scan:, which pass a digest`}},
		{"scan with pin: tag from defaults", "version: 1\ndefaults: {pin: tag}\n" + head[len("version: 1\n"):] + "    scan: {}\n",
			[]string{`f.yaml:4: defaults.pin: tag, but rule "a" has approval: or scan:`}},
		{"approval unknown key", head + "    approval: {expire: 1h}\n",
			[]string{"f.yaml:7: rules[0].approval.expire: unknown key (allowed: expires)"}},
		{"approval not a mapping", head + "    approval: true\n",
			[]string{`f.yaml:7: rules[0].approval: must be a mapping (key: value), got "true"`}},
		{"approval left empty", head + "    approval:\n",
			[]string{"f.yaml:7: rules[0].approval: must be a mapping (key: value), got nothing"}},
		{"unknown severity", head + "    scan: {block: [CRITICAL, SEVERE]}\n",
			[]string{`f.yaml:7: rules[0].scan.block[1]: unknown severity "SEVERE"; one of CRITICAL, HIGH, MEDIUM, LOW, INFORMATIONAL, UNDEFINED`}},
		{"severity in lower case", head + "    scan:\n      block: [high]\n",
			[]string{`f.yaml:8: rules[0].scan.block[0]: unknown severity "high" (write HIGH, as the scans report it); one of CRITICAL`}},
		{"severity twice", head + "    scan: {block: [HIGH, HIGH]}\n",
			[]string{"f.yaml:7: rules[0].scan.block[1]: severity HIGH listed twice"}},
		{"no severity", head + "    scan: {block: []}\n",
			[]string{"f.yaml:7: rules[0].scan.block: must list at least one severity (CRITICAL, HIGH, MEDIUM, LOW, INFORMATIONAL, UNDEFINED), or be left out for CRITICAL, HIGH"}},
		{"block not a list", head + "    scan: {block: CRITICAL}\n",
			[]string{`f.yaml:7: rules[0].scan.block: must be a list, got "CRITICAL"`}},
		{"wait over a day", head + "    scan: {wait: 25h}\n",
			[]string{"f.yaml:7: rules[0].scan.wait: 25h: want 1m to 24h"}},
		{"wait of nothing", head + "    scan: {wait: 0s}\n",
			[]string{"f.yaml:7: rules[0].scan.wait: 0s: want 1m to 24h"}},
		{"scan unknown key", head + "    scan: {blocks: [HIGH]}\n",
			[]string{"f.yaml:7: rules[0].scan.blocks: unknown key (allowed: block, wait)"}},
		{"bake under a minute", head + "    promote: {tag: v, bake: 59s, alarms: [a]}\n",
			[]string{"f.yaml:7: rules[0].promote.bake: 59s: want 1m to 24h"}},
		{"bake over a day", head + "    promote: {tag: v, bake: 1d1s, alarms: [a]}\n",
			[]string{"f.yaml:7: rules[0].promote.bake: 1d1s: want 1m to 24h"}},
		{"bake in Go's units", head + "    promote: {tag: v, bake: 900000ms, alarms: [a]}\n",
			[]string{`f.yaml:7: rules[0].promote.bake: "900000ms" is not a duration`}},
		{"bake without alarms", head + "    promote: {tag: v, bake: 15m}\n",
			[]string{"f.yaml:7: rules[0].promote.alarms: missing; a bake watches CloudWatch alarms: name at least one (alarms: [web-5xx])"}},
		{"alarms without a bake", head + "    promote:\n      tag: v\n      alarms: [a]\n",
			[]string{"f.yaml:9: rules[0].promote.bake: missing; alarms are watched during a bake: give its length (bake: 15m, from 1m to 24h)"}},
		{"empty alarms", head + "    promote: {tag: v, bake: 15m, alarms: []}\n",
			[]string{"f.yaml:7: rules[0].promote.alarms: must name at least one CloudWatch alarm"}},
		{"alarm twice", head + "    promote:\n      tag: v\n      bake: 15m\n      alarms:\n        - a\n        - b\n        - a\n",
			[]string{`f.yaml:13: rules[0].promote.alarms[2]: alarm "a" listed twice`}},
		{"alarm name too long", head + "    promote: {tag: v, bake: 15m, alarms: [\"" + strings.Repeat("x", 256) + "\"]}\n",
			[]string{`f.yaml:7: rules[0].promote.alarms[0]: "` + strings.Repeat("x", 256) + `" does not name a CloudWatch alarm (a name is 1-255 characters, no control characters)`}},
		{"account alarm without a name", head + "    promote: {tag: v, bake: 15m, alarms: [\"222222222222:\"]}\n",
			[]string{`f.yaml:7: rules[0].promote.alarms[0]: "222222222222:" does not name a CloudWatch alarm`}},
		{"alarm not a string", head + "    promote: {tag: v, bake: 15m, alarms: [{name: a}]}\n",
			[]string{"f.yaml:7: rules[0].promote.alarms[0]: must be a string, got a mapping"}},
		{"alarm of an account without targets", head + "    promote: {tag: v, bake: 15m, alarms: [\"333333333333:web-5xx\"]}\n",
			[]string{`f.yaml:7: rules[0].promote.alarms[0]: "333333333333:web-5xx": account 333333333333 is not the account of any target of rule "a"; an alarm of the central account is named without an account`}},
		{"alarm of an account in two regions",
			"version: 1\nrules:\n  - name: a\n    repository: web\n    tags: [x]\n    targets:\n      - {cluster: c, service: s, account: \"222222222222\"}\n      - {cluster: c, service: t, account: \"222222222222\", region: us-east-1}\n    promote: {tag: v, bake: 15m, alarms: [\"222222222222:5xx\"]}\n",
			[]string{`f.yaml:9: rules[0].promote.alarms[0]: "222222222222:5xx": rule "a" has targets in account 222222222222 in more than one region (the central region, us-east-1); name the alarm by its ARN`}},
		{"alarm ARN where no target is",
			"version: 1\nrules:\n  - name: a\n    repository: web\n    tags: [x]\n    targets: [{cluster: c, service: s, account: \"222222222222\", region: eu-west-1}]\n    promote: {tag: v, bake: 15m, alarms: [\"arn:aws:cloudwatch:us-east-1:222222222222:alarm:5xx\"]}\n",
			[]string{`f.yaml:7: rules[0].promote.alarms[0]: alarm ARN is in 222222222222/us-east-1, where rule "a" has no target`}},
		{"not an alarm ARN", head + "    promote: {tag: v, bake: 15m, alarms: [\"arn:aws:sns:eu-west-1:222222222222:topic\"]}\n",
			[]string{`f.yaml:7: rules[0].promote.alarms[0]: "arn:aws:sns:eu-west-1:222222222222:topic" is not a CloudWatch alarm ARN (arn:aws:cloudwatch:REGION:ACCOUNT:alarm:NAME)`}},
		{"alarm ARN of an unknown region", head + "    promote: {tag: v, bake: 15m, alarms: [\"arn:aws:cloudwatch:xx-nowhere-9:222222222222:alarm:a\"]}\n",
			[]string{`f.yaml:7: rules[0].promote.alarms[0]: "arn:aws:cloudwatch:xx-nowhere-9:222222222222:alarm:a" names unknown AWS region "xx-nowhere-9"`}},
		{"promote unknown key", head + "    promote: {tag: v, bakes: 15m}\n",
			[]string{"f.yaml:7: rules[0].promote.bakes: unknown key (allowed: tag, bake, alarms)"}},
		{"default alarm of an account one rule has no target in",
			"version: 1\ndefaults:\n  promote:\n    tag: \"v-{tag}\"\n    bake: 15m\n    alarms: [\"222222222222:5xx\"]\nrules:\n  - {name: a, repository: web, tags: [x], targets: [{cluster: c, service: s}]}\n" + other,
			[]string{`f.yaml:6: defaults.promote.alarms[0]: "222222222222:5xx": account 222222222222 is not the account of any target of rule "a" (from defaults); an alarm of the central account`}},
		{"default promote tag too long for one rule",
			"version: 1\ndefaults:\n  promote: {tag: \"" + strings.Repeat("v", 100) + "-{tag}\"}\nrules:\n  - {name: a, repository: web, tags: [\"" + strings.Repeat("x", 40) + "\"], targets: [{cluster: c, service: s}]}\n" + other,
			[]string{`f.yaml:3: defaults.promote.tag: renders "` + strings.Repeat("v", 100) + "-" + strings.Repeat("x", 40) + `" (141 characters) for the longest tag rule "a" selects`}},
		{"every problem at once", head + "    approval: {expires: 15d}\n    scan: {block: [NONE], wait: 1h}\n    promote: {tag: v, bake: 2d}\n",
			[]string{
				"f.yaml:7: rules[0].approval.expires: 15d: want 1m to 14d",
				`f.yaml:8: rules[0].scan.block[0]: unknown severity "NONE"`,
				"f.yaml:9: rules[0].promote.bake: 2d: want 1m to 24h",
				"f.yaml:9: rules[0].promote.alarms: missing"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatalf("Parse succeeded, want an error:\n%s", tt.yaml)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("got %d error lines, want %d:\n%s", len(lines), len(tt.want), err)
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(lines[i], w) {
					t.Errorf("error line %d:\n got %q\nwant %q", i, lines[i], w)
				}
			}
		})
	}
}

func TestGateDuration(t *testing.T) {
	for s, want := range map[string]time.Duration{
		"1m": time.Minute, "90s": 90 * time.Second, "24h": 24 * time.Hour, "14d": 14 * 24 * time.Hour,
		"1d12h30m15s": 36*time.Hour + 30*time.Minute + 15*time.Second, "0s": 0,
	} {
		if got, ok := parseGateDuration(s); !ok || got != want {
			t.Errorf("parseGateDuration(%q) = %v, %v; want %v", s, got, ok, want)
		}
	}
	for _, s := range []string{"", "1", "1.5h", "30m1h", "1h1h", "-1m", "1 m", "1w", "1000000d"} {
		if got, ok := parseGateDuration(s); ok {
			t.Errorf("parseGateDuration(%q) = %v; want refused", s, got)
		}
	}
	for d, want := range map[time.Duration]string{
		time.Minute: "1m", 24 * time.Hour: "24h", 14 * 24 * time.Hour: "14d", 90 * time.Minute: "1h30m", 90 * time.Second: "1m30s",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestScanBlocks(t *testing.T) {
	s := &Scan{Block: []string{"CRITICAL", "HIGH"}}
	tests := []struct {
		counts  map[string]int
		blocked bool
		why     string
	}{
		{nil, false, ""},
		{map[string]int{"MEDIUM": 9, "LOW": 2}, false, ""},
		{map[string]int{"HIGH": 3, "CRITICAL": 1, "MEDIUM": 9}, true, "1 CRITICAL, 3 HIGH"},
		{map[string]int{"CRITICAL": 0, "HIGH": 2}, true, "2 HIGH"},
	}
	for _, tt := range tests {
		if blocked, why := s.Blocks(tt.counts); blocked != tt.blocked || why != tt.why {
			t.Errorf("Blocks(%v) = %v, %q; want %v, %q", tt.counts, blocked, why, tt.blocked, tt.why)
		}
	}
}

// TestGatesSchema holds the JSON Schema's gate objects to the loader's keys,
// severities and references (TestSchemaMatchesLoader checks their keys
// refuse others).
func TestGatesSchema(t *testing.T) {
	s := readSchema(t)
	defs := s["$defs"].(map[string]any)
	block := defs["scan"].(map[string]any)["properties"].(map[string]any)["block"].(map[string]any)
	var sevs []string
	for _, v := range block["items"].(map[string]any)["enum"].([]any) {
		sevs = append(sevs, v.(string))
	}
	if diff := cmp.Diff(Severities, sevs); diff != "" {
		t.Errorf("severities (-loader +schema):\n%s", diff)
	}
	for _, where := range []map[string]any{
		s["properties"].(map[string]any)["defaults"].(map[string]any),
		defs["rule"].(map[string]any),
	} {
		for _, key := range []string{"approval", "scan", "promote"} {
			if ref := where["properties"].(map[string]any)[key].(map[string]any)["$ref"]; ref != "#/$defs/"+key {
				t.Errorf("%s refers to %v, want #/$defs/%s", key, ref, key)
			}
		}
	}
	dep := defs["promote"].(map[string]any)["dependentRequired"]
	if !cmp.Equal(dep, map[string]any{"bake": []any{"alarms"}, "alarms": []any{"bake"}}) {
		t.Errorf("promote: bake and alarms go together in the loader; schema says %v", dep)
	}
	if got := slices.Sorted(slices.Values(Keys("defaults"))); !slices.Contains(got, "promote") {
		t.Errorf("defaults keys %v lack promote", got)
	}
}
