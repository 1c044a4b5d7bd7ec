package notify

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecsarn"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/history"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/text"
)

// RolloutEnded is the notice of a push's rollout to a rule's targets once
// it ended on every one of them: one notice per rule, however many targets.
const RolloutEnded = "rollout_ended"

// Skipped is a target's end in a rollout when its deploy changed nothing:
// held, already running the image, or a downgrade refused.
const Skipped = "skipped"

// Superseded is a target's end in a rollout when a newer deploy replaced
// its deployment before it ended (history.Superseded).
const Superseded = history.Superseded

// Bounds of a rollout notice, so that one push to a thousand services
// reads in a glance and stays far inside SNS's and Chatbot's limits.
const (
	// MaxGroups is how many (outcome, reason) groups a notice lists.
	MaxGroups = 8
	// MaxNamed is how many services one group names.
	MaxNamed = 10
	// MaxGroupReason is the length a group's reason is cut to.
	MaxGroupReason = 300
)

// Summary is how a rollout ended, counted and grouped.
type Summary struct {
	Expected int            // targets the push was dispatched to
	Counts   map[string]int // ends by outcome
	// Groups are the ends that did not complete, by outcome and reason:
	// failures first, then the biggest; at most MaxGroups.
	Groups []Group
	// MoreGroups counts the groups left out.
	MoreGroups int
}

// Group is the targets that ended alike: one outcome, and reasons that
// differ only in what names the target (its cluster and service, ARNs,
// task definition revisions, AWS request ids; see groupKey). Reason is the
// first service's own reason, as an example.
type Group struct {
	Outcome, Reason string
	Count           int
	Services        []string // at most MaxNamed, cluster/service
}

// groupPatterns are what groupKey erases from a reason, compiled on first
// use (not at init: the functions' cold start stays at its floor).
var groupPatterns = sync.OnceValue(func() []*regexp.Regexp {
	return []*regexp.Regexp{
		regexp.MustCompile(`arn:aws[a-z-]*:[^\s,;()"'\[\]]+`),             // ARNs: of the service, its task definition, a role
		regexp.MustCompile(`(?i)(request ?id:?\s*)[0-9a-f][0-9a-f-]{7,}`), // RequestID: 5d1c…
		regexp.MustCompile(`([A-Za-z0-9_-]):[0-9]+\b`),                    // family:7
		regexp.MustCompile(`\b(ecs-svc/)[0-9]+\b`),                        // deployment ids
	}
})

// groupKey is a reason with what names one target erased, so that one cause
// on many services is one group: "update service fleet/svc-007 to
// arn:…:task-definition/svc-007:7: … RequestID: 5d1c… AccessDenied…" and
// the same for svc-008 read alike.
func groupKey(e history.RolloutEnd) string {
	r := strings.TrimSpace(e.Reason)
	ps := groupPatterns()
	r = ps[0].ReplaceAllString(r, "<arn>")
	r = ps[1].ReplaceAllString(r, "${1}<id>")
	r = ps[2].ReplaceAllString(r, "${1}:<n>")
	r = ps[3].ReplaceAllString(r, "${1}<n>")
	names := []struct{ name, as string }{{ecsarn.Name(e.Service), "<service>"}, {ecsarn.Name(e.Cluster), "<cluster>"}}
	if len(names[1].name) > len(names[0].name) {
		names[0], names[1] = names[1], names[0] // the longer first: "web" within "web-prod"
	}
	for _, n := range names {
		r = replaceWord(r, n.name, n.as)
	}
	return r
}

// replaceWord replaces name in s where it stands as a whole word of a
// service name (not within a longer name such as web-worker for web).
func replaceWord(s, name, as string) string {
	if name == "" {
		return s
	}
	inName := func(b byte) bool {
		return b == '-' || b == '_' || b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z'
	}
	var out strings.Builder
	for {
		i := strings.Index(s, name)
		if i < 0 {
			out.WriteString(s)
			return out.String()
		}
		j := i + len(name)
		if (i > 0 && inName(s[i-1])) || (j < len(s) && inName(s[j])) {
			out.WriteString(s[:j])
		} else {
			out.WriteString(s[:i] + as)
		}
		s = s[j:]
	}
}

