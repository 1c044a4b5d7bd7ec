// Package gateevent reads the EventBridge events that end gates (DESIGN
// "Gates"), which aws-lambda-go has no types for: a scan's result (ECR
// basic scanning's "ECR Image Scan", Amazon Inspector's "Inspector2 Scan")
// and a CloudWatch alarm's state change. It also names the stack's
// "Scheduled Event", the sweep's schedule the watcher hears too.
package gateevent

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/gate"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

// The events' sources and detail-types.
const (
	SourceECR       = "aws.ecr"
	SourceInspector = "aws.inspector2"
	SourceAlarm     = "aws.cloudwatch"
	SourceSchedule  = "aws.events"

	DetailECRScan       = "ECR Image Scan"
	DetailInspectorScan = "Inspector2 Scan"
	DetailAlarm         = "CloudWatch Alarm State Change"
	DetailScheduled     = "Scheduled Event"
)

// Kind is which gate event one is.
type Kind int

const (
	None      Kind = iota // not an event of this package
	Scan                  // ECR Image Scan or Inspector2 Scan
	Alarm                 // CloudWatch Alarm State Change
	Scheduled             // the stack's schedule
)

// KindOf tells an event by its source and detail-type.
func KindOf(source, detailType string) Kind {
	switch {
	case source == SourceECR && detailType == DetailECRScan, source == SourceInspector && detailType == DetailInspectorScan:
		return Scan
	case source == SourceAlarm && detailType == DetailAlarm:
		return Alarm
	case source == SourceSchedule && detailType == DetailScheduled:
		return Scheduled
	}
	return None
}

type envelope struct {
	ID         string          `json:"id"`
	Source     string          `json:"source"`
	DetailType string          `json:"detail-type"`
	Account    string          `json:"account"`
	Region     string          `json:"region"`
	Time       time.Time       `json:"time"`
	Detail     json.RawMessage `json:"detail"`
}

type scanDetail struct {
	ScanStatus     string         `json:"scan-status"`
	RepositoryName string         `json:"repository-name"`
	ImageDigest    string         `json:"image-digest"`
	ImageTags      []string       `json:"image-tags"`
	Counts         map[string]int `json:"finding-severity-counts"`
}

// ECR's and Inspector's scan-status values that carry a result.
const (
	ecrComplete       = "COMPLETE"
	ecrFailed         = "FAILED"
	inspectorComplete = "INITIAL_SCAN_COMPLETE"
)

// ParseScan reads an ECR Image Scan or Inspector2 Scan event as the gate
// takes it. The registry is the event's account and region for ECR's; for
// Inspector's, the repository ARN's (repository-name is an ARN there). A
// status that carries no result (neither Complete nor Failed) is returned
// as it is, for the gate to ignore. Anything malformed is an error that
// says what is wrong.
func ParseScan(data []byte) (gate.ScanEvent, error) {
	var e envelope
	if err := json.Unmarshal(data, &e); err != nil {
		return gate.ScanEvent{}, fmt.Errorf("malformed scan event: %w", err)
	}
	if KindOf(e.Source, e.DetailType) != Scan {
		return gate.ScanEvent{}, fmt.Errorf("not a scan event: source %q, detail-type %q", e.Source, e.DetailType)
	}
	var d scanDetail
	if err := json.Unmarshal(e.Detail, &d); err != nil {
		return gate.ScanEvent{}, fmt.Errorf("malformed %s event %s: detail: %w", e.DetailType, e.ID, err)
	}
	var missing []string
	for _, f := range []struct{ name, value string }{
		{"detail.scan-status", d.ScanStatus}, {"detail.repository-name", d.RepositoryName}, {"detail.image-digest", d.ImageDigest},
	} {
		if f.value == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return gate.ScanEvent{}, fmt.Errorf("malformed %s event %s: missing %s", e.DetailType, e.ID, strings.Join(missing, ", "))
	}
	if !strings.HasPrefix(d.ImageDigest, "sha256:") {
		return gate.ScanEvent{}, fmt.Errorf("malformed %s event %s: detail.image-digest %q is not a sha256 digest", e.DetailType, e.ID, d.ImageDigest)
	}
	ev := gate.ScanEvent{Registry: rules.Place{Account: e.Account, Region: e.Region}, Repository: d.RepositoryName,
		Digest: d.ImageDigest, Counts: map[string]int{}}
	for sev, n := range d.Counts {
		ev.Counts[strings.ToUpper(sev)] = n
	}
	if e.Source == SourceInspector {
		place, name, err := repositoryARN(d.RepositoryName)
		if err != nil {
			return gate.ScanEvent{}, fmt.Errorf("malformed %s event %s: detail.repository-name: %w", e.DetailType, e.ID, err)
		}
		ev.Registry, ev.Repository, ev.Source = place, name, gate.SourceInspector
		ev.Complete = d.ScanStatus == inspectorComplete
	} else {
		if e.Account == "" || e.Region == "" {
			return gate.ScanEvent{}, fmt.Errorf("malformed %s event %s: missing account or region (the registry)", e.DetailType, e.ID)
		}
		ev.Source = gate.SourceECR
		switch d.ScanStatus {
		case ecrComplete:
			ev.Complete = true
		case ecrFailed:
			// ECR's event says no more; DescribeImageScanFindings has
			// the description, which the notice points to.
			ev.Failed, ev.Reason = true, "ECR Image Scan status FAILED"
		}
	}
	return ev, nil
}

