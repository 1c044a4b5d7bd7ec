package rules

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCleanup(t *testing.T) {
	const rule = "  - name: a\n    repository: web\n    tags: [x]\n    targets: [{cluster: c, service: s}]\n"
	tests := []struct {
		name     string
		defaults string // under defaults:, "" for none
		rule     string // extra lines of the first rule
		want     []*Cleanup
	}{
		{"none", "", "", []*Cleanup{nil, nil}},
		{"default for every rule", "  cleanup: {keep: 5}\n", "", []*Cleanup{{Keep: 5}, {Keep: 5}}},
		{"rule replaces the default whole", "  cleanup: {keep: 5, delete: true}\n", "    cleanup: {keep: 3}\n", []*Cleanup{{Keep: 3}, {Keep: 5, Delete: true}}},
		{"rule only", "", "    cleanup: {keep: 2, delete: false}\n", []*Cleanup{{Keep: 2}, nil}},
		{"delete in YAML's other spellings", "", "    cleanup: {keep: 1000, delete: True}\n", []*Cleanup{{Keep: 1000, Delete: true}, nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "version: 1\n"
			if tt.defaults != "" {
				src += "defaults:\n" + tt.defaults
			}
			src += "rules:\n" + rule + tt.rule + strings.ReplaceAll(strings.ReplaceAll(rule, "name: a", "name: b"), "service: s", "service: s2")
			cfg, err := Parse("f.yaml", []byte(src))
			if err != nil {
				t.Fatalf("Parse:\n%s\n%v", src, err)
			}
			var got []*Cleanup
			for _, r := range cfg.Rules {
				got = append(got, r.Cleanup)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("cleanup per rule (-want +got):\n%s", diff)
			}
			// The rules validate and the functions' init warn of.
			var wantNames []string
			for i, c := range tt.want {
				if c != nil {
					wantNames = append(wantNames, cfg.Rules[i].Name)
				}
			}
			if diff := cmp.Diff(wantNames, cfg.CleanupRules()); diff != "" {
				t.Errorf("CleanupRules (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCleanupErrors(t *testing.T) {
	const head = "version: 1\nrules:\n  - name: a\n    repository: web\n    tags: [x]\n    targets: [{cluster: c, service: s}]\n"
	tests := []struct {
		name string
		yaml string
		want []string // whole error lines, in order
	}{
		{"keep missing", head + "    cleanup: {delete: true}\n",
			[]string{"f.yaml:7: rules[0].cleanup.keep: missing; e.g. keep: 10 (at least 2: the running revision and one to roll back to)"}},
		{"keep too small", head + "    cleanup: {keep: 1}\n",
			[]string{"f.yaml:7: rules[0].cleanup.keep: 1: want 2 to 1000 (the running revision and at least one to roll back to)"}},
		{"keep zero in defaults", "version: 1\ndefaults:\n  cleanup:\n    keep: 0\nrules:\n  - {name: a, repository: web, tags: [x], targets: [{cluster: c, service: s}]}\n",
			[]string{"f.yaml:4: defaults.cleanup.keep: 0: want 2 to 1000 (the running revision and at least one to roll back to)"}},
		{"keep too large", head + "    cleanup: {keep: 1001}\n",
			[]string{"f.yaml:7: rules[0].cleanup.keep: 1001: want 2 to 1000 (the running revision and at least one to roll back to)"}},
		{"keep not a number", head + "    cleanup: {keep: ten}\n",
			[]string{`f.yaml:7: rules[0].cleanup.keep: must be a whole number, got "ten"`}},
		{"keep quoted", head + "    cleanup: {keep: \"3\"}\n",
			[]string{`f.yaml:7: rules[0].cleanup.keep: must be a whole number, got "3"`}},
		{"keep a fraction", head + "    cleanup: {keep: 2.5}\n",
			[]string{`f.yaml:7: rules[0].cleanup.keep: must be a whole number, got "2.5"`}},
		{"delete not a bool", head + "    cleanup: {keep: 3, delete: yes}\n",
			[]string{`f.yaml:7: rules[0].cleanup.delete: must be true or false, got "yes"`}},
		{"unknown key", head + "    cleanup: {keep: 3, keeps: 4}\n",
			[]string{"f.yaml:7: rules[0].cleanup.keeps: unknown key (allowed: keep, delete)"}},
		{"not a mapping", head + "    cleanup: 5\n",
			[]string{`f.yaml:7: rules[0].cleanup: must be a mapping (key: value), got "5"`}},
		{"every problem at once", head + "    cleanup:\n      keep: 1\n      delete: 1\n",
			[]string{"f.yaml:8: rules[0].cleanup.keep: 1: want 2 to 1000", `f.yaml:9: rules[0].cleanup.delete: must be true or false, got "1"`}},
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

// TestCleanupSchema holds the JSON Schema's cleanup object to the loader's
// keys and bounds (TestSchemaMatchesLoader checks the mappings that hold it).
func TestCleanupSchema(t *testing.T) {
	s := readSchema(t)
	def := s["$defs"].(map[string]any)["cleanup"].(map[string]any)
	if diff := cmp.Diff(slices.Sorted(slices.Values(Keys("cleanup"))), propertyNames(def)); diff != "" {
		t.Errorf("keys of cleanup (-loader +schema):\n%s", diff)
	}
	if def["additionalProperties"] != false {
		t.Error("cleanup: the schema must refuse unknown keys as the loader does")
	}
	keep := def["properties"].(map[string]any)["keep"].(map[string]any)
	if got := []any{keep["minimum"], keep["maximum"]}; !cmp.Equal(got, []any{float64(MinCleanupKeep), float64(MaxCleanupKeep)}) {
		t.Errorf("keep bounds in the schema %v, loader %d to %d", got, MinCleanupKeep, MaxCleanupKeep)
	}
	for _, where := range []map[string]any{
		s["properties"].(map[string]any)["defaults"].(map[string]any),
		s["$defs"].(map[string]any)["rule"].(map[string]any),
	} {
		ref := where["properties"].(map[string]any)["cleanup"].(map[string]any)["$ref"]
		if ref != "#/$defs/cleanup" {
			t.Errorf("cleanup refers to %v, want #/$defs/cleanup", ref)
		}
	}
}
