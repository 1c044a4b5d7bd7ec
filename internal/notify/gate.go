package notify

import (
	"fmt"
	"strings"
	"time"
)

// What a gate's notice reports (DESIGN "Gates"). A bake an alarm stopped is
// NotPromoted with a Gate.
const (
	AwaitingApproval   = "awaiting_approval"   // a push waits for a person's approval
	ApprovalExpired    = "approval_expired"    // no one decided within approval.expires: not deployed
	ApprovalSuperseded = "approval_superseded" // a newer push of the rule waits instead
	ApprovalRejected   = "approval_rejected"   // a person rejected it: not deployed
	ScanBlocked        = "scan_blocked"        // the scan found a blocked severity: not deployed
	ScanNotDone        = "scan_not_done"       // no scan result within scan.wait, or the scan failed: not deployed
)

// Gate is what a gate's notice says of the gate.
type Gate struct {
	// Kind is approval, scan or bake.
	Kind string
	// Targets are what would deploy where ("prod/web in 123456789012 eu-west-1").
	Targets []string
	// Due is when a pending approval expires, or a scan's wait ends.
	Due time.Time
	// Findings are a scan's counts of blocked severities ("1 CRITICAL").
	Findings string
	// Alarm and AlarmAt: the alarm that stopped a bake (as the rule names
	// it), and when; AlarmName, AlarmRegion and AlarmAccount are where to
	// read it (empty name: it could not be read).
	Alarm        string
	AlarmAt      time.Time
	AlarmName    string
	AlarmRegion  string
	AlarmAccount string
	// By is who decided an approval (a rejection's).
	By string
	// NewerTag is the push that superseded an approval.
	NewerTag string
	// Rollbacks are the rollback commands of a stopped bake's targets.
	Rollbacks []string
}

// GateNotice is base (rule, image, digest) as a gate's notice.
func GateNotice(base Notice, outcome string, g Gate) Notice {
	base.Outcome, base.Gate = outcome, &g
	return base
}

// maxTargetsListed bounds the targets one gate notice lists.
const maxTargetsListed = 10

func (g *Gate) title(n Notice) string {
	image := n.Repository + ":" + n.Tag
	switch n.Outcome {
	case AwaitingApproval:
		return fmt.Sprintf("%s waits for approval to deploy by rule %s", image, n.Rule)
	case ApprovalExpired:
		return fmt.Sprintf("%s NOT deployed by rule %s: its approval expired", image, n.Rule)
	case ApprovalSuperseded:
		return fmt.Sprintf("%s no longer waits for approval by rule %s: a newer push does", image, n.Rule)
	case ApprovalRejected:
		return fmt.Sprintf("%s NOT deployed by rule %s: rejected", image, n.Rule)
	case ScanBlocked:
		return fmt.Sprintf("%s NOT deployed by rule %s: its scan found %s", image, n.Rule, g.Findings)
	case ScanNotDone:
		return fmt.Sprintf("%s NOT deployed by rule %s: no clean scan result", image, n.Rule)
	case NotPromoted:
		return fmt.Sprintf("%s NOT promoted by rule %s: alarm %s during its bake", image, n.Rule, g.Alarm)
	}
	return fmt.Sprintf("%s %s by rule %s", image, strings.ReplaceAll(n.Outcome, "_", " "), n.Rule)
}

