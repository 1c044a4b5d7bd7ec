// Package demo shows the deployer at work with no AWS account: moto stands
// in for AWS, the real bootstrap runs under the Lambda Runtime Interface
// Emulator, and a sequence of pushes is narrated step by step.
package demo

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/emulator"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// Rules is the demo's embedded rules file.
//
//go:embed autodeploy.yaml
var Rules []byte

// Options says where the demo finds what it runs.
type Options struct {
	MotoServer string // moto_server binary
	RIE        string // aws-lambda-rie binary
	Deployer   string // the deployer bootstrap, built for this machine
	EventsDir  string // the repository's events/
}

// step is one push of the demo.
type step struct {
	title string
	event string
}

var steps = []step{
	{"A main build is pushed: staging rolls to it, pinned by digest", "ecr-push-main.json"},
	{"Release v1.4.0 is pushed: prod rolls to it", "ecr-push-release.json"},
	{"v1.3.2 is pushed after it (a hotfix of an older line): prod must not go back", "ecr-push-older-release.json"},
	{"cosign pushes the release's signature: not an image to run", "ecr-push-signature.json"},
	{"EventBridge delivers v1.4.0 a second time: nothing changes", "ecr-push-release.json"},
}

// Services are the demo's ECS services, as a platform team would have them.
var services = []emulator.Service{
	{Cluster: "staging", Name: "web", Family: "web-staging", Containers: []emulator.Container{
		{Name: "app", Image: emulator.Registry + "/web:main-0000000", Env: map[string]string{"DATABASE_PASSWORD": "never-logged"}},
		{Name: "envoy", Image: "public.ecr.aws/envoyproxy/envoy:v1.31"},
	}, Tags: map[string]string{"team": "web"}},
	{Cluster: "prod", Name: "web", Family: "web-prod", Containers: []emulator.Container{
		{Name: "app", Image: emulator.Registry + "/web:v1.2.0", Env: map[string]string{"DATABASE_PASSWORD": "never-logged"}},
		{Name: "envoy", Image: "public.ecr.aws/envoyproxy/envoy:v1.31"},
	}, Tags: map[string]string{"team": "web"}},
}

// Run runs the whole demo, writing the narration to out, and stops all it
// started before returning.
func Run(ctx context.Context, out io.Writer, o Options) error {
	p := printer{out}
	cfg, err := rules.Parse("autodeploy.yaml (embedded)", Rules)
	if err != nil {
		return err
	}
	p.head("The rules (autodeploy.yaml)")
	for _, r := range cfg.Rules {
		sel := strings.Join(r.Tags, ", ")
		if r.SemverText != "" {
			sel = "semver " + r.SemverText
		}
		for _, t := range r.Targets {
			p.line("  %-12s %s:%s  →  %s/%s", r.Name, r.Repository, sel, t.Cluster, t.Service)
		}
	}

	p.head("Starting moto (AWS on 127.0.0.1) and seeding ECS")
	moto, err := emulator.StartMoto(ctx, o.MotoServer)
	if err != nil {
		return err
	}
	defer moto.Stop()
	p.line("  moto at %s", moto.Endpoint)
	const table = "autodeploy-demo"
	if err := moto.CreateTable(ctx, table); err != nil {
		return err
	}
	client := ecs.NewFromConfig(moto.AWSConfig())
	for _, s := range services {
		arn, err := emulator.SeedService(ctx, client, s)
		if err != nil {
			return err
		}
		p.line("  %s/%s runs %s", s.Cluster, s.Name, shortTD(arn))
	}

	p.head("Starting the deployer's bootstrap under aws-lambda-rie")
	dir, err := os.MkdirTemp("", "autodeploy-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bootstrap := filepath.Join(dir, "bootstrap")
	if err := copyFile(o.Deployer, bootstrap); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "autodeploy.yaml"), Rules, 0o644); err != nil {
		return err
	}
	rie, err := emulator.StartRIE(ctx, o.RIE, bootstrap, append(moto.Env(), "AUTODEPLOY_TABLE="+table))
	if err != nil {
		return err
	}
	defer rie.Stop()
	p.line("  only the environment contract is set: AUTODEPLOY_TABLE=%s, AWS_ENDPOINT_URL=%s", table, moto.Endpoint)

	for i, s := range steps {
		event, err := os.ReadFile(filepath.Join(o.EventsDir, s.event))
		if err != nil {
			return err
		}
		p.head(fmt.Sprintf("Step %d: %s", i+1, s.title))
		var ev struct {
			Detail struct {
				Repo string `json:"repository-name"`
				Tag  string `json:"image-tag"`
			} `json:"detail"`
		}
		_ = json.Unmarshal(event, &ev)
		p.line("  push  %s:%s  (events/%s)", ev.Detail.Repo, ev.Detail.Tag, s.event)
		before := countLines(rie.Logs())
		body, err := rie.Invoke(ctx, event)
		if err != nil {
			return err
		}
		// The function wrote its log lines before answering; give the pipe
		// a moment to deliver them.
		time.Sleep(150 * time.Millisecond)
		if err := p.summary(body); err != nil {
			return err
		}
		p.line("  what ops see in CloudWatch Logs:")
		for _, l := range newJSONLines(rie.Logs(), before) {
			p.line("    %s", l)
		}
		if err := p.running(ctx, client); err != nil {
			return err
		}
	}
	p.head("Done: every service ran what its rules allowed, and nothing else")
	return nil
}

