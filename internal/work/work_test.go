package work

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecrevent"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

var central = rules.Place{Account: "123456789012", Region: "eu-west-1"}

const digest = "sha256:4f2a9c1e0000000000000000000000000000000000000000000000000000abcd"

func load(t *testing.T, yaml string) *rules.Config {
	t.Helper()
	cfg, err := rules.Parse("autodeploy.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

const twoTargets = `version: 1
rules:
  - name: web
    repository: web
    tags: ["main-*"]
    targets:
      - {cluster: staging, service: web}
      - {cluster: prod, service: web, account: "210987654321", region: us-east-1, role: "arn:aws:iam::210987654321:role/deployer"}
`

func push() ecrevent.Push {
	return ecrevent.Push{EventID: "ev-1", Account: central.Account, Region: central.Region, Repository: "web", Tag: "main-1",
		Digest: digest, Time: time.Date(2026, 11, 30, 9, 15, 2, 345_678_000, time.UTC)}
}

func TestRoundTrip(t *testing.T) {
	cfg := load(t, twoTargets)
	r := cfg.Rules[0]
	for _, tc := range []struct {
		name  string
		item  DeployTarget
		place rules.Place
	}{
		{"central target", NewDeployTarget(push(), r, 0, central), central},
		{"target in another place", NewDeployTarget(push(), r, 1, central), rules.Place{Account: "210987654321", Region: "us-east-1"}},
		{"push time in another zone", DeployTarget{Push: PushOf(ecrevent.Push{EventID: "e", Digest: digest, Repository: "web",
			Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600))}), Rule: "web", ServiceKey: "1/r/c/s"}, rules.Place{Account: "1", Region: "r"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, err := Encode(tc.item)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(body), `{"kind":"deploy-target","v":1,`) {
				t.Errorf("envelope = %s", body)
			}
			got, err := Decode(body)
			if err != nil {
				t.Fatal(err)
			}
			if diff := gocmp.Diff(tc.item, got); diff != "" {
				t.Errorf("round trip (-sent +read):\n%s", diff)
			}
			if !got.Push.PushedAt.Equal(tc.item.Push.PushedAt) || got.Push.PushedAt.Nanosecond() != tc.item.Push.PushedAt.Nanosecond() {
				t.Errorf("push time %v, sent %v", got.Push.PushedAt, tc.item.Push.PushedAt)
			}
			if diff := gocmp.Diff(tc.item.Push, PushOf(got.Push.Event())); diff != "" {
				t.Errorf("push as an event and back (-want +got):\n%s", diff)
			}
			if at := tc.place.Account + "/" + tc.place.Region + "/"; !strings.HasPrefix(got.ServiceKey, at) {
				t.Errorf("service key %q, want the target's place first (%s)", got.ServiceKey, at)
			}
		})
	}
}

