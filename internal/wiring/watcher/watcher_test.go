package watcher

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/alarms"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/awsenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/deploy"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/fnenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/gate"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/logging"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/reconcile"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/timer"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/watch"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/wiring"
)

// The watcher reads service deployments and CodeDeploy deployments in the
// target's region with the SDK's full retries; it sets recheck timers in
// the configured group only when timers are configured, and otherwise has
// no Rechecker (the next event reads the rollout again).
func TestWatcher(t *testing.T) {
	const role = "arn:aws:iam::111111111111:role/ecr-autodeploy-scheduler"
	for _, tt := range []struct {
		name   string
		env    map[string]string
		timers *timer.Config // nil: no Rechecker
	}{
		{"no timers", nil, nil},
		{"timers", map[string]string{timer.EnvGroup: timer.DefaultGroup, timer.EnvRoleARN: role},
			&timer.Config{Group: timer.DefaultGroup, RoleARN: role}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := timer.LoadConfig(func(k string) string { return tt.env[k] })
			if err != nil {
				t.Fatal(err)
			}
			rt := runtime(t, "")
			var rechecker watch.Rechecker // as the watcher's main builds it
			var gateTimers gate.Timers
			if r := timer.NewRechecker(rt.AWS, cfg); r != nil {
				rechecker, gateTimers = r, timer.NewGateTimers(r.Timers)
			}
			w := New(wiring.New(rt), rechecker, gateTimers)
			if w.Store == nil || w.Promoter == nil || w.Log == nil || w.Rules == nil {
				t.Errorf("watcher %+v: missing its store, promoter, log or rules", w)
			}
			if w.ECS == nil {
				t.Fatal("the watcher has no ECS client: ECS-native rollouts would be judged by the event alone")
			}
			e, ok := w.ECS("eu-central-1", "").(*ecs.Client)
			if !ok {
				t.Fatalf("ECS client %T, want *ecs.Client", w.ECS("eu-central-1", ""))
			}
			if got := e.Options().Region; got != "eu-central-1" {
				t.Errorf("ECS client in %s, want the target's region eu-central-1", got)
			}
			if got := e.Options().Retryer.MaxAttempts(); got != awsenv.MaxAttempts {
				t.Errorf("the watcher's ECS client makes %d attempts, want %d", got, awsenv.MaxAttempts)
			}
			if _, ok := w.CodeDeploy("eu-west-1", "").(*codedeploy.Client); !ok {
				t.Errorf("CodeDeploy client %T", w.CodeDeploy("eu-west-1", ""))
			}
			g := w.Gates
			if g == nil || g.Store == nil || g.Scans == nil || g.Alarms == nil || g.HandOff == nil || g.Promote == nil || g.Rules != w.Rules ||
				g.Central != w.Central {
				t.Fatalf("gates %+v: missing a part", g)
			}
			a, ok := g.Alarms("eu-central-1", "arn:aws:iam::222222222222:role/ecr-autodeploy-watcher-eu-central-1").(alarms.Reader)
			if !ok {
				t.Fatalf("alarm reader %T, want alarms.Reader", a)
			}
			client, ok := a.CloudWatch.(*cloudwatch.Client)
			if !ok {
				t.Fatalf("alarm reader's client %T, want *cloudwatch.Client", a.CloudWatch)
			}
			if got := client.Options().Region; got != "eu-central-1" {
				t.Errorf("alarms read in %s, want the alarm's region eu-central-1", got)
			}
			if client.Options().Protocol == nil {
				t.Error("the alarms' client speaks the SDK's default protocol, which moto does not: want CloudWatch's query protocol")
			}
			if again := g.Alarms("eu-central-1", "arn:aws:iam::222222222222:role/ecr-autodeploy-watcher-eu-central-1"); again != gate.AlarmReader(a) {
				t.Error("a second bake's end in the same place builds another client")
			}
			if tt.timers == nil {
				if w.Rechecker != nil || g.Timers != nil {
					t.Errorf("Rechecker %T, gate timers %T, want none", w.Rechecker, g.Timers)
				}
				return
			}
			if gt, ok := g.Timers.(*timer.GateTimers); !ok || gt.Timers != w.Rechecker.(*timer.Rechecker).Timers {
				t.Errorf("gate timers %#v, want the Rechecker's timers", g.Timers)
			}
			r, ok := w.Rechecker.(*timer.Rechecker)
			if !ok || r.Timers == nil {
				t.Fatalf("Rechecker %#v, want a *timer.Rechecker with timers", w.Rechecker)
			}
			if diff := cmp.Diff(*tt.timers, r.Timers.Config); diff != "" {
				t.Errorf("timer config (-want +got):\n%s", diff)
			}
			if r.Watcher != "" {
				t.Errorf("Rechecker targets %s, want the invoked function", r.Watcher)
			}
			s, ok := r.Timers.Scheduler.(*scheduler.Client)
			if !ok {
				t.Fatalf("scheduler %T, want *scheduler.Client", r.Timers.Scheduler)
			}
			if got := s.Options().Region; got != "eu-west-1" {
				t.Errorf("schedules set in %s, want the central region eu-west-1", got)
			}
		})
	}
}

