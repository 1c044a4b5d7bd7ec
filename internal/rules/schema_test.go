package rules

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

const schemaPath = "../../schema/autodeploy.schema.json"

func readSchema(t *testing.T) map[string]any {
	t.Helper()
	data, err := os.ReadFile(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	var s map[string]any
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func propertyNames(obj any) []string {
	var out []string
	for k := range obj.(map[string]any)["properties"].(map[string]any) {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestSchemaMatchesLoader keeps the JSON Schema editors use in step with
// what the loader accepts.
func TestSchemaMatchesLoader(t *testing.T) {
	s := readSchema(t)
	defs := s["$defs"].(map[string]any)
	props := s["properties"].(map[string]any)
	objects := map[string]any{
		"": s, "defaults": props["defaults"], "reconcile": props["reconcile"], "rule": defs["rule"], "target": defs["target"],
		"promote": defs["promote"], "approval": defs["approval"], "scan": defs["scan"],
		"publish": defs["publish"], "codedeploy": defs["codedeploy"], "registry": defs["registry"],
		"hooks": defs["codedeploy"].(map[string]any)["properties"].(map[string]any)["hooks"],
	}
	for mapping, obj := range objects {
		want := slices.Sorted(slices.Values(Keys(mapping)))
		if diff := cmp.Diff(want, propertyNames(obj)); diff != "" {
			t.Errorf("keys of %q (-loader +schema):\n%s", mapping, diff)
		}
		if obj.(map[string]any)["additionalProperties"] != false {
			t.Errorf("%q: the schema must refuse unknown keys as the loader does", mapping)
		}
	}
	enum := func(def string) []any { return defs[def].(map[string]any)["enum"].([]any) }
	if diff := cmp.Diff([]any{string(PinDigest), string(PinTag)}, enum("pin")); diff != "" {
		t.Errorf("pin values (-loader +schema):\n%s", diff)
	}
	if diff := cmp.Diff([]any{string(OrderAuto), string(OrderSemver), string(OrderPushed), string(OrderNone)}, enum("order")); diff != "" {
		t.Errorf("order values (-loader +schema):\n%s", diff)
	}
}

// TestFilesAgreeWithSchema: every rules file in the repository loads and
// validates, and a file the loader refuses for a key the schema refuses too.
func TestFilesAgreeWithSchema(t *testing.T) {
	c := jsonschema.NewCompiler()
	data, err := os.ReadFile(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddResource("autodeploy.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	schema, err := c.Compile("autodeploy.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	validate := func(src []byte) error {
		var v any
		if err := yaml.Unmarshal(src, &v); err != nil {
			return err
		}
		j, err := json.Marshal(v)
		if err != nil {
			return err
		}
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
		if err != nil {
			return err
		}
		return schema.Validate(inst)
	}
	for _, f := range []string{"../../autodeploy.yaml", "../../autodeploy.example.yaml", "../demo/autodeploy.yaml", "testdata/full.yaml", "testdata/gates.yaml"} {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Parse(filepath.Base(f), src); err != nil {
			t.Errorf("%s does not load: %v", f, err)
		}
		if err := validate(src); err != nil {
			t.Errorf("%s does not match the schema: %v", f, err)
		}
	}
	for _, bad := range []string{
		"version: 1\nrules:\n  - name: a\n    repository: web\n    tags: [x]\n    targets: [{cluster: c, service: s, colour: red}]\n",
		"version: 1\nrules:\n  - name: a\n    repository: web\n    tags: [x]\n    semver: '>=1'\n    targets: [{cluster: c, service: s}]\n",
		"version: 1\nrules:\n  - name: a\n    repository: web\n    tags: [x]\n    pin: sha\n    targets: [{cluster: c, service: s}]\n",
		"version: 2\nrules:\n  - name: a\n    repository: web\n    tags: [x]\n    targets: [{cluster: c, service: s}]\n",
		"version: 1\nrules:\n  - name: a\n    repository: web\n    tags: [x]\n    scan: {block: [SEVERE]}\n    targets: [{cluster: c, service: s}]\n",
		"version: 1\nrules:\n  - name: a\n    repository: web\n    tags: [x]\n    promote: {tag: v, bake: 15m}\n    targets: [{cluster: c, service: s}]\n",
		"version: 1\nrules:\n  - name: a\n    repository: web\n    tags: [x]\n    promote: {tag: v, bake: 15m, alarms: []}\n    targets: [{cluster: c, service: s}]\n",
		"version: 1\nrules:\n  - name: a\n    repository: web\n    tags: [x]\n    approval: {expires: 1.5h}\n    targets: [{cluster: c, service: s}]\n",
	} {
		if _, err := Parse("bad.yaml", []byte(bad)); err == nil {
			t.Errorf("the loader accepts:\n%s", bad)
		}
		if err := validate([]byte(bad)); err == nil {
			t.Errorf("the schema accepts:\n%s", bad)
		}
	}
}
