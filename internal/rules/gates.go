package rules

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// The gates' keys (DESIGN "Gates"): approval and scan on a rule or in
// defaults, and promote's bake and alarms. A rule's key replaces the
// default whole, as publish and cleanup do. They are validated here;
// internal/gate carries them out.

// Bounds and defaults of the gates' durations.
const (
	DefaultApprovalExpires = 24 * time.Hour
	MinApprovalExpires     = time.Minute
	MaxApprovalExpires     = 14 * 24 * time.Hour

	DefaultScanWait = 30 * time.Minute
	MinScanWait     = time.Minute
	// MaxScanWait: a push waits at most a day for its scan; an image that
	// old is better pushed again than deployed late.
	MaxScanWait = 24 * time.Hour

	MinBake = time.Minute
	MaxBake = 24 * time.Hour
)

// Severities are the finding severities a scan gate may block, as ECR's
// basic scanning and Amazon Inspector report them, most severe first.
var Severities = []string{"CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNDEFINED"}

// DefaultScanBlock is what `scan: {}` blocks.
var DefaultScanBlock = []string{"CRITICAL", "HIGH"}

// Approval says a person approves each digest before it deploys to the
// rule's targets; a pending approval ends, expired, Expires after it was
// asked.
type Approval struct {
	Expires time.Duration
}

// Scan says a digest deploys only once its scan completed with no finding
// of a Block severity; no result within Wait is not deployed.
type Scan struct {
	Block []string // of Severities, in the file's order
	Wait  time.Duration
}

// Blocks reports whether a scan with counts (findings by severity, as the
// scan reports them) is blocked, and by what: the blocked severities
// found, in Block's order ("1 CRITICAL, 3 HIGH").
func (s *Scan) Blocks(counts map[string]int) (bool, string) {
	var found []string
	for _, sev := range s.Block {
		if n := counts[sev]; n > 0 {
			found = append(found, fmt.Sprintf("%d %s", n, sev))
		}
	}
	return len(found) > 0, strings.Join(found, ", ")
}

// Alarm is a CloudWatch alarm a bake watches: in the central account and
// region when Account is empty, else in a target account of the rule (the
// region of its targets there, or the ARN's).
type Alarm struct {
	Account string
	Region  string // empty: the central region
	Name    string
	Line    int
}

// Where is the alarm's account and region.
func (a Alarm) Where(central Place) Place { return Place{a.Account, a.Region}.Or(central) }

// String is the alarm as the file names it in its short form.
func (a Alarm) String() string {
	if a.Account == "" {
		return a.Name
	}
	return a.Account + ":" + a.Name
}

// Gated reports whether the rule sets a gate: approval, scan or a bake.
func (r *Rule) Gated() bool {
	return r.Approval != nil || r.Scan != nil || (r.Promote != nil && r.Promote.Bake > 0)
}

// GateRules are the names of the rules that set a gate (their own or the
// defaults'), in file order.
func (c *Config) GateRules() []string {
	var out []string
	for _, r := range c.Rules {
		if r.Gated() {
			out = append(out, r.Name)
		}
	}
	return out
}

// approval reads `approval: {expires: 24h}`; `approval: {}` expires after
// DefaultApprovalExpires.
func (p *parser) approval(f field, at string) *Approval {
	m := p.mapping(f.value, at, p.keys("approval")...)
	if m == nil {
		return nil
	}
	a := &Approval{Expires: DefaultApprovalExpires}
	if ef, ok := m["expires"]; ok {
		d, ok := p.gateDuration(ef, at+".expires", MinApprovalExpires, MaxApprovalExpires)
		if !ok {
			return nil
		}
		a.Expires = d
	}
	return a
}

