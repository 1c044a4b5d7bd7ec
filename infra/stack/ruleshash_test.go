package stack

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

// Every function carries the SHA-256 of the rules file bundled beside its
// bootstrap, which the CLI compares with the operator's local file.
func TestFunctionsCarryRulesSHA256(t *testing.T) {
	sum := sha256.Sum256([]byte(rulesYAML))
	want := hex.EncodeToString(sum[:])
	fns := synth(t).resources("AWS::Lambda::Function")
	if len(fns) != len(Functions()) {
		t.Fatalf("%d functions, want %d", len(fns), len(Functions()))
	}
	for id, fn := range fns {
		vars, _ := fn["Environment"].(map[string]any)["Variables"].(map[string]any)
		if got := vars[RulesSHA256Env]; got != want {
			t.Errorf("%s: %s = %v, want %s", id, RulesSHA256Env, got, want)
		}
	}
}
