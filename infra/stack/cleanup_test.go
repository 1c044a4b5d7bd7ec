package stack

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// cleanupRules are places like severalAccounts' with clean-up on some
// rules: web runs in the central account (both regions: the worker's own
// credentials), api in 222222222222 (the target stack's deploy role) and
// 444444444444 (a role the rules file names, which the stack does not
// make).
func cleanupRules(webCleanup, apiCleanup string) string {
	return `version: 1
defaults:
  registry: {account: "333333333333"}
rules:
  - name: web
    repository: web
    tags: ["main-*"]
` + webCleanup + `    targets:
      - {cluster: dev, service: web}
      - {cluster: dev, service: web, region: us-west-2}
  - name: api
    repository: team/api
    tags: ["main-*"]
` + apiCleanup + `    targets:
      - {cluster: stage, service: api, account: "222222222222"}
      - cluster: prod
        service: api
        account: "444444444444"
        region: us-east-1
        role: "arn:aws:iam::444444444444:role/custom-deployer"
`
}

// The roles that run clean-up — the worker (central targets) and a target
// stack's deploy role (its place's) — may ecs:DeregisterTaskDefinition only
// when a rule of their targets has cleanup:, and ecs:DeleteTaskDefinitions
// only when such a rule has delete: true, on "*" (no resource-level
// permission to narrow to: the families are the running revisions');
// the deployer (the stack always gives it a work queue, so it never runs
// clean-up in-process), the sweep roles and the watchers get neither. The
// watcher may send work items (its clean-up item after a completion) and
// knows the work queue only when a rule cleans up. cdk-nag and cfn-lint
// stay clean.
func TestCleanupGrants(t *testing.T) {
	const keep3, delete5 = "    cleanup: {keep: 3}\n", "    cleanup: {keep: 5, delete: true}\n"
	type roleWant struct{ stack, role, deregister, delete string }
	const star = `"*"`
	for _, tc := range []struct {
		name     string
		web, api string
		want     []roleWant // only these roles may clean up
		watcher  bool       // sends work items, knows the queue
	}{
		{name: "no rule cleans up"},
		{name: "keep only", web: keep3, want: []roleWant{
			{"Test", "WorkerRole", star, ""},
		}, watcher: true},
		{name: "delete on one rule", web: keep3, api: delete5, want: []roleWant{
			{"Test", "WorkerRole", star, ""},
			{"Test-Target-222222222222-eu-west-1", "TargetRole", star, star},
		}, watcher: true},
		{name: "delete only where it runs", api: delete5, want: []roleWant{
			{"Test-Target-222222222222-eu-west-1", "TargetRole", star, star},
		}, watcher: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			all := synthAll(t, cleanupRules(tc.web, tc.api))
			var got []roleWant
			for id, s := range all {
				for rid := range s.resources("AWS::IAM::Role") {
					acts := actions(s.policiesOf(t, rid))
					if acts["ecs:DeregisterTaskDefinition"] == nil && acts["ecs:DeleteTaskDefinitions"] == nil {
						continue
					}
					got = append(got, roleWant{id, roleKind(rid), strings.Join(acts["ecs:DeregisterTaskDefinition"], " "), strings.Join(acts["ecs:DeleteTaskDefinitions"], " ")})
				}
			}
			key := func(a, b roleWant) int { return strings.Compare(a.stack+a.role, b.stack+b.role) }
			slices.SortFunc(got, key)
			slices.SortFunc(tc.want, key)
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(roleWant{})); diff != "" {
				t.Errorf("roles that may clean up (-want +got):\n%s", diff)
			}

			central := all["Test"]
			workQueues := func(role string) []string {
				var out []string
				for _, r := range actions(central.policiesOf(t, role))["sqs:SendMessage"] {
					if strings.Contains(r, ":Test-work") {
						out = append(out, r)
					}
				}
				return out
			}
			sends := workQueues("WatcherRole")
			env := central.resources("AWS::Lambda::Function")[central.resourceID(t, "AWS::Lambda::Function", "Watcher")]["Environment"].(map[string]any)["Variables"].(map[string]any)
			queue, hasQueue := env["AUTODEPLOY_WORK_QUEUE_URL"]
			if tc.watcher {
				want := workQueues("DeployerRole")
				if len(want) == 0 || !cmp.Equal(want, sends) {
					t.Errorf("watcher sqs:SendMessage on %v, want the intake's %v", sends, want)
				}
				workerEnv := central.resources("AWS::Lambda::Function")[central.resourceID(t, "AWS::Lambda::Function", "Worker")]["Environment"].(map[string]any)["Variables"].(map[string]any)
				if !hasQueue || !cmp.Equal(queue, workerEnv["AUTODEPLOY_WORK_QUEUE_URL"]) {
					t.Errorf("watcher AUTODEPLOY_WORK_QUEUE_URL = %v, want the central work queue %v", queue, workerEnv["AUTODEPLOY_WORK_QUEUE_URL"])
				}
			} else if sends != nil || hasQueue {
				t.Errorf("no rule cleans up, yet the watcher may send %v and has AUTODEPLOY_WORK_QUEUE_URL %v", sends, queue)
			}
			// cdk-nag and cfn-lint on the richest case (both grants): each
			// run costs seconds, and the others only take statements away.
			if tc.name != "delete on one rule" {
				return
			}
			for id, s := range all {
				t.Run(id, func(t *testing.T) {
					s.nagClean(t)
					s.lintClean(t)
				})
			}
		})
	}
}

// roleKind is a role's logical id without CDK's hash: WorkerRole1A2B3C → WorkerRole.
func roleKind(id string) string {
	for _, k := range []string{"DeployerRole", "WorkerRole", "WatcherRole", "TargetRole", "SweepRole"} {
		if strings.HasPrefix(id, k) {
			return k
		}
	}
	return id
}