func (g *Gate) facts(n Notice) []fact {
	fs := []fact{
		{"Image", n.Repository + ":" + n.Tag},
		{"Digest", n.Digest},
		{"Outcome", strings.ReplaceAll(n.Outcome, "_", " ")},
		{"Rule", n.Rule},
		{"Gate", g.Kind},
	}
	if len(g.Targets) > 0 {
		list := g.Targets[:min(len(g.Targets), maxTargetsListed)]
		v := strings.Join(list, ", ")
		if more := len(g.Targets) - len(list); more > 0 {
			v += fmt.Sprintf(" and %d more", more)
		}
		fs = append(fs, fact{"Targets", v})
	}
	if !g.Due.IsZero() {
		what := "Expires"
		if g.Kind == "scan" {
			what = "Waits until"
		}
		fs = append(fs, fact{what, g.Due.UTC().Format(time.RFC3339)})
	}
	fs = append(fs, fact{"Findings", g.Findings}, fact{"Alarm", g.Alarm})
	if !g.AlarmAt.IsZero() {
		fs = append(fs, fact{"Alarm at", g.AlarmAt.UTC().Format(time.RFC3339)})
	}
	fs = append(fs, fact{"By", g.By}, fact{"Newer push", g.NewerTag}, fact{"Promoted tag", n.PromotedTag}, fact{"Reason", n.Reason})
	return fs
}

func (g *Gate) nextSteps(n Notice) []string {
	// By digest: a tag may move to another image before someone acts on
	// the notice, and a person approves what the notice showed.
	which := "--rule " + n.Rule + " --digest " + n.Digest
	where := ""
	if n.Account != "" && n.Region != "" {
		where = " --registry-id " + n.Account + " --region " + n.Region
	}
	findings := "`aws ecr describe-image-scan-findings" + where + " --repository-name " + n.Repository + " --image-id imageDigest=" + n.Digest + "`"
	switch n.Outcome {
	case AwaitingApproval:
		return []string{
			"To deploy it: `autodeploy approve " + which + "`",
			"To refuse it: `autodeploy reject " + which + " --reason \"…\"`",
			"See what it would do: `autodeploy plan --rule " + n.Rule + " --tag " + n.Tag + "` (it plans what the tag names now: check its digest is this one)",
		}
	case ApprovalExpired:
		return []string{"Nothing was deployed. Push the image again to ask for an approval anew."}
	case ApprovalSuperseded:
		return []string{"Approve the newer push instead: `autodeploy status` lists what waits for approval."}
	case ApprovalRejected:
		return []string{"Nothing was deployed. Push a new image to ask again."}
	case ScanBlocked:
		return []string{
			"This digest is not deployed by this rule: fix the findings and push a new image.",
			"Read them: " + findings,
		}
	case ScanNotDone:
		return []string{
			"Not deployed. A scan result that still comes deploys it when clean; check that scanning is on for repository " + n.Repository + ".",
			"Read the scan's status: " + findings,
		}
	case NotPromoted:
		saw := "Read what the alarm saw in CloudWatch (its history)."
		if g.AlarmName != "" {
			saw = "Read what the alarm saw: `aws cloudwatch describe-alarm-history --alarm-name " + g.AlarmName
			if g.AlarmRegion != "" {
				saw += " --region " + g.AlarmRegion
			}
			saw += "`" + g.alarmAccount()
		}
		return []string{
			"It stays on the rule's targets; nothing was rolled back. " + saw,
			g.undo(),
			"Fix and push a new image; or, if the alarm was not the image's fault, tag this digest " + n.PromotedTag + " by hand.",
		}
	}
	return nil
}

// alarmAccount says, for an alarm in another account, where to run the
// command.
func (g *Gate) alarmAccount() string {
	if g.AlarmAccount == "" {
		return ""
	}
	return " (in account " + g.AlarmAccount + ")"
}

// undo says how to roll a stopped bake's targets back: their commands, a
// few at most, else where to find them.
func (g *Gate) undo() string {
	switch n := len(g.Rollbacks); {
	case n == 0:
		return "To undo it on a target: `autodeploy rollback --cluster CLUSTER --service SERVICE` (`autodeploy status` lists them)"
	case n <= 3:
		return "To undo it: `" + strings.Join(g.Rollbacks, "`, `") + "`"
	default:
		return fmt.Sprintf("To undo it: `%s` and %d more targets (`autodeploy status` lists them)", g.Rollbacks[0], n-1)
	}
}
