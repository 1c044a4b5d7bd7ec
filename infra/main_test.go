package main

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

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
