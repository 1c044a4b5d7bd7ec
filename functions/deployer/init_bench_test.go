package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/emulator"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

// pythonInit is the Python baseline of the deployer's init: what the same
// function written in Python does before its first event — start the
// interpreter, import boto3 and PyYAML, read the rules file, and build the
// one client the Go function builds at init (the state table's; the others
// are built when first used, as in Go). Run by the virtualenv's Python,
// which carries boto3 and PyYAML for moto.
const pythonInit = `import sys, boto3, yaml
with open(sys.argv[1]) as f:
    yaml.safe_load(f)
boto3.session.Session(region_name="eu-west-1").client("dynamodb", aws_access_key_id="x", aws_secret_access_key="y")
`

// initGoal is the goal the issue set: a cold start at most a tenth of the
// Python baseline's.
const initGoal = 0.1

// The absolute budgets of a cold start's median, which keep the goal honest
// on a loaded machine: there the Python baseline measures 0.4-1.3 s (the
// issue counts ~270-300 ms), and a tenth of it would let the Go init grow
// unseen. With the demo's rules file, the floor the init had before SSM,
// ECR, CodeDeploy and STS came (15-18 ms) with room for this machine's
// noise; with 1,000 targets, that and what loading them costs cold.
const (
	initBudget      = 30 * time.Millisecond
	fleetInitBudget = 60 * time.Millisecond
)

// BenchmarkInit starts the built bootstrap cold under aws-lambda-rie, once
// per iteration, with the demo's rules file and with one of 1,000 targets,
// and reports the median INIT REPORT duration against the median of the
// Python baseline (pythonInit) on the same machine and rules file, and the
// sum of the Go runtime's package initialisers (GODEBUG=inittrace=1, the
// median of five runs), naming the costliest. Over initGoal × the baseline
// or over its absolute budget, it fails; it reports both.
func BenchmarkInit(b *testing.B) {
	big := filepath.Join(b.TempDir(), "autodeploy.yaml")
	var targets []string
	for i := range sweepTargets {
		targets = append(targets, fmt.Sprintf("{cluster: c%02d, service: s%04d}", i/20, i))
	}
	if err := os.WriteFile(big, []byte("version: 1\nrules:\n  - {name: fleet, repository: fleet, tags: [\"*\"], targets: [\n    "+
		strings.Join(targets, ",\n    ")+"]}\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name, rules string
		budget      time.Duration
	}{{"rules=demo", "../../internal/demo/autodeploy.yaml", initBudget}, {"rules=1000-targets", big, fleetInitBudget}} {
		b.Run(c.name, func(b *testing.B) { coldStarts(b, c.rules, c.budget) })
	}
}

func coldStarts(b *testing.B, rulesFile string, budget time.Duration) {
	rules, err := filepath.Abs(rulesFile)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	bootstrap := testenv.BuildFunction(b, "deployer", dir)
	data, err := os.ReadFile(rules)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "autodeploy.yaml"), data, 0o644); err != nil {
		b.Fatal(err)
	}
	env := []string{"AWS_REGION=" + testenv.Region, "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test",
		"AWS_ENDPOINT_URL=http://127.0.0.1:9", "AUTODEPLOY_TABLE=autodeploy-state", "AUTODEPLOY_ACCOUNT=" + testenv.Account}
	// A push of a repository no rule names: answered without an AWS call.
	event := []byte(`{"version":"0","id":"init","detail-type":"ECR Image Action","source":"aws.ecr","account":"` + testenv.Account +
		`","time":"2026-11-26T10:00:00Z","region":"` + testenv.Region + `","resources":[],"detail":{"result":"SUCCESS",` +
		`"repository-name":"no-rule-names-it","image-digest":"sha256:` + strings.Repeat("ab", 32) + `","action-type":"PUSH","image-tag":"v1"}}`)
	rie := testenv.RIEBinary(b)
	python := filepath.Join(filepath.Dir(testenv.MotoBinary(b)), "python")
	var goInit, pyInit []time.Duration
	for b.Loop() {
		r, err := emulator.StartRIE(context.Background(), rie, bootstrap, env)
		if err != nil {
			b.Fatal(err)
		}
		_, err = r.Invoke(context.Background(), event)
		// The emulator writes its INIT REPORT line a moment after answering.
		d, derr := r.InitDuration()
		for wait := 0; derr != nil && wait < 40; wait++ {
			time.Sleep(50 * time.Millisecond)
			d, derr = r.InitDuration()
		}
		r.Stop()
		if err != nil || derr != nil {
			b.Fatalf("cold start: %v, %v\n%s", err, derr, r.Logs())
		}
		goInit = append(goInit, d)
		b.StopTimer()
		start := time.Now()
		if out, err := exec.Command(python, "-c", pythonInit, rules).CombinedOutput(); err != nil {
			b.Fatalf("python baseline: %v\n%s", err, out)
		}
		pyInit = append(pyInit, time.Since(start))
		b.StartTimer()
	}
	median := func(ds []time.Duration) time.Duration { slices.Sort(ds); return ds[len(ds)/2] }
	g, p := median(goInit), median(pyInit)
	pkgInit, top := packageInit(b, bootstrap)
	b.ReportMetric(float64(g.Microseconds())/1000, "init-ms")
	b.ReportMetric(float64(budget.Milliseconds()), "budget-ms")
	b.ReportMetric(float64(p.Microseconds())/1000, "python-ms")
	b.ReportMetric(float64(g)/float64(p), "x-python")
	b.ReportMetric(pkgInit, "pkg-init-ms")
	b.Logf("cold starts %v (median %s, budget %s), Python baseline median %s (%.3f×, goal ≤ %.2f×); package init %.1f ms, costliest: %s",
		goInit, g, budget, p, float64(g)/float64(p), initGoal, pkgInit, top)
	if float64(g) > initGoal*float64(p) {
		b.Errorf("init %s is %.2f× the Python baseline's %s (goal ≤ %.2f×)", g, float64(g)/float64(p), p, initGoal)
	}
	if g > budget {
		b.Errorf("init %s is over its budget of %s", g, budget)
	}
}

