// Package testenv gives integration tests the emulators of package emulator,
// stopped when the test ends.
//
// When an emulator is not installed the test is skipped with a message that
// says how to install it, unless AUTODEPLOY_REQUIRE_EMULATOR=1 (make test and
// CI), where it fails: a skipped suite must never pass CI.
package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/emulator"
)

// Account and Region are moto's defaults.
const (
	Account = emulator.Account
	Region  = emulator.Region
)

// RepoRoot finds the module root by walking up to go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// need finds an emulator binary or skips/fails the test as the policy says.
func need(t testing.TB, envVar, relPath, what string) string {
	t.Helper()
	path := os.Getenv(envVar)
	if path == "" {
		path = filepath.Join(RepoRoot(t), relPath)
	}
	if _, err := os.Stat(path); err == nil {
		return path
	}
	msg := fmt.Sprintf("%s not found at %s: run `make tools` (make test does) or set %s", what, path, envVar)
	if os.Getenv("AUTODEPLOY_REQUIRE_EMULATOR") == "1" {
		t.Fatal(msg + " (AUTODEPLOY_REQUIRE_EMULATOR=1 forbids skipping)")
	}
	t.Skip("skipping emulator test: " + msg)
	return ""
}

// MotoBinary is the moto_server to run, by the skip-or-fail policy.
func MotoBinary(t testing.TB) string {
	t.Helper()
	return need(t, "AUTODEPLOY_MOTO_SERVER", ".venv/bin/moto_server", "moto_server")
}

// RIEBinary is the aws-lambda-rie to run, by the skip-or-fail policy.
func RIEBinary(t testing.TB) string {
	t.Helper()
	return need(t, "AUTODEPLOY_RIE", ".bin/aws-lambda-rie", "aws-lambda-rie")
}

// CfnLintBinary is the cfn-lint to run, by the skip-or-fail policy.
func CfnLintBinary(t testing.TB) string {
	t.Helper()
	return need(t, "AUTODEPLOY_CFN_LINT", ".venv/bin/cfn-lint", "cfn-lint")
}

// Moto is a moto server for one test.
type Moto struct {
	*emulator.Moto
}

// StartMoto starts a fresh moto server for this test and stops it after.
func StartMoto(t testing.TB) *Moto {
	t.Helper()
	m, err := emulator.StartMoto(context.Background(), MotoBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.Stop()
		if t.Failed() {
			t.Logf("moto_server output:\n%s", m.Logs())
		}
	})
	return &Moto{Moto: m}
}

// CreateTable creates the state table and returns its name.
func (m *Moto) CreateTable(t testing.TB, name string) string {
	t.Helper()
	if err := m.Moto.CreateTable(context.Background(), name); err != nil {
		t.Fatal(err)
	}
	return name
}

// StartRIE runs bootstrap under aws-lambda-rie for this test.
func StartRIE(t testing.TB, bootstrap string, env []string) *emulator.RIE {
	t.Helper()
	r, err := emulator.StartRIE(context.Background(), RIEBinary(t), bootstrap, env)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.Stop()
		if t.Failed() {
			t.Logf("aws-lambda-rie output:\n%s", r.Logs())
		}
	})
	return r
}

// BuildFunction builds functions/<name> for this machine as `make build`
// builds it for Lambda (a stripped binary named bootstrap) into dir.
func BuildFunction(t testing.TB, name, dir string) string {
	t.Helper()
	out := filepath.Join(dir, "bootstrap")
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w", "-o", out, "./functions/"+name)
	cmd.Dir = RepoRoot(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", name, err, b)
	}
	return out
}

// StartFunction builds functions/<name>, lays it out as Lambda does with
// rulesFile beside it as autodeploy.yaml, and runs it under aws-lambda-rie.
func StartFunction(t testing.TB, name, rulesFile string, env []string) *emulator.RIE {
	t.Helper()
	dir := t.TempDir()
	bootstrap := BuildFunction(t, name, dir)
	data, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "autodeploy.yaml"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return StartRIE(t, bootstrap, env)
}

// Event reads a sample event from the repository's events/.
func Event(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(RepoRoot(t), "events", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// Repository creates an ECR repository in this moto server and pushes an
// image under each tag, in order; it returns each tag's digest.
func (m *Moto) Repository(t testing.TB, name string, tags ...string) map[string]string {
	t.Helper()
	ctx := context.Background()
	client := ecr.NewFromConfig(m.AWSConfig())
	if _, err := client.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
	digests := map[string]string{}
	for _, tag := range tags {
		d, err := emulator.PushImage(ctx, client, name, tag)
		if err != nil {
			t.Fatal(err)
		}
		digests[tag] = d
	}
	return digests
}
