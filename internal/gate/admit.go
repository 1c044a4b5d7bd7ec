package gate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecrevent"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/notify"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// ScanReader reads a digest's scan result in its registry: ECR answers for
// basic scanning and for enhanced scanning by Amazon Inspector alike.
type ScanReader interface {
	DescribeImageScanFindings(ctx context.Context, in *ecr.DescribeImageScanFindingsInput, optFns ...func(*ecr.Options)) (*ecr.DescribeImageScanFindingsOutput, error)
}

// Notifier tells people of a gate's decision.
type Notifier interface {
	Notify(ctx context.Context, n notify.Notice) error
}

// Gates is the one place the intake, sweeps, the watcher and the CLI ask
// whether a digest may go to a rule's targets (Admit, Peek), and where the
// gates end (end.go): by their timers, scan results, alarms and sweeps.
type Gates struct {
	Rules *rules.Config
	// Central is where the functions run: rules default registries,
	// targets and alarms to it.
	Central rules.Place
	Store   *Store
	// Scans reads scan results in a registry's region, through role.
	Scans func(region, role string) ScanReader
	// Notifier, when set, is told of every gate decision a person should
	// know of (an approval asked, a scan blocked, a bake stopped).
	Notifier Notifier
	// The watcher's parts (end.go): alarms read at a bake's end, timers,
	// the hand-off of what a gate let through, and a bake's promotion.
	Alarms  func(region, role string) AlarmReader
	Timers  Timers
	HandOff HandOff
	Promote func(ctx context.Context, r *rules.Rule, b Bake) error
	Log     *slog.Logger
	Now     func() time.Time
}

// Mode says what a caller of Admit may change.
type Mode int

const (
	// FromPush: a push (ECR's event, a hand-off, a redrive): gates open,
	// and a newer push of a digest asks anew for an expired approval.
	FromPush Mode = iota
	// FromSweep: a sweep's newest image: gates open (a lost push event
	// heals), but an ended approval is not asked again — only a push asks.
	FromSweep
	// ReadOnly: plan, a dry run: nothing written, nothing noticed.
	ReadOnly
	// ReadRecorded: nothing written or noticed, and only what the gates
	// recorded passes — not a registry's scan result no gate took yet: a
	// sweep that deploys but tells no one (the CLI's) leaves judging to
	// the deployer's, or a pending scan would later time out, told as not
	// deployed, while its digest runs.
	ReadRecorded
)

// readOnly reports whether the mode writes and tells nothing.
func (m Mode) readOnly() bool { return m == ReadOnly || m == ReadRecorded }

// Verdict is what the gates say of one digest for one rule.
type Verdict struct {
	// Pass: every gate of the rule let the digest through.
	Pass bool
	// Gate is the gate that stops it, and State where that gate is.
	Gate  Kind
	State State
	// Final: a refusal no waiting ends (blocked, failed, timed out,
	// rejected, superseded, expired): not deployed, not retried.
	Final bool
	// Reason says it for people: "waits for approval", "waits for its
	// scan", "blocked: 1 CRITICAL".
	Reason string
}

var pass = Verdict{Pass: true}

// GatedBeforeDeploy reports whether rule r has a gate a digest passes before
// it deploys (approval, scan) — not a bake, which is after (rules.Rule.Gated
// counts all three).
func GatedBeforeDeploy(r *rules.Rule) bool { return r.Scan != nil || r.Approval != nil }

// Admit says whether rule r deploys push now. The scan comes first (no
// person is asked to approve an image its scan may block), then the
// approval. Gates are opened as the mode allows, each decision logged
// (msg="gate") and, when a person should know, noticed once.
func (g *Gates) Admit(ctx context.Context, r *rules.Rule, push ecrevent.Push, mode Mode) (Verdict, error) {
	v := pass // no gate
	if r.Scan != nil {
		var err error
		if v, err = g.scan(ctx, r, push, mode); err != nil {
			return v, err
		}
		g.decided(ctx, r, push, KindScan, v, mode)
		if !v.Pass {
			return v, nil
		}
	}
	if r.Approval != nil {
		var err error
		if v, err = g.approval(ctx, r, push, mode); err != nil {
			return v, err
		}
		g.decided(ctx, r, push, KindApproval, v, mode)
	}
	// The last gate's pass says why (a scan-only rule's: its clean scan).
	return v, nil
}

// decided logs one gate's decision on a push (msg="gate"): passed, waits
// or refused, with the gate's reason. A read-only look decides nothing.
func (g *Gates) decided(ctx context.Context, r *rules.Rule, push ecrevent.Push, kind Kind, v Verdict, mode Mode) {
	if mode.readOnly() {
		return
	}
	outcome := "passed"
	switch {
	case v.Pass:
	case v.Final:
		outcome = "refused"
	default:
		outcome = "waits"
	}
	Log(ctx, g.log(), r.Name, push.Digest, kind, outcome, v.Reason)
}

