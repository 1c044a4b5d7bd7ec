package fnenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// TestInitWarnsGatesNotCarriedOut: a rules file that sets a gate loads,
// and init writes one WARN line naming every rule that sets one (nothing
// acts on them until issue 21 wires internal/gate); a file without any,
// or with only cleanup: (carried out), writes none.
func TestInitWarnsGatesNotCarriedOut(t *testing.T) {
	const rule = "  - {name: %s, repository: web, tags: [x], targets: [{cluster: c, service: %s}]%s}\n"
	for _, tt := range []struct {
		name  string
		body  string
		lines []map[string]any
	}{
		{"none", "version: 1\nrules:\n" + fmt.Sprintf(rule, "a", "s", "") + fmt.Sprintf(rule, "b", "t", ", cleanup: {keep: 3}"), nil},
		{"a rule and the defaults", "version: 1\ndefaults:\n  approval: {expires: 24h}\nrules:\n" + fmt.Sprintf(rule, "a", "s", "") + fmt.Sprintf(rule, "b", "t", ", scan: {block: [CRITICAL]}"),
			[]map[string]any{{"level": "WARN", "msg": rules.GatesNotCarriedOut, "rules": []any{"a", "b"}}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			file := t.TempDir() + "/rules.yaml"
			if err := os.WriteFile(file, []byte(tt.body), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Setenv("AUTODEPLOY_TABLE", "t")
			t.Setenv("AWS_REGION", "eu-west-1")
			t.Setenv("AUTODEPLOY_CONFIG", file)
			t.Setenv("AUTODEPLOY_ACCOUNT", "111111111111")
			var out bytes.Buffer
			rt, err := initTo(context.Background(), &out)
			if err != nil || len(rt.Rules.Rules) != 2 {
				t.Fatalf("init: %+v, %v", rt, err)
			}
			var lines []map[string]any
			for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
				if l == "" {
					continue
				}
				var m map[string]any
				if err := json.Unmarshal([]byte(l), &m); err != nil {
					t.Fatalf("log line %q: %v", l, err)
				}
				lines = append(lines, map[string]any{"level": m["level"], "msg": m["msg"], "rules": m["rules"]})
			}
			if diff := cmp.Diff(tt.lines, lines); diff != "" {
				t.Errorf("init's log lines (-want +got):\n%s", diff)
			}
		})
	}
}
