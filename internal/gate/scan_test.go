package gate

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

var block = []string{"CRITICAL", "HIGH"}

func startScan(ctx context.Context, t *testing.T, s *Store, rule string) {
	t.Helper()
	if _, created, err := s.StartScan(ctx, ScanRequest{Rule: rule, Digest: d(1), Repository: "web", Tag: "v1", PushedAt: base, At: base, Wait: 30 * time.Minute}); err != nil || !created {
		t.Fatalf("StartScan: %v, %v", created, err)
	}
}

func scanned(sc Scan, applied bool, err error) (outcome, error) {
	return outcome{State: sc.State, Applied: applied, Detail: sc.Reason}, err
}

func result(counts map[string]int, at time.Duration) func(ctx context.Context, s *Store, rule, caller string) (outcome, error) {
	return func(ctx context.Context, s *Store, rule, _ string) (outcome, error) {
		return scanned(s.ScanCompleted(ctx, ScanResult{Rule: rule, Digest: d(1), Repository: "web", Block: block, Counts: counts, Source: "ECR Image Scan", At: base.Add(at)}))
	}
}

func TestScanTransitions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	timeOut := func(at time.Duration) func(ctx context.Context, s *Store, rule, caller string) (outcome, error) {
		return func(ctx context.Context, s *Store, rule, _ string) (outcome, error) {
			return scanned(s.TimeOutScan(ctx, rule, d(1), base.Add(at)))
		}
	}
	fail := func(ctx context.Context, s *Store, rule, _ string) (outcome, error) {
		return scanned(s.FailScan(ctx, rule, d(1), "web", "UNSUPPORTED_IMAGE", "ECR Image Scan", base.Add(time.Minute)))
	}
	then := func(steps ...func(ctx context.Context, s *Store, rule, caller string) (outcome, error)) func(ctx context.Context, t *testing.T, s *Store, rule string) {
		return func(ctx context.Context, t *testing.T, s *Store, rule string) {
			startScan(ctx, t, s, rule)
			for _, step := range steps {
				if _, err := step(ctx, s, rule, "setup"); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	rows := []transition{
		{name: "pending → clean", setup: then(), act: result(map[string]int{"MEDIUM": 2, "INFORMATIONAL": 5}, time.Minute),
			first: outcome{State: Clean, Applied: true}, again: outcome{State: Clean}, final: Clean},
		{name: "pending → clean with no findings at all", setup: then(), act: result(nil, time.Minute),
			first: outcome{State: Clean, Applied: true}, again: outcome{State: Clean}, final: Clean},
		{name: "pending → blocked, with the counts", setup: then(), act: result(map[string]int{"CRITICAL": 1, "HIGH": 3, "LOW": 9}, time.Minute),
			first: outcome{State: Blocked, Applied: true, Detail: "1 CRITICAL, 3 HIGH"}, again: outcome{State: Blocked, Detail: "1 CRITICAL, 3 HIGH"}, final: Blocked},
		{name: "pending → timed out at its wait", setup: then(), act: timeOut(30 * time.Minute),
			first: outcome{State: TimedOut, Applied: true}, again: outcome{State: TimedOut}, final: TimedOut},
		{name: "not timed out before its wait", setup: then(), act: timeOut(29 * time.Minute),
			first: outcome{State: Pending}, again: outcome{State: Pending}, final: Pending},
		{name: "pending → failed", setup: then(), act: fail,
			first: outcome{State: ScanFailed, Applied: true, Detail: "UNSUPPORTED_IMAGE"}, again: outcome{State: ScanFailed, Detail: "UNSUPPORTED_IMAGE"}, final: ScanFailed},
		{name: "a late result still ends a timed-out scan", setup: then(timeOut(30 * time.Minute)), act: result(map[string]int{"HIGH": 1}, 40*time.Minute),
			first: outcome{State: Blocked, Applied: true, Detail: "1 HIGH"}, again: outcome{State: Blocked, Detail: "1 HIGH"}, final: Blocked},
		{name: "a second source's result changes no ended scan", setup: then(result(map[string]int{"MEDIUM": 1}, time.Minute)),
			act: result(map[string]int{"CRITICAL": 4}, 2*time.Minute), first: outcome{State: Clean}, again: outcome{State: Clean}, final: Clean},
		{name: "a clean scan does not time out", setup: then(result(nil, time.Minute)), act: timeOut(time.Hour),
			first: outcome{State: Clean}, again: outcome{State: Clean}, final: Clean},
		{name: "a result before the push was gated ends it", setup: func(context.Context, *testing.T, *Store, string) {},
			act: result(map[string]int{"CRITICAL": 2}, 0), first: outcome{State: Blocked, Applied: true, Detail: "2 CRITICAL"},
			again: outcome{State: Blocked, Detail: "2 CRITICAL"}, final: Blocked},
		{name: "starting a scan whose result came first creates nothing",
			setup: func(ctx context.Context, t *testing.T, s *Store, rule string) {
				if _, err := result(nil, 0)(ctx, s, rule, ""); err != nil {
					t.Fatal(err)
				}
			},
			act: func(ctx context.Context, s *Store, rule, _ string) (outcome, error) {
				return scanned(s.StartScan(ctx, ScanRequest{Rule: rule, Digest: d(1), Repository: "web", PushedAt: base, At: base, Wait: time.Hour}))
			},
			first: outcome{State: Clean}, again: outcome{State: Clean}, final: Clean},
		{name: "pending, started once",
			setup: func(context.Context, *testing.T, *Store, string) {},
			act: func(ctx context.Context, s *Store, rule, _ string) (outcome, error) {
				return scanned(s.StartScan(ctx, ScanRequest{Rule: rule, Digest: d(1), Repository: "web", PushedAt: base, At: base, Wait: time.Hour}))
			},
			first: outcome{State: Pending, Applied: true}, again: outcome{State: Pending}, final: Pending},
	}
	runTransitions(t, e, func(ctx context.Context, s *Store, rule string) (State, error) {
		sc, _, err := s.GetScan(ctx, rule, d(1))
		return sc.State, err
	}, rows)
}

// A clean result and the wait's end racing: one ends the scan, and a
// result that lost to the timeout still ends it clean (a late result ends a
// timed-out scan, by design), never the reverse.
func TestScanResultRacesItsTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	startScan(ctx, t, e.store, "prod")
	result, timeout := make(chan bool, 1), make(chan bool, 1)
	go func() {
		_, applied, err := e.store.ScanCompleted(ctx, ScanResult{Rule: "prod", Digest: d(1), Repository: "web", Block: block, At: base.Add(30 * time.Minute)})
		if err != nil {
			t.Error(err)
		}
		result <- applied
	}()
	go func() {
		_, applied, err := e.store.TimeOutScan(ctx, "prod", d(1), base.Add(30*time.Minute))
		if err != nil {
			t.Error(err)
		}
		timeout <- applied
	}()
	r, to := <-result, <-timeout
	if !r {
		t.Errorf("the result did not apply (timeout applied = %v): a result always ends a pending or timed-out scan", to)
	}
	sc, _, err := e.store.GetScan(ctx, "prod", d(1))
	if err != nil || sc.State != Clean {
		t.Errorf("scan after the race: %+v, %v; want clean", sc, err)
	}
}

// The sample events' finding-severity-counts, as the watcher will pass
// them: ECR basic scanning's (only the severities present) and Inspector's
// (with TOTAL, which never blocks); what is stored is what was reported.
func TestScanResultsOfTheSampleEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	type event struct {
		DetailType string `json:"detail-type"`
		Detail     struct {
			Status     string         `json:"scan-status"`
			Repository string         `json:"repository-name"`
			Digest     string         `json:"image-digest"`
			Counts     map[string]int `json:"finding-severity-counts"`
		} `json:"detail"`
	}
	tests := []struct {
		file, status string
		want         State
		reason       string
	}{
		{"ecr-image-scan-blocked.json", "COMPLETE", Blocked, "1 CRITICAL, 3 HIGH"},
		{"ecr-image-scan-clean.json", "COMPLETE", Clean, ""},
		{"inspector2-scan.json", "INITIAL_SCAN_COMPLETE", Blocked, "2 HIGH"},
	}
	for i, tt := range tests {
		var ev event
		if err := json.Unmarshal(testenv.Event(t, tt.file), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Detail.Status != tt.status {
			t.Errorf("%s: scan-status %q, want %q", tt.file, ev.Detail.Status, tt.status)
		}
		rule := "r" + strconv.Itoa(i)
		sc, applied, err := e.store.ScanCompleted(ctx, ScanResult{Rule: rule, Digest: ev.Detail.Digest, Repository: ev.Detail.Repository,
			Block: block, Counts: ev.Detail.Counts, Source: ev.DetailType, At: base})
		if err != nil || !applied || sc.State != tt.want || sc.Reason != tt.reason {
			t.Errorf("%s: %s %q (applied %v, %v); want %s %q", tt.file, sc.State, sc.Reason, applied, err, tt.want, tt.reason)
		}
		if diff := cmp.Diff(ev.Detail.Counts, sc.Counts); diff != "" {
			t.Errorf("%s: counts stored (-event +stored):\n%s", tt.file, diff)
		}
		if item := rawItem(t, e, KindScan, rule, ev.Detail.Digest); item["expires_at"].(*types.AttributeValueMemberN).Value != strconv.FormatInt(base.Add(Retention).Unix(), 10) {
			t.Errorf("%s: expires_at %v, want Retention after its end", tt.file, item["expires_at"])
		}
	}
	var failed event
	if err := json.Unmarshal(testenv.Event(t, "ecr-image-scan-failed.json"), &failed); err != nil || failed.Detail.Status != "FAILED" || failed.Detail.Counts != nil {
		t.Errorf("ecr-image-scan-failed.json: %+v, %v", failed, err)
	}
}
