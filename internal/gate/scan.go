package gate

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// Scan is one digest's scan gate for one rule.
type Scan struct {
	Rule       string    `dynamodbav:"rule"`
	Digest     string    `dynamodbav:"digest"`
	Repository string    `dynamodbav:"repository"`
	Tag        string    `dynamodbav:"tag,omitempty"`
	State      State     `dynamodbav:"state"`
	PushedAt   time.Time `dynamodbav:"pushed_at,omitempty"`
	StartedAt  time.Time `dynamodbav:"started_at,omitempty"`
	// Due is when a pending scan times out (the rule's scan.wait).
	Due time.Time `dynamodbav:"due,omitempty"`
	// Block is the severities the result was judged by; Counts the
	// findings by severity as the scan reported them (Blocked and Clean).
	Block  []string       `dynamodbav:"block,omitempty"`
	Counts map[string]int `dynamodbav:"counts,omitempty"`
	// Reason: what blocked it ("1 CRITICAL, 3 HIGH") or why it failed.
	Reason string `dynamodbav:"reason,omitempty"`
	// Source is where the result came from: "ECR Image Scan",
	// "Inspector2 Scan", "DescribeImageScanFindings".
	Source  string    `dynamodbav:"source,omitempty"`
	EndedAt time.Time `dynamodbav:"ended_at,omitempty"`
	// HandedBackAt: when an event that could not judge it (Inspector's,
	// for a rule blocking LOW) handed its push back to the deployer to read.
	HandedBackAt time.Time `dynamodbav:"handed_back_at,omitempty"`
	// HandedOffAt: when the push that waited for a clean result was handed
	// to the deployer; unset on a clean scan a push waited for, a hand-off
	// that failed, which the next delivery of the result sends again.
	HandedOffAt time.Time `dynamodbav:"handed_off_at,omitempty"`
}

// ScanRequest is a push a rule with scan would deploy once its scan is done.
type ScanRequest struct {
	Rule, Digest, Repository, Tag string
	PushedAt                      time.Time
	At                            time.Time
	Wait                          time.Duration // the rule's scan.wait
}

// StartScan records a pending scan for a digest and rule. When the scan
// already has a gate (a retry; or its result arrived before the push was
// gated, as scan-on-push can) that gate is returned, created false: the
// caller deploys a clean one at once.
func (s *Store) StartScan(ctx context.Context, req ScanRequest) (Scan, bool, error) {
	sc := Scan{Rule: req.Rule, Digest: req.Digest, Repository: req.Repository, Tag: req.Tag, State: Pending,
		PushedAt: req.PushedAt.UTC(), StartedAt: req.At.UTC(), Due: req.At.Add(req.Wait).UTC()}
	item, err := attributevalue.MarshalMap(sc)
	if err != nil {
		return Scan{}, false, fmt.Errorf("marshal scan: %w", err)
	}
	got, created, err := s.start(ctx, KindScan, req.Rule, req.Digest, item, OpenGate{Tag: sc.Tag, PushedAt: sc.PushedAt, Due: sc.Due})
	if err != nil {
		return Scan{}, false, err
	}
	sc, err = scanOf(got)
	return sc, created, err
}

// ScanResult is a completed scan of a digest, judged for one rule.
type ScanResult struct {
	Rule, Digest, Repository string
	// Block is the rule's scan.block now.
	Block []string
	// Counts are the findings by severity (other keys, such as Inspector's
	// TOTAL, are kept and never block).
	Counts map[string]int
	Source string
	At     time.Time
}

// ScanCompleted ends a digest's scan gate for a rule by its result: clean,
// or blocked (Reason names the blocked counts). A pending or timed-out
// scan takes it (a late result is still the truth of the image), and so
// does one not started yet (the result came first). applied is false, and
// nothing changes, when the scan had ended otherwise (a second delivery,
// another source's result, a failure).
func (s *Store) ScanCompleted(ctx context.Context, res ScanResult) (Scan, bool, error) {
	blocked, why := (&rules.Scan{Block: res.Block}).Blocks(res.Counts)
	to := Clean
	if blocked {
		to = Blocked
	}
	counts, err := attributevalue.Marshal(res.Counts)
	if err != nil {
		return Scan{}, false, fmt.Errorf("marshal scan counts: %w", err)
	}
	block, err := attributevalue.Marshal(res.Block)
	if err != nil {
		return Scan{}, false, fmt.Errorf("marshal scan block: %w", err)
	}
	if res.Counts == nil {
		counts = &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{}}
	}
	return s.endScan(ctx, res.Rule, res.Digest, res.Repository, "attribute_not_exists(pk) OR #state IN (:pending, :timed_out)", to, res.At,
		"#counts = :counts, #block = :block, #source = :source, #reason = :reason",
		map[string]types.AttributeValue{":counts": counts, ":block": block, ":source": str(res.Source), ":reason": str(why),
			":timed_out": str(string(TimedOut))})
}

