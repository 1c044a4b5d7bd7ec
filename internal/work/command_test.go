package work

import (
	"errors"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
)

func promotion() DeployPush {
	return DeployPush{Origin: "promotion of rule web-staging to tag verified-main-1", Push: Push{
		EventID: "autodeploy-promote-0123456789abcdef", RegistryAccount: "123456789012", RegistryRegion: "eu-west-1",
		Repository: "team/web", Tag: "verified-main-1", Digest: digest,
		PushedAt: time.Date(2026, 11, 30, 9, 15, 2, 345_000_000, time.UTC)}}
}

// Every kind goes through its envelope and comes back as the value that was
// sent, sub-second push time included.
func TestCommandRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		cmd  Command
		head string
	}{
		{"push", promotion(), `{"kind":"push","v":1,`},
		{"sweep", Sweep{ID: "after-rollback-ecs-svc-20", Origin: "watcher: rollback of prod/web"}, `{"kind":"sweep","v":1,`},
		{"dry-run sweep", Sweep{ID: "op-1", Origin: "operator", DryRun: true}, `{"kind":"sweep","v":1,`},
		{"deploy-target", NewDeployTarget(push(), load(t, twoTargets).Rules[0], 1, central), `{"kind":"deploy-target","v":1,`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, err := EncodeCommand(tc.cmd)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(body), tc.head) {
				t.Errorf("envelope = %s, want it to begin %s", body, tc.head)
			}
			if !IsCommand(body) {
				t.Errorf("IsCommand(%s) = false", body)
			}
			got, err := DecodeCommand(body)
			if err != nil {
				t.Fatal(err)
			}
			if diff := gocmp.Diff(tc.cmd, got); diff != "" {
				t.Errorf("round trip (-sent +read):\n%s", diff)
			}
		})
	}
}

func TestCommandEncodedShape(t *testing.T) {
	for _, tc := range []struct {
		name string
		cmd  Command
		want string
	}{
		{"push", promotion(), `{"kind":"push","v":1,"origin":"promotion of rule web-staging to tag verified-main-1",` +
			`"push":{"event_id":"autodeploy-promote-0123456789abcdef","registry_account":"123456789012","registry_region":"eu-west-1",` +
			`"repository":"team/web","tag":"verified-main-1","digest":"` + digest + `","pushed_at":"2026-11-30T09:15:02.345Z"}}`},
		{"sweep", Sweep{ID: "after-rollback-ecs-svc-20", Origin: "watcher"}, `{"kind":"sweep","v":1,"id":"after-rollback-ecs-svc-20","origin":"watcher"}`},
		{"dry-run sweep", Sweep{ID: "x", Origin: "y", DryRun: true}, `{"kind":"sweep","v":1,"id":"x","origin":"y","dry_run":true}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, err := EncodeCommand(tc.cmd)
			if err != nil {
				t.Fatal(err)
			}
			if diff := gocmp.Diff(tc.want, string(body)); diff != "" {
				t.Errorf("encoded (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeCommandRefuses(t *testing.T) {
	good, err := EncodeCommand(promotion())
	if err != nil {
		t.Fatal(err)
	}
	without := func(field string) string {
		c := promotion()
		switch field {
		case "origin":
			c.Origin = ""
		case "tag":
			c.Push.Tag = ""
		case "pushed_at":
			c.Push.PushedAt = time.Time{}
		}
		b, err := EncodeCommand(c)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, tc := range []struct {
		name, body, want string
	}{
		{"not JSON", `sweep please`, "not a command"},
		{"an AWS event", `{"source":"aws.events","detail-type":"Scheduled Event"}`, "not a command: no kind"},
		{"unknown kind", `{"kind":"approve","v":1}`, `unknown command kind "approve" (version 1)`},
		{"newer push", strings.Replace(string(good), `"v":1`, `"v":2`, 1), "command push version 2 is not known to this build (it reads 1)"},
		{"sweep without version", `{"kind":"sweep","id":"x","origin":"y"}`, "command sweep version 0 is not known"},
		{"wrong field type", `{"kind":"sweep","v":1,"id":"x","origin":"y","dry_run":"yes"}`, "malformed sweep command"},
		{"sweep without id", `{"kind":"sweep","v":1,"origin":"y"}`, "incomplete sweep command: id and origin are required"},
		{"push without origin", without("origin"), "incomplete push command: missing origin"},
		{"push without tag", without("tag"), "incomplete push command: missing push.tag"},
		{"push without time", without("pushed_at"), "incomplete push command: missing push.pushed_at"},
		{"push with a bad digest", strings.Replace(string(good), digest, "sha256:abc", 1), `push.digest "sha256:abc" is not sha256:<64 hex digits>`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeCommand([]byte(tc.body))
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

// The worker's Decode takes deploy-target items only: a command for the
// deployer that reached a work queue is refused, permanently.
func TestDecodeTakesOnlyDeployTargets(t *testing.T) {
	for _, c := range []Command{promotion(), Sweep{ID: "x", Origin: "y"}} {
		body, err := EncodeCommand(c)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Decode(body)
		var we *Error
		if !errors.As(err, &we) || !strings.Contains(err.Error(), "a "+string(c.Kind())+" command is not a work item (deploy-target)") {
			t.Errorf("Decode(%s) = %v, want a *work.Error", body, err)
		}
	}
}

func TestIsCommand(t *testing.T) {
	for body, want := range map[string]bool{
		`{"kind":"sweep","v":1}`:                    true,
		`{"kind":"approve","v":9}`:                  true, // a kind this build does not know is still a command
		`{"source":"aws.ecr","detail-type":"x"}`:    false,
		`{"kind":""}`:                               false,
		`["kind"]`:                                  false,
		`not json`:                                  false,
		`{"kind":{"nested":"object"},"source":"x"}`: false,
	} {
		if got := IsCommand([]byte(body)); got != want {
			t.Errorf("IsCommand(%s) = %v, want %v", body, got, want)
		}
	}
}
