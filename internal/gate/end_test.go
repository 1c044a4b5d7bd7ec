package gate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecrevent"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/metrics"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/notify"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// alarmState is one alarm as a fake CloudWatch answers it.
type alarmState struct {
	value cwtypes.StateValue
	since time.Time
}

// fakeAlarms is CloudWatch's alarm states per place (region/role). A
// fake: moto's alarms take their state time from the wall clock, while
// the tests need sub-second times of their own, and alarms of a target
// account read through its role.
type fakeAlarms struct {
	mu     sync.Mutex
	states map[string]map[string]alarmState // region/role → name → state
	calls  []string                         // region/role: names
}

func (a *fakeAlarms) set(place, name string, st alarmState) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.states[place] == nil {
		a.states[place] = map[string]alarmState{}
	}
	a.states[place][name] = st
}

func (a *fakeAlarms) take() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := a.calls
	a.calls = nil
	return out
}

func (a *fakeAlarms) reader(region, role string) AlarmReader {
	return alarmReader{a: a, place: region + "/" + role}
}

type alarmReader struct {
	a     *fakeAlarms
	place string
}

func (r alarmReader) AlarmStates(_ context.Context, names []string) ([]AlarmState, error) {
	r.a.mu.Lock()
	defer r.a.mu.Unlock()
	r.a.calls = append(r.a.calls, r.place+": "+strings.Join(names, ","))
	var out []AlarmState
	for _, n := range names {
		if st, ok := r.a.states[r.place][n]; ok {
			out = append(out, AlarmState{Name: n, InAlarm: st.value == cwtypes.StateValueAlarm, Since: st.since})
		}
	}
	return out, nil
}

// fakeTimers records the timers set. A fake: internal/timer's Scheduler
// client is tested on moto in its package.
type fakeTimers struct {
	mu  sync.Mutex
	set []string
}

func (f *fakeTimers) SetGateTimer(_ context.Context, gate, rule, digest string, due time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.set = append(f.set, fmt.Sprintf("%s %s %s at %s", gate, rule, digest[len(digest)-4:], due.UTC().Format(time.RFC3339Nano)))
	return nil
}

func (f *fakeTimers) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.set
	f.set = nil
	return out
}

// The places of the baked rule's alarms: svc-5xx in the central account,
// svc-latency in the target account, read through its watcher role.
var (
	centralAlarms = central.Region + "/"
	targetAlarms  = "eu-central-1/arn:aws:iam::222222222222:role/ecr-autodeploy-watcher-eu-central-1"
)

// bakeGate is the gate of a bake's not-promoted notice: the alarm as the
// rule names it, and where to read it (none for an alarm not found).
func bakeGate(alarm string, at time.Time) notify.Gate {
	g := notify.Gate{Kind: "bake", Alarm: alarm, AlarmAt: at, Rollbacks: []string{
		"autodeploy rollback --cluster staging --service svc --account " + central.Account + " --region " + central.Region,
		"autodeploy rollback --cluster staging --service svc --account 222222222222 --region eu-central-1",
	}}
	switch alarm {
	case "svc-5xx":
		g.AlarmName, g.AlarmRegion = "svc-5xx", central.Region
	case "222222222222:svc-latency":
		g.AlarmName, g.AlarmRegion, g.AlarmAccount = "svc-latency", "eu-central-1", "222222222222"
	}
	return g
}

func (f *fixture) end(t *testing.T, kind Kind, rule, digest string) error {
	t.Helper()
	return f.g.End(context.Background(), kind, rule, digest)
}

