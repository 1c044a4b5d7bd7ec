// Package testenv starts the emulators integration tests run against: moto
// in server mode for AWS and the Lambda Runtime Interface Emulator for the
// built functions, each on a free loopback port and stopped by the test.
//
// When an emulator is not installed the test is skipped with a message that
// says how to install it, unless AUTODEPLOY_REQUIRE_EMULATOR=1 (CI), where
// it fails: a skipped suite must never pass CI.
package testenv

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Account and Region are moto's defaults, used by every emulated resource.
const (
	Account = "123456789012"
	Region  = "eu-west-1"
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

// FreePort returns a loopback port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Moto is a running moto server.
type Moto struct {
	Endpoint string
}

// StartMoto starts a fresh moto server for this test and stops it after.
func StartMoto(t testing.TB) *Moto {
	t.Helper()
	bin := need(t, "AUTODEPLOY_MOTO_SERVER", ".venv/bin/moto_server", "moto_server")
	port := FreePort(t)
	endpoint := fmt.Sprintf("http://127.0.0.1:%d", port)
	var logs syncBuffer
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = &logs, &logs
	start(t, cmd, "moto_server", &logs)
	waitHTTP(t, endpoint+"/moto-api/", "moto_server", &logs)
	return &Moto{Endpoint: endpoint}
}

// AWSConfig is an SDK config aimed at this moto server.
func (m *Moto) AWSConfig() aws.Config {
	return aws.Config{
		Region:       Region,
		BaseEndpoint: aws.String(m.Endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("testing", "testing", ""),
	}
}

// Env is the environment a subprocess needs to use this moto server through
// the standard SDK variables.
func (m *Moto) Env() []string {
	return []string{
		"AWS_ENDPOINT_URL=" + m.Endpoint,
		"AWS_ACCESS_KEY_ID=testing",
		"AWS_SECRET_ACCESS_KEY=testing",
		"AWS_REGION=" + Region,
		"AWS_DEFAULT_REGION=" + Region,
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// RIE is a function running under the Lambda Runtime Interface Emulator.
type RIE struct {
	url  string
	logs *syncBuffer
}

// StartRIE runs bootstrap as Lambda runs it, with env added to a minimal
// environment, and stops it after the test.
func StartRIE(t testing.TB, bootstrap string, env []string) *RIE {
	t.Helper()
	bin := need(t, "AUTODEPLOY_RIE", ".bin/aws-lambda-rie", "aws-lambda-rie")
	if _, err := os.Stat(bootstrap); err != nil {
		t.Fatalf("bootstrap %s is not built: %v", bootstrap, err)
	}
	rieAddr := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	apiAddr := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	logs := &syncBuffer{}
	cmd := exec.Command(bin, "--runtime-interface-emulator-address", rieAddr, "--runtime-api-address", apiAddr, bootstrap)
	cmd.Dir = filepath.Dir(bootstrap)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir(), "AWS_LAMBDA_FUNCTION_TIMEOUT=60"}, env...)
	cmd.Stdout, cmd.Stderr = logs, logs
	start(t, cmd, "aws-lambda-rie", logs)
	r := &RIE{url: "http://" + rieAddr + "/2015-03-31/functions/function/invocations", logs: logs}
	waitTCP(t, rieAddr, "aws-lambda-rie", logs)
	return r
}

// Invoke sends one event and returns the function's response body. A
// function error comes back as a body with errorMessage, as from Lambda.
func (r *RIE) Invoke(ctx context.Context, event []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(event))
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("invoke: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return body, fmt.Errorf("invoke: HTTP %d: %s", resp.StatusCode, body)
	}
	return body, nil
}

// Logs is everything the emulator and the function wrote so far.
func (r *RIE) Logs() string { return r.logs.String() }

func start(t testing.TB, cmd *exec.Cmd, name string, logs *syncBuffer) {
	t.Helper()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		// The whole process group: rie's child (bootstrap) goes too.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, logs.String())
		}
	})
}

func waitHTTP(t testing.TB, url, name string, logs *syncBuffer) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 500 {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s did not answer at %s within 60s; output:\n%s", name, url, logs.String())
}

func waitTCP(t testing.TB, addr, name string, logs *syncBuffer) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not listen on %s within 30s; output:\n%s", name, addr, logs.String())
}

// syncBuffer collects a subprocess's output safely from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// CreateTable creates the state table of the design (pk/sk strings, TTL on
// expires_at is not emulated and not needed) and returns its name.
func (m *Moto) CreateTable(t testing.TB, name string) string {
	t.Helper()
	db := dynamodb.NewFromConfig(m.AWSConfig())
	_, err := db.CreateTable(context.Background(), &dynamodb.CreateTableInput{
		TableName: aws.String(name),
		AttributeDefinitions: []ddbtypes.AttributeDefinition{
			{AttributeName: aws.String("pk"), AttributeType: ddbtypes.ScalarAttributeTypeS},
			{AttributeName: aws.String("sk"), AttributeType: ddbtypes.ScalarAttributeTypeS},
		},
		KeySchema: []ddbtypes.KeySchemaElement{
			{AttributeName: aws.String("pk"), KeyType: ddbtypes.KeyTypeHash},
			{AttributeName: aws.String("sk"), KeyType: ddbtypes.KeyTypeRange},
		},
		BillingMode: ddbtypes.BillingModePayPerRequest,
	})
	if err != nil {
		t.Fatalf("create table %s: %v", name, err)
	}
	return name
}