func TestEncodedShape(t *testing.T) {
	body, err := Encode(NewDeployTarget(push(), load(t, twoTargets).Rules[0], 1, central))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"kind":"deploy-target","v":1,"push":{"event_id":"ev-1","registry_account":"123456789012","registry_region":"eu-west-1",` +
		`"repository":"web","tag":"main-1","digest":"` + digest + `","pushed_at":"2026-11-30T09:15:02.345678Z"},` +
		`"rule":"web","target_index":1,"service_key":"210987654321/us-east-1/prod/web",` +
		`"rules_sha256":"` + load(t, twoTargets).SHA256() + `"}`
	if diff := gocmp.Diff(want, string(body)); diff != "" {
		t.Errorf("encoded (-want +got):\n%s", diff)
	}
}

// rules_sha256 is optional in v1: an item without it (an older intake's)
// reads as before, and a v1 reader that knows nothing of it (an older
// worker, played by a struct without the field) reads the rest unchanged.
func TestRulesSHA256IsOptional(t *testing.T) {
	cfg := load(t, twoTargets)
	withSHA := NewDeployTarget(push(), cfg.Rules[0], 0, central)
	if withSHA.RulesSHA256 != cfg.SHA256() || len(withSHA.RulesSHA256) != 64 {
		t.Fatalf("item's rules_sha256 %q, want the file's %q", withSHA.RulesSHA256, cfg.SHA256())
	}
	body, err := Encode(withSHA)
	if err != nil {
		t.Fatal(err)
	}
	var older struct {
		Envelope
		Push        Push   `json:"push"`
		Rule        string `json:"rule"`
		TargetIndex int    `json:"target_index"`
		ServiceKey  string `json:"service_key"`
	}
	if err := json.Unmarshal(body, &older); err != nil {
		t.Fatalf("an older reader: %v", err)
	}
	if diff := gocmp.Diff(withSHA.ServiceKey, older.ServiceKey); diff != "" || older.V != 1 || older.Rule != "web" {
		t.Errorf("an older reader read %+v", older)
	}
	without := withSHA
	without.RulesSHA256 = ""
	body, err = Encode(without)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(body), "rules_sha256") {
		t.Errorf("an item without a SHA-256 encodes one: %s", body)
	}
	got, err := Decode(body)
	if err != nil {
		t.Fatal(err)
	}
	if diff := gocmp.Diff(without, got); diff != "" {
		t.Errorf("decoded (-want +got):\n%s", diff)
	}
}

// An item is out of step with a rules file only when both SHA-256s are
// known and differ.
func TestOutOfStep(t *testing.T) {
	sent := load(t, twoTargets)
	newer := load(t, twoTargets+"      - {cluster: prod, service: api}\n")
	item := NewDeployTarget(push(), sent.Rules[0], 0, central)
	noSHA := item
	noSHA.RulesSHA256 = ""
	for _, tc := range []struct {
		name string
		item DeployTarget
		cfg  *rules.Config
		want bool
	}{
		{"the intake's file", item, sent, false},
		{"the same bytes parsed again", item, load(t, twoTargets), false},
		{"another file", item, newer, true},
		{"an item from an older intake", noSHA, newer, false},
		{"a rules file built by hand", item, &rules.Config{Rules: sent.Rules}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.item.OutOfStep(tc.cfg); got != tc.want {
				t.Errorf("OutOfStep = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestDecodeRefuses(t *testing.T) {
	good, err := Encode(NewDeployTarget(push(), load(t, twoTargets).Rules[0], 0, central))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, body, want string
	}{
		{"not JSON", `deploy web please`, "not a command"},
		{"no kind", `{"v":1}`, "no kind"},
		{"unknown kind", `{"kind":"approve","v":1}`, `unknown command kind "approve"`},
		{"newer version", strings.Replace(string(good), `"v":1`, `"v":2`, 1), "version 2 is not known"},
		{"no version", strings.Replace(string(good), `"v":1,`, ``, 1), "version 0 is not known"},
		{"wrong field type", `{"kind":"deploy-target","v":1,"target_index":"0"}`, "malformed deploy-target command"},
		{"incomplete", `{"kind":"deploy-target","v":1,"rule":"web"}`, "incomplete deploy-target command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode([]byte(tc.body))
			var we *Error
			if !errors.As(err, &we) {
				t.Fatalf("error = %v, want a *work.Error", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %q, want it to say %q", err, tc.want)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	sent := load(t, twoTargets)
	item := NewDeployTarget(push(), sent.Rules[0], 1, central)
	for _, tc := range []struct {
		name, yaml, want string // want: the error, "" for the target
	}{
		{"unchanged", twoTargets, ""},
		{"a target added after it", twoTargets + `      - {cluster: prod, service: api}` + "\n", ""},
		{"rule gone", strings.Replace(twoTargets, "name: web", "name: www", 1), "no rule web"},
		// The index is a hint: the item's service wherever it is now.
		{"a target removed before it", strings.Replace(twoTargets, `      - {cluster: staging, service: web}`+"\n", "", 1), "@0"},
		{"a target inserted before it", strings.Replace(twoTargets, `      - {cluster: staging, service: web}`,
			"      - {cluster: staging, service: web}\n      - {cluster: staging, service: api}", 1), "@2"},
		{"a target inserted first", strings.Replace(twoTargets, "    targets:\n", "    targets:\n      - {cluster: new, service: new}\n", 1), "@2"},
		{"its own target removed", strings.Replace(twoTargets, "      - {cluster: prod, service: web, account:", "      - {cluster: prod, service: api, account:", 1),
			"rule web no longer targets 210987654321/us-east-1/prod/web (the item named its target 1)"},
		{"repository changed", strings.Replace(twoTargets, "repository: web", "repository: www", 1), "it deploys repository www, the push was to web"},
		// The rule's tag selection and registry are the intake's decision
		// too: the worker takes it again in the file it runs.
		{"tag ignored now", strings.Replace(twoTargets, `tags: ["main-*"]`, `tags: ["main-*"]`+"\n    ignore-tags: [\"main-1\"]", 1),
			`rule web does not take the item's push web:main-1 now (tag main-1 is ignored by "main-1")`},
		{"tags changed", strings.Replace(twoTargets, `tags: ["main-*"]`, `tags: ["release-*"]`, 1), "tag main-1 matches none of release-*"},
		{"semver now", strings.Replace(twoTargets, `tags: ["main-*"]`, `semver: ">=1.0.0"`, 1), "tag main-1 is not a semantic version"},
		{"registry changed", strings.Replace(twoTargets, `tags: ["main-*"]`, `tags: ["main-*"]`+"\n    registry: {account: \"333333333333\"}", 1),
			"its registry is 333333333333/eu-west-1, the push was to 123456789012/eu-west-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			job, err := item.Resolve(load(t, tc.yaml), central)
			if tc.want == "" || strings.HasPrefix(tc.want, "@") {
				if err != nil {
					t.Fatal(err)
				}
				r, target := job.Rule, job.Target
				if r.Name != "web" || target.Cluster != "prod" || target.Service != "web" || target.Account != "210987654321" {
					t.Errorf("resolved %s %+v", r.Name, target)
				}
				if want := cmp.Or(tc.want, "@1"); fmt.Sprintf("@%d", job.Index) != want || r.Targets[job.Index].Line != target.Line {
					t.Errorf("index %d (target at line %d), want %s", job.Index, target.Line, want)
				}
				return
			}
			var we *Error
			if !errors.As(err, &we) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want a *work.Error saying %q", err, tc.want)
			}
		})
	}
}