// An approval or scan ends at its due time once, however often its timer
// fires; fired early, it changes nothing.
func testEndApprovalAndScan(t *testing.T, f *fixture) {
	ctx := context.Background()
	asked := base.Add(1100 * ms)
	f.clock.Set(asked)
	f.admit(t, "approved", approvalPush(1, "v1.0.0", base.Add(100*ms)), FromPush)
	p := f.push(t, "web", "end-1", base.Add(200*ms))
	f.admit(t, "scanned", p, FromPush)
	f.notices.take()
	f.logs.lines(t, "gate")
	approvalDue, scanDue := asked.Add(24*time.Hour), asked.Add(30*time.Minute)
	for _, tc := range []struct {
		name    string
		kind    Kind
		rule    string
		digest  string
		at      time.Time
		state   State
		notices []notify.Notice
	}{
		{"approval before its time", KindApproval, "approved", d(1), approvalDue.Add(-ms), Pending, nil},
		{"approval at its time: expired", KindApproval, "approved", d(1), approvalDue, Expired, []notify.Notice{
			notify.GateNotice(notify.Notice{Rule: "approved", Repository: "api", Tag: "v1.0.0", Digest: d(1)},
				notify.ApprovalExpired, notify.Gate{Kind: "approval", Due: approvalDue})}},
		{"approval after it expired", KindApproval, "approved", d(1), approvalDue.Add(time.Hour), Expired, nil},
		{"scan before its time", KindScan, "scanned", p.Digest, scanDue.Add(-ms), Pending, nil},
		{"scan at its time: timed out", KindScan, "scanned", p.Digest, scanDue.Add(5 * ms), TimedOut, []notify.Notice{
			notify.GateNotice(notify.Notice{Rule: "scanned", Repository: "web", Tag: "end-1", Digest: p.Digest, Reason: "no scan result within 30m (scan.wait)",
				Account: central.Account, Region: central.Region},
				notify.ScanNotDone, notify.Gate{Kind: "scan", Due: scanDue, Targets: []string{"prod/web in " + central.Account + " " + central.Region}})}},
		{"scan after it timed out", KindScan, "scanned", p.Digest, scanDue.Add(time.Hour), TimedOut, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.clock.Set(tc.at)
			for delivery := 1; delivery <= 2; delivery++ {
				if err := f.end(t, tc.kind, tc.rule, tc.digest); err != nil {
					t.Fatalf("delivery %d: %v", delivery, err)
				}
			}
			var state State
			if tc.kind == KindApproval {
				state = stored(f.store.GetApproval(ctx, tc.rule, tc.digest)).State
			} else {
				state = stored(f.store.GetScan(ctx, tc.rule, tc.digest)).State
			}
			if state != tc.state {
				t.Errorf("state = %s, want %s", state, tc.state)
			}
			if diff := cmp.Diff(tc.notices, f.notices.take()); diff != "" {
				t.Errorf("notices over two deliveries (-want +got):\n%s", diff)
			}
			if n, ls := len(tc.notices), f.logs.lines(t, "gate"); len(ls) != n {
				t.Errorf("gate log %v; want %d line(s)", gateLog(ls), n)
			}
		})
	}
	if err := f.end(t, "deploy", "approved", d(1)); err == nil || !strings.Contains(err.Error(), "no such gate") {
		t.Errorf("End of an unknown gate: %v", err)
	}
}

// promotions records the promotions a bake's end asks for; fail fails the
// next ones. A fake: Promote is the watcher's tagging of the digest,
// tested in its package; here what matters is when it is called.
type promotions struct {
	mu   sync.Mutex
	got  []string
	fail []error
}

func (p *promotions) promote(_ context.Context, r *rules.Rule, b Bake) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.got = append(p.got, r.Name+" "+b.Tag+" "+b.Digest[len(b.Digest)-4:])
	if len(p.fail) > 0 {
		err := p.fail[0]
		p.fail = p.fail[1:]
		return err
	}
	return nil
}

func (p *promotions) take() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.got
	p.got = nil
	return out
}

