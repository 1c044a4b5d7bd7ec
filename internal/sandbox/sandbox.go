// Package sandbox is `make sandbox`: a moto server left running in the
// background with the demo's services, images and rules seeded, for every
// CLI command to be tried against, and `make sandbox-stop`, which stops
// exactly the process it started. What it started is recorded in one
// directory (.cache/sandbox): the pid and port, the rules file, the
// environment lines to paste, and moto's log.
package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/demo"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/emulator"
)

// Table is the sandbox's state table.
const Table = "autodeploy-sandbox"

// Options say where the sandbox keeps its state and what it runs.
type Options struct {
	// Dir holds the state (default .cache/sandbox).
	Dir string
	// MotoServer is the moto_server binary (the repository's pinned .venv one).
	MotoServer string
	Out        io.Writer
}

// State is what Start records and Stop reads.
type State struct {
	PID      int    `json:"pid"`
	Port     int    `json:"port"`
	Endpoint string `json:"endpoint"`
	Rules    string `json:"rules"`
}

func (o Options) statePath() string { return filepath.Join(o.Dir, "state.json") }

// Start starts moto on a free loopback port in a process group of its own
// (so the terminal's Ctrl-C and make's exit leave it running), seeds it,
// records it and prints the environment to paste. A sandbox already
// running is left as it is and its environment printed again.
func Start(ctx context.Context, o Options) error {
	if st, ok, err := o.running(); err != nil {
		return err
	} else if ok {
		fmt.Fprintf(o.Out, "a sandbox already runs (moto pid %d at %s); `make sandbox-stop` stops it\n\n", st.PID, st.Endpoint)
		return o.printEnv()
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return err
	}
	o.Dir = dir
	// What an earlier sandbox left (its moto gone) is not this one's.
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("clear %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	port, err := emulator.FreePort()
	if err != nil {
		return err
	}
	logFile, err := os.Create(filepath.Join(dir, "moto.log"))
	if err != nil {
		return fmt.Errorf("create moto's log: %w", err)
	}
	defer logFile.Close()
	cmd := exec.Command(o.MotoServer, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = os.RemoveAll(dir) // nothing started: leave nothing behind
		return fmt.Errorf("no moto_server to start at %s: run `make demo-tools` (or `make sandbox`, which installs it) (%v)", o.MotoServer, err)
	}
	st := State{PID: cmd.Process.Pid, Port: port, Endpoint: fmt.Sprintf("http://127.0.0.1:%d", port), Rules: filepath.Join(dir, "autodeploy.yaml")}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	// Recorded at once, so that a failure below can still be stopped.
	if err := o.write(st); err != nil {
		stopGroup(st.PID, exited)
		return err
	}
	if err := seed(ctx, st, exited); err != nil {
		stopGroup(st.PID, exited)
		// The log goes with the directory: what it says goes into the
		// error first (quoting its path would name a file that is gone).
		tail := logTail(logFile.Name(), logTailLines)
		_ = os.RemoveAll(dir)
		if tail == "" {
			return fmt.Errorf("%w (moto's log was empty)", err)
		}
		return fmt.Errorf("%w; moto's log ended:\n%s", err, tail)
	}
	if err := os.WriteFile(filepath.Join(dir, "env"), []byte(envLines(st)), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "\nthe sandbox runs: moto pid %d at %s, its log %s\n\n", st.PID, st.Endpoint, logFile.Name())
	return o.printEnv()
}

// logTailLines bounds the lines of moto's log a failed start quotes: its
// last words (a Python traceback's end), not its life story.
const logTailLines = 20

// logTail is the last n lines of the file at path, each indented ("" when
// it cannot be read or is empty).
func logTail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) == 1 && lines[0] == "" {
		return ""
	}
	lines = lines[max(0, len(lines)-n):]
	return "  " + strings.Join(lines, "\n  ")
}

func seed(ctx context.Context, st State, exited <-chan struct{}) error {
	if err := waitReady(ctx, st.Endpoint, exited); err != nil {
		return err
	}
	if err := os.WriteFile(st.Rules, demo.Rules, 0o644); err != nil {
		return fmt.Errorf("write the rules file: %w", err)
	}
	cfg := aws.Config{Region: emulator.Region, BaseEndpoint: aws.String(st.Endpoint),
		Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", "")}
	return demo.SeedSandbox(ctx, cfg, Table, demo.Rules, io.Discard)
}

// waitReady waits for moto to answer, or to die.
func waitReady(ctx context.Context, endpoint string, exited <-chan struct{}) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(endpoint + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-exited:
			return errors.New("moto_server exited before it answered")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("moto_server did not answer at %s within 60s", endpoint)
		}
	}
}

