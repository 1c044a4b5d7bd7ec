package stack

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work/queue"
)

// searchQuery is the query of a SEARCH expression (between its first pair
// of single quotes) and its statistic and period.
var searchQuery = regexp.MustCompile(`^SEARCH\('([^']*)', 'Maximum', 300\)$`)

// quotedQueue is a QueueName term whose value is quoted (an exact match);
// anyQueueTerm is any QueueName term.
var (
	quotedQueue  = regexp.MustCompile(`QueueName="([^"]+)"`)
	anyQueueTerm = regexp.MustCompile(`QueueName=`)
)

// Past dashboardQueueLines places the backlog graphs search for the work
// queues by their exact names — each quoted (an unquoted value is a
// partial, token match, which finds the work dead-letter queue and other
// stacks' queues too), joined by OR — in as many SEARCH expressions as
// CloudWatch's 1,024-character query limit needs, every place's queue in
// exactly one of them.
func TestWorkQueueSearchesMatchExactly(t *testing.T) {
	central := rules.Place{Account: "111111111111", Region: "eu-west-1"}
	base := WorkQueueBase("Test")
	for _, places := range []int{11, 60} {
		t.Run(fmt.Sprintf("%d places", places), func(t *testing.T) {
			want := []string{queue.NameFor(base, central, central)}
			for i := 1; i < places; i++ {
				want = append(want, queue.NameFor(base, central, rules.Place{Account: fmt.Sprintf("%012d", 200000000000+i), Region: "ap-southeast-2"}))
			}
			exprs := queueSearches("ApproximateNumberOfMessagesVisible", want)
			var found []string
			for _, e := range exprs {
				m := searchQuery.FindStringSubmatch(e)
				if m == nil {
					t.Fatalf("not a SEARCH of the Maximum over 300 s: %s", e)
				}
				q := m[1]
				if len(q) > searchQueryLimit {
					t.Errorf("query of %d characters, over CloudWatch's %d: %s", len(q), searchQueryLimit, q)
				}
				if !strings.HasPrefix(q, `{AWS/SQS,QueueName} MetricName="ApproximateNumberOfMessagesVisible" (`) || !strings.HasSuffix(q, ")") {
					t.Errorf("query %s", q)
				}
				terms := quotedQueue.FindAllStringSubmatch(q, -1)
				if n := len(anyQueueTerm.FindAllString(q, -1)); n != len(terms) {
					t.Errorf("%d QueueName terms, %d of them quoted: %s", n, len(terms), q)
				}
				var joined []string
				for _, term := range terms {
					found = append(found, term[1])
					joined = append(joined, term[0])
				}
				if inner := q[strings.Index(q, "(")+1 : len(q)-1]; inner != strings.Join(joined, " OR ") {
					t.Errorf("terms not joined by OR: %s", inner)
				}
			}
			if diff := cmp.Diff(want, found); diff != "" {
				t.Errorf("queues searched (-want +got):\n%s", diff)
			}
			if places > 11 && len(exprs) < 2 {
				t.Errorf("%d places in %d expression(s)", places, len(exprs))
			}
			// Neither the work dead-letter queue (CloudWatch names it
			// Test-WorkDeadLetters…) nor another stack's work queue is
			// matched: exact matches name only the places' queues.
			for _, other := range []string{"Test-WorkDeadLetters-ABCDEF123456", WorkQueueBase("Test-staging"), "Test-work-dlq"} {
				for _, f := range found {
					if f == other {
						t.Errorf("the searches match %s", other)
					}
				}
			}
		})
	}
}