// packageInit runs bootstrap five times with GODEBUG=inittrace=1 (it stops
// at once without Lambda's runtime API, after its package initialisers ran)
// and returns the median run's initialisers' clock time in ms, and its
// costliest five.
func packageInit(b *testing.B, bootstrap string) (float64, string) {
	type run struct {
		ms  float64
		top string
	}
	var runs []run
	for range 5 {
		ms, top := packageInitOnce(b, bootstrap)
		runs = append(runs, run{ms, top})
	}
	sort.Slice(runs, func(i, j int) bool { return runs[i].ms < runs[j].ms })
	return runs[len(runs)/2].ms, runs[len(runs)/2].top
}

func packageInitOnce(b *testing.B, bootstrap string) (float64, string) {
	cmd := exec.Command(bootstrap)
	cmd.Env = []string{"GODEBUG=inittrace=1", "AUTODEPLOY_TABLE=t"}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	_ = cmd.Run()
	type pkg struct {
		name string
		ms   float64
	}
	var pkgs []pkg
	total := 0.0
	for _, line := range strings.Split(stderr.String(), "\n") {
		// init <package> @<start> ms, <clock> ms clock, <bytes> bytes, <allocs> allocs
		f := strings.Fields(line)
		if len(f) < 7 || f[0] != "init" || f[6] != "clock," {
			continue
		}
		ms, err := strconv.ParseFloat(f[4], 64)
		if err != nil {
			continue
		}
		total += ms
		pkgs = append(pkgs, pkg{f[1], ms})
	}
	if len(pkgs) == 0 {
		b.Fatalf("no inittrace lines from %s:\n%s", bootstrap, stderr.String())
	}
	sort.Slice(pkgs, func(i, j int) bool { return pkgs[i].ms > pkgs[j].ms })
	var top []string
	for _, p := range pkgs[:min(5, len(pkgs))] {
		top = append(top, fmt.Sprintf("%s %.1f ms", strings.TrimPrefix(p.name, "github.com/"), p.ms))
	}
	return total, strings.Join(top, ", ")
}