// A sweep's item is the push it builds from the rule's own selection (the
// newest image the rule takes, in the rule's registry): the worker takes it.
func TestResolveSweepItem(t *testing.T) {
	cfg := load(t, `version: 1
rules:
  - name: api
    repository: api
    semver: ">=1.0.0"
    ignore-tags: ["*-rc*"]
    registry: {account: "333333333333", region: us-east-1}
    targets:
      - {cluster: prod, service: api}
`)
	r := cfg.Rules[0]
	newest, ok := r.Newest([]rules.Image{{Tag: "v1.2.0-rc1", Digest: "sha256:1"}, {Tag: "v1.1.0", Digest: digest}, {Tag: "latest", Digest: "sha256:2"}})
	if !ok || newest.Tag != "v1.1.0" {
		t.Fatalf("newest %+v", newest)
	}
	registry := r.RegistryOf(central)
	sweep := ecrevent.Push{EventID: "reconcile-4f2a9c1e0000", Account: registry.Account, Region: registry.Region,
		Repository: r.Repository, Tag: newest.Tag, Digest: newest.Digest}
	body, err := Encode(NewDeployTarget(sweep, r, 0, central))
	if err != nil {
		t.Fatal(err)
	}
	item, err := Decode(body)
	if err != nil {
		t.Fatal(err)
	}
	if job, err := item.Resolve(cfg, central); err != nil || job.Rule != r || job.Target.Service != "api" {
		t.Errorf("resolved %+v, %v", job, err)
	}
}