// A bake ends at its time by its alarms' state then: promoted (and
// Promote called, again on every retry, so a failed promotion is retried),
// or not promoted, noticed with the alarm and its time.
func testEndBake(t *testing.T, f *fixture) {
	ctx := context.Background()
	alarmsAt := &fakeAlarms{states: map[string]map[string]alarmState{}}
	timers := &fakeTimers{}
	promos := &promotions{}
	f.g.Alarms, f.g.Timers, f.g.Promote = alarmsAt.reader, timers, promos.promote
	r := f.rule(t, "baked")
	started := base.Add(2*time.Minute + 125*ms)
	due := started.Add(15 * time.Minute)
	okAlarm := alarmState{value: cwtypes.StateValueOk, since: base.Add(-time.Hour)}
	firingAt := started.Add(7*time.Minute + 250*ms)
	notPromoted := func(digest, alarm string, at time.Time) notify.Notice {
		reason := fmt.Sprintf("alarm %s in ALARM at %s during the bake", alarm, rfc(at))
		return notify.GateNotice(notify.Notice{Rule: "baked", Repository: "svc", Tag: "main-" + digest[len(digest)-1:], Digest: digest, Reason: reason,
			PromotedTag: "verified-main-" + digest[len(digest)-1:]}, notify.NotPromoted, bakeGate(alarm, at))
	}
	bothRead := []string{centralAlarms + ": svc-5xx", targetAlarms + ": svc-latency"}
	for i, tc := range []struct {
		name string
		// latency and fiveXX: the alarms' states at the bake's end (nil:
		// not found).
		fiveXX, latency *alarmState
		fail            []error // Promote's failures
		at              time.Time
		// errs: what each of two deliveries of End returns ("": nil).
		errs     []string
		state    State
		promoted []string
		notices  []notify.Notice
		reads    []string
	}{
		{name: "none in ALARM: promoted, Promote called at each delivery", fiveXX: &okAlarm, latency: &okAlarm, at: due.Add(40 * ms),
			errs: []string{"", ""}, state: Promoted, promoted: []string{"baked main-1 0001", "baked main-1 0001"}, reads: bothRead},
		{name: "a failed promotion is an error; its retry promotes", fiveXX: &okAlarm, latency: &okAlarm, at: due,
			fail:  []error{errors.New("tag the digest: ThrottlingException")},
			errs:  []string{"promote " + d(2) + " for rule baked after its bake: tag the digest: ThrottlingException", ""},
			state: Promoted, promoted: []string{"baked main-2 0002", "baked main-2 0002"}, reads: bothRead},
		{name: "an alarm of the target account in ALARM: not promoted, noticed once", fiveXX: &okAlarm,
			latency: &alarmState{value: cwtypes.StateValueAlarm, since: firingAt}, at: due.Add(ms), errs: []string{"", ""}, state: NotPromoted,
			notices: []notify.Notice{notPromoted(d(3), "222222222222:svc-latency", firingAt)}, reads: bothRead},
		{name: "an alarm not found: not promoted", latency: &okAlarm, at: due.Add(ms), errs: []string{"", ""}, state: NotPromoted,
			notices: []notify.Notice{notPromoted(d(4), "svc-5xx (not found)", due.Add(ms))}, reads: bothRead[:1]},
		{name: "ended early: nothing changes", fiveXX: &alarmState{value: cwtypes.StateValueAlarm, since: firingAt}, at: due.Add(-ms),
			errs: []string{"", ""}, state: Baking},
	} {
		t.Run(tc.name, func(t *testing.T) {
			digest, tag := d(i+1), fmt.Sprintf("main-%d", i+1)
			f.clock.Set(started)
			b, created, err := f.g.StartBake(ctx, r, digest, tag, base.Add(10*ms), started)
			if err != nil || !created || b.State != Baking || !b.Due.Equal(due) {
				t.Fatalf("StartBake = %+v, %v, %v", b, created, err)
			}
			if diff := cmp.Diff([]string{"bake baked " + digest[len(digest)-4:] + " at " + due.Format(time.RFC3339Nano)}, timers.take()); diff != "" {
				t.Errorf("timer (-want +got):\n%s", diff)
			}
			if tc.fiveXX != nil {
				alarmsAt.set(centralAlarms, "svc-5xx", *tc.fiveXX)
			}
			if tc.latency != nil {
				alarmsAt.set(targetAlarms, "svc-latency", *tc.latency)
			}
			promos.mu.Lock()
			promos.fail = tc.fail
			promos.mu.Unlock()
			f.logs.lines(t, "gate")
			f.clock.Set(tc.at)
			for n, want := range tc.errs {
				err := f.end(t, KindBake, "baked", digest)
				if got := fmt.Sprint(err); (want == "" && err != nil) || (want != "" && got != want) {
					t.Errorf("delivery %d: End = %v, want %q", n+1, err, want)
				}
			}
			got := stored(f.store.GetBake(ctx, "baked", digest))
			if got.State != tc.state {
				t.Errorf("bake = %+v, want %s", got, tc.state)
			}
			if diff := cmp.Diff(tc.promoted, promos.take()); diff != "" {
				t.Errorf("promotions (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.notices, f.notices.take()); diff != "" {
				t.Errorf("notices (-want +got):\n%s", diff)
			}
			// The alarms are read at the first delivery's end only: the
			// second finds the bake ended.
			if diff := cmp.Diff(tc.reads, alarmsAt.take()); diff != "" {
				t.Errorf("alarms read (-want +got):\n%s", diff)
			}
			// Clear the row's alarms for the next.
			alarmsAt.mu.Lock()
			alarmsAt.states = map[string]map[string]alarmState{}
			alarmsAt.mu.Unlock()
		})
	}
	// A bake delivered twice sets its timer again (the first may have
	// failed before setting it), and starts nothing new.
	f.clock.Set(started)
	if _, created, err := f.g.StartBake(ctx, r, d(5), "main-5", base, started); err != nil || created {
		t.Errorf("StartBake again = %v, %v; want the bake that exists", created, err)
	}
	if got := timers.take(); len(got) != 1 {
		t.Errorf("timers of a second StartBake: %v, want one", got)
	}
	// A completion handled late (a retry, a redrive) bakes from now, not
	// from the completion: alarms that fired before the bake existed found
	// no bake to stop, so that time was not watched.
	late := started.Add(8*time.Minute + 3*ms)
	f.clock.Set(late)
	b, created, err := f.g.StartBake(ctx, r, d(20), "main-20", base, started)
	if err != nil || !created || !b.StartedAt.Equal(late) || !b.Due.Equal(late.Add(r.Promote.Bake)) {
		t.Errorf("a late completion's bake = %+v, %v, %v; want it from %s", b, created, err, late)
	}
	timers.take()
}

// An alarm entering ALARM stops the open bakes that watch it, once; its
// OK state, an alarm of another place or one no bake watches stop none.
func testAlarmChanged(t *testing.T, f *fixture) {
	ctx := context.Background()
	r := f.rule(t, "baked")
	started := base.Add(time.Minute + 300*ms)
	f.clock.Set(started)
	for i := 1; i <= 2; i++ {
		if _, _, err := f.g.StartBake(ctx, r, d(i), fmt.Sprintf("main-%d", i), base, started); err != nil {
			t.Fatal(err)
		}
	}
	target := rules.Place{Account: "222222222222", Region: "eu-central-1"}
	at := started.Add(3*time.Minute + 456*ms)
	for _, tc := range []struct {
		name    string
		where   rules.Place
		alarm   string
		state   string
		at      time.Time
		stopped []int // per delivery
	}{
		{"OK changes nothing", central, "svc-5xx", "OK", at, []int{0}},
		{"INSUFFICIENT_DATA changes nothing", central, "svc-5xx", "INSUFFICIENT_DATA", at, []int{0}},
		{"the name in another place changes nothing", target, "svc-5xx", "ALARM", at, []int{0}},
		{"an alarm no bake watches changes nothing", central, "other-5xx", "ALARM", at, []int{0}},
		{"an alarm before the bake began changes nothing", target, "svc-latency", "ALARM", started.Add(-ms), []int{0}},
		{"ALARM stops both bakes, once", target, "svc-latency", "ALARM", at, []int{2, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []int
			for range tc.stopped {
				n, err := f.g.AlarmChanged(ctx, tc.where, tc.alarm, tc.state, tc.at)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, n)
			}
			if diff := cmp.Diff(tc.stopped, got); diff != "" {
				t.Errorf("stopped per delivery (-want +got):\n%s", diff)
			}
		})
	}
	var want []notify.Notice
	for i := 1; i <= 2; i++ {
		b := stored(f.store.GetBake(ctx, "baked", d(i)))
		if b.State != NotPromoted || b.Alarm != "222222222222:svc-latency" || !b.AlarmAt.Equal(at) {
			t.Errorf("bake %d = %+v; want not promoted by svc-latency at %s", i, b, at)
		}
		reason := "alarm 222222222222:svc-latency in ALARM at " + rfc(at) + " during the bake"
		want = append(want, notify.GateNotice(notify.Notice{Rule: "baked", Repository: "svc", Tag: fmt.Sprintf("main-%d", i), Digest: d(i), Reason: reason,
			PromotedTag: fmt.Sprintf("verified-main-%d", i)}, notify.NotPromoted, bakeGate("222222222222:svc-latency", at)))
	}
	got := f.notices.take()
	slices.SortFunc(got, func(a, b notify.Notice) int { return strings.Compare(a.Digest, b.Digest) })
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("notices (-want +got):\n%s", diff)
	}
}

