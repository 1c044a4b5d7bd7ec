package cleanup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecsarn"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/logging"
)

// fakeECS plays what moto does not: ListTaskDefinitions matching family
// prefixes (moto matches the family exactly) in pages (moto answers in
// one), and DeleteTaskDefinitions refusing some revisions (moto's listing is
// never stale, so its refusals cannot be met through Run).
type fakeECS struct {
	arns     []string // ACTIVE, in ECS's order (ascending)
	inactive []string
	page     int
	refuse   map[string]string // revision → delete failure reason
	calls    map[string]int
}

func newFake(page int, families map[string]int) *fakeECS {
	f := &fakeECS{page: page, calls: map[string]int{}, refuse: map[string]string{}}
	for _, fam := range []string{"web", "web-worker", "webapp"} {
		for i := 1; i <= families[fam]; i++ {
			f.arns = append(f.arns, fmt.Sprintf("arn:aws:ecs:eu-west-1:123456789012:task-definition/%s:%d", fam, i))
		}
	}
	return f
}

func (f *fakeECS) ListTaskDefinitions(_ context.Context, in *ecs.ListTaskDefinitionsInput, _ ...func(*ecs.Options)) (*ecs.ListTaskDefinitionsOutput, error) {
	f.calls["ListTaskDefinitions"]++
	src := f.arns
	if in.Status == types.TaskDefinitionStatusInactive {
		src = f.inactive
	}
	var match []string
	for _, a := range src {
		if strings.HasPrefix(ecsarn.Revision(a), aws.ToString(in.FamilyPrefix)) {
			match = append(match, a)
		}
	}
	start := 0
	if in.NextToken != nil {
		start, _ = strconv.Atoi(*in.NextToken)
	}
	end := min(start+f.page, len(match))
	out := &ecs.ListTaskDefinitionsOutput{TaskDefinitionArns: match[start:end]}
	if end < len(match) {
		out.NextToken = aws.String(strconv.Itoa(end))
	}
	return out, nil
}

func (f *fakeECS) DescribeTaskDefinition(_ context.Context, in *ecs.DescribeTaskDefinitionInput, _ ...func(*ecs.Options)) (*ecs.DescribeTaskDefinitionOutput, error) {
	f.calls["DescribeTaskDefinition"]++
	return &ecs.DescribeTaskDefinitionOutput{Tags: []types.Tag{{Key: aws.String("autodeploy:rule"), Value: aws.String("r")}}}, nil
}

func (f *fakeECS) DeregisterTaskDefinition(_ context.Context, in *ecs.DeregisterTaskDefinitionInput, _ ...func(*ecs.Options)) (*ecs.DeregisterTaskDefinitionOutput, error) {
	f.calls["DeregisterTaskDefinition"]++
	for i, a := range f.arns {
		if ecsarn.Revision(a) == ecsarn.Revision(aws.ToString(in.TaskDefinition)) {
			f.arns = append(f.arns[:i:i], f.arns[i+1:]...)
			f.inactive = append(f.inactive, a)
		}
	}
	return &ecs.DeregisterTaskDefinitionOutput{}, nil
}

func (f *fakeECS) DeleteTaskDefinitions(_ context.Context, in *ecs.DeleteTaskDefinitionsInput, _ ...func(*ecs.Options)) (*ecs.DeleteTaskDefinitionsOutput, error) {
	f.calls["DeleteTaskDefinitions"]++
	if len(in.TaskDefinitions) > MaxDeletePerCall {
		return nil, errors.New("Size of TaskDefinition references list cannot exceed 10")
	}
	out := &ecs.DeleteTaskDefinitionsOutput{}
	for _, td := range in.TaskDefinitions {
		if reason, ok := f.refuse[td]; ok {
			out.Failures = append(out.Failures, types.Failure{Arn: aws.String(td), Reason: aws.String(reason)})
			continue
		}
		f.inactive = slices.DeleteFunc(f.inactive, func(a string) bool { return ecsarn.Revision(a) == ecsarn.Revision(td) })
	}
	return out, nil
}