// Peek is Admit without a write, a notice or a log line: what `plan` and a
// dry run say.
func (g *Gates) Peek(ctx context.Context, r *rules.Rule, push ecrevent.Push) (Verdict, error) {
	return g.Admit(ctx, r, push, ReadOnly)
}

func (g *Gates) scan(ctx context.Context, r *rules.Rule, push ecrevent.Push, mode Mode) (Verdict, error) {
	sc, found, err := g.Store.GetScan(ctx, r.Name, push.Digest)
	if err != nil {
		return Verdict{}, err
	}
	if found && sc.State != Pending && sc.State != TimedOut {
		return scanVerdict(sc), nil
	}
	if mode == ReadRecorded {
		if found {
			return scanVerdict(sc), nil
		}
		return Verdict{Gate: KindScan, State: Pending, Reason: "waits for its scan (the deployer's sweep reads it)"}, nil
	}
	// No result recorded yet: the registry may have one (the scan event was
	// lost, or came before any push asked).
	res, err := g.readScan(ctx, r, push)
	if err != nil {
		return Verdict{}, err
	}
	switch {
	case res.complete && mode == ReadOnly:
		blocked, why := r.Scan.Blocks(res.counts)
		if blocked {
			return Verdict{Gate: KindScan, State: Blocked, Final: true, Reason: "blocked: " + why}, nil
		}
		return scanVerdict(Scan{State: Clean, Source: SourceDescribe}), nil
	case res.failed && mode == ReadOnly:
		return Verdict{Gate: KindScan, State: ScanFailed, Final: true, Reason: "its scan failed: " + res.reason}, nil
	case mode == ReadOnly:
		if found && sc.State == TimedOut {
			return scanVerdict(sc), nil
		}
		return Verdict{Gate: KindScan, State: Pending, Reason: "waits for its scan"}, nil
	case res.complete:
		done, applied, err := g.Store.ScanCompleted(ctx, ScanResult{Rule: r.Name, Digest: push.Digest, Repository: r.Repository,
			Block: r.Scan.Block, Counts: res.counts, Source: SourceDescribe, At: g.now()})
		if err != nil {
			return Verdict{}, err
		}
		if applied {
			g.scanEnded(ctx, r, withTag(done, push))
		}
		return scanVerdict(done), nil
	case res.failed:
		done, applied, err := g.Store.FailScan(ctx, r.Name, push.Digest, r.Repository, res.reason, SourceDescribe, g.now())
		if err != nil {
			return Verdict{}, err
		}
		if applied {
			g.scanEnded(ctx, r, withTag(done, push))
		}
		return scanVerdict(done), nil
	case found:
		return scanVerdict(sc), nil // pending (or timed out) still
	}
	now := g.now()
	started, _, err := g.Store.StartScan(ctx, ScanRequest{Rule: r.Name, Digest: push.Digest, Repository: r.Repository, Tag: push.Tag,
		PushedAt: push.Time, At: now, Wait: r.Scan.Wait})
	if err != nil {
		return Verdict{}, err
	}
	return scanVerdict(started), nil
}

// withTag is sc with push's tag when the gate has none (a result found
// before any push was gated stores none), for its notice: "web:v1.2.0",
// not "web:".
func withTag(sc Scan, push ecrevent.Push) Scan {
	if sc.Tag == "" {
		sc.Tag = push.Tag
	}
	return sc
}

// scanVerdict is what a scan gate says.
func scanVerdict(sc Scan) Verdict {
	switch sc.State {
	case Clean:
		return Verdict{Pass: true, Gate: KindScan, State: Clean, Reason: "its scan is clean (" + sc.Source + ")"}
	case Blocked:
		return Verdict{Gate: KindScan, State: Blocked, Final: true, Reason: "blocked: " + sc.Reason}
	case ScanFailed:
		return Verdict{Gate: KindScan, State: ScanFailed, Final: true, Reason: "its scan failed: " + sc.Reason}
	case TimedOut:
		return Verdict{Gate: KindScan, State: TimedOut, Final: true, Reason: fmt.Sprintf("no scan result by %s (scan.wait)", sc.Due.Format(time.RFC3339))}
	}
	return Verdict{Gate: KindScan, State: Pending, Reason: "waits for its scan (until " + sc.Due.Format(time.RFC3339) + ")"}
}

// Where a scan result came from.
const (
	SourceECR       = "ECR Image Scan"
	SourceInspector = "Inspector2 Scan"
	SourceDescribe  = "DescribeImageScanFindings"
)

