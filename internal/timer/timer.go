// Package timer sets the product's timers: EventBridge Scheduler one-time
// schedules that invoke a function (the watcher) with a typed command
// (internal/work) at a given minute and delete themselves once they fired.
//
// A timer is named from what it is for (Name), so setting the same timer
// twice — a retried invocation, a duplicated event, a call whose answer was
// lost — finds the first one (Scheduler's ConflictException) and creates no
// second: that is success, not an error.
package timer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/scheduler"
	"github.com/aws/aws-sdk-go-v2/service/scheduler/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work"
)

// Environment variables of a function that sets timers. Both or neither:
// with neither, the function sets none (Config.Enabled).
const (
	EnvGroup   = "AUTODEPLOY_SCHEDULE_GROUP"
	EnvRoleARN = "AUTODEPLOY_SCHEDULER_ROLE_ARN"
)

// DefaultGroup is the schedule group the stack creates for the timers.
const DefaultGroup = "ecr-autodeploy"

// Lead is how far ahead of now a timer fires at the earliest: Scheduler
// fires an at() expression within its minute, so a time in the past or
// closer than this is moved to the first whole minute at least Lead ahead.
const Lead = time.Minute

// Scheduler is the one Scheduler call a timer makes.
type Scheduler interface {
	CreateSchedule(ctx context.Context, in *scheduler.CreateScheduleInput, optFns ...func(*scheduler.Options)) (*scheduler.CreateScheduleOutput, error)
}

// Config is where timers go: the schedule group and the role Scheduler
// assumes to invoke the target.
type Config struct {
	Group   string
	RoleARN string
}

// Enabled reports whether timers are configured (LoadConfig: both
// variables set).
func (c Config) Enabled() bool { return c.Group != "" && c.RoleARN != "" }

