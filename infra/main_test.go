package main

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/ecr-autodeploy/ecr-autodeploy/infra/stack"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// TestBadRulesFileFailsSynthLikeTheLambda: cdk synth must stop with the very
// error the deployer reports at init for the same file.
func TestBadRulesFileFailsSynthLikeTheLambda(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "autodeploy.yaml")
	if err := os.WriteFile(bad, []byte("version: 1\nrules:\n  - name: web\n    repository: web\n    tags: [\"main-[\"]\n    targets: [{cluster: c, service: s}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, lambdaErr := rules.Load(bad)
	if lambdaErr == nil {
		t.Fatal("the bad file loads")
	}
	app := awscdk.NewApp(&awscdk.AppProps{Context: &map[string]any{"config": bad}, Outdir: jsii.String(t.TempDir())})
	err := build(app)
	var loadErr *rules.Error
	if !errors.As(err, &loadErr) || err.Error() != lambdaErr.Error() {
		t.Fatalf("synth error %q, want the loader's %q", err, lambdaErr)
	}
	if want := bad + ":5: rules[0].tags[0]: bad glob \"main-[\": syntax error in pattern"; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
}

func TestSlackContextGoesInPairs(t *testing.T) {
	if s, err := slackContext("", ""); s != nil || err != nil {
		t.Errorf("no ids: %v, %v; want no channel", s, err)
	}
	if s, err := slackContext("T0123", "C0456"); err != nil || s.WorkspaceID != "T0123" || s.ChannelID != "C0456" {
		t.Errorf("both ids: %+v, %v", s, err)
	}
	if _, err := slackContext("T0123", ""); err == nil {
		t.Error("a workspace without a channel was accepted")
	}
}

// TestSynthWritesEveryStack: from the example rules file, with the central
// account and region as context, the app writes the central stack and the
// registry and target stacks; without them it says what is missing.
func TestSynthWritesEveryStack(t *testing.T) {
	root, dist := standInBuild(t)
	ctx := map[string]any{"config": filepath.Join(root, "autodeploy.example.yaml"), "dist": dist, "account": "111111111111", "region": "eu-west-1"}
	app := awscdk.NewApp(&awscdk.AppProps{Context: &ctx, Outdir: jsii.String(t.TempDir())})
	if err := build(app); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range *app.Synth(nil).Stacks() {
		got = append(got, *s.StackName()+" "+*s.Environment().Account+"/"+*s.Environment().Region)
	}
	slices.Sort(got)
	want := []string{"EcrAutodeploy 111111111111/eu-west-1", "EcrAutodeploy-Registry-333333333333-eu-west-1 333333333333/eu-west-1",
		"EcrAutodeploy-Target-222222222222-eu-central-1 222222222222/eu-central-1"}
	if !slices.Equal(want, got) {
		t.Errorf("stacks = %q, want %q", got, want)
	}
	delete(ctx, "account")
	t.Setenv("CDK_DEFAULT_ACCOUNT", "")
	app = awscdk.NewApp(&awscdk.AppProps{Context: &ctx, Outdir: jsii.String(t.TempDir())})
	if err := build(app); err == nil || !strings.Contains(err.Error(), "central stack's account and region must be known") {
		t.Errorf("without the central account: %v", err)
	}
}

// TestWorkConcurrencyContext: the knob is read from -c (a string) or
// cdk.json (a number); a value outside Lambda's 2..1000 stops the synth
// with the bounds and the default, as does one that is not a number.
func TestWorkConcurrencyContext(t *testing.T) {
	root, dist := standInBuild(t)
	for _, tc := range []struct {
		name  string
		value any
		want  string // "" for no error
	}{
		{"flag", "4", ""},
		{"cdk.json", 4.0, ""},
		{"unset", nil, ""},
		{"below Lambda's minimum", "1", "workConcurrency 1: an event source mapping's MaximumConcurrency is 2 to 1000 (default 2"},
		{"above Lambda's maximum", 1001.0, "workConcurrency 1001: an event source mapping's MaximumConcurrency is 2 to 1000"},
		{"not a number", "two", `context workConcurrency: "two" is not a whole number`},
		{"a fraction", 2.5, "context workConcurrency: 2.5 is not a whole number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := map[string]any{"config": filepath.Join(root, "autodeploy.example.yaml"), "dist": dist, "account": "111111111111", "region": "eu-west-1"}
			if tc.value != nil {
				ctx["workConcurrency"] = tc.value
			}
			app := awscdk.NewApp(&awscdk.AppProps{Context: &ctx, Outdir: jsii.String(t.TempDir())})
			err := build(app)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("error %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
}

// standInBuild is the repository's root and a dist directory holding a
// stand-in bootstrap for every function, as `make build` would leave them.
func standInBuild(t *testing.T) (root, dist string) {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dist = t.TempDir()
	for _, fn := range stack.Functions() {
		if err := os.MkdirAll(filepath.Join(dist, fn), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dist, fn, "bootstrap"), []byte("stand-in"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return root, dist
}
