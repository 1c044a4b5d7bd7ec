package queue

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// The work queues live in the central account and region, one per target
// place. Their names are derived, not listed: a stack with 200 target places
// would not fit their URLs in Lambda's 4 KB of environment. The stack names
// the central place's queue (AUTODEPLOY_WORK_QUEUE_URL), and every other
// place's queue is that name with "-<account>-<region>" appended.

// maxNameLen is SQS's limit on a queue name.
const maxNameLen = 80

// placeSuffixLen is the longest suffix a place adds: "-" + 12 digits + "-"
// + the longest region name (14, ap-southeast-5 and the like; us-gov-west-1
// is 13).
const placeSuffixLen = 1 + 12 + 1 + 14

// MaxBaseNameLen is the longest name the central queue may have so that
// every place's queue name fits SQS's limit.
const MaxBaseNameLen = maxNameLen - placeSuffixLen

// NameFor is the name of place p's work queue, given the central queue's
// name base.
func NameFor(base string, central, p rules.Place) string {
	if p == central {
		return base
	}
	return base + "-" + p.Account + "-" + p.Region
}

// URLFor is the URL of place p's work queue, given the central queue's URL.
func URLFor(baseURL string, central, p rules.Place) (string, error) {
	u, base, err := split(baseURL)
	if err != nil {
		return "", err
	}
	return u + NameFor(base, central, p), nil
}

// Queues maps each place to its work queue's URL.
func Queues(baseURL string, central rules.Place, places []rules.Place) (map[rules.Place]string, error) {
	m := map[rules.Place]string{}
	for _, p := range append([]rules.Place{central}, places...) {
		u, err := URLFor(baseURL, central, p)
		if err != nil {
			return nil, err
		}
		m[p] = u
	}
	return m, nil
}

// URLOfARN is the URL of the queue with ARN arn (as an SQS event names its
// source), on the host of baseURL: the worker's way to reach the queue a
// message came from.
func URLOfARN(baseURL, arn string) (string, error) {
	parts := strings.Split(arn, ":")
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "sqs" || parts[4] == "" || parts[5] == "" {
		return "", fmt.Errorf("%q is not an SQS queue ARN", arn)
	}
	u, err := url.Parse(baseURL)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("work queue URL %q: not a URL", baseURL)
	}
	return u.Scheme + "://" + u.Host + "/" + parts[4] + "/" + parts[5], nil
}

// URLForName is the URL of the queue named name beside the queue at
// anyURL (same account, region and endpoint): the redrive's way from the
// dead-letter queue to the work queue a message names.
func URLForName(anyURL, name string) (string, error) {
	if name == "" || len(name) > maxNameLen || strings.ContainsAny(name, "/?#") {
		return "", fmt.Errorf("%q is not a queue name", name)
	}
	prefix, _, err := cut(anyURL)
	if err != nil {
		return "", err
	}
	return prefix + name, nil
}

// cut cuts a queue URL into everything up to its name, and the name.
func cut(queueURL string) (prefix, name string, err error) {
	u, perr := url.Parse(queueURL)
	i := strings.LastIndex(queueURL, "/")
	if perr != nil || u.Host == "" || i < 0 || i == len(queueURL)-1 {
		return "", "", fmt.Errorf("queue URL %q: want https://sqs.<region>.amazonaws.com/<account>/<name>", queueURL)
	}
	return queueURL[:i+1], queueURL[i+1:], nil
}

// split cuts the central work queue's URL into everything up to its name,
// and the name, which must leave room for the other places' suffixes.
func split(queueURL string) (prefix, name string, err error) {
	prefix, name, err = cut(queueURL)
	if err != nil {
		return "", "", fmt.Errorf("work %w", err)
	}
	if len(name) > MaxBaseNameLen {
		return "", "", fmt.Errorf("work queue URL %q: its name is longer than %d characters, so the other places' queues could not be named", queueURL, MaxBaseNameLen)
	}
	return prefix, name, nil
}