// registryScan is a digest's scan as its registry says.
type registryScan struct {
	complete, failed bool
	counts           map[string]int
	status, reason   string
}

// readScan asks the registry for push's scan result.
func (g *Gates) readScan(ctx context.Context, r *rules.Rule, push ecrevent.Push) (registryScan, error) {
	registry := r.RegistryOf(g.Central)
	out, err := g.Scans(registry.Region, r.RegistryRole(g.Central)).DescribeImageScanFindings(ctx, &ecr.DescribeImageScanFindingsInput{
		RegistryId:     aws.String(registry.Account),
		RepositoryName: aws.String(r.Repository),
		ImageId:        &ecrtypes.ImageIdentifier{ImageDigest: aws.String(push.Digest)},
		MaxResults:     aws.Int32(1), // the counts come with the first page
	})
	var notFound *ecrtypes.ScanNotFoundException
	if errors.As(err, &notFound) {
		return registryScan{status: "not scanned yet"}, nil
	}
	if err != nil {
		return registryScan{}, fmt.Errorf("read the scan of %s@%s in %s: %w", r.Repository, push.Digest, registry, err)
	}
	// An answer without a status (none seen from ECR, but the field is
	// optional) is no result yet.
	rs := registryScan{}
	var status ecrtypes.ScanStatus
	if out.ImageScanStatus != nil {
		status = out.ImageScanStatus.Status
		rs.status, rs.reason = string(status), aws.ToString(out.ImageScanStatus.Description)
	}
	switch status {
	case ecrtypes.ScanStatusComplete, ecrtypes.ScanStatusActive:
		// Enhanced scanning answers ACTIVE (or COMPLETE) with no findings
		// before Inspector has scanned the image: only findings that say
		// when their scan completed, or that count something, are a
		// result; an empty answer waits (never passes as clean).
		f := out.ImageScanFindings
		if f == nil || (f.ImageScanCompletedAt == nil && len(f.FindingSeverityCounts) == 0 && len(f.EnhancedFindings) == 0 && len(f.Findings) == 0) {
			rs.reason = "the registry has no completed scan yet (" + rs.status + ")"
			break
		}
		rs.complete = true
		rs.counts = map[string]int{}
		for sev, n := range f.FindingSeverityCounts {
			rs.counts[strings.ToUpper(sev)] = int(n)
		}
	case ecrtypes.ScanStatusFailed, ecrtypes.ScanStatusUnsupportedImage:
		rs.failed = true
		if rs.reason == "" {
			rs.reason = rs.status
		}
	}
	if rs.status == "" {
		rs.status = "no status"
	}
	return rs, nil
}

// scanEnded logs and notices a scan gate this call ended.
func (g *Gates) scanEnded(ctx context.Context, r *rules.Rule, sc Scan) {
	Log(ctx, g.log(), r.Name, sc.Digest, KindScan, string(sc.State), sc.Reason)
	registry := r.RegistryOf(g.Central)
	// The registry's place: the notice's commands read the findings there.
	n := notify.Notice{Rule: r.Name, Repository: r.Repository, Tag: sc.Tag, Digest: sc.Digest, Reason: sc.Reason,
		Account: registry.Account, Region: registry.Region}
	switch sc.State {
	case Blocked:
		g.notify(ctx, notify.GateNotice(n, notify.ScanBlocked, notify.Gate{Kind: string(KindScan), Findings: sc.Reason, Targets: g.targets(r)}))
	case ScanFailed:
		n.Reason = "the scan failed: " + sc.Reason
		g.notify(ctx, notify.GateNotice(n, notify.ScanNotDone, notify.Gate{Kind: string(KindScan), Targets: g.targets(r)}))
	case TimedOut:
		n.Reason = fmt.Sprintf("no scan result within %s (scan.wait)", rules.FormatDuration(r.Scan.Wait))
		g.notify(ctx, notify.GateNotice(n, notify.ScanNotDone, notify.Gate{Kind: string(KindScan), Due: sc.Due, Targets: g.targets(r)}))
	}
}

