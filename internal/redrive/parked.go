package redrive

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work"
)

// Parked is one message of a failure queue, unwrapped to the payload the
// deployer was (or should have been) given: an AWS event, or one of the
// product's commands to itself (work: a promotion's hand-off, a sweep
// request) whose asynchronous invocation failed.
type Parked struct {
	Event json.RawMessage
	// Why says why it was parked, as the queue's writer recorded it.
	Why string
}

// failureRecord is what Lambda's on-failure destination writes: the event
// is the requestPayload.
type failureRecord struct {
	RequestContext *struct {
		Condition              string `json:"condition"`
		ApproximateInvokeCount int    `json:"approximateInvokeCount"`
	} `json:"requestContext"`
	RequestPayload  json.RawMessage `json:"requestPayload"`
	ResponsePayload json.RawMessage `json:"responsePayload"`
}

type event struct {
	ID         string          `json:"id"`
	Source     string          `json:"source"`
	DetailType string          `json:"detail-type"`
	Detail     json.RawMessage `json:"detail"`
}

// Unwrap reads a parked message: a Lambda failure record (its request
// payload is the event or command) or an event EventBridge could not
// deliver (the body is the event; the reason is in message attributes).
func Unwrap(body string, attrs map[string]types.MessageAttributeValue) (Parked, error) {
	var rec failureRecord
	if err := json.Unmarshal([]byte(body), &rec); err != nil {
		return Parked{}, fmt.Errorf("not JSON: %w", err)
	}
	if rec.RequestContext != nil && len(rec.RequestPayload) > 0 {
		if err := checkPayload(rec.RequestPayload); err != nil {
			return Parked{}, fmt.Errorf("requestPayload of a Lambda failure record: %w", err)
		}
		why := fmt.Sprintf("Lambda gave up (%s after %d attempts)", rec.RequestContext.Condition, rec.RequestContext.ApproximateInvokeCount)
		var resp struct {
			ErrorMessage string `json:"errorMessage"`
		}
		if json.Unmarshal(rec.ResponsePayload, &resp) == nil && resp.ErrorMessage != "" {
			why += ": " + resp.ErrorMessage
		}
		return Parked{Event: rec.RequestPayload, Why: why}, nil
	}
	if err := checkPayload(json.RawMessage(body)); err != nil {
		return Parked{}, err
	}
	why := "EventBridge could not deliver it"
	if code := attribute(attrs, "ERROR_CODE"); code != "" {
		why += ": " + strings.TrimSpace(code+" "+attribute(attrs, "ERROR_MESSAGE"))
	}
	return Parked{Event: json.RawMessage(body), Why: why}, nil
}

// checkPayload accepts an event or a command, of a kind this build knows or
// not: the deployer decides (a newer deployer may read what this CLI
// cannot), and refuses what it does not take, so the message stays.
func checkPayload(raw json.RawMessage) error {
	if work.IsCommand(raw) {
		return nil
	}
	_, err := parseEvent(raw)
	return err
}

func parseEvent(raw json.RawMessage) (event, error) {
	var ev event
	if err := json.Unmarshal(raw, &ev); err != nil {
		return ev, fmt.Errorf("not an event: %w", err)
	}
	if ev.Source == "" || ev.DetailType == "" {
		return ev, errors.New("neither an EventBridge event, a command nor a Lambda failure record (no source and detail-type, no kind)")
	}
	return ev, nil
}

func attribute(attrs map[string]types.MessageAttributeValue, name string) string {
	if v, ok := attrs[name]; ok && v.StringValue != nil {
		return *v.StringValue
	}
	return ""
}

// Describe names the event for a person: what was pushed, or its kind;
// for a command, what it asks and where it came from.
func (p Parked) Describe() string {
	if work.IsCommand(p.Event) {
		return describeCommand(p.Event)
	}
	ev, err := parseEvent(p.Event)
	if err != nil {
		return "unreadable event"
	}
	var push struct {
		Repository string `json:"repository-name"`
		Tag        string `json:"image-tag"`
		Digest     string `json:"image-digest"`
	}
	if ev.Source == "aws.ecr" && json.Unmarshal(ev.Detail, &push) == nil && push.Repository != "" {
		return fmt.Sprintf("push %s:%s %s (event %s)", push.Repository, push.Tag, short(push.Digest), ev.ID)
	}
	return fmt.Sprintf("%s %q (event %s)", ev.Source, ev.DetailType, ev.ID)
}

// describeCommand names a parked command. One this build cannot read is
// still sent (the deployer may be newer): it says so.
func describeCommand(raw json.RawMessage) string {
	c, err := work.DecodeCommand(raw)
	if err != nil {
		return "command this build cannot read (" + err.Error() + ")"
	}
	switch c := c.(type) {
	case work.DeployPush:
		return fmt.Sprintf("push command %s:%s %s (%s; event %s)", c.Push.Repository, c.Push.Tag, short(c.Push.Digest), c.Origin, c.Push.EventID)
	case work.Sweep:
		dry := ""
		if c.DryRun {
			dry = " (dry run)"
		}
		return fmt.Sprintf("sweep command%s (%s; event %s)", dry, c.Origin, c.ID)
	case work.DeployTarget:
		return fmt.Sprintf("work item %s for %s: %s:%s %s (event %s)", c.Rule, c.ServiceKey, c.Push.Repository, c.Push.Tag, short(c.Push.Digest), c.Push.EventID)
	}
	return fmt.Sprintf("%s command", c.Kind())
}

// short is a digest as docker shows it: sha256: and 12 hex digits.
func short(digest string) string {
	if len(digest) > 19 {
		return digest[:19]
	}
	return digest
}
