package stack

import (
	"regexp"
	"slices"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// anyPassRoleWarnings are the rules, among those the test files name, the
// stack warns may pass any role (each warned once).
func (s synthesized) anyPassRoleWarnings(t *testing.T) []string {
	t.Helper()
	ann := assertions.Annotations_FromStack(s.stack)
	var out []string
	for _, name := range []string{"api", "web", "web-prod", "web-staging"} {
		re := "^rule " + regexp.QuoteMeta(name) + ` \(line \d+\) sets no pass-roles`
		switch n := len(*ann.FindWarning(jsii.String("*"), assertions.Match_StringLikeRegexp(jsii.String(re)))); n {
		case 0:
		case 1:
			out = append(out, name)
		default:
			t.Errorf("rule %s warned %d times", name, n)
		}
	}
	return out
}

// TestWarnsOfAnyPassRole: without pass-roles the default still deploys
// (PassRole on the account's roles), but synth warns once per rule whose
// targets that grant covers, naming the rule; a rule with pass-roles, or
// whose targets are reached through a role of the file's, gets no warning.
func TestWarnsOfAnyPassRole(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rules string // "" for rulesYAML
		want  []string
	}{
		// api's only target names its own role: its PassRole is that role's.
		{"no pass-roles", "", []string{"web-prod", "web-staging"}},
		{"pass-roles in defaults", "version: 1\ndefaults:\n  pass-roles: [\"arn:aws:iam::111111111111:role/web-*\"]\n" +
			"rules:\n  - name: web\n    repository: web\n    tags: [x]\n    targets: [{cluster: c, service: web}]\n", nil},
		{"one rule of two", "version: 1\nrules:\n" +
			"  - name: web\n    repository: web\n    tags: [x]\n    pass-roles: [\"arn:aws:iam::111111111111:role/web-*\"]\n    targets: [{cluster: c, service: web}]\n" +
			"  - name: api\n    repository: api\n    tags: [x]\n    targets: [{cluster: c, service: api}]\n", []string{"api"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := synth(t, func(p *Props) {
				if tc.rules == "" {
					return
				}
				cfg, err := rules.Parse("p.yaml", []byte(tc.rules))
				if err != nil {
					t.Fatal(err)
				}
				p.Rules = cfg
			})
			got := s.anyPassRoleWarnings(t)
			if !slices.Equal(got, tc.want) {
				t.Errorf("warned for %q, want %q", got, tc.want)
			}
			// The default keeps working: the grant is there when warned.
			st := s.statements(t)
			if _, ok := st["PassTaskRolesToEcsOnly"]; !ok {
				t.Error("no PassRole: the default no longer deploys")
			}
		})
	}
}