// repositoryARN splits arn:aws:ecr:<region>:<account>:repository/<name>
// (a name may hold slashes).
func repositoryARN(arn string) (rules.Place, string, error) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "ecr" || parts[3] == "" || parts[4] == "" ||
		!strings.HasPrefix(parts[5], "repository/") || len(parts[5]) == len("repository/") {
		return rules.Place{}, "", fmt.Errorf("%q is not an ECR repository ARN (arn:aws:ecr:<region>:<account>:repository/<name>)", arn)
	}
	return rules.Place{Account: parts[4], Region: parts[3]}, strings.TrimPrefix(parts[5], "repository/"), nil
}

// AlarmChange is one alarm's state change.
type AlarmChange struct {
	EventID string
	// Where is the alarm's account and region (the event's).
	Where rules.Place
	Name  string
	// State is the new state: OK, ALARM or INSUFFICIENT_DATA.
	State string
	// At is when the alarm entered it (detail.state.timestamp), not
	// when the event was delivered.
	At time.Time
}

type alarmDetail struct {
	AlarmName string `json:"alarmName"`
	State     struct {
		Value     string `json:"value"`
		Timestamp string `json:"timestamp"`
	} `json:"state"`
}

// alarmTimeLayouts are how CloudWatch writes a state's timestamp
// ("2026-11-25T10:14:03.507+0000": no colon in the offset), and RFC 3339.
var alarmTimeLayouts = []string{"2006-01-02T15:04:05.000-0700", "2006-01-02T15:04:05-0700", time.RFC3339Nano}

// ParseAlarm reads a CloudWatch Alarm State Change event; anything
// malformed is an error that says what is wrong.
func ParseAlarm(data []byte) (AlarmChange, error) {
	var e envelope
	if err := json.Unmarshal(data, &e); err != nil {
		return AlarmChange{}, fmt.Errorf("malformed alarm event: %w", err)
	}
	if KindOf(e.Source, e.DetailType) != Alarm {
		return AlarmChange{}, fmt.Errorf("not a CloudWatch Alarm State Change event: source %q, detail-type %q", e.Source, e.DetailType)
	}
	var d alarmDetail
	if err := json.Unmarshal(e.Detail, &d); err != nil {
		return AlarmChange{}, fmt.Errorf("malformed alarm event %s: detail: %w", e.ID, err)
	}
	var missing []string
	for _, f := range []struct{ name, value string }{
		{"account", e.Account}, {"region", e.Region}, {"detail.alarmName", d.AlarmName},
		{"detail.state.value", d.State.Value}, {"detail.state.timestamp", d.State.Timestamp},
	} {
		if f.value == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return AlarmChange{}, fmt.Errorf("malformed alarm event %s: missing %s", e.ID, strings.Join(missing, ", "))
	}
	at, err := alarmTime(d.State.Timestamp)
	if err != nil {
		return AlarmChange{}, fmt.Errorf("malformed alarm event %s: detail.state.timestamp: %w", e.ID, err)
	}
	return AlarmChange{EventID: e.ID, Where: rules.Place{Account: e.Account, Region: e.Region}, Name: d.AlarmName,
		State: d.State.Value, At: at}, nil
}

func alarmTime(s string) (time.Time, error) {
	for _, layout := range alarmTimeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time (want 2006-01-02T15:04:05.000+0000)", s)
}
