package stack

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// manyAccounts is a rules file whose targets sit in n other accounts, each
// with two regions, every other account with a blue/green target, and whose
// images come from n/4 registry accounts.
func manyAccounts(n int) string {
	var b strings.Builder
	b.WriteString("version: 1\nrules:\n")
	for i := range n {
		account := fmt.Sprintf("%012d", 200000000000+i)
		registry := fmt.Sprintf("%012d", 900000000000+i/4)
		fmt.Fprintf(&b, "  - name: r%d\n    repository: web%d\n    tags: [\"*\"]\n    registry: {account: %q}\n    targets:\n", i, i, registry)
		fmt.Fprintf(&b, "      - {cluster: c, service: s, account: %q}\n", account)
		if i%2 == 0 {
			fmt.Fprintf(&b, "      - {cluster: c, service: s, account: %q, region: us-east-1, codedeploy: {application: a, deployment-group: g}}\n", account)
		} else {
			fmt.Fprintf(&b, "      - {cluster: c, service: s, account: %q, region: us-east-1}\n", account)
		}
	}
	return b.String()
}

// EventBridge limits a bus's whole policy to 10,240 characters. One
// statement per kind keeps 40 accounts well inside it (per-account
// statements passed it at about ten); a file past the limit is refused at
// synth, not at CloudFormation's deploy.
func TestBusPolicyWithinEventBridgesLimit(t *testing.T) {
	central := rules.Place{Account: "111111111111", Region: "eu-west-1"}
	size := func(n int) (int, error) {
		cfg := mustParse(t, manyAccounts(n))
		tp, err := NewTopology(cfg, central)
		if err != nil {
			t.Fatal(err)
		}
		st, err := busStatements(cfg, tp)
		if err != nil {
			return 0, err
		}
		data, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": st})
		return len(data), nil
	}
	n, err := size(40)
	if err != nil || n > busPolicyLimit-busPolicyHeadroom {
		t.Errorf("40 target accounts, 10 registry accounts: %d characters, %v", n, err)
	}
	t.Logf("40 target accounts, 10 registry accounts: %d characters", n)
	if _, err := size(250); err == nil || !strings.Contains(err.Error(), "over EventBridge's 10240") {
		t.Errorf("250 target accounts: %v, want a synth error", err)
	}
}
