package sandbox

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/emulator"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

// The sandbox through the command the make targets run (cmd/sandbox, built
// once): start leaves a seeded moto running after the command exited, a
// second start finds it, stop ends exactly it and removes the state, and
// a second stop says there is nothing to stop — each exiting 0.
func TestStartStop(t *testing.T) {
	moto := testenv.MotoBinary(t)
	bin := filepath.Join(t.TempDir(), "sandbox")
	build := exec.Command("go", "build", "-o", bin, "./cmd/sandbox")
	build.Dir = testenv.RepoRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build cmd/sandbox: %v\n%s", err, out)
	}
	dir := filepath.Join(t.TempDir(), "sandbox")
	run := func(command string) string {
		t.Helper()
		c := exec.Command(bin, command, "-dir", dir, "-moto", moto)
		// No ps, no PATH at all (a slim image): stop still knows its moto.
		c.Env = append(os.Environ(), "PATH="+t.TempDir())
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("sandbox %s: %v\n%s", command, err, out)
		}
		return string(out)
	}

	out := run("start")
	data, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		t.Fatalf("no state after start: %v\n%s", err, out)
	}
	var st State
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatal(err)
	}
	// Whatever happens below, nothing of this test outlives it.
	t.Cleanup(func() {
		if alive(st.PID) {
			_ = syscall.Kill(-st.PID, syscall.SIGKILL)
		}
	})
	for _, want := range []string{
		"export AWS_ENDPOINT_URL=" + st.Endpoint + "\n", "export AWS_REGION=eu-west-1\n", "export AWS_ACCESS_KEY_ID=testing\n",
		"export AUTODEPLOY_TABLE=" + Table + "\n", "--config " + filepath.Join(dir, "autodeploy.yaml"),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("start's output lacks %q:\n%s", want, out)
		}
	}
	if env, err := os.ReadFile(filepath.Join(dir, "env")); err != nil || !strings.Contains(string(env), "AWS_ENDPOINT_URL="+st.Endpoint) {
		t.Errorf("env file: %v %q", err, env)
	}
	if !isOurMoto(st) {
		t.Fatalf("moto (pid %d) does not run after start exited", st.PID)
	}
	// Its port alone: a recorded port that is a prefix of moto's is not it.
	if prefix := (State{PID: st.PID, Port: st.Port / 10}); isOurMoto(prefix) {
		t.Errorf("port %d taken for moto's %d", prefix.Port, st.Port)
	}
	// Seeded: prod/web runs the revision the sandbox's deploy registered.
	client := ecs.NewFromConfig(aws.Config{Region: emulator.Region, BaseEndpoint: aws.String(st.Endpoint),
		Credentials: credentials.NewStaticCredentialsProvider("testing", "testing", "")})
	svc, err := client.DescribeServices(context.Background(), &ecs.DescribeServicesInput{Cluster: aws.String("prod"), Services: []string{"web"}})
	if err != nil || len(svc.Services) != 1 || !strings.HasSuffix(aws.ToString(svc.Services[0].TaskDefinition), "web-prod:2") {
		t.Errorf("prod/web after seeding: %v %+v", err, svc)
	}

	if again := run("start"); !strings.Contains(again, "a sandbox already runs (moto pid "+strconv.Itoa(st.PID)) {
		t.Errorf("second start:\n%s", again)
	}
	if stopped := run("stop"); !strings.Contains(stopped, "stopped the sandbox (moto pid "+strconv.Itoa(st.PID)) {
		t.Errorf("stop:\n%s", stopped)
	}
	// Gone: the process (a zombie left for a parent that does not reap
	// counts as gone: it runs nothing), anything on its port, the state.
	if alive(st.PID) {
		t.Errorf("moto (pid %d) still runs after stop", st.PID)
	}
	if ps, _ := exec.Command("ps", "-eo", "stat=,command=").Output(); strings.Contains(psRunning(string(ps)), "-p "+strconv.Itoa(st.Port)) {
		t.Errorf("a process on the sandbox's port is left:\n%s", ps)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("state left after stop: %v", err)
	}
	if again := run("stop"); !strings.Contains(again, "no sandbox to stop") {
		t.Errorf("second stop:\n%s", again)
	}
}

// psRunning is ps's lines of processes that are not zombies.
func psRunning(ps string) string {
	var keep []string
	for _, l := range strings.Split(ps, "\n") {
		if f := strings.Fields(l); len(f) > 0 && !strings.HasPrefix(f[0], "Z") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// A start whose moto_server cannot run leaves nothing behind, and says
// how to install it.
func TestFailedStartLeavesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sandbox")
	var out strings.Builder
	err := Start(context.Background(), Options{Dir: dir, MotoServer: "/nonexistent/moto_server", Out: &out})
	if err == nil || !strings.Contains(err.Error(), "make demo-tools") {
		t.Fatalf("start without moto: %v", err)
	}
	if _, serr := os.Stat(dir); !os.IsNotExist(serr) {
		t.Errorf("a failed start left %s: %v", dir, serr)
	}
}

// A moto_server that dies before it answers: the error quotes the end of
// its log (at most logTailLines lines), since the directory that held the
// log is removed. A fake script, as no real moto can be made to fail so.
func TestStartQuotesTheLogOfAMotoThatDied(t *testing.T) {
	fake := filepath.Join(t.TempDir(), "moto_server")
	script := "#!/bin/sh\nfor i in $(seq 1 30); do echo \"line $i\" >&2; done\necho 'ImportError: no module named werkzeug' >&2\nexit 1\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "sandbox")
	err := Start(context.Background(), Options{Dir: dir, MotoServer: fake, Out: io.Discard})
	if err == nil {
		t.Fatal("start with a moto_server that exits 1 succeeded")
	}
	msg := err.Error()
	for _, want := range []string{"moto_server exited before it answered", "moto's log ended:\n", "  line 12\n", "  ImportError: no module named werkzeug"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	for _, not := range []string{"line 11\n", dir} {
		if strings.Contains(msg, not) {
			t.Errorf("error has %q (more than %d lines, or the removed log's path):\n%s", not, logTailLines, msg)
		}
	}
	if _, serr := os.Stat(dir); !os.IsNotExist(serr) {
		t.Errorf("a failed start left %s: %v", dir, serr)
	}
}
