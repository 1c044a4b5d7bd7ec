package demo

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

// TestDemoEndState runs the demo as `make demo` does and checks what it
// ends with, so the README's first command cannot silently rot.
func TestDemoEndState(t *testing.T) {
	root := testenv.RepoRoot(t)
	var out bytes.Buffer
	err := Run(context.Background(), &out, Options{
		MotoServer: testenv.MotoBinary(t), RIE: testenv.RIEBinary(t),
		Deployer:  testenv.BuildFunction(t, "deployer", t.TempDir()),
		EventsDir: filepath.Join(root, "events"),
	})
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	text := out.String()
	for _, want := range []string{
		"deployed staging/web by rule web-staging",
		"deployed prod/web by rule web-prod",
		"never downgrade: app: v1.3.2 is older than the running v1.4.0",
		"ignored: tag sha256-",
		"already running 123456789012.dkr.ecr.eu-west-1.amazonaws.com/web@sha256:3bd05339",
		`"msg":"deploy"`,
		"prod     app    web-prod:2       123456789012.dkr.ecr.eu-west-1.amazonaws.com/web@sha256:3bd05339",
		"Done:",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	if strings.Contains(text, "never-logged") {
		t.Error("a container environment value reached the demo's log lines")
	}
	if t.Failed() {
		t.Log(text)
	}
}