func (g *Gates) approval(ctx context.Context, r *rules.Rule, push ecrevent.Push, mode Mode) (Verdict, error) {
	a, found, err := g.Store.GetApproval(ctx, r.Name, push.Digest)
	if err != nil {
		return Verdict{}, err
	}
	now := g.now()
	if found && a.State == Pending && !a.Due.After(now) && !mode.readOnly() {
		// Its time is up and its timer has not fired: end it now (told as
		// the timer would), so a newer push of the digest may ask again.
		if err := g.End(ctx, KindApproval, r.Name, push.Digest); err != nil {
			return Verdict{}, err
		}
		if a, found, err = g.Store.GetApproval(ctx, r.Name, push.Digest); err != nil {
			return Verdict{}, err
		}
	}
	if found {
		// A newer push of the same digest asks anew for an approval that
		// expired or was superseded; anything else stands as it is.
		askAgain := mode == FromPush && (a.State == Expired || a.State == Superseded) && push.Time.After(a.PushedAt)
		if !askAgain {
			return approvalVerdict(a, now), nil
		}
	}
	if mode.readOnly() {
		return Verdict{Gate: KindApproval, State: Pending, Reason: "waits for approval (a push, or the deployer's sweep, asks for it)"}, nil
	}
	req, err := g.Store.RequestApproval(ctx, ApprovalRequest{Rule: r.Name, Digest: push.Digest, Repository: r.Repository, Tag: push.Tag,
		PushedAt: push.Time, At: now, Expires: r.Approval.Expires})
	if err != nil {
		return Verdict{}, err
	}
	for _, old := range req.Superseded {
		Log(ctx, g.log(), r.Name, old.Digest, KindApproval, string(Superseded), "a newer push of the rule waits: "+push.Tag)
		g.notify(ctx, notify.GateNotice(notify.Notice{Rule: r.Name, Repository: r.Repository, Tag: old.Tag, Digest: old.Digest},
			notify.ApprovalSuperseded, notify.Gate{Kind: string(KindApproval), NewerTag: push.Tag}))
	}
	// Created but superseded at once (an older push delivered after a
	// newer one asked): no one is asked to approve what cannot be.
	if req.Created && req.Approval.State == Pending {
		a := req.Approval
		g.notify(ctx, notify.GateNotice(notify.Notice{Rule: r.Name, Repository: r.Repository, Tag: a.Tag, Digest: a.Digest, PushedAt: a.PushedAt},
			notify.AwaitingApproval, notify.Gate{Kind: string(KindApproval), Due: a.Due, Targets: g.targets(r)}))
	} else if req.Created {
		Log(ctx, g.log(), r.Name, push.Digest, KindApproval, string(req.Approval.State), "a newer push of the rule waits: "+req.Approval.SupersededBy)
	}
	return approvalVerdict(req.Approval, now), nil
}

// approvalVerdict is what an approval gate says at now.
func approvalVerdict(a Approval, now time.Time) Verdict {
	v := Verdict{Gate: KindApproval, State: a.State, Final: true}
	switch a.State {
	case Approved:
		return Verdict{Pass: true, Gate: KindApproval, State: Approved, Reason: fmt.Sprintf("approved by %s at %s", a.By, a.DecidedAt.Format(time.RFC3339))}
	case Pending:
		if !a.Due.After(now) {
			v.State, v.Reason = Expired, "its approval expired at "+a.Due.Format(time.RFC3339)
			return v
		}
		v.Final, v.Reason = false, "waits for approval (until "+a.Due.Format(time.RFC3339)+")"
	case Rejected:
		v.Reason = fmt.Sprintf("rejected by %s: %s", a.By, a.Reason)
	case Superseded:
		v.Reason = "its approval was superseded by a newer push (" + a.SupersededBy + ")"
	case Expired:
		v.Reason = "its approval expired at " + a.Due.Format(time.RFC3339)
	default:
		v.Reason = "approval " + string(a.State)
	}
	return v
}

// targets are a rule's targets as a notice lists them.
func (g *Gates) targets(r *rules.Rule) []string {
	out := make([]string, len(r.Targets))
	for i, t := range r.Targets {
		at := t.Where(g.Central)
		out[i] = fmt.Sprintf("%s/%s in %s %s", t.Cluster, t.Service, at.Account, at.Region)
	}
	return out
}

func (g *Gates) notify(ctx context.Context, n notify.Notice) {
	if g.Notifier == nil {
		return
	}
	if err := g.Notifier.Notify(ctx, n); err != nil {
		// A gate's state is the truth (status and plan show it); a lost
		// notice is logged, not retried, as a retry would notice twice.
		g.log().WarnContext(ctx, "gate notice not sent", "rule", n.Rule, "digest", n.Digest, "outcome", n.Outcome, "error", err.Error())
	}
}

func (g *Gates) log() *slog.Logger {
	if g.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return g.Log
}

func (g *Gates) now() time.Time {
	if g.Now == nil {
		return time.Now()
	}
	return g.Now()
}

// HandOffID is the event id of a push a gate hands the deployer (an
// approved digest, a scan that came clean): derived from the gate, rule and
// digest, so a repeated hand-off is recognisable as the same one.
func HandOffID(kind Kind, rule, digest string) string {
	sum := sha256.Sum256([]byte(string(kind) + "\x00" + rule + "\x00" + digest))
	return "autodeploy-" + string(kind) + "-" + hex.EncodeToString(sum[:8])
}