// FailScan ends a pending (or not started) scan gate as failed: the
// scanner could not scan the image (ECR's scan-status FAILED, e.g. an
// unsupported image), so no result will come.
func (s *Store) FailScan(ctx context.Context, rule, digest, repository, reason, source string, at time.Time) (Scan, bool, error) {
	return s.endScan(ctx, rule, digest, repository, "attribute_not_exists(pk) OR #state = :pending", ScanFailed, at,
		"#reason = :reason, #source = :source", map[string]types.AttributeValue{":reason": str(reason), ":source": str(source)})
}

// TimeOutScan ends a pending scan whose wait is up at at (its timer
// fired, or a sweep found it due); false when it is not pending or not due.
func (s *Store) TimeOutScan(ctx context.Context, rule, digest string, at time.Time) (Scan, bool, error) {
	return s.endScan(ctx, rule, digest, "", "#state = :pending AND due_ms <= :now", TimedOut, at, "", nil)
}

func (s *Store) endScan(ctx context.Context, rule, digest, repository, cond string, to State, at time.Time, set string, values map[string]types.AttributeValue) (Scan, bool, error) {
	all := map[string]types.AttributeValue{":to": str(string(to)), ":at": timeValue(at.UTC()), ":exp": epoch(at.Add(Retention)),
		":pending": str(string(Pending)), ":now": millis(at),
		":rule": str(rule), ":digest": str(digest), ":kind": str(string(KindScan)), ":repo": str(repository)}
	for k, v := range values {
		all[k] = v
	}
	expr := "#state = :to, ended_at = :at, expires_at = :exp, #rule = if_not_exists(#rule, :rule), #digest = if_not_exists(#digest, :digest), " +
		"#kind = if_not_exists(#kind, :kind), #repository = if_not_exists(#repository, :repo)"
	if set != "" {
		expr += ", " + set
	}
	got, applied, err := s.apply(ctx, KindScan, rule, digest, change{
		set: expr, cond: cond, values: all, final: true,
	})
	if err != nil || got == nil {
		return Scan{}, false, err
	}
	sc, err := scanOf(got)
	return sc, applied, err
}

// HandedBack marks a pending or timed-out scan as handed back to the
// deployer at at, so a second delivery of the event hands nothing again;
// false when it was marked before or has ended (the deployer judged it).
func (s *Store) HandedBack(ctx context.Context, rule, digest string, at time.Time) (bool, error) {
	_, applied, err := s.apply(ctx, KindScan, rule, digest, change{
		set: "handed_back_at = :at",
		// A zero time is written as one (omitempty keeps time.Time), so
		// "not handed back" is either.
		cond: "#state IN (:pending, :timed_out) AND (attribute_not_exists(handed_back_at) OR handed_back_at = :never)",
		values: map[string]types.AttributeValue{":at": timeValue(at.UTC()), ":pending": str(string(Pending)),
			":timed_out": str(string(TimedOut)), ":never": timeValue(time.Time{})},
	})
	return applied, err
}

// HandedOff marks a clean scan's waiting push as handed to the deployer
// at at; false when it was marked before.
func (s *Store) HandedOff(ctx context.Context, rule, digest string, at time.Time) (bool, error) {
	_, applied, err := s.apply(ctx, KindScan, rule, digest, change{
		set:  "handed_off_at = :at",
		cond: "#state = :clean AND (attribute_not_exists(handed_off_at) OR handed_off_at = :never)",
		values: map[string]types.AttributeValue{":at": timeValue(at.UTC()), ":clean": str(string(Clean)),
			":never": timeValue(time.Time{})},
	})
	return applied, err
}

// GetScan reads the scan gate of a digest for a rule.
func (s *Store) GetScan(ctx context.Context, rule, digest string) (Scan, bool, error) {
	got, err := s.get(ctx, KindScan, rule, digest)
	if err != nil || got == nil {
		return Scan{}, false, err
	}
	sc, err := scanOf(got)
	return sc, err == nil, err
}

func scanOf(item map[string]types.AttributeValue) (Scan, error) {
	var sc Scan
	if err := attributevalue.UnmarshalMap(item, &sc); err != nil {
		return Scan{}, fmt.Errorf("read scan: %w", err)
	}
	return sc, nil
}