// A scan's result ends its gate for the rules of its repository: a clean
// one hands off the push that waited for it, once; with no push waiting,
// nothing; a blocked one is noticed once. Inspector's event counts only
// CRITICAL, HIGH and MEDIUM: it judges a rule blocking no more (scanned),
// and hands a rule blocking LOW (strict) back to the deployer, once, with
// nothing judged.
func testScanResult(t *testing.T, f *fixture) {
	ctx := context.Background()
	type handOff struct {
		Push   ecrevent.Push
		Origin string
	}
	var mu sync.Mutex
	var handed []handOff
	f.g.HandOff = func(_ context.Context, p ecrevent.Push, _, origin string) error {
		mu.Lock()
		defer mu.Unlock()
		handed = append(handed, handOff{p, origin})
		return nil
	}
	takeHanded := func() []handOff {
		mu.Lock()
		defer mu.Unlock()
		out := handed
		handed = nil
		return out
	}
	pushed := base.Add(1*time.Second + 987*ms)
	wait := func(rule, repository string, i int) {
		t.Helper()
		if _, created, err := f.store.StartScan(ctx, ScanRequest{Rule: rule, Digest: d(i), Repository: repository, Tag: fmt.Sprintf("v1.%d", i),
			PushedAt: pushed, At: pushed.Add(300 * ms), Wait: 30 * time.Minute}); err != nil || !created {
			t.Fatal(created, err)
		}
	}
	f.clock.Set(base.Add(5*time.Minute + 5*ms))
	// Inspector's counts: no LOW, ever (its event has none).
	inspectorClean := map[string]int{"CRITICAL": 0, "HIGH": 0, "MEDIUM": 0, "TOTAL": 0}
	for _, tc := range []struct {
		name    string
		rule    string // "": scanned
		waiting bool
		ev      ScanEvent
		judged  []string
		state   State
		handed  []handOff
		notices []string
	}{
		{name: "clean with a push waiting: handed off once", waiting: true,
			ev:     ScanEvent{Registry: central, Repository: "web", Digest: d(1), Complete: true, Counts: map[string]int{"LOW": 2}, Source: SourceECR},
			judged: []string{"scanned"}, state: Clean,
			handed: []handOff{{ecrevent.Push{EventID: HandOffID(KindScan, "scanned", d(1)), Account: central.Account, Region: central.Region, Time: pushed,
				Repository: "web", Tag: "v1.1", Digest: d(1)}, "scan of " + d(1) + " clean for rule scanned"}}},
		{name: "clean with no push waiting: nothing handed off",
			ev:     ScanEvent{Registry: central, Repository: "web", Digest: d(2), Complete: true, Source: SourceInspector},
			judged: []string{"scanned"}, state: Clean},
		{name: "blocked: noticed once", waiting: true,
			ev:     ScanEvent{Registry: central, Repository: "web", Digest: d(3), Complete: true, Counts: map[string]int{"HIGH": 1, "CRITICAL": 2}, Source: SourceECR},
			judged: []string{"scanned"}, state: Blocked, notices: []string{notify.ScanBlocked + " 0003"}},
		{name: "failed: noticed once", waiting: true,
			ev:     ScanEvent{Registry: central, Repository: "web", Digest: d(4), Failed: true, Reason: "UNSUPPORTED_IMAGE", Source: SourceECR},
			judged: []string{"scanned"}, state: ScanFailed, notices: []string{notify.ScanNotDone + " 0004"}},
		{name: "another registry's repository of that name: judged by no rule",
			ev: ScanEvent{Registry: rules.Place{Account: "333333333333", Region: central.Region}, Repository: "web", Digest: d(5), Complete: true, Source: SourceECR}},
		{name: "neither complete nor failed: ignored", waiting: true,
			ev: ScanEvent{Registry: central, Repository: "web", Digest: d(6), Source: SourceECR}, state: Pending},
		{name: "Inspector, a rule blocking CRITICAL and HIGH: judged clean by the event, handed off once", waiting: true,
			ev:     ScanEvent{Registry: central, Repository: "web", Digest: d(7), Complete: true, Counts: map[string]int{"MEDIUM": 3, "TOTAL": 3}, Source: SourceInspector},
			judged: []string{"scanned"}, state: Clean,
			handed: []handOff{{ecrevent.Push{EventID: HandOffID(KindScan, "scanned", d(7)), Account: central.Account, Region: central.Region, Time: pushed,
				Repository: "web", Tag: "v1.7", Digest: d(7)}, "scan of " + d(7) + " clean for rule scanned"}}},
		{name: "Inspector, a rule blocking CRITICAL and HIGH: blocked by the event, noticed once", waiting: true,
			ev:     ScanEvent{Registry: central, Repository: "web", Digest: d(8), Complete: true, Counts: map[string]int{"HIGH": 1, "TOTAL": 1}, Source: SourceInspector},
			judged: []string{"scanned"}, state: Blocked, notices: []string{notify.ScanBlocked + " 0008"}},
		{name: "Inspector, a rule blocking LOW, a push waiting: handed back once, nothing judged", rule: "strict", waiting: true,
			ev:     ScanEvent{Registry: central, Repository: "lib", Digest: d(9), Complete: true, Counts: inspectorClean, Source: SourceInspector},
			judged: []string{"strict"}, state: Pending,
			handed: []handOff{{ecrevent.Push{EventID: HandOffID(KindScan, "strict", d(9)), Account: central.Account, Region: central.Region, Time: pushed,
				Repository: "lib", Tag: "v1.9", Digest: d(9)}, "scan of " + d(9) + " by Inspector for rule strict, to be judged by its findings"}}},
		{name: "Inspector, a rule blocking LOW, no push waiting: nothing written, nothing handed", rule: "strict",
			ev:     ScanEvent{Registry: central, Repository: "lib", Digest: d(10), Complete: true, Counts: inspectorClean, Source: SourceInspector},
			judged: []string{"strict"}},
		{name: "Inspector failed, a rule blocking LOW: failed by the event, noticed once", rule: "strict", waiting: true,
			ev:     ScanEvent{Registry: central, Repository: "lib", Digest: d(11), Failed: true, Reason: "UNSUPPORTED_IMAGE", Source: SourceInspector},
			judged: []string{"strict"}, state: ScanFailed, notices: []string{notify.ScanNotDone + " 0011"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rule := tc.rule
			if rule == "" {
				rule = "scanned"
			}
			i := must(strconv.Atoi(tc.ev.Digest[len(tc.ev.Digest)-4:]))
			if tc.waiting {
				wait(rule, tc.ev.Repository, i)
			}
			for delivery := 1; delivery <= 2; delivery++ {
				judged, err := f.g.ScanResult(ctx, tc.ev)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tc.judged, judged); diff != "" {
					t.Errorf("delivery %d: judged (-want +got):\n%s", delivery, diff)
				}
			}
			sc, found, err := f.store.GetScan(ctx, rule, tc.ev.Digest)
			if err != nil || found != (tc.state != "") || sc.State != tc.state {
				t.Errorf("scan = %+v, %v, %v; want %q", sc, found, err, tc.state)
			}
			if sc.State == Pending && (sc.Source != "" || sc.Counts != nil || !sc.EndedAt.IsZero()) {
				t.Errorf("pending scan = %+v; want no result written", sc)
			}
			if diff := cmp.Diff(tc.handed, takeHanded()); diff != "" {
				t.Errorf("hand-offs over two deliveries (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.notices, outcomes(f.notices.take())); diff != "" {
				t.Errorf("notices over two deliveries (-want +got):\n%s", diff)
			}
		})
	}
	// A push that comes after its clean result passes at once.
	if v := f.admit(t, "scanned", ecrevent.Push{Repository: "web", Tag: "v1.2", Digest: d(2), Time: pushed}, FromPush); !v.Pass {
		t.Errorf("a push after its clean result: %+v", v)
	}

	// A hand-off that fails: the event's retry (Lambda's) hands the push
	// off again, and once one went, a third delivery sends nothing.
	t.Run("a failed hand-off is sent again by the retry, once", func(t *testing.T) {
		wait("scanned", "web", 12)
		ev := ScanEvent{Registry: central, Repository: "web", Digest: d(12), Complete: true, Source: SourceECR}
		failing := f.g.HandOff
		f.g.HandOff = func(context.Context, ecrevent.Push, string, string) error {
			return fmt.Errorf("lambda: TooManyRequestsException")
		}
		if _, err := f.g.ScanResult(ctx, ev); err == nil {
			t.Fatal("a hand-off that failed: no error, so the event would not be retried")
		}
		f.g.HandOff = failing
		for range 2 {
			if _, err := f.g.ScanResult(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
		if got := takeHanded(); len(got) != 1 || got[0].Push.Digest != d(12) {
			t.Errorf("hand-offs after the failure: %+v, want one", got)
		}
	})
	// The deployer read it clean itself (a sweep, a push) and let its push
	// through then: the event that comes later hands nothing off.
	t.Run("judged clean by the deployer: the later event hands nothing off", func(t *testing.T) {
		wait("scanned", "web", 13)
		if _, applied, err := f.store.ScanCompleted(ctx, ScanResult{Rule: "scanned", Digest: d(13), Repository: "web", Block: []string{"CRITICAL"},
			Source: SourceDescribe, At: base.Add(time.Minute)}); err != nil || !applied {
			t.Fatal(applied, err)
		}
		if _, err := f.g.ScanResult(ctx, ScanEvent{Registry: central, Repository: "web", Digest: d(13), Complete: true, Source: SourceECR}); err != nil {
			t.Fatal(err)
		}
		if got := takeHanded(); len(got) != 0 {
			t.Errorf("hand-offs: %+v, want none", got)
		}
	})
}

// An Inspector event for a rule blocking LOW judges nothing: the push it
// hands back to the deployer is judged by the registry's findings, which
// count LOW (moto's static scan results), read by the deployer's Admit.
func testScanHandBack(t *testing.T, f *fixture) {
	ctx := context.Background()
	var mu sync.Mutex
	var handed []ecrevent.Push
	f.g.HandOff = func(_ context.Context, p ecrevent.Push, _, _ string) error {
		mu.Lock()
		defer mu.Unlock()
		handed = append(handed, p)
		return nil
	}
	f.clock.Set(base.Add(2*time.Second + 200*ms))
	p := f.push(t, "lib", "v2.0.0", base.Add(300*ms))
	if v := f.admit(t, "strict", p, FromPush); v.State != Pending {
		t.Fatalf("the push = %+v, want its scan pending", v)
	}
	// Inspector's event: nothing of what it counts, as its LOW findings
	// are not in it; delivered twice.
	f.scanned(t, p, "ACTIVE", "", map[string]int{"LOW": 2, "TOTAL": 2})
	f.clock.Set(base.Add(4*time.Minute + 400*ms))
	ev := ScanEvent{Registry: central, Repository: "lib", Digest: p.Digest, Complete: true,
		Counts: map[string]int{"CRITICAL": 0, "HIGH": 0, "MEDIUM": 0, "TOTAL": 0}, Source: SourceInspector}
	for delivery := 1; delivery <= 2; delivery++ {
		if _, err := f.g.ScanResult(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if sc := stored(f.store.GetScan(ctx, "strict", p.Digest)); sc.State != Pending {
		t.Errorf("scan after the event = %+v, want pending", sc)
	}
	mu.Lock()
	back := handed
	mu.Unlock()
	if len(back) != 1 || back[0].Digest != p.Digest || back[0].Tag != p.Tag || !back[0].Time.Equal(p.Time) {
		t.Fatalf("hand-offs over two deliveries = %+v; want the waiting push once", back)
	}
	f.notices.take()
	f.logs.lines(t, "gate")
	// The deployer's Admit of the handed-back push: blocked by its LOW.
	want := Verdict{Gate: KindScan, State: Blocked, Final: true, Reason: "blocked: 2 LOW"}
	if diff := cmp.Diff(want, f.admit(t, "strict", back[0], FromPush)); diff != "" {
		t.Errorf("the handed-back push (-want +got):\n%s", diff)
	}
	if sc := stored(f.store.GetScan(ctx, "strict", p.Digest)); sc.State != Blocked || sc.Source != SourceDescribe {
		t.Errorf("scan = %+v; want blocked by %s", sc, SourceDescribe)
	}
	if diff := cmp.Diff([]string{notify.ScanBlocked + " " + p.Digest[len(p.Digest)-4:]}, outcomes(f.notices.take())); diff != "" {
		t.Errorf("notices (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"scan blocked", "scan refused"}, gateOutcomes(f.logs.lines(t, "gate"))); diff != "" {
		t.Errorf("gate log (-want +got):\n%s", diff)
	}
}

// gateOutcomes are the msg="gate" lines as "gate outcome".
func gateOutcomes(ls []map[string]any) []string {
	var out []string
	for _, l := range ls {
		out = append(out, fmt.Sprintf("%v %v", l["gate"], l["outcome"]))
	}
	return out
}

// EndDue ends what is due, sets the timers of the approvals and scans due
// before ahead has passed, and counts the pending approvals per rule.
func testEndDue(t *testing.T, f *fixture) {
	ctx := context.Background()
	timers := &fakeTimers{}
	f.g.Timers = timers
	f.g.Alarms = (&fakeAlarms{states: map[string]map[string]alarmState{}}).reader
	now := base.Add(3*time.Hour + 333*ms)
	ask := func(rule string, i int, at time.Time) {
		if _, err := f.store.RequestApproval(ctx, ApprovalRequest{Rule: rule, Digest: d(i), Repository: "api", Tag: fmt.Sprintf("v%d", i),
			PushedAt: base.Add(time.Duration(i) * ms), At: at, Expires: 24 * time.Hour}); err != nil {
			t.Fatal(err)
		}
	}
	scan := func(i int, at time.Time) {
		if _, _, err := f.store.StartScan(ctx, ScanRequest{Rule: "scanned", Digest: d(i), Repository: "web", Tag: fmt.Sprintf("v%d", i),
			PushedAt: at, At: at, Wait: 30 * time.Minute}); err != nil {
			t.Fatal(err)
		}
	}
	// One approval per rule (a rule's newer push supersedes its older):
	// due past, due in 5m, due in 2h.
	ask("approved", 1, now.Add(-24*time.Hour-time.Second))
	ask("both", 2, now.Add(-24*time.Hour+5*time.Minute))
	ask("held", 3, now.Add(-22*time.Hour))
	scan(4, now.Add(-31*time.Minute)) // due past
	scan(5, now.Add(-20*time.Minute)) // due in 10m
	scan(6, now.Add(-15*time.Minute)) // due in 15m: at ahead's edge, not before it
	// A bake due in 5m: its timer is StartBake's, not the sweep's.
	if _, _, err := f.store.StartBake(ctx, BakeRequest{Rule: "baked", Digest: d(7), Tag: "main-7", At: now.Add(-10 * time.Minute), Bake: 15 * time.Minute,
		Alarms: []string{"svc-5xx"}}); err != nil {
		t.Fatal(err)
	}
	f.notices.take()
	f.logs.lines(t, "gate")
	f.clock.Set(now)
	for _, tc := range []struct {
		name    string
		ended   int
		timers  []string
		notices []string
		pending map[string]float64
	}{
		{"first pass", 2,
			[]string{
				"approval both 0002 at " + now.Add(5*time.Minute).UTC().Format(time.RFC3339Nano),
				"scan scanned 0005 at " + now.Add(10*time.Minute).UTC().Format(time.RFC3339Nano),
			},
			[]string{notify.ApprovalExpired + " 0001", notify.ScanNotDone + " 0004"},
			map[string]float64{"approved": 0, "both": 1, "held": 1}},
		{"delivered again: ends nothing twice", 0,
			[]string{
				"approval both 0002 at " + now.Add(5*time.Minute).UTC().Format(time.RFC3339Nano),
				"scan scanned 0005 at " + now.Add(10*time.Minute).UTC().Format(time.RFC3339Nano),
			},
			nil, map[string]float64{"approved": 0, "both": 1, "held": 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ended, err := f.g.EndDue(ctx, 15*time.Minute)
			if err != nil || ended != tc.ended {
				t.Errorf("EndDue = %d, %v; want %d", ended, err, tc.ended)
			}
			got := timers.take()
			slices.Sort(got)
			if diff := cmp.Diff(tc.timers, got); diff != "" {
				t.Errorf("timers (-want +got):\n%s", diff)
			}
			ns := outcomes(f.notices.take())
			slices.Sort(ns)
			if diff := cmp.Diff(tc.notices, ns); diff != "" {
				t.Errorf("notices (-want +got):\n%s", diff)
			}
			pending := map[string]float64{}
			for _, l := range f.logs.lines(t, "metrics") {
				aws, _ := l["_aws"].(map[string]any)
				cw, _ := aws["CloudWatchMetrics"].([]any)
				if len(cw) != 1 || aws["Timestamp"] != float64(now.UnixMilli()) {
					t.Errorf("EMF line %v: want one CloudWatchMetrics at %d", l, now.UnixMilli())
					continue
				}
				def, _ := cw[0].(map[string]any)
				if fmt.Sprint(def["Namespace"]) != metrics.Namespace || fmt.Sprint(def["Dimensions"]) != "[[rule]]" ||
					fmt.Sprint(def["Metrics"]) != "[map[Name:PendingApprovals Unit:Count]]" {
					t.Errorf("EMF definition %v", def)
				}
				rule, _ := l["rule"].(string)
				v, _ := l[metrics.PendingApprovals].(float64)
				pending[rule] = v
			}
			if diff := cmp.Diff(tc.pending, pending); diff != "" {
				t.Errorf("PendingApprovals per rule (-want +got):\n%s", diff)
			}
		})
	}
	if a := stored(f.store.GetApproval(ctx, "approved", d(1))); a.State != Expired {
		t.Errorf("due approval = %s, want expired", a.State)
	}
	if s := stored(f.store.GetScan(ctx, "scanned", d(4))); s.State != TimedOut {
		t.Errorf("due scan = %s, want timed out", s.State)
	}
	if b := stored(f.store.GetBake(ctx, "baked", d(7))); b.State != Baking {
		t.Errorf("bake not due = %s, want baking", b.State)
	}
}