var (
	groupRE = regexp.MustCompile(`^[0-9a-zA-Z\-_.]{1,64}$`)
	roleRE  = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}$`)
	nameRE  = regexp.MustCompile(`^[0-9a-zA-Z\-_.]{1,64}$`)
	purpose = regexp.MustCompile(`^[a-z][a-z0-9]{0,15}$`)
)

// LoadConfig reads AUTODEPLOY_SCHEDULE_GROUP and
// AUTODEPLOY_SCHEDULER_ROLE_ARN through getenv. Neither set: the zero
// Config (no timers). One without the other, or a value Scheduler would
// refuse, is an error that names the variable: a half-configured timer
// would fail at the first deployment instead of at init.
func LoadConfig(getenv func(string) string) (Config, error) {
	c := Config{Group: getenv(EnvGroup), RoleARN: getenv(EnvRoleARN)}
	if c.Group == "" && c.RoleARN == "" {
		return Config{}, nil
	}
	var errs []error
	switch {
	case c.Group == "":
		errs = append(errs, fmt.Errorf("%s is not set but %s is: set both for timers (the stack's group is %s), or neither", EnvGroup, EnvRoleARN, DefaultGroup))
	case !groupRE.MatchString(c.Group):
		errs = append(errs, fmt.Errorf("%s=%q: want a schedule group name of 1-64 letters, digits, '-', '_' or '.'", EnvGroup, c.Group))
	}
	switch {
	case c.RoleARN == "":
		errs = append(errs, fmt.Errorf("%s is not set but %s is: set both for timers, or neither", EnvRoleARN, EnvGroup))
	case !roleRE.MatchString(c.RoleARN):
		errs = append(errs, fmt.Errorf("%s=%q: want an IAM role ARN (arn:aws:iam::<account>:role/<name>)", EnvRoleARN, c.RoleARN))
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Timers sets one-time schedules in one group.
type Timers struct {
	Scheduler Scheduler
	Config    Config
	// Now is the clock that says what is too soon (nil: time.Now).
	Now func() time.Time
}

// Timer is one timer to set: what it is for (Purpose, a short lower-case
// word, and Key, what it is about — a deployment id), when it is due, the
// function it invokes and the command it hands that function.
type Timer struct {
	Purpose string
	Key     string
	Due     time.Time
	// Target is the ARN of the function the schedule invokes.
	Target  string
	Command work.Command
}

// Set is a timer as it was set: its schedule's name and the moment the
// schedule fires (a whole minute, in UTC). Existed says a schedule of that
// name was there already (a retry, a duplicate): nothing new was created.
type Set struct {
	Name    string
	FiresAt time.Time
	Existed bool
}

// Set creates t's schedule: ScheduleExpression at(…) in UTC at FireTime,
// FlexibleTimeWindow OFF, ActionAfterCompletion DELETE, the command as the
// target's input. A schedule of its name already there is success.
func (ts *Timers) Set(ctx context.Context, t Timer) (Set, error) {
	if ts.Scheduler == nil || !ts.Config.Enabled() {
		return Set{}, errors.New("set timer: timers are not configured (no scheduler, schedule group or role)")
	}
	if t.Target == "" {
		return Set{}, fmt.Errorf("set %s timer for %s: no target function ARN", t.Purpose, t.Key)
	}
	if t.Command == nil {
		return Set{}, fmt.Errorf("set %s timer for %s: no command", t.Purpose, t.Key)
	}
	name, err := Name(t.Purpose, t.Key, t.Due)
	if err != nil {
		return Set{}, err
	}
	input, err := work.EncodeCommand(t.Command)
	if err != nil {
		return Set{}, fmt.Errorf("set timer %s: %w", name, err)
	}
	now := time.Now
	if ts.Now != nil {
		now = ts.Now
	}
	fires := FireTime(t.Due, now())
	_, err = ts.Scheduler.CreateSchedule(ctx, &scheduler.CreateScheduleInput{
		Name:                       aws.String(name),
		GroupName:                  aws.String(ts.Config.Group),
		ScheduleExpression:         aws.String(Expression(fires)),
		ScheduleExpressionTimezone: aws.String("UTC"),
		FlexibleTimeWindow:         &types.FlexibleTimeWindow{Mode: types.FlexibleTimeWindowModeOff},
		ActionAfterCompletion:      types.ActionAfterCompletionDelete,
		Description:                aws.String(fmt.Sprintf("ecr-autodeploy %s timer for %s, due %s", t.Purpose, t.Key, t.Due.UTC().Format(time.RFC3339))),
		Target: &types.Target{
			Arn:     aws.String(t.Target),
			RoleArn: aws.String(ts.Config.RoleARN),
			Input:   aws.String(string(input)),
		},
	})
	var conflict *types.ConflictException
	switch {
	case errors.As(err, &conflict):
		return Set{Name: name, FiresAt: fires, Existed: true}, nil
	case err != nil:
		return Set{}, fmt.Errorf("set timer %s in schedule group %s (fires %s): %w", name, ts.Config.Group, fires.Format(time.RFC3339), err)
	}
	return Set{Name: name, FiresAt: fires}, nil
}

// Name is the schedule's name for a timer of purpose about key due at due:
// "<purpose>-<20 hex digits of key's SHA-256>-<due's Unix minute, rounded
// up>", at most 46 characters of [0-9a-z-], so the same timer asked for
// twice has the same name whenever it is asked — the minute is the one
// asked for, not the one a late retry would move it to.
func Name(purposeName, key string, due time.Time) (string, error) {
	if !purpose.MatchString(purposeName) {
		return "", fmt.Errorf("timer purpose %q: want 1-16 lower-case letters and digits", purposeName)
	}
	if key == "" {
		return "", fmt.Errorf("%s timer: no key", purposeName)
	}
	if due.IsZero() {
		return "", fmt.Errorf("%s timer for %s: no due time", purposeName, key)
	}
	sum := sha256.Sum256([]byte(key))
	name := purposeName + "-" + hex.EncodeToString(sum[:10]) + "-" + strconv.FormatInt(ceilMinute(due).Unix()/60, 10)
	if !nameRE.MatchString(name) {
		return "", fmt.Errorf("%s timer for %s: name %q is not a schedule name", purposeName, key, name)
	}
	return name, nil
}

// FireTime is when a timer due at due fires, asked at now: the first whole
// minute on or after due (never early: Scheduler fires within the minute
// it is given), and not before the first whole minute at least Lead after
// now.
func FireTime(due, now time.Time) time.Time {
	fires := ceilMinute(due)
	if earliest := ceilMinute(now.Add(Lead)); fires.Before(earliest) {
		fires = earliest
	}
	return fires
}

// Expression is Scheduler's one-time expression for t, in UTC.
func Expression(t time.Time) string {
	return "at(" + t.UTC().Format("2006-01-02T15:04:05") + ")"
}

func ceilMinute(t time.Time) time.Time {
	t = t.UTC()
	if m := t.Truncate(time.Minute); !m.Equal(t) {
		return m.Add(time.Minute)
	}
	return t
}

// invoked is the function a timer invokes: configured, else the function
// this invocation runs in (lambdacontext's InvokedFunctionArn) — the
// watcher itself, whose own ARN the stack cannot put in its environment
// without a cycle. "" outside a Lambda invocation with none configured.
func invoked(ctx context.Context, configured string) string {
	if configured != "" {
		return configured
	}
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		return lc.InvokedFunctionArn
	}
	return ""
}