// scan reads `scan: {block: [CRITICAL, HIGH], wait: 30m}`; either may be
// left out for DefaultScanBlock and DefaultScanWait.
func (p *parser) scan(f field, at string) *Scan {
	m := p.mapping(f.value, at, p.keys("scan")...)
	if m == nil {
		return nil
	}
	s := &Scan{Block: slices.Clone(DefaultScanBlock), Wait: DefaultScanWait}
	ok := true
	if bf, has := m["block"]; has {
		list, good := p.strList(bf, at+".block")
		ok = ok && good
		if bf.value.Kind == yaml.SequenceNode && len(list) == 0 {
			p.errorf(bf.value, at+".block", "must list at least one severity (%s), or be left out for %s",
				strings.Join(Severities, ", "), strings.Join(DefaultScanBlock, ", "))
			ok = false
		}
		seen := map[string]bool{}
		for i, sev := range list {
			key := fmt.Sprintf("%s.block[%d]", at, i)
			switch {
			case sev == "":
			case !slices.Contains(Severities, sev):
				hint := ""
				if slices.Contains(Severities, strings.ToUpper(sev)) {
					hint = fmt.Sprintf(" (write %s, as the scans report it)", strings.ToUpper(sev))
				}
				p.errorf(bf.value.Content[i], key, "unknown severity %q%s; one of %s", sev, hint, strings.Join(Severities, ", "))
				ok = false
			case seen[sev]:
				p.errorf(bf.value.Content[i], key, "severity %s listed twice", sev)
				ok = false
			}
			seen[sev] = true
		}
		if ok {
			s.Block = list
		}
	}
	if wf, has := m["wait"]; has {
		d, good := p.gateDuration(wf, at+".wait", MinScanWait, MaxScanWait)
		ok = ok && good
		s.Wait = d
	}
	if !ok {
		return nil
	}
	return s
}

// bake reads promote's bake and alarms onto pr: both or neither.
func (p *parser) bake(f field, m map[string]field, at string, pr *Promote) bool {
	ok := true
	bf, hasBake := m["bake"]
	af, hasAlarms := m["alarms"]
	if hasBake {
		d, good := p.gateDuration(bf, at+".bake", MinBake, MaxBake)
		ok = ok && good
		pr.Bake = d
	}
	if hasAlarms {
		before := len(p.errs)
		pr.Alarms = p.alarms(af, at+".alarms")
		ok = ok && len(p.errs) == before
	}
	switch {
	case hasBake && !hasAlarms:
		p.errorf(f.value, at+".alarms", "missing; a bake watches CloudWatch alarms: name at least one (alarms: [web-5xx])")
		ok = false
	case hasAlarms && !hasBake:
		p.errorf(af.key, at+".bake", "missing; alarms are watched during a bake: give its length (bake: 15m, from %s to %s)", FormatDuration(MinBake), FormatDuration(MaxBake))
		ok = false
	}
	return ok
}

// maxAlarmName is CloudWatch's limit on an alarm's name.
const maxAlarmName = 255

// alarms reads a bake's alarms: each a plain name (the central account
// and region), `account:name` (a target account of the rule), or the
// alarm's ARN.
func (p *parser) alarms(f field, at string) []Alarm {
	list, _ := p.strList(f, at)
	if f.value.Kind == yaml.SequenceNode && len(list) == 0 {
		p.errorf(f.value, at, "must name at least one CloudWatch alarm")
		return nil
	}
	seen := map[Alarm]bool{}
	var out []Alarm
	for i, s := range list {
		if s == "" {
			continue
		}
		n := f.value.Content[i]
		key := fmt.Sprintf("%s[%d]", at, i)
		a, msg := parseAlarm(s)
		if msg != "" {
			p.errorf(n, key, "%q %s", s, msg)
			continue
		}
		a.Line = n.Line
		k := a
		k.Line = 0
		if seen[k] {
			p.errorf(n, key, "alarm %q listed twice", s)
			continue
		}
		seen[k] = true
		out = append(out, a)
	}
	return out
}

// parseAlarm reads one alarm as written; msg says what is wrong.
func parseAlarm(s string) (a Alarm, msg string) {
	if strings.HasPrefix(s, "arn:") {
		// arn:<partition>:cloudwatch:<region>:<account>:alarm:<name>
		parts := strings.SplitN(s, ":", 7)
		if len(parts) != 7 || !strings.HasPrefix(parts[1], "aws") || parts[2] != "cloudwatch" || parts[5] != "alarm" {
			return Alarm{}, "is not a CloudWatch alarm ARN (arn:aws:cloudwatch:REGION:ACCOUNT:alarm:NAME)"
		}
		if !isAccount(parts[4]) || !regionRE().MatchString(parts[3]) {
			return Alarm{}, "is not a CloudWatch alarm ARN (arn:aws:cloudwatch:REGION:ACCOUNT:alarm:NAME)"
		}
		if !KnownRegion(parts[3]) {
			return Alarm{}, fmt.Sprintf("names unknown AWS region %q", parts[3])
		}
		a = Alarm{Account: parts[4], Region: parts[3], Name: parts[6]}
	} else if i := strings.IndexByte(s, ':'); i == 12 && isAccount(s[:12]) {
		a = Alarm{Account: s[:12], Name: s[13:]}
	} else {
		// A name may hold ':' itself; only 12 digits and ':' name an account.
		a = Alarm{Name: s}
	}
	if !isAlarmName(a.Name) {
		return Alarm{}, fmt.Sprintf("does not name a CloudWatch alarm (a name is 1-%d characters, no control characters)", maxAlarmName)
	}
	return a, ""
}

