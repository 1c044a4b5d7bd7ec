package rules

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The SHA-256 is the file's: the same bytes give the same one, any change
// another; a Config built by hand has none.
func TestSHA256OfTheRulesFile(t *testing.T) {
	const file = "version: 1\nrules:\n  - name: web\n    repository: web\n    tags: [main]\n    targets:\n      - {cluster: c, service: s}\n"
	tests := []struct {
		name string
		data string
		want string
	}{
		{"the file", file, "same"},
		{"the same bytes again", file, "same"},
		{"one more target", file + "      - {cluster: c, service: t}\n", "other"},
		{"a comment only", file + "# reviewed\n", "other"},
	}
	first := ""
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("autodeploy.yaml", []byte(tc.data))
			if err != nil {
				t.Fatal(err)
			}
			got := cfg.SHA256()
			if len(got) != 64 {
				t.Fatalf("SHA256() = %q, want 64 hex digits", got)
			}
			if first == "" {
				first = got
			}
			kind := "other"
			if got == first {
				kind = "same"
			}
			if diff := cmp.Diff(tc.want, kind); diff != "" {
				t.Errorf("SHA256() %s compared with the first file's (-want +got):\n%s", got, diff)
			}
		})
	}
	if got := (&Config{}).SHA256(); got != "" {
		t.Errorf("a Config built by hand: SHA256() = %q, want none", got)
	}
}