// one is the Services of a family one service runs.
func one(svc types.Service, rollback ...string) []Service {
	return []Service{{Described: svc, Rollback: rollback}}
}

func running(rev string) types.Service {
	return types.Service{TaskDefinition: aws.String("arn:aws:ecs:eu-west-1:123456789012:task-definition/" + rev)}
}

// TestExactFamilyAcrossPages: familyPrefix web also lists web-worker and
// webapp; only web's revisions are planned, over pages of 100.
func TestExactFamilyAcrossPages(t *testing.T) {
	f := newFake(100, map[string]int{"web": 250, "web-worker": 30, "webapp": 5})
	c := New(f, slog.New(slog.NewTextHandler(io.Discard, nil)))
	p, err := c.Plan(context.Background(), Target{Keep: 5, Services: one(running("web:250"))})
	if err != nil {
		t.Fatal(err)
	}
	if p.Family != "web" || p.Active != 250 || len(p.Kept) != 5 || len(p.Candidates) != 245 {
		t.Errorf("plan: family %q, %d active, %d kept, %d candidates; want web, 250, 5, 245", p.Family, p.Active, len(p.Kept), len(p.Candidates))
	}
	for _, r := range p.Candidates {
		if fam, _ := ecsarn.FamilyRevision((r.ARN)); fam != "web" {
			t.Errorf("candidate of another family: %s", r.ARN)
		}
	}
	if p.Candidates[0].Number != 245 || p.Candidates[244].Number != 1 {
		t.Errorf("candidates not newest first: %d … %d", p.Candidates[0].Number, p.Candidates[244].Number)
	}
	if got := f.calls["ListTaskDefinitions"]; got != 3 { // 285 ARNs match the prefix
		t.Errorf("ListTaskDefinitions calls %d, want 3 pages", got)
	}
}

func TestDecide(t *testing.T) {
	active := func(hi int) []Revision {
		var out []Revision
		for i := hi; i >= 1; i-- {
			out = append(out, Revision{ARN: "web:" + strconv.Itoa(i), Number: i})
		}
		return out
	}
	tests := []struct {
		name       string
		target     Target
		active     []Revision
		candidates []string
	}{
		{"running newest: previous within keep", Target{Keep: 2, Services: one(running("web:6"))}, active(6), []string{"web:4", "web:3", "web:2", "web:1"}},
		{"rolled back: running and its previous stay", Target{Keep: 2, Services: one(running("web:3"))}, active(6), []string{"web:4", "web:1"}},
		{"a deployment and a task set", Target{Keep: 2, Services: one(types.Service{
			TaskDefinition: aws.String("web:6"),
			Deployments:    []types.Deployment{{TaskDefinition: aws.String("web:6")}, {TaskDefinition: aws.String("arn:aws:ecs:eu-west-1:1:task-definition/web:2")}},
			TaskSets:       []types.TaskSet{{TaskDefinition: aws.String("web:3")}},
		})}, active(6), []string{"web:4", "web:1"}},
		{"published and rollback of another family ignored", Target{Keep: 2, Services: one(running("web:6"), "api:1"), Published: []string{"web:1"}},
			active(6), []string{"web:4", "web:3", "web:2"}},
		{"fewer than keep", Target{Keep: 10, Services: one(running("web:6"))}, active(6), nil},
		{"running of another family: Family given", Target{Family: "web", Keep: 2, Services: one(running("web-v2:1"))}, active(4), []string{"web:2", "web:1"}},
		// Staging and prod share the family: each one's running revision,
		// the one before it, its deployments and its rollback candidates
		// stay, whichever of them the run is for.
		{"shared family: the other service's running, previous and rollback stay", Target{Keep: 3, Services: []Service{
			{Described: running("web:10"), Rollback: []string{"web:9", "web:10"}},
			{Described: running("web:3"), Rollback: []string{"web:2", "web:3"}},
		}}, active(10), []string{"web:7", "web:6", "web:5", "web:4", "web:1"}},
		{"shared family: the other service's deployment and task set stay", Target{Keep: 2, Services: []Service{
			{Described: running("web:8")},
			{Described: types.Service{
				TaskDefinition: aws.String("web:5"),
				Deployments:    []types.Deployment{{TaskDefinition: aws.String("web:5")}, {TaskDefinition: aws.String("web:3")}},
				TaskSets:       []types.TaskSet{{TaskDefinition: aws.String("arn:aws:ecs:eu-west-1:1:task-definition/web:2")}},
			}},
		}}, active(8), []string{"web:6", "web:1"}},
		{"shared family: a service on another family still protects its rollback here", Target{Family: "web", Keep: 2, Services: []Service{
			{Described: running("web:6")},
			{Described: running("web-v2:1"), Rollback: []string{"web:2"}},
		}}, active(6), []string{"web:4", "web:3", "web:1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			family := tt.target.Family
			if family == "" {
				family = "web"
			}
			p := decide(family, tt.target, tt.active)
			if diff := cmp.Diff(tt.candidates, names(p.Candidates), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("candidates (-want +got):\n%s", diff)
			}
			if len(p.Kept)+len(p.Candidates) != len(tt.active) {
				t.Errorf("kept %d + candidates %d != %d active", len(p.Kept), len(p.Candidates), len(tt.active))
			}
		})
	}
}

