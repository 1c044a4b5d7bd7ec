package gateevent

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/gate"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

const digest = "sha256:15794219de6dc381cac7805b3e96683d02e81b9cb72265b5cb8c1f501c21d71c"

var registry = rules.Place{Account: "123456789012", Region: "eu-west-1"}

func TestParseScanSamples(t *testing.T) {
	for _, tt := range []struct {
		file string
		want gate.ScanEvent
	}{
		{"ecr-image-scan-clean.json", gate.ScanEvent{Registry: registry, Repository: "web", Digest: digest, Complete: true,
			Counts: map[string]int{"MEDIUM": 2, "INFORMATIONAL": 5}, Source: gate.SourceECR}},
		{"ecr-image-scan-blocked.json", gate.ScanEvent{Registry: registry, Repository: "web", Digest: digest, Complete: true,
			Counts: map[string]int{"CRITICAL": 1, "HIGH": 3, "MEDIUM": 9, "LOW": 14}, Source: gate.SourceECR}},
		{"ecr-image-scan-failed.json", gate.ScanEvent{Registry: registry, Repository: "web", Digest: digest, Failed: true,
			Counts: map[string]int{}, Reason: "ECR Image Scan status FAILED", Source: gate.SourceECR}},
		{"inspector2-scan.json", gate.ScanEvent{Registry: registry, Repository: "web", Digest: digest, Complete: true,
			Counts: map[string]int{"CRITICAL": 0, "HIGH": 2, "MEDIUM": 7, "TOTAL": 9}, Source: gate.SourceInspector}},
	} {
		t.Run(tt.file, func(t *testing.T) {
			data := testenv.Event(t, tt.file)
			var head struct {
				Source     string `json:"source"`
				DetailType string `json:"detail-type"`
			}
			if err := json.Unmarshal(data, &head); err != nil {
				t.Fatal(err)
			}
			if k := KindOf(head.Source, head.DetailType); k != Scan {
				t.Errorf("KindOf = %v, want Scan", k)
			}
			got, err := ParseScan(data)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseScan (-want +got):\n%s", diff)
			}
		})
	}
}

