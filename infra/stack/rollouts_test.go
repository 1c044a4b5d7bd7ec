package stack

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// onlyCodeDeploy: every target CodeDeploy-controlled, one in another
// account: nothing of ECS-native rollouts anywhere.
const onlyCodeDeploy = `version: 1
rules:
  - name: checkout
    repository: checkout
    tags: [latest]
    targets:
      - {cluster: prod, service: checkout, codedeploy: {application: checkout, deployment-group: checkout-prod}}
      - cluster: prod
        service: search
        account: "444444444444"
        codedeploy: {application: search, deployment-group: search-prod}
`

// manyServices: n services in clusters of 50 at home, past what one
// pattern or the watcher's inline budget holds per service.
func manyServices(n int) string {
	var b strings.Builder
	b.WriteString("version: 1\nrules:\n  - name: sidecar\n    repository: sidecar\n    tags: [stable]\n    targets:\n")
	for i := range n {
		fmt.Fprintf(&b, "      - {cluster: team-%02d, service: svc-%03d}\n", i/50, i)
	}
	return b.String()
}

func fnSub(arn string) map[string]any { return map[string]any{"Fn::Sub": arn} }

// watcherStatement is the watcher's statement sid (inline or in its
// managed policies), nil when it has none.
func (s synthesized) watcherStatement(t *testing.T, sid string) map[string]any {
	t.Helper()
	for _, st := range s.policiesOf(t, "WatcherRole") {
		if st["Sid"] == sid {
			return st
		}
	}
	return nil
}

// hookRules are the central rules on ECS hook events, by logical id.
func (s synthesized) hookRules() map[string]map[string]any {
	out := map[string]map[string]any{}
	for id, r := range s.resources("AWS::Events::Rule") {
		if p, _ := r["EventPattern"].(map[string]any); cmp.Equal([]any{ecsHook}, p["detail-type"]) {
			out[id] = r
		}
	}
	return out
}

