package worker

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/deploy"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecrevent"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/logging"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/notify"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work"
)

// Messages that never reach ECS: what is unreadable goes back (the redrive
// policy parks it), what the rules file no longer describes does not.
func TestHandleWithoutDeploying(t *testing.T) {
	cfg, err := rules.Parse("autodeploy.yaml", []byte("version: 1\nrules:\n  - name: web\n    repository: web\n    tags: [\"*\"]\n    targets: [{cluster: c, service: s}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	notices := &notices{}
	d := &deploy.Deployer{Rules: cfg, Central: central, Log: logging.New(&logs, slog.LevelInfo), Notifier: notices}
	push := ecrevent.Push{EventID: "e", Account: central.Account, Region: central.Region, Repository: "web", Tag: "1", Digest: "sha256:" + strings.Repeat("0", 64)}
	item := func(change func(*work.DeployTarget)) string {
		it := work.NewDeployTarget(push, cfg.Rules[0], 0, central)
		change(&it)
		b, err := work.Encode(it)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	ev := events.SQSEvent{Records: []events.SQSMessage{
		{MessageId: "garbage", Body: "{"},
		{MessageId: "newer", Body: `{"kind":"deploy-target","v":2}`},
		{MessageId: "other-service", Body: item(func(it *work.DeployTarget) { it.ServiceKey = central.String() + "/c/other" })},
		{MessageId: "no-rule", Body: item(func(it *work.DeployTarget) { it.Rule = "gone" })},
	}}
	resp, err := (&Handler{Deployer: d}).Handle(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	want := events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{{ItemIdentifier: "garbage"}, {ItemIdentifier: "newer"}}}
	if diff := cmp.Diff(want, resp); diff != "" {
		t.Errorf("response (-want +got):\n%s", diff)
	}
	for _, s := range []string{`"msg":"work item unreadable"`, `"msg":"work item refused"`, "rule web no longer targets 123456789012/eu-west-1/c/other"} {
		if !strings.Contains(logs.String(), s) {
			t.Errorf("logs lack %s:\n%s", s, logs.String())
		}
	}
	// A refused item is not received again and no deploy path saw it: it
	// is notified here, naming its service by its key.
	if diff := cmp.Diff([]string{"not_deployed gone c/s", "not_deployed web c/other"}, notices.list()); diff != "" {
		t.Errorf("notices (-want +got):\n%s", diff)
	}
	for _, n := range notices.all {
		if n.Account != central.Account || n.Region != central.Region || n.EventID != "e" || n.Digest != push.Digest ||
			!strings.Contains(n.Reason, "work item refused: ") {
			t.Errorf("notice %+v", n)
		}
	}
}

// notices keeps what the deployer notified.
type notices struct {
	mu  sync.Mutex
	all []notify.Notice
}

func (n *notices) Notify(_ context.Context, notice notify.Notice) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.all = append(n.all, notice)
	return nil
}

// list is each notice as "outcome rule cluster/service", sorted.
func (n *notices) list() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for _, x := range n.all {
		out = append(out, x.Outcome+" "+x.Rule+" "+x.Cluster+"/"+x.Service)
	}
	slices.Sort(out)
	return out
}