// edit returns a sample with f applied to its decoded JSON.
func edit(t *testing.T, file string, f func(ev map[string]any)) string {
	t.Helper()
	var ev map[string]any
	if err := json.Unmarshal(testenv.Event(t, file), &ev); err != nil {
		t.Fatal(err)
	}
	f(ev)
	out, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func detail(ev map[string]any) map[string]any { return ev["detail"].(map[string]any) }

func TestParseScanOthers(t *testing.T) {
	for _, tt := range []struct {
		name, data string
		want       gate.ScanEvent // compared when wantErr is ""
		wantErr    string
	}{
		{"not JSON", "{", gate.ScanEvent{}, "malformed scan event"},
		{"an ECS event", string(testenv.Event(t, "ecs-deployment-completed.json")), gate.ScanEvent{}, "not a scan event"},
		{"no digest", edit(t, "ecr-image-scan-clean.json", func(ev map[string]any) { delete(detail(ev), "image-digest") }),
			gate.ScanEvent{}, "missing detail.image-digest"},
		{"no status nor repository", edit(t, "ecr-image-scan-clean.json", func(ev map[string]any) {
			delete(detail(ev), "scan-status")
			delete(detail(ev), "repository-name")
		}), gate.ScanEvent{}, "missing detail.scan-status, detail.repository-name"},
		{"digest not sha256", edit(t, "ecr-image-scan-clean.json", func(ev map[string]any) { detail(ev)["image-digest"] = "latest" }),
			gate.ScanEvent{}, `detail.image-digest "latest"`},
		{"counts not numbers", edit(t, "ecr-image-scan-clean.json", func(ev map[string]any) {
			detail(ev)["finding-severity-counts"] = map[string]any{"HIGH": "two"}
		}), gate.ScanEvent{}, "malformed ECR Image Scan event"},
		{"ECR without account", edit(t, "ecr-image-scan-clean.json", func(ev map[string]any) { delete(ev, "account") }),
			gate.ScanEvent{}, "missing account or region"},
		{"Inspector by name, not ARN", edit(t, "inspector2-scan.json", func(ev map[string]any) { detail(ev)["repository-name"] = "web" }),
			gate.ScanEvent{}, `"web" is not an ECR repository ARN`},
		{"Inspector ARN of another service", edit(t, "inspector2-scan.json", func(ev map[string]any) {
			detail(ev)["repository-name"] = "arn:aws:s3:eu-west-1:123456789012:repository/web"
		}), gate.ScanEvent{}, "is not an ECR repository ARN"},
		{"Inspector in another account, nested name, lower-case counts", edit(t, "inspector2-scan.json", func(ev map[string]any) {
			detail(ev)["repository-name"] = "arn:aws:ecr:us-east-1:210987654321:repository/team/web"
			detail(ev)["finding-severity-counts"] = map[string]any{"critical": 1}
		}), gate.ScanEvent{Registry: rules.Place{Account: "210987654321", Region: "us-east-1"}, Repository: "team/web", Digest: digest,
			Complete: true, Counts: map[string]int{"CRITICAL": 1}, Source: gate.SourceInspector}, ""},
		{"Inspector status without a result", edit(t, "inspector2-scan.json", func(ev map[string]any) {
			detail(ev)["scan-status"] = "SCAN_ELIGIBILITY_EXPIRED"
		}), gate.ScanEvent{Registry: registry, Repository: "web", Digest: digest,
			Counts: map[string]int{"CRITICAL": 0, "HIGH": 2, "MEDIUM": 7, "TOTAL": 9}, Source: gate.SourceInspector}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseScan([]byte(tt.data))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseScan error = %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseScan (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseAlarm(t *testing.T) {
	sample := "cloudwatch-alarm-state-change.json"
	for _, tt := range []struct {
		name, data string
		want       AlarmChange
		wantErr    string
	}{
		{"sample", string(testenv.Event(t, sample)), AlarmChange{EventID: "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92", Where: registry,
			Name: "web-staging-5xx", State: "ALARM", At: time.Date(2026, 11, 25, 10, 14, 3, 507e6, time.UTC)}, ""},
		{"RFC 3339 time, another account", edit(t, sample, func(ev map[string]any) {
			ev["account"] = "210987654321"
			detail(ev)["state"].(map[string]any)["timestamp"] = "2026-11-25T11:14:03+01:00"
			detail(ev)["state"].(map[string]any)["value"] = "OK"
		}), AlarmChange{EventID: "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92", Where: rules.Place{Account: "210987654321", Region: "eu-west-1"},
			Name: "web-staging-5xx", State: "OK", At: time.Date(2026, 11, 25, 10, 14, 3, 0, time.UTC)}, ""},
		{"not JSON", "[]", AlarmChange{}, "malformed alarm event"},
		{"a scan event", string(testenv.Event(t, "ecr-image-scan-clean.json")), AlarmChange{}, "not a CloudWatch Alarm State Change event"},
		{"no name, no state", edit(t, sample, func(ev map[string]any) {
			delete(detail(ev), "alarmName")
			delete(detail(ev), "state")
		}), AlarmChange{}, "missing detail.alarmName, detail.state.value, detail.state.timestamp"},
		{"no region", edit(t, sample, func(ev map[string]any) { delete(ev, "region") }), AlarmChange{}, "missing region"},
		{"bad time", edit(t, sample, func(ev map[string]any) { detail(ev)["state"].(map[string]any)["timestamp"] = "yesterday" }),
			AlarmChange{}, `"yesterday" is not a time`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAlarm([]byte(tt.data))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseAlarm error = %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseAlarm (-want +got):\n%s", diff)
			}
		})
	}
}

func TestKindOf(t *testing.T) {
	for _, tt := range []struct {
		file string
		want Kind
	}{
		{"cloudwatch-alarm-state-change.json", Alarm},
		{"scheduled-reconcile.json", Scheduled},
		{"ecs-deployment-completed.json", None},
		{"ecr-push-main.json", None},
	} {
		var head struct {
			Source     string `json:"source"`
			DetailType string `json:"detail-type"`
		}
		if err := json.Unmarshal(testenv.Event(t, tt.file), &head); err != nil {
			t.Fatal(err)
		}
		if got := KindOf(head.Source, head.DetailType); got != tt.want {
			t.Errorf("%s: KindOf = %v, want %v", tt.file, got, tt.want)
		}
	}
}