// The watcher takes the hook events of exactly the rules' services that
// may be ECS-native (every target without codedeploy:), per service while
// one pattern holds them and per cluster beyond, as the ECS deployment
// rule does; it reads their service deployments (ListServiceDeployments,
// DescribeServiceDeployments, DescribeServiceRevisions, each of which
// requires the service too) with its own credentials in the central
// account, at the same grain; with no target that may be ECS-native,
// neither rule nor grant exists.
func TestHooksAndServiceDeploymentReads(t *testing.T) {
	acct := "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:"
	east := "arn:${AWS::Partition}:ecs:us-east-1:${AWS::AccountId}:"
	events := []any{"HOOK_AWAITING_ACTION", "HOOK_SUCCEEDED", "HOOK_FAILED", "HOOK_TIMED_OUT"}
	clusters := func(kinds ...string) []any {
		var out []any
		for _, k := range kinds {
			for c := range 3 {
				out = append(out, fnSub(fmt.Sprintf("%s%s/team-%02d/*", acct, k, c)))
			}
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		rules string
		// wantPattern is the hook rule's pattern (nil: no hook rule).
		wantPattern map[string]any
		// wantReads are the resources of ReadServiceDeployments (nil: no
		// such statement).
		wantReads []any
	}{{
		name:  "per service",
		rules: rulesYAML,
		wantPattern: map[string]any{
			"source": []any{"aws.ecs"}, "detail-type": []any{"ECS Hook State Change"}, "account": []any{"111111111111", "222222222222"},
			"detail": map[string]any{"eventName": events, "serviceArn": []any{
				fnSub("arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:service/staging/web"),
				fnSub("arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:service/staging/web-worker"),
				fnSub("arn:${AWS::Partition}:ecs:${AWS::Region}:222222222222:service/prod/api"),
				fnSub("arn:${AWS::Partition}:ecs:us-east-1:${AWS::AccountId}:service/prod/web"),
			}},
		},
		// prod/api is in 222222222222: read through its target stack's
		// watcher role, not with the watcher's own credentials.
		wantReads: []any{
			fnSub(acct + "service-deployment/staging/web-worker/*"), fnSub(acct + "service-deployment/staging/web/*"),
			fnSub(acct + "service-revision/staging/web-worker/*"), fnSub(acct + "service-revision/staging/web/*"),
			fnSub(acct + "service/staging/web"), fnSub(acct + "service/staging/web-worker"),
			fnSub(east + "service-deployment/prod/web/*"), fnSub(east + "service-revision/prod/web/*"), fnSub(east + "service/prod/web"),
		},
	}, {
		name:  "per cluster past what fits",
		rules: manyServices(150),
		wantPattern: map[string]any{
			"source": []any{"aws.ecs"}, "detail-type": []any{"ECS Hook State Change"}, "account": []any{"111111111111"},
			"detail": map[string]any{"eventName": events, "serviceArn": []any{
				map[string]any{"prefix": fnSub(acct + "service/team-00/")},
				map[string]any{"prefix": fnSub(acct + "service/team-01/")},
				map[string]any{"prefix": fnSub(acct + "service/team-02/")},
			}},
		},
		wantReads: clusters("service-deployment", "service-revision", "service"),
	}, {
		name:  "every target CodeDeploy-controlled",
		rules: onlyCodeDeploy,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			s := synth(t, withRules(t, tc.rules))
			hooks := s.hookRules()
			if tc.wantPattern == nil {
				if len(hooks) != 0 {
					t.Errorf("hook rules where no target may be ECS-native: %v", hooks)
				}
				for id := range s.resources("AWS::SQS::Queue") {
					if strings.HasPrefix(id, "HookEventsDLQ") {
						t.Errorf("hook events queue %s where no target may be ECS-native", id)
					}
				}
			} else {
				if len(hooks) != 1 {
					t.Fatalf("%d hook rules, want 1", len(hooks))
				}
				for _, r := range hooks {
					if diff := cmp.Diff(tc.wantPattern, r["EventPattern"]); diff != "" {
						t.Errorf("hook pattern (-want +got):\n%s", diff)
					}
					target := jsonString(r["Targets"])
					if !strings.Contains(target, "HookEventsDLQ") || !strings.Contains(target, "Watcher") {
						t.Errorf("hook rule target %s: want the watcher with the HookEventsDLQ queue", target)
					}
				}
			}
			reads := s.watcherStatement(t, "ReadServiceDeployments")
			if tc.wantReads == nil {
				if reads != nil {
					t.Errorf("service-deployment reads where no target may be ECS-native: %v", reads)
				}
				if s.watcherStatement(t, "ReadBlueGreenEndings") == nil {
					t.Error("the CodeDeploy endings are no longer read")
				}
			} else {
				if diff := cmp.Diff([]any{"ecs:ListServiceDeployments", "ecs:DescribeServiceDeployments", "ecs:DescribeServiceRevisions"}, reads["Action"]); diff != "" {
					t.Errorf("actions (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(tc.wantReads, reads["Resource"], sortAny()); diff != "" {
					t.Errorf("resources (-want +got):\n%s", diff)
				}
			}
			// No function but the watcher reads service deployments: the
			// worker deploys ECS-native services with UpdateService.
			for _, role := range []string{"DeployerRole", "WorkerRole"} {
				for a := range actions(s.policiesOf(t, role)) {
					if strings.Contains(a, "ServiceDeployment") || strings.Contains(a, "ServiceRevision") {
						t.Errorf("%s may %s", role, a)
					}
				}
			}
			s.nagClean(t)
			s.lintClean(t)
		})
	}
}

// severalAccountsNative: severalAccounts (222222222222 only rolling or
// ECS-native targets, 444444444444 only CodeDeploy-controlled ones) plus
// an account with both.
const severalAccountsNative = severalAccounts + `  - name: mixed
    repository: mixed
    tags: [latest]
    targets:
      - {cluster: edge, service: cdn, account: "555555555555"}
      - {cluster: edge, service: legacy, account: "555555555555", codedeploy: {application: legacy, deployment-group: legacy-edge}}
`

// Target stacks forward the hook events of their services that may be
// ECS-native, and their watcher role reads those services' deployments
// (a target behind a role of its own too); the central bus admits hook
// events exactly from the accounts that forward them. A place whose every
// target is CodeDeploy-controlled forwards no hook event and its watcher
// role reads only CodeDeploy's endings.
func TestTargetStacksForwardHooks(t *testing.T) {
	all := synthAll(t, severalAccountsNative)
	for _, tc := range []struct {
		stack string
		// wantHooks are the forwarded hook events' services (nil: no
		// hook forwarding).
		wantHooks []any
		// wantWatcher are the watcher role's statement ids (nil: no
		// watcher role).
		wantWatcher []string
		wantReads   []any
	}{{
		stack:       "Test-Target-222222222222-eu-west-1",
		wantHooks:   []any{fnSub("arn:${AWS::Partition}:ecs:${AWS::Region}:222222222222:service/stage/api"), fnSub("arn:${AWS::Partition}:ecs:${AWS::Region}:222222222222:service/stage/web")},
		wantWatcher: []string{"ReadServiceDeployments"},
		wantReads: []any{
			fnSub("arn:${AWS::Partition}:ecs:${AWS::Region}:222222222222:service-deployment/stage/api/*"),
			fnSub("arn:${AWS::Partition}:ecs:${AWS::Region}:222222222222:service-deployment/stage/web/*"),
			fnSub("arn:${AWS::Partition}:ecs:${AWS::Region}:222222222222:service-revision/stage/api/*"),
			fnSub("arn:${AWS::Partition}:ecs:${AWS::Region}:222222222222:service-revision/stage/web/*"),
			fnSub("arn:${AWS::Partition}:ecs:${AWS::Region}:222222222222:service/stage/api"),
			fnSub("arn:${AWS::Partition}:ecs:${AWS::Region}:222222222222:service/stage/web"),
		},
	}, {
		stack:       "Test-Target-444444444444-us-east-1",
		wantWatcher: []string{"ReadBlueGreenEndings"},
	}, {
		stack:       "Test-Target-555555555555-eu-west-1",
		wantHooks:   []any{fnSub("arn:${AWS::Partition}:ecs:${AWS::Region}:555555555555:service/edge/cdn")},
		wantWatcher: []string{"ReadBlueGreenEndings", "ReadServiceDeployments"},
		wantReads: []any{
			fnSub("arn:${AWS::Partition}:ecs:${AWS::Region}:555555555555:service-deployment/edge/cdn/*"),
			fnSub("arn:${AWS::Partition}:ecs:${AWS::Region}:555555555555:service-revision/edge/cdn/*"),
			fnSub("arn:${AWS::Partition}:ecs:${AWS::Region}:555555555555:service/edge/cdn"),
		},
	}, {
		// The central account's own place in another region: the central
		// watcher reads it with its own credentials.
		stack:     "Test-Target-111111111111-us-west-2",
		wantHooks: []any{fnSub("arn:${AWS::Partition}:ecs:us-west-2:${AWS::AccountId}:service/dev/web")},
	}} {
		t.Run(tc.stack, func(t *testing.T) {
			s, ok := all[tc.stack]
			if !ok {
				t.Fatalf("no stack %s", tc.stack)
			}
			var forwarded []any
			for _, r := range s.resources("AWS::Events::Rule") {
				p := r["EventPattern"].(map[string]any)
				if !cmp.Equal([]any{ecsHook}, p["detail-type"]) {
					continue
				}
				if diff := cmp.Diff([]any{*s.stack.Account()}, p["account"]); diff != "" {
					t.Errorf("forwarded hook accounts (-want +got):\n%s", diff)
				}
				if target := jsonString(r["Targets"]); !strings.Contains(target, "arn:aws:events:eu-west-1:111111111111:event-bus/default") ||
					!strings.Contains(target, "DeadLetterConfig") {
					t.Errorf("hook forwarding target %s", target)
				}
				forwarded = append(forwarded, asList(p["detail"].(map[string]any)["serviceArn"])...)
			}
			if diff := cmp.Diff(tc.wantHooks, forwarded); diff != "" {
				t.Errorf("forwarded hook events' services (-want +got):\n%s", diff)
			}
			role := "ecr-autodeploy-watcher-" + *s.stack.Region()
			if tc.wantWatcher == nil {
				if s.roleNamed(role) != nil {
					t.Errorf("a watcher role in the central account")
				}
				return
			}
			st := s.roleStatements(t, role)
			keys := mapKeys(st)
			slices.Sort(keys)
			if diff := cmp.Diff(tc.wantWatcher, keys); diff != "" {
				t.Errorf("watcher role's statements (-want +got):\n%s", diff)
			}
			if tc.wantReads != nil {
				if diff := cmp.Diff(tc.wantReads, st["ReadServiceDeployments"]["Resource"], sortAny()); diff != "" {
					t.Errorf("service-deployment reads (-want +got):\n%s", diff)
				}
			}
		})
	}

	central := all["Test"]
	t.Run("central bus admits hook events from the accounts that forward them", func(t *testing.T) {
		detailTypes := map[string]any{}
		for _, p := range central.resources("AWS::Events::EventBusPolicy") {
			st := p["Statement"].(map[string]any)
			for _, root := range asList(st["Principal"].(map[string]any)["AWS"]) {
				detailTypes[root.(string)] = st["Condition"].(map[string]any)["StringEquals"].(map[string]any)["events:detail-type"]
			}
		}
		want := map[string]any{
			"arn:aws:iam::222222222222:root": []any{"ECS Deployment State Change", "ECS Hook State Change"},
			"arn:aws:iam::333333333333:root": []any{"ECR Image Action"},
			"arn:aws:iam::444444444444:root": []any{"ECS Deployment State Change", "CodeDeploy Deployment State-change Notification"},
			"arn:aws:iam::555555555555:root": []any{"ECS Deployment State Change", "ECS Hook State Change", "CodeDeploy Deployment State-change Notification"},
		}
		if diff := cmp.Diff(want, detailTypes); diff != "" {
			t.Errorf("admitted detail types (-want +got):\n%s", diff)
		}
		hooks := central.hookRules()
		if len(hooks) != 1 {
			t.Fatalf("%d central hook rules, want 1", len(hooks))
		}
		for _, r := range hooks {
			// 444444444444 forwards none, but one pattern lists the
			// accounts of every target place, as the ECS deployment rule.
			if diff := cmp.Diff([]any{"111111111111", "222222222222", "444444444444", "555555555555"}, r["EventPattern"].(map[string]any)["account"]); diff != "" {
				t.Errorf("hook rule accounts (-want +got):\n%s", diff)
			}
		}
		if diff := cmp.Diff([]any{
			"arn:aws:iam::222222222222:role/ecr-autodeploy-watcher-eu-west-1",
			"arn:aws:iam::333333333333:role/ecr-autodeploy-promote-eu-west-1",
			"arn:aws:iam::444444444444:role/ecr-autodeploy-watcher-us-east-1",
			"arn:aws:iam::555555555555:role/ecr-autodeploy-watcher-eu-west-1",
		}, central.watcherStatement(t, "AssumeRegistryAndTargetRoles")["Resource"]); diff != "" {
			t.Errorf("watcher assumes (-want +got):\n%s", diff)
		}
	})
	for id, s := range all {
		t.Run("nag and lint "+id, func(t *testing.T) {
			s.nagClean(t)
			s.lintClean(t)
		})
	}
}
