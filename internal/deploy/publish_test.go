package deploy

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// fakeSSM records parameters; errs fail the next calls in order. The
// publishing paths that need failures run against it; integration_test.go
// runs the write against moto.
type fakeSSM struct {
	params map[string]string
	errs   []error
	calls  int // writes
	reads  int
	// whileWriting, when set, runs at each write (to look at the lock).
	whileWriting func()
}

func (f *fakeSSM) PutParameter(_ context.Context, in *ssm.PutParameterInput, _ ...func(*ssm.Options)) (*ssm.PutParameterOutput, error) {
	f.calls++
	if f.whileWriting != nil {
		f.whileWriting()
	}
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		return nil, err
	}
	f.params[aws.ToString(in.Name)] = aws.ToString(in.Value)
	return &ssm.PutParameterOutput{}, nil
}

func (f *fakeSSM) GetParameter(_ context.Context, in *ssm.GetParameterInput, _ ...func(*ssm.Options)) (*ssm.GetParameterOutput, error) {
	f.reads++
	v, ok := f.params[aws.ToString(in.Name)]
	if !ok {
		return nil, &ssmtypes.ParameterNotFound{Message: aws.String("not found")}
	}
	return &ssm.GetParameterOutput{Parameter: &ssmtypes.Parameter{Name: in.Name, Value: aws.String(v)}}, nil
}