// RolloutNotice is the one notice of a rollout whose every target ended.
func RolloutNotice(r history.Rollout, ends []history.RolloutEnd, at time.Time) Notice {
	s := Summary{Expected: r.Expected, Counts: map[string]int{}}
	type key struct{ outcome, reason string }
	groups := map[key]*Group{}
	first := map[*Group]string{} // the service whose reason the group shows
	for _, e := range ends {
		s.Counts[e.Outcome]++
		if e.Outcome == Completed {
			continue
		}
		k := key{e.Outcome, groupKey(e)}
		name := e.Cluster + "/" + e.Service
		g := groups[k]
		if g == nil {
			g = &Group{Outcome: e.Outcome}
			groups[k] = g
		}
		if f, ok := first[g]; !ok || name < f {
			first[g], g.Reason = name, text.Cut(strings.TrimSpace(e.Reason), MaxGroupReason)
		}
		g.Count++
		g.Services = append(g.Services, name)
	}
	all := make([]*Group, 0, len(groups))
	for _, g := range groups {
		slices.Sort(g.Services)
		g.Services = g.Services[:min(len(g.Services), MaxNamed)]
		all = append(all, g)
	}
	slices.SortFunc(all, func(a, b *Group) int {
		return cmp.Or(cmp.Compare(severity(a.Outcome), severity(b.Outcome)), cmp.Compare(b.Count, a.Count),
			cmp.Compare(a.Reason, b.Reason))
	})
	for i, g := range all {
		if i == MaxGroups {
			s.MoreGroups = len(all) - MaxGroups
			break
		}
		s.Groups = append(s.Groups, *g)
	}
	return Notice{Outcome: RolloutEnded, Rule: r.Rule, Repository: r.Repository, Tag: r.Tag, Digest: r.Digest,
		EventID: r.EventID, PushedAt: r.PushedAt, EndedAt: at, Summary: &s}
}

// severity orders groups: what failed first, what was left alone last.
func severity(outcome string) int {
	switch outcome {
	case Failed, NotDeployed:
		return 0
	case RolledBack:
		return 1
	}
	return 2
}

// Deployed is how many targets completed.
func (s *Summary) Deployed() int { return s.Counts[Completed] }

// failed is how many targets failed, were rolled back or not deployed.
func (s *Summary) failed() int {
	return s.Counts[Failed] + s.Counts[RolledBack] + s.Counts[NotDeployed]
}

// tally says the counts other than completed, biggest first.
func (s *Summary) tally() string {
	type c struct {
		outcome string
		n       int
	}
	var cs []c
	for o, n := range s.Counts {
		if o != Completed && n > 0 {
			cs = append(cs, c{o, n})
		}
	}
	slices.SortFunc(cs, func(a, b c) int { return cmp.Or(cmp.Compare(b.n, a.n), cmp.Compare(a.outcome, b.outcome)) })
	var parts []string
	for _, c := range cs {
		parts = append(parts, fmt.Sprintf("%d %s", c.n, label(c.outcome)))
	}
	return strings.Join(parts, ", ")
}

// label is an outcome as a notice says it.
func label(outcome string) string {
	switch outcome {
	case NotDeployed:
		return "not deployed"
	case RolledBack:
		return "rolled back"
	}
	return strings.ReplaceAll(outcome, "_", " ")
}

// title is the rollout notice's one line.
func (s *Summary) title(n Notice) string {
	t := fmt.Sprintf("rule %s deployed %s:%s to %d of %d services", n.Rule, n.Repository, n.Tag, s.Deployed(), s.Expected)
	if f := s.failed(); f > 0 {
		t += fmt.Sprintf(", %d FAILED", f)
	}
	if k := s.Counts[Skipped]; k > 0 {
		t += fmt.Sprintf(", %d skipped", k)
	}
	if k := s.Counts[Superseded]; k > 0 {
		t += fmt.Sprintf(", %d superseded", k)
	}
	return t
}

// facts are the rollout notice's details: the push, the count, each group.
func (s *Summary) facts(n Notice) []fact {
	fs := []fact{
		{"Rule", n.Rule},
		{"Image", n.Repository + ":" + n.Tag},
		{"Digest", n.Digest},
		{"Event", n.EventID},
		{"Deployed", fmt.Sprintf("%d of %d services", s.Deployed(), s.Expected)},
	}
	if rest := s.tally(); rest != "" {
		fs = append(fs, fact{"The rest", rest})
	}
	for _, g := range s.Groups {
		names := strings.Join(g.Services, ", ")
		if more := g.Count - len(g.Services); more > 0 {
			names += fmt.Sprintf(" and %d more", more)
		}
		value := names
		if g.Reason != "" {
			value = g.Reason + " — " + names
		}
		name := strings.ToUpper(label(g.Outcome)[:1]) + label(g.Outcome)[1:]
		fs = append(fs, fact{fmt.Sprintf("%s (%d)", name, g.Count), value})
	}
	if s.MoreGroups > 0 {
		fs = append(fs, fact{"More", fmt.Sprintf("and %d more reasons: see `autodeploy history` per service", s.MoreGroups)})
	}
	if !n.PushedAt.IsZero() && !n.EndedAt.IsZero() {
		fs = append(fs, fact{"Push to end", fmt.Sprintf("%s (pushed %s, ended %s)", n.EndedAt.Sub(n.PushedAt).Round(time.Second),
			n.PushedAt.UTC().Format(time.RFC3339), n.EndedAt.UTC().Format(time.RFC3339))})
	}
	return fs
}