// isAlarmName: 1-255 bytes of UTF-8 without control characters.
func isAlarmName(s string) bool {
	if len(s) == 0 || len(s) > maxAlarmName {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == '\uFFFD' {
			return false
		}
	}
	return true
}

// checkAlarms holds a rule's account-qualified alarms to its targets: the
// watcher reads alarms only where it has a role (a target account of the
// rule), and `account:name` takes the region of the rule's targets there.
// at locates the promote key the alarms came from (the rule's or
// defaults'); of names the rule when they came from defaults.
func (p *parser) checkAlarms(r *Rule, at, of string) {
	if r.Promote == nil {
		return
	}
	regions := map[string][]string{}
	for _, t := range r.Targets {
		if t.Account != "" && !slices.Contains(regions[t.Account], t.Region) {
			regions[t.Account] = append(regions[t.Account], t.Region)
		}
	}
	for i := range r.Promote.Alarms {
		a := &r.Promote.Alarms[i]
		if a.Account == "" {
			continue
		}
		key := fmt.Sprintf("%s.alarms[%d]", at, i)
		where := regions[a.Account]
		switch {
		case len(where) == 0:
			p.errs = append(p.errs, &Error{File: p.file, Line: a.Line, Key: key,
				Msg: fmt.Sprintf("%q: account %s is not the account of any target of rule %q%s; an alarm of the central account is named without an account",
					a.String(), a.Account, r.Name, of)})
		case a.Region != "":
			if !slices.Contains(where, a.Region) {
				p.errs = append(p.errs, &Error{File: p.file, Line: a.Line, Key: key,
					Msg: fmt.Sprintf("alarm ARN is in %s/%s, where rule %q%s has no target", a.Account, a.Region, r.Name, of)})
			}
		case len(where) > 1:
			p.errs = append(p.errs, &Error{File: p.file, Line: a.Line, Key: key,
				Msg: fmt.Sprintf("%q: rule %q%s has targets in account %s in more than one region (%s); name the alarm by its ARN",
					a.String(), r.Name, of, a.Account, strings.Join(regionNames(where), ", "))})
		default:
			a.Region = where[0]
		}
	}
}

func regionNames(rs []string) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = cmp.Or(r, "the central region")
	}
	return out
}

// gateDuration reads a gate's duration: whole numbers of days, hours,
// minutes and seconds, in that order (14d, 24h, 1h30m, 90s), from min to max.
func (p *parser) gateDuration(f field, at string, min, max time.Duration) (time.Duration, bool) {
	s, ok := p.str(f, at)
	if !ok {
		return 0, false
	}
	d, ok := parseGateDuration(s)
	if !ok {
		p.errorf(f.value, at, "%q is not a duration like 15m, 24h, 1h30m or 14d (whole days, hours, minutes and seconds)", s)
		return 0, false
	}
	if d < min || d > max {
		p.errorf(f.value, at, "%s: want %s to %s", s, FormatDuration(min), FormatDuration(max))
		return 0, false
	}
	return d, true
}

// parseGateDuration reads [Nd][Nh][Nm][Ns], at least one part.
func parseGateDuration(s string) (time.Duration, bool) {
	m := gateDurationRE().FindStringSubmatch(s)
	if m == nil || s == "" {
		return 0, false
	}
	var d time.Duration
	for i, unit := range []time.Duration{24 * time.Hour, time.Hour, time.Minute, time.Second} {
		if m[i+1] == "" {
			continue
		}
		if len(m[i+1]) > 6 { // a million days is no duration; keeps the sum from overflowing
			return 0, false
		}
		n, err := strconv.Atoi(m[i+1])
		if err != nil {
			return 0, false
		}
		d += time.Duration(n) * unit
	}
	return d, true
}

// FormatDuration writes a duration the way the file would: 14d, 24h, 1h30m, 90s.
func FormatDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	var b strings.Builder
	if d > 24*time.Hour && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	for _, u := range []struct {
		unit time.Duration
		name string
	}{{time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if n := d / u.unit; n > 0 {
			fmt.Fprintf(&b, "%d%s", n, u.name)
			d -= n * u.unit
		}
	}
	return b.String()
}
