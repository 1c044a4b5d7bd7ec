package gate

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

var alarms = []string{"web-5xx", "222222222222:web-latency"}

func startBake(ctx context.Context, t *testing.T, s *Store, rule string) {
	t.Helper()
	if _, created, err := s.StartBake(ctx, BakeRequest{Rule: rule, Digest: d(1), Tag: "main-1", PushedAt: base, At: base, Bake: 15 * time.Minute, Alarms: alarms}); err != nil || !created {
		t.Fatalf("StartBake: %v, %v", created, err)
	}
}

func baked(b Bake, applied bool, err error) (outcome, error) {
	detail := b.Alarm
	if !b.AlarmAt.IsZero() {
		detail += "@" + b.AlarmAt.Sub(base).String()
	}
	return outcome{State: b.State, Applied: applied, Detail: detail}, err
}

func fired(alarm string, at time.Duration) func(ctx context.Context, s *Store, rule, caller string) (outcome, error) {
	return func(ctx context.Context, s *Store, rule, _ string) (outcome, error) {
		return baked(s.AlarmFired(ctx, rule, d(1), alarm, base.Add(at)))
	}
}

func end(at time.Duration, firing *Firing) func(ctx context.Context, s *Store, rule, caller string) (outcome, error) {
	return func(ctx context.Context, s *Store, rule, _ string) (outcome, error) {
		return baked(s.EndBake(ctx, rule, d(1), base.Add(at), firing))
	}
}

func TestBakeTransitions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	baking := func(ctx context.Context, t *testing.T, s *Store, rule string) { startBake(ctx, t, s, rule) }
	then := func(step func(ctx context.Context, s *Store, rule, caller string) (outcome, error)) func(ctx context.Context, t *testing.T, s *Store, rule string) {
		return func(ctx context.Context, t *testing.T, s *Store, rule string) {
			startBake(ctx, t, s, rule)
			if _, err := step(ctx, s, rule, "setup"); err != nil {
				t.Fatal(err)
			}
		}
	}
	rows := []transition{
		{name: "baking → not promoted by an alarm, with its time", setup: baking, act: fired("web-5xx", 7*time.Minute),
			first: outcome{State: NotPromoted, Applied: true, Detail: "web-5xx@7m0s"}, again: outcome{State: NotPromoted, Detail: "web-5xx@7m0s"}, final: NotPromoted},
		{name: "an alarm of a target account, as the rule names it", setup: baking, act: fired("222222222222:web-latency", time.Minute),
			first: outcome{State: NotPromoted, Applied: true, Detail: "222222222222:web-latency@1m0s"},
			again: outcome{State: NotPromoted, Detail: "222222222222:web-latency@1m0s"}, final: NotPromoted},
		{name: "an alarm at the bake's last moment counts", setup: baking, act: fired("web-5xx", 15*time.Minute),
			first: outcome{State: NotPromoted, Applied: true, Detail: "web-5xx@15m0s"}, again: outcome{State: NotPromoted, Detail: "web-5xx@15m0s"}, final: NotPromoted},
		{name: "an alarm it does not watch changes nothing", setup: baking, act: fired("api-5xx", time.Minute),
			first: outcome{State: Baking}, again: outcome{State: Baking}, final: Baking},
		{name: "an alarm from before the bake changes nothing", setup: baking, act: fired("web-5xx", -time.Second),
			first: outcome{State: Baking}, again: outcome{State: Baking}, final: Baking},
		{name: "an alarm after the bake changes nothing", setup: baking, act: fired("web-5xx", 15*time.Minute+time.Millisecond),
			first: outcome{State: Baking}, again: outcome{State: Baking}, final: Baking},
		{name: "baking → promoted at its end with no alarm", setup: baking, act: end(15*time.Minute, nil),
			first: outcome{State: Promoted, Applied: true}, again: outcome{State: Promoted}, final: Promoted},
		{name: "baking → not promoted at its end by an alarm in ALARM then", setup: baking,
			act:   end(16*time.Minute, &Firing{Alarm: "web-5xx", Since: base.Add(14 * time.Minute)}),
			first: outcome{State: NotPromoted, Applied: true, Detail: "web-5xx@14m0s"}, again: outcome{State: NotPromoted, Detail: "web-5xx@14m0s"}, final: NotPromoted},
		{name: "not ended before its time", setup: baking, act: end(15*time.Minute-time.Millisecond, nil),
			first: outcome{State: Baking}, again: outcome{State: Baking}, final: Baking},
		{name: "an alarm after promotion changes nothing", setup: then(end(15*time.Minute, nil)), act: fired("web-5xx", 10*time.Minute),
			first: outcome{State: Promoted}, again: outcome{State: Promoted}, final: Promoted},
		{name: "the end after an alarm changes nothing", setup: then(fired("web-5xx", time.Minute)), act: end(15*time.Minute, nil),
			first: outcome{State: NotPromoted, Detail: "web-5xx@1m0s"}, again: outcome{State: NotPromoted, Detail: "web-5xx@1m0s"}, final: NotPromoted},
		{name: "baking, started once", setup: func(context.Context, *testing.T, *Store, string) {},
			act: func(ctx context.Context, s *Store, rule, _ string) (outcome, error) {
				return baked(s.StartBake(ctx, BakeRequest{Rule: rule, Digest: d(1), At: base, Bake: time.Minute, Alarms: alarms}))
			},
			first: outcome{State: Baking, Applied: true}, again: outcome{State: Baking}, final: Baking},
	}
	runTransitions(t, e, func(ctx context.Context, s *Store, rule string) (State, error) {
		b, _, err := s.GetBake(ctx, rule, d(1))
		return b.State, err
	}, rows)
}