func TestPlanRefuses(t *testing.T) {
	c := New(newFake(100, nil), slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, tt := range []struct {
		name   string
		target Target
		want   string
	}{
		{"no service", Target{Keep: 3}, "no service of the family is known"},
		{"no running revision", Target{Keep: 3, Services: one(types.Service{})}, "running task definition is not known"},
		{"one service of several without a running revision", Target{Keep: 3, Services: []Service{
			{Described: running("web:3")}, {Described: types.Service{ServiceArn: aws.String("arn:aws:ecs:eu-west-1:123456789012:service/prod/web")}},
		}}, "arn:aws:ecs:eu-west-1:123456789012:service/prod/web: the service's running task definition is not known"},
		{"keep below two", Target{Keep: 1, Services: one(running("web:3"))}, "keep 1 is below 2"},
	} {
		if _, err := c.Plan(context.Background(), tt.target); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestThrottleClassification(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{&smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded"}, true},
		{fmt.Errorf("operation error ECS: DeregisterTaskDefinition: %w", &smithy.GenericAPIError{Code: "ThrottlingException"}), true},
		{&smithy.GenericAPIError{Code: "TooManyRequestsException"}, true},
		{&smithy.GenericAPIError{Code: "RequestLimitExceeded"}, true},
		{&smithy.GenericAPIError{Code: "ClientException", Message: "Too many concurrent attempts to create a new revision of the specified family."}, true},
		{fmt.Errorf("deregister web:3: %w", &smithy.GenericAPIError{Code: "ClientException", Message: "Too many concurrent attempts to create a new revision of the specified family."}), true},
		{&smithy.GenericAPIError{Code: "AccessDeniedException", Message: "Rate of calls is not the point"}, false},
		{&smithy.GenericAPIError{Code: "ClientException", Message: "The specified task definition does not exist."}, false},
		{errors.New("connection reset"), false},
	} {
		if got := Throttle(tt.err); got != tt.want {
			t.Errorf("Throttle(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

// TestDeleteRefusals: a revision ECS refuses to delete is a logged
// failure, not a deletion; the others of the call are deleted.
func TestDeleteRefusals(t *testing.T) {
	f := newFake(100, map[string]int{"web": 14})
	f.refuse["web:3"] = "The specified task definition is still in ACTIVE status."
	var logs bytes.Buffer
	c := New(f, logging.New(&logs, 0))
	res, err := c.Run(context.Background(), Target{Keep: 2, Delete: true, Services: one(running("web:14"))}, NewBudget(20))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Deregistered) != 12 || len(res.Deleted) != 11 || res.Throttled {
		t.Errorf("deregistered %d, deleted %d; want 12, 11", len(res.Deregistered), len(res.Deleted))
	}
	if diff := cmp.Diff(map[string]int{"ListTaskDefinitions": 2, "DescribeTaskDefinition": 12, "DeregisterTaskDefinition": 12, "DeleteTaskDefinitions": 2}, f.calls); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if !strings.Contains(logs.String(), `"msg":"cleanup","family":"web","revisions":[3],"outcome":"delete refused","detail":"The specified task definition is still in ACTIVE status."`) {
		t.Errorf("no refusal line:\n%s", logs.String())
	}
}

// BenchmarkPlanClean reports the calls planning a clean family makes
// (calls/op: 1, ListTaskDefinitions).
func BenchmarkPlanClean(b *testing.B) {
	f := newFake(100, map[string]int{"web": 10, "web-worker": 10})
	c := New(f, slog.New(slog.NewTextHandler(io.Discard, nil)))
	tg := Target{Keep: 10, Services: one(running("web:10"))}
	for b.Loop() {
		res, err := c.Run(context.Background(), tg, NewBudget(5))
		if err != nil || len(res.Deregistered) > 0 {
			b.Fatal(res, err)
		}
	}
	total := 0
	for _, n := range f.calls {
		total += n
	}
	b.ReportMetric(float64(total)/float64(b.N), "calls/op")
	b.ReportMetric(float64(f.calls["ListTaskDefinitions"])/float64(b.N), "lists/op")
}

// TestSharedFamilyKeepsEveryServicesRevisions: staging and prod share the
// family web (the deployer registers in the running revision's family).
// Staging moved on to web:10; prod runs web:3, deployed from web:2; a
// canary runs web:4, which was deregistered by hand (a service can run an
// INACTIVE revision). Cleaning up on staging's deploy deregisters none of
// prod's running revision and rollback candidates, and deletes none the
// canary runs; run again (a retried sweep), it does nothing more.
func TestSharedFamilyKeepsEveryServicesRevisions(t *testing.T) {
	f := newFake(100, map[string]int{"web": 10})
	for i, a := range f.arns {
		if ecsarn.Revision(a) == "web:4" {
			f.arns = append(f.arns[:i:i], f.arns[i+1:]...)
			f.inactive = append(f.inactive, a)
			break
		}
	}
	c := New(f, slog.New(slog.NewTextHandler(io.Discard, nil)))
	tg := Target{Keep: 3, Delete: true, Services: []Service{
		{Described: running("web:10"), Rollback: []string{"web:9", "web:10"}},
		{Described: running("web:3"), Rollback: []string{"web:2", "web:3"}},
		{Described: running("web:4")},
	}}
	res, err := c.Run(context.Background(), tg, NewBudget(100))
	if err != nil {
		t.Fatal(err)
	}
	want := Result{Family: "web", Deregistered: []string{"web:7", "web:6", "web:5", "web:1"}, Deleted: []string{"web:1", "web:5", "web:6", "web:7"}}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("first run (-want +got):\n%s", diff)
	}
	for _, rev := range []string{"web:3", "web:2", "web:4"} {
		if slices.Contains(res.Deregistered, rev) || slices.Contains(res.Deleted, rev) {
			t.Errorf("cleaned up %s, which another service of the family runs or rolls back to: %+v", rev, res)
		}
	}

	tg.SweepInactive = true
	res, err = c.Run(context.Background(), tg, NewBudget(100))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Result{Family: "web"}, res); diff != "" {
		t.Errorf("second run (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"web:2", "web:3", "web:8", "web:9", "web:10"}, revs(f.arns)); diff != "" {
		t.Errorf("ACTIVE after (-want +got):\n%s", diff)
	}
}

func revs(arns []string) []string {
	out := make([]string, len(arns))
	for i, a := range arns {
		out[i] = ecsarn.Revision(a)
	}
	return out
}