type printer struct{ w io.Writer }

func (p printer) head(s string) { fmt.Fprintf(p.w, "\n== %s\n", s) }
func (p printer) line(format string, args ...any) {
	fmt.Fprintf(p.w, format+"\n", args...)
}

// summary prints the deployer's answer, target by target.
func (p printer) summary(body []byte) error {
	var sum struct {
		Ignored string `json:"ignored"`
		Error   string `json:"errorMessage"`
		Results []struct {
			Rule, Cluster, Service, Outcome, Reason string
			From                                    string `json:"from_task_definition"`
			To                                      string `json:"to_task_definition"`
		} `json:"results"`
	}
	if err := json.Unmarshal(body, &sum); err != nil {
		return fmt.Errorf("deployer answered %s: %w", body, err)
	}
	switch {
	case sum.Error != "":
		p.line("  the invocation failed (Lambda would retry): %s", sum.Error)
	case sum.Ignored != "":
		p.line("  ignored: %s", sum.Ignored)
	}
	for _, r := range sum.Results {
		p.line("  %-8s %s/%s by rule %s", r.Outcome, r.Cluster, r.Service, r.Rule)
		if r.To != "" {
			p.line("           %s  →  %s", shortTD(r.From), shortTD(r.To))
		}
		if r.Reason != "" {
			p.line("           %s", r.Reason)
		}
	}
	return nil
}

// running prints the image lines each service runs now.
func (p printer) running(ctx context.Context, client *ecs.Client) error {
	p.line("  now running:")
	for _, s := range services {
		svc, err := client.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(s.Cluster), Services: []string{s.Name}})
		if err != nil {
			return err
		}
		td, err := client.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: svc.Services[0].TaskDefinition})
		if err != nil {
			return err
		}
		for _, c := range td.TaskDefinition.ContainerDefinitions {
			p.line("    %-8s %-6s %-16s %s", s.Cluster, aws.ToString(c.Name), shortTD(aws.ToString(svc.Services[0].TaskDefinition)), aws.ToString(c.Image))
		}
	}
	return nil
}

func shortTD(arn string) string {
	if i := strings.LastIndex(arn, "/"); i >= 0 {
		return arn[i+1:]
	}
	return arn
}

func countLines(s string) int { return strings.Count(s, "\n") }

// newJSONLines returns the function's JSON log lines after the first skip lines.
func newJSONLines(logs string, skip int) []string {
	var out []string
	for i, l := range strings.Split(logs, "\n") {
		if i >= skip && strings.HasPrefix(l, "{") {
			out = append(out, l)
		}
	}
	return out
}

func copyFile(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return fmt.Errorf("read %s (build it with make demo): %w", from, err)
	}
	return os.WriteFile(to, data, 0o755)
}