// An alarm and the bake's end racing: exactly one decides, and the bake
// says which.
func TestBakeAlarmRacesItsEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	startBake(ctx, t, e.store, "staging")
	results := make(chan Bake, 2)
	applied := make(chan bool, 2)
	for _, f := range []func() (Bake, bool, error){
		func() (Bake, bool, error) {
			return e.store.AlarmFired(ctx, "staging", d(1), "web-5xx", base.Add(15*time.Minute))
		},
		func() (Bake, bool, error) {
			return e.store.EndBake(ctx, "staging", d(1), base.Add(15*time.Minute), nil)
		},
	} {
		go func() {
			b, ok, err := f()
			if err != nil {
				t.Error(err)
			}
			results <- b
			applied <- ok
		}()
	}
	a, b := <-applied, <-applied
	<-results
	<-results
	if a == b {
		t.Errorf("alarm and end both applied = %v; want exactly one", a)
	}
	got, _, err := e.store.GetBake(ctx, "staging", d(1))
	if err != nil || (got.State == NotPromoted) != (got.Alarm == "web-5xx") || got.State == Baking {
		t.Errorf("bake after the race: %+v, %v", got, err)
	}
}

// What a bake records, and the sample alarm event's fields the watcher
// will pass (its name and the state's time, CloudWatch's own format).
func TestBakeRecordsTheSampleAlarm(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	var ev struct {
		DetailType string `json:"detail-type"`
		Detail     struct {
			AlarmName string `json:"alarmName"`
			State     struct {
				Value     string `json:"value"`
				Timestamp string `json:"timestamp"`
			} `json:"state"`
		} `json:"detail"`
	}
	if err := json.Unmarshal(testenv.Event(t, "cloudwatch-alarm-state-change.json"), &ev); err != nil {
		t.Fatal(err)
	}
	at, err := time.Parse("2006-01-02T15:04:05.000-0700", ev.Detail.State.Timestamp)
	if err != nil || ev.DetailType != "CloudWatch Alarm State Change" || ev.Detail.State.Value != "ALARM" {
		t.Fatalf("sample alarm event: %+v, %v", ev, err)
	}
	_, created, err := e.store.StartBake(ctx, BakeRequest{Rule: "web-staging", Digest: d(1), Tag: "main-4f2a9c1", PushedAt: base, At: base.Add(2 * time.Minute),
		Bake: 15 * time.Minute, Alarms: []string{"web-staging-5xx", "web-staging-latency"}})
	if err != nil || !created {
		t.Fatal(created, err)
	}
	b, applied, err := e.store.AlarmFired(ctx, "web-staging", d(1), ev.Detail.AlarmName, at)
	if err != nil || !applied {
		t.Fatal(applied, err)
	}
	want := Bake{Rule: "web-staging", Digest: d(1), Tag: "main-4f2a9c1", State: NotPromoted, PushedAt: base, StartedAt: base.Add(2 * time.Minute),
		Due: base.Add(17 * time.Minute), Alarms: []string{"web-staging-5xx", "web-staging-latency"}, Alarm: "web-staging-5xx",
		AlarmAt: at.UTC(), EndedAt: at.UTC()}
	if diff := cmp.Diff(want, b); diff != "" {
		t.Errorf("bake (-want +got):\n%s", diff)
	}
	if _, _, err := e.store.StartBake(ctx, BakeRequest{Rule: "x", Digest: d(2), At: base, Bake: time.Minute}); err == nil || !strings.Contains(err.Error(), "no alarms") {
		t.Errorf("a bake without alarms: %v", err)
	}
}
