package redrive

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Parked is one message of a failure queue, unwrapped to the event the
// deployer was (or should have been) given.
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
// payload is the event) or an event EventBridge could not deliver (the body
// is the event; the reason is in message attributes).
func Unwrap(body string, attrs map[string]types.MessageAttributeValue) (Parked, error) {
	var rec failureRecord
	if err := json.Unmarshal([]byte(body), &rec); err != nil {
		return Parked{}, fmt.Errorf("not JSON: %w", err)
	}
	if rec.RequestContext != nil && len(rec.RequestPayload) > 0 {
		if _, err := parseEvent(rec.RequestPayload); err != nil {
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
	if _, err := parseEvent(json.RawMessage(body)); err != nil {
		return Parked{}, err
	}
	why := "EventBridge could not deliver it"
	if code := attribute(attrs, "ERROR_CODE"); code != "" {
		why += ": " + strings.TrimSpace(code+" "+attribute(attrs, "ERROR_MESSAGE"))
	}
	return Parked{Event: json.RawMessage(body), Why: why}, nil
}

func parseEvent(raw json.RawMessage) (event, error) {
	var ev event
	if err := json.Unmarshal(raw, &ev); err != nil {
		return ev, fmt.Errorf("not an event: %w", err)
	}
	if ev.Source == "" || ev.DetailType == "" {
		return ev, errors.New("neither an EventBridge event nor a Lambda failure record (no source and detail-type)")
	}
	return ev, nil
}

func attribute(attrs map[string]types.MessageAttributeValue, name string) string {
	if v, ok := attrs[name]; ok && v.StringValue != nil {
		return *v.StringValue
	}
	return ""
}

// Describe names the event for a person: what was pushed, or its kind.
func (p Parked) Describe() string {
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
		digest := push.Digest
		if len(digest) > 19 {
			digest = digest[:19] // sha256: and 12 hex digits, as docker shows
		}
		return fmt.Sprintf("push %s:%s %s (event %s)", push.Repository, push.Tag, digest, ev.ID)
	}
	return fmt.Sprintf("%s %q (event %s)", ev.Source, ev.DetailType, ev.ID)
}