// Stop stops the recorded moto — after checking the pid is still that
// moto, on that port, so that a reused pid is never signalled — and
// removes the state. Nothing recorded, or a moto already gone, is said
// and is no error.
func Stop(o Options) error {
	st, found, err := o.read()
	if err != nil {
		return err
	}
	if !found {
		fmt.Fprintf(o.Out, "no sandbox to stop (nothing recorded in %s)\n", o.Dir)
		return nil
	}
	if !isOurMoto(st) {
		fmt.Fprintf(o.Out, "the sandbox's moto (pid %d, port %d) is not running any more; removed %s\n", st.PID, st.Port, o.Dir)
		return os.RemoveAll(o.Dir)
	}
	stopGroup(st.PID, nil)
	if isOurMoto(st) {
		return fmt.Errorf("moto (pid %d) did not stop; %s is kept", st.PID, o.Dir)
	}
	fmt.Fprintf(o.Out, "stopped the sandbox (moto pid %d at %s) and removed %s\n", st.PID, st.Endpoint, o.Dir)
	return os.RemoveAll(o.Dir)
}

// stopGroup ends the process group Start made (moto and any child it
// spawned), politely first. exited, when known, says the leader is gone.
func stopGroup(pid int, exited <-chan struct{}) {
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	gone := func() bool {
		if exited != nil {
			select {
			case <-exited:
				return true
			default:
				return false
			}
		}
		return !alive(pid)
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if gone() {
			return
		}
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && !gone(); time.Sleep(50 * time.Millisecond) {
	}
}

// alive is whether pid is a process that has not exited (a zombie, which
// only waits for its parent to read its status, is not). It reads /proc
// (Linux), not ps: a slim image without procps would read as "not
// running" and leave moto running unrecorded.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true // it answers a signal: alive, whatever /proc says
	}
	// pid (comm) state …: the state follows the last ')'.
	if i := strings.LastIndexByte(string(stat), ')'); i >= 0 {
		fields := strings.Fields(string(stat)[i+1:])
		return len(fields) == 0 || fields[0] != "Z"
	}
	return true
}

// isOurMoto is whether the recorded pid is alive and is moto_server on
// the recorded port (its argv, from /proc, with "-p" and the port as
// arguments of their own).
func isOurMoto(st State) bool {
	if st.PID <= 0 || !alive(st.PID) {
		return false
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", st.PID))
	if err != nil {
		return false
	}
	argv := strings.Split(strings.TrimRight(string(data), "\x00"), "\x00")
	moto, port := false, false
	for i, a := range argv {
		if strings.HasSuffix(a, "moto_server") {
			moto = true
		}
		if a == "-p" && i+1 < len(argv) && argv[i+1] == strconv.Itoa(st.Port) {
			port = true
		}
	}
	return moto && port
}

// running is the recorded sandbox when its moto still runs.
func (o Options) running() (State, bool, error) {
	st, found, err := o.read()
	if err != nil || !found {
		return st, false, err
	}
	return st, isOurMoto(st), nil
}

func (o Options) read() (State, bool, error) {
	data, err := os.ReadFile(o.statePath())
	if errors.Is(err, os.ErrNotExist) {
		return State{}, false, nil
	}
	if err != nil {
		return State{}, false, fmt.Errorf("read the sandbox's state: %w", err)
	}
	var st State
	if err := json.Unmarshal(data, &st); err != nil {
		return State{}, false, fmt.Errorf("read the sandbox's state %s: %w (remove the directory if no moto of it runs)", o.statePath(), err)
	}
	return st, true, nil
}

func (o Options) write(st State) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(o.statePath(), append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("record the sandbox: %w", err)
	}
	return nil
}

// envLines are the lines to paste: the standard SDK variables aimed at
// the sandbox (test credentials moto takes) and the state table. The CLI
// takes the rules file by --config, which the tour passes.
func envLines(st State) string {
	return fmt.Sprintf(`export AWS_ENDPOINT_URL=%s
export AWS_REGION=%s
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
export AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE
export AUTODEPLOY_TABLE=%s
export AUTODEPLOY_STACK=%s
`, st.Endpoint, emulator.Region, Table, demo.SandboxStack)
}

func (o Options) printEnv() error {
	st, _, err := o.read()
	if err != nil {
		return err
	}
	envFile := filepath.Join(o.Dir, "env")
	fmt.Fprintf(o.Out, "paste these lines into your shell (or: source %s):\n\n%s\n", envFile, envLines(st))
	fmt.Fprintf(o.Out, "the rules (the demo's) are %s: pass --config %s\n", st.Rules, st.Rules)
	fmt.Fprintf(o.Out, "then try, with go build -o autodeploy ./cmd/autodeploy:\n")
	// The README's five-minute tour, in its order (hold, then resume).
	for _, c := range []string{
		"./autodeploy status --config " + st.Rules,
		"./autodeploy history --cluster prod --service web",
		"./autodeploy hold --cluster prod --service web --reason \"trying the sandbox\"",
		"./autodeploy rollback --cluster prod --service web --dry-run",
		"./autodeploy plan --rule web-prod --tag v1.5.0 --config " + st.Rules,
		"./autodeploy resume --cluster prod --service web",
		"./autodeploy plan --rule web-prod --tag v1.5.0 --config " + st.Rules,
		"./autodeploy reconcile --dry-run --config " + st.Rules,
		"make sandbox-stop",
	} {
		fmt.Fprintf(o.Out, "  %s\n", c)
	}
	return nil
}