// nextSteps of a rollout notice.
func (s *Summary) nextSteps() []string {
	if s.Deployed() == s.Expected {
		return []string{"Nothing to do. To undo it on one service: `autodeploy rollback --cluster C --service S`"}
	}
	steps := []string{"See what happened on a service: `autodeploy history --cluster C --service S`"}
	if s.failed() > 0 {
		steps = append(steps, "A digest that failed or was rolled back on a service is not deployed there again; a newer push is. Fix the image or the cause above and push again.")
	}
	if s.Counts[Skipped] > 0 {
		steps = append(steps, "Skipped services were held, already ran the image, or would have been downgraded: see the reasons above.")
	}
	if s.Counts[Superseded] > 0 {
		steps = append(steps, "Superseded services were deployed again, by a newer push, before this one ended there: the newer push's notice says how that ended.")
	}
	return steps
}

// icon of a rollout: all deployed, something failed, or only skips.
func (s *Summary) icon() string {
	switch {
	case s.Deployed() == s.Expected:
		return "✅"
	case s.failed() > 0:
		return "❌"
	}
	return "⚠️"
}

// RolloutBook keeps rollouts (history.Store).
type RolloutBook interface {
	EndRollout(ctx context.Context, rule, eventID string, end history.RolloutEnd, now time.Time) (history.RolloutEnding, error)
	RolloutNoticeSent(ctx context.Context, rule, eventID, owner string, now time.Time) error
}

// Sender sends a notice (a Topic); nil sends nothing.
type Sender interface {
	Notify(ctx context.Context, n Notice) error
}

// EndTarget records how one target of a rule's rollout for an event ended
// and, when it was the last to end, sends the rule's one notice: the
// watcher calls it for each deployment's end, the deployer for each target
// it skipped or failed for good. tracked is false when no rollout counts
// the target (a rule with one target, an event from before rollouts): the
// caller reports it by itself, as always.
//
// A notice that cannot be sent is logged and stays unsent: the claim is
// kept, so no other end sends it either (a notice twice is worse than a
// logged loss, as for every notice). A notice sent whose mark is lost is
// logged, and no error: a retry of the end would send it again.
func EndTarget(ctx context.Context, book RolloutBook, sender Sender, log *slog.Logger, rule, eventID string, end history.RolloutEnd, now time.Time) (tracked bool, err error) {
	ending, err := book.EndRollout(ctx, rule, eventID, end, now)
	if err != nil || !ending.Tracked {
		return false, err
	}
	r := ending.Rollout
	if !ending.Last {
		log.InfoContext(ctx, "rollout", "outcome", "in_progress", "rule", rule, "event_id", eventID, "digest", r.Digest,
			"cluster", end.Cluster, "service", end.Service, "target_outcome", end.Outcome, "counted", ending.Counted,
			"ended", r.Ended, "expected", r.Expected)
		return true, nil
	}
	n := RolloutNotice(r, ending.Ends, end.At)
	log.InfoContext(ctx, "rollout", "outcome", "ended", "rule", rule, "event_id", eventID, "digest", r.Digest,
		"repository", r.Repository, "tag", r.Tag, "deployed", n.Summary.Deployed(), "expected", r.Expected,
		"ends", n.Summary.Counts)
	if sender == nil {
		return true, book.RolloutNoticeSent(ctx, rule, eventID, ending.Owner, now)
	}
	if err := sender.Notify(ctx, n); err != nil {
		log.ErrorContext(ctx, "notification not sent", "rule", rule, "event_id", eventID, "error", err.Error())
		return true, nil
	}
	if err := book.RolloutNoticeSent(ctx, rule, eventID, ending.Owner, now); err != nil {
		log.WarnContext(ctx, "notice sent, its mark not written", "rule", rule, "event_id", eventID, "error", err.Error())
	}
	return true, nil
}
