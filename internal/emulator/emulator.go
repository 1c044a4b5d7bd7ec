// Package emulator runs the local stand-ins for AWS: moto in server mode and
// the Lambda Runtime Interface Emulator, each on a free loopback port. The
// tests and `make demo` both use it.
package emulator

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
	"strings"
	"sync"
	"syscall"
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

// FreePort returns a loopback port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Process is a started emulator; Stop ends it and its children.
type Process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	logs *Buffer
}

// Logs is everything the process wrote so far.
func (p *Process) Logs() string { return p.logs.String() }

// Stop ends the process group, politely first.
func (p *Process) Stop() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

func start(name string, cmd *exec.Cmd) (*Process, error) {
	p := &Process{name: name, cmd: cmd, done: make(chan struct{}), logs: &Buffer{}}
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	// A process group of its own, so that Stop also ends rie's bootstrap.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	return p, nil
}

// Moto is a running moto server.
type Moto struct {
	*Process
	Endpoint string
}

// StartMoto starts bin (moto_server) on a free loopback port and waits until
// it answers.
func StartMoto(ctx context.Context, bin string) (*Moto, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	p, err := start("moto_server", exec.Command(bin, "-H", "127.0.0.1", "-p", strconv.Itoa(port)))
	if err != nil {
		return nil, err
	}
	m := &Moto{Process: p, Endpoint: fmt.Sprintf("http://127.0.0.1:%d", port)}
	if err := m.waitHTTP(ctx, m.Endpoint+"/moto-api/", 60*time.Second); err != nil {
		m.Stop()
		return nil, err
	}
	return m, nil
}

// AWSConfig is an SDK config aimed at this moto server.
func (m *Moto) AWSConfig() aws.Config {
	return aws.Config{
		Region:       Region,
		BaseEndpoint: aws.String(m.Endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("testing", "testing", ""),
	}
}

// Env is the environment a subprocess needs to reach this moto server
// through the standard SDK variables only.
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
	*Process
	// Endpoint serves Lambda's Invoke API for the function named "function",
	// so an SDK Lambda client aimed here invokes it.
	Endpoint string
	// Bootstrap is the function's binary.
	Bootstrap string
	url       string
}

// StartRIE runs bootstrap as Lambda runs it: under bin (aws-lambda-rie),
// from its own directory, with env on top of a minimal environment.
func StartRIE(ctx context.Context, bin, bootstrap string, env []string) (*RIE, error) {
	if _, err := os.Stat(bootstrap); err != nil {
		return nil, fmt.Errorf("bootstrap is not built: %w", err)
	}
	rport, err := FreePort()
	if err != nil {
		return nil, err
	}
	aport, err := FreePort()
	if err != nil {
		return nil, err
	}
	rieAddr := fmt.Sprintf("127.0.0.1:%d", rport)
	cmd := exec.Command(bin, "--runtime-interface-emulator-address", rieAddr,
		"--runtime-api-address", fmt.Sprintf("127.0.0.1:%d", aport), bootstrap)
	cmd.Dir = filepath.Dir(bootstrap)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir(), "AWS_LAMBDA_FUNCTION_TIMEOUT=60"}, env...)
	p, err := start("aws-lambda-rie", cmd)
	if err != nil {
		return nil, err
	}
	r := &RIE{Process: p, Endpoint: "http://" + rieAddr, Bootstrap: bootstrap, url: "http://" + rieAddr + "/2015-03-31/functions/function/invocations"}
	if err := r.waitTCP(ctx, rieAddr, 30*time.Second); err != nil {
		r.Stop()
		return nil, err
	}
	return r, nil
}

// Invoke sends one event and returns the function's response body. A
// function error comes back as a body with errorMessage and errorType, as
// from Lambda.
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
		return nil, fmt.Errorf("read invoke response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return body, fmt.Errorf("invoke: HTTP %d: %s", resp.StatusCode, body)
	}
	return body, nil
}

// WaitLogs returns the function's output once it holds at least n lines
// containing substr, or after within. The function writes its lines before
// it answers, but the pipe from the emulator may hold them a moment longer.
func (r *RIE) WaitLogs(substr string, n int, within time.Duration) string {
	deadline := time.Now().Add(within)
	for {
		logs := r.Logs()
		if strings.Count(logs, substr) >= n || time.Now().After(deadline) {
			return logs
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// LogsAfter returns the function's output once the invocation that began
// after line before has been reported (RIE writes its "REPORT RequestId"
// line after the function's own lines), or after five seconds: an answer
// can arrive before the pipe from the emulator delivered the lines.
func (r *RIE) LogsAfter(before int) string {
	deadline := time.Now().Add(5 * time.Second)
	for {
		logs := r.Logs()
		lines := strings.Split(logs, "\n")
		if before < len(lines) && strings.Contains(strings.Join(lines[before:], "\n"), "REPORT RequestId") || time.Now().After(deadline) {
			return logs
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// PeakRSS is the most resident memory the function's process has used so
// far (Linux's VmHWM), as Lambda's "Max Memory Used" would report it.
func (r *RIE) PeakRSS() (bytes int64, err error) {
	exe, err := filepath.EvalSymlinks(r.Bootstrap)
	if err != nil {
		return 0, err
	}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, proc := range procs {
		if target, err := os.Readlink(filepath.Join(proc, "exe")); err != nil || target != exe {
			continue
		}
		status, err := os.ReadFile(filepath.Join(proc, "status"))
		if err != nil {
			return 0, err
		}
		for _, line := range strings.Split(string(status), "\n") {
			if kb, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(kb), "kB")), 10, 64)
				return n * 1024, err
			}
		}
	}
	return 0, fmt.Errorf("no running process of %s (PeakRSS reads Linux's /proc)", r.Bootstrap)
}

// InitDuration is how long the function's init took, from the emulator's
// INIT REPORT line, once the first invocation started it.
func (r *RIE) InitDuration() (time.Duration, error) {
	const marker = "INIT REPORT(durationMs: "
	logs := r.Logs()
	i := strings.Index(logs, marker)
	if i < 0 {
		return 0, fmt.Errorf("no INIT REPORT in the emulator's output yet")
	}
	rest := logs[i+len(marker):]
	end := strings.IndexByte(rest, ')')
	if end < 0 {
		return 0, fmt.Errorf("INIT REPORT line cut short: %q", rest)
	}
	ms, err := strconv.ParseFloat(rest[:end], 64)
	return time.Duration(ms * float64(time.Millisecond)), err
}

func (p *Process) waitHTTP(ctx context.Context, url string, limit time.Duration) error {
	return p.wait(ctx, limit, func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode < 500
	}, url)
}

func (p *Process) waitTCP(ctx context.Context, addr string, limit time.Duration) error {
	return p.wait(ctx, limit, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, addr)
}

func (p *Process) wait(ctx context.Context, limit time.Duration, ready func() bool, where string) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for !ready() {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before answering at %s; output:\n%s", p.name, where, p.Logs())
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer at %s within %s; output:\n%s", p.name, where, limit, p.Logs())
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// Buffer collects a subprocess's output safely from several goroutines.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// CreateTable creates the state table of the design: pk and sk strings,
// on demand. (moto does not expire items; nothing here relies on TTL.)
func (m *Moto) CreateTable(ctx context.Context, name string) error {
	db := dynamodb.NewFromConfig(m.AWSConfig())
	_, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
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
		return fmt.Errorf("create table %s: %w", name, err)
	}
	return nil
}
