package timer

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work"
)

// TestGateTimerOnMoto sets a bake's timer in moto's Scheduler, twice (a
// last completion delivered twice): one schedule, in the group, firing at
// the bake's end rounded up, deleting itself, invoking the watcher the
// invocation ran as with the gate-due command. Without a watcher ARN it
// sets nothing and says why.
func TestGateTimerOnMoto(t *testing.T) {
	m := testenv.StartMoto(t)
	ctx := context.Background()
	admin := scheduler.NewFromConfig(m.AWSConfig())
	if _, err := admin.CreateScheduleGroup(ctx, &scheduler.CreateScheduleGroupInput{Name: aws.String(DefaultGroup)}); err != nil {
		t.Fatal(err)
	}
	clock := time.Now().UTC()
	g := NewGateTimers(&Timers{Scheduler: admin, Config: Config{Group: DefaultGroup, RoleARN: role}, Now: func() time.Time { return clock }})
	digest := "sha256:" + strings.Repeat("c", 64)
	due := clock.Add(15 * time.Minute)

	if err := g.SetGateTimer(ctx, "bake", "web-staging", digest, due); err == nil || !strings.Contains(err.Error(), "no watcher ARN") {
		t.Errorf("outside an invocation: %v, want it to say there is no watcher ARN", err)
	}
	lc := lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{InvokedFunctionArn: watcher})
	var sets []Set
	for i := range 2 {
		s, err := g.Set(lc, "bake", "web-staging", digest, due)
		if err != nil {
			t.Fatalf("delivery %d: %v", i+1, err)
		}
		sets = append(sets, s)
	}
	if sets[0].Name != sets[1].Name || sets[0].Existed || !sets[1].Existed || !strings.HasPrefix(sets[0].Name, PurposeGate+"-") {
		t.Errorf("deliveries set %+v, want one gate-… schedule, found by the second", sets)
	}
	list, err := admin.ListSchedules(ctx, &scheduler.ListSchedulesInput{GroupName: aws.String(DefaultGroup)})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Schedules) != 1 {
		t.Fatalf("%d schedules, want 1", len(list.Schedules))
	}
	got, err := admin.GetSchedule(ctx, &scheduler.GetScheduleInput{Name: aws.String(sets[0].Name), GroupName: aws.String(DefaultGroup)})
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := work.DecodeCommand([]byte(aws.ToString(got.Target.Input)))
	if err != nil {
		t.Fatal(err)
	}
	type schedule struct {
		Expression, After, Target, Role string
		Command                         work.Command
	}
	want := schedule{Expression(FireTime(due, clock)), "DELETE", watcher, role, work.GateDue{Gate: "bake", Rule: "web-staging", Digest: digest}}
	if diff := cmp.Diff(want, schedule{aws.ToString(got.ScheduleExpression), string(got.ActionAfterCompletion),
		aws.ToString(got.Target.Arn), aws.ToString(got.Target.RoleArn), cmd}); diff != "" {
		t.Errorf("schedule (-want +got):\n%s", diff)
	}
	if NewGateTimers(nil) != nil {
		t.Error("NewGateTimers(nil) is not nil: a watcher without timers would set them")
	}
}