func publishingFixture(t *testing.T, store *fakeSSM) *fixture {
	t.Helper()
	f := newFixture(t)
	cfg, err := rules.Parse("p.yaml", []byte("version: 1\nrules:\n  - {name: web-staging, repository: web, tags: [\"main-*\"], "+
		"publish: {ssm-prefix: /ecr-autodeploy}, targets: [{cluster: staging, service: web, containers: [app]}]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	f.d.Rules = cfg
	f.d.SSM = func(string, string) SSM { return store }
	return f
}

func TestPublishAfterDeploy(t *testing.T) {
	ctx := context.Background()
	const param = "/ecr-autodeploy/staging/web/app"
	throttled := &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded", Fault: smithy.FaultClient}
	denied := &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized", Fault: smithy.FaultClient}

	t.Run("deployed: one write, the image that runs", func(t *testing.T) {
		store := &fakeSSM{params: map[string]string{}}
		f := publishingFixture(t, store)
		sum, err := f.d.Handle(ctx, pushEvent(t, "web", "main-4f2a9c1", t0))
		if err != nil || sum.Results[0].Outcome != Deployed {
			t.Fatalf("%+v, %v", sum, err)
		}
		if store.calls != 1 || store.params[param] != registry+"/web@"+digestOf("web:main-4f2a9c1") || sum.Results[0].Published != "written" {
			t.Errorf("%d calls, parameters %v", store.calls, store.params)
		}
		// Another event for the image that runs is skipped and writes nothing.
		store.calls = 0
		other := pushEvent(t, "web", "main-4f2a9c1", t0)
		other = []byte(strings.Replace(string(other), `"id":"evt-`, `"id":"other-evt-`, 1))
		if sum, err := f.d.Handle(ctx, other); err != nil || sum.Results[0].Outcome != Skipped || store.calls != 0 {
			t.Errorf("a skip wrote: %+v, %v, %d calls", sum.Results, err, store.calls)
		}
	})

	t.Run("transient failure: the invocation retries and the retry publishes", func(t *testing.T) {
		store := &fakeSSM{params: map[string]string{}, errs: []error{throttled}}
		f := publishingFixture(t, store)
		ev := pushEvent(t, "web", "main-4f2a9c1", t0)
		sum, err := f.d.Handle(ctx, ev)
		if err == nil || sum.Results[0].Outcome != Deployed || !sum.Results[0].Retryable ||
			!strings.Contains(sum.Results[0].Reason, "not published; will retry") {
			t.Fatalf("first attempt: %+v, %v", sum.Results, err)
		}
		sum, err = f.d.Handle(ctx, ev) // Lambda's retry
		if err != nil || sum.Results[0].Outcome != Skipped || store.params[param] == "" {
			t.Errorf("retry: %+v, %v, parameters %v", sum.Results, err, store.params)
		}
		// A duplicate delivery after that finds it published: no new version.
		store.calls = 0
		if sum, err = f.d.Handle(ctx, ev); err != nil || sum.Results[0].Outcome != Skipped || store.calls != 0 || sum.Results[0].Published != "" {
			t.Errorf("duplicate delivery of a published deploy: %+v, %v, %d writes", sum.Results, err, store.calls)
		}
		if !strings.Contains(f.logs.String(), `"msg":"publish"`) {
			t.Error("no publish line")
		}
	})

	t.Run("permanent failure: reported once, the deploy stands", func(t *testing.T) {
		store := &fakeSSM{params: map[string]string{}, errs: []error{denied}}
		f := publishingFixture(t, store)
		notices := &memNotifier{}
		f.d.Notifier = notices
		sum, err := f.d.Handle(ctx, pushEvent(t, "web", "main-4f2a9c1", t0))
		if err != nil || sum.Results[0].Outcome != Deployed || sum.Results[0].Retryable || sum.Results[0].Published != "failed" {
			t.Fatalf("%+v, %v", sum.Results, err)
		}
		if len(notices.messages) != 1 || !strings.Contains(notices.messages[0], "NOT published to Parameter Store") ||
			!strings.Contains(notices.messages[0], "AccessDeniedException") {
			t.Errorf("notices = %q", notices.messages)
		}
		if aws.ToString(f.ecs.services["staging/web"].TaskDefinition) == "" || errors.Is(err, denied) {
			t.Error("the deploy was undone")
		}
	})
}

// Publishing happens under the service's lock: once it is free a newer
// deploy may run, and a late write would name an image no longer running.
func TestPublishUnderTheLock(t *testing.T) {
	store := &fakeSSM{params: map[string]string{}}
	f := publishingFixture(t, store)
	var heldWhileWriting []bool
	store.whileWriting = func() {
		f.services.mu.Lock()
		defer f.services.mu.Unlock()
		heldWhileWriting = append(heldWhileWriting, f.services.held["123456789012/eu-west-1/staging/web"])
	}
	if sum, err := f.d.Handle(context.Background(), pushEvent(t, "web", "main-4f2a9c1", t0)); err != nil || sum.Results[0].Published != "written" {
		t.Fatalf("%+v, %v", sum.Results, err)
	}
	if len(heldWhileWriting) != 1 || !heldWhileWriting[0] {
		t.Errorf("lock held at each write: %v, want [true]", heldWhileWriting)
	}
}

// A repair (a sweep found a parameter missing or stale) reads what runs
// under the lock and writes only what differs from it.
func TestRepairPublished(t *testing.T) {
	ctx := context.Background()
	const param = "/ecr-autodeploy/staging/web/app"
	store := &fakeSSM{params: map[string]string{}}
	f := publishingFixture(t, store)
	if _, err := f.d.Handle(ctx, pushEvent(t, "web", "main-4f2a9c1", t0)); err != nil {
		t.Fatal(err)
	}
	running := registry + "/web@" + digestOf("web:main-4f2a9c1")
	rule := f.d.Rules.Rules[0]
	store.calls = 0
	if written, err := f.d.RepairPublished(ctx, rule, rule.Targets[0], "sweep"); err != nil || len(written) != 0 || store.calls != 0 {
		t.Errorf("repair of a parameter that names what runs: %v, %v, %d writes", written, err, store.calls)
	}
	store.params[param] = registry + "/web@sha256:older"
	written, err := f.d.RepairPublished(ctx, rule, rule.Targets[0], "sweep")
	if err != nil || len(written) != 1 || written[0].State != "stale" || store.params[param] != running {
		t.Errorf("repair of a stale parameter: %v, %v, parameter %s", written, err, store.params[param])
	}
	if f.services.held["123456789012/eu-west-1/staging/web"] {
		t.Error("the repair kept the lock")
	}
}