// runtime is a runtime of one rule in eu-west-1, with the work queue at
// queueURL ("" for none).
func runtime(t *testing.T, queueURL string) fnenv.Runtime {
	t.Helper()
	cfg, err := rules.Parse("autodeploy.yaml", []byte("version: 1\nrules:\n  - {name: a, repository: web, tags: [x], targets: [{cluster: c, service: s}]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	central := rules.Place{Account: "111111111111", Region: "eu-west-1"}
	return fnenv.Runtime{Env: fnenv.Env{Table: "t", Concurrency: 10, WorkQueueURL: queueURL}, Log: logging.New(&strings.Builder{}, 0),
		Rules: cfg, AWS: aws.Config{Region: "eu-west-1", Retryer: awsenv.NewRetryer}, Central: central}
}

// After a completion the watcher queues a cleanup item on the work queue
// when there is one (a rule's cleanup:), none without (the sweep cleans).
func TestWatcherCleanups(t *testing.T) {
	const url = "https://sqs.eu-west-1.amazonaws.com/111111111111/autodeploy-work"
	if w := New(wiring.New(runtime(t, "")), nil, nil); w.Cleanups != nil {
		t.Errorf("the watcher sends cleanups without a queue: %T", w.Cleanups)
	}
	w := New(wiring.New(runtime(t, url)), nil, nil)
	if wq, ok := w.Cleanups.(*reconcile.CleanupQueue); !ok || wq.BaseURL != url {
		t.Errorf("watcher Cleanups %T %v, want the work queue", w.Cleanups, w.Cleanups)
	}
}

type noRecheck struct{}

func (noRecheck) Recheck(context.Context, history.Record, time.Time) error { return nil }

// Without timers the watcher says, once at init, that a rollout baking at
// its last event is not judged again (ECS sends no event when a bake
// ends); with a Rechecker it says nothing.
func TestWatcherWarnsWithoutTimers(t *testing.T) {
	for _, tt := range []struct {
		name      string
		rechecker watch.Rechecker
		warns     bool
	}{{"no timers", nil, true}, {"timers", noRecheck{}, false}} {
		t.Run(tt.name, func(t *testing.T) {
			rt := runtime(t, "")
			var logs strings.Builder
			rt.Log = logging.New(&logs, 0)
			New(wiring.New(rt), tt.rechecker, nil)
			if got := strings.Contains(logs.String(), "no recheck timers"); got != tt.warns {
				t.Errorf("warned %v, want %v:\n%s", got, tt.warns, logs.String())
			}
		})
	}
}

// One notices topic per function: the watcher, its gates and the deployer
// of the same wiring tell people through one client; none without a topic.
func TestOneNoticesTopic(t *testing.T) {
	rt := runtime(t, "")
	rt.Env.NotifyTopic = "arn:aws:sns:eu-west-1:111111111111:autodeploy-notices"
	f := wiring.New(rt)
	w := New(f, nil, nil)
	topic := f.Notices()
	if topic == nil || w.Notifier != watch.Notifier(topic) || w.Gates.Notifier != gate.Notifier(topic) ||
		f.Deployer(0).Notifier != deploy.Notifier(topic) || f.Deployer(0).Gates.(*gate.Gates).Notifier != gate.Notifier(topic) {
		t.Errorf("notifiers: watcher %p, gates %p, deployer %p; want the one topic %p", w.Notifier, w.Gates.Notifier, f.Deployer(0).Notifier, topic)
	}
	if w := New(wiring.New(runtime(t, "")), nil, nil); w.Notifier != nil || w.Gates.Notifier != nil {
		t.Errorf("without a topic: watcher %v, gates %v", w.Notifier, w.Gates.Notifier)
	}
}
