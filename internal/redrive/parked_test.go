package redrive

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/testenv"
)

func TestUnwrap(t *testing.T) {
	push := string(testenv.Event(t, "ecr-push-main.json"))
	record, err := os.ReadFile("testdata/lambda-failure-record.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, body string
		attrs      map[string]types.MessageAttributeValue
		why, err   string
	}{
		{name: "Lambda failure record", body: string(record),
			why: "Lambda gave up (RetriesExhausted after 3 attempts): 1 target(s) failed and will be retried: staging/web: describe services: ThrottlingException"},
		{name: "EventBridge dead letter", body: push, attrs: map[string]types.MessageAttributeValue{
			"ERROR_CODE":    {DataType: aws.String("String"), StringValue: aws.String("SDK_CLIENT_ERROR")},
			"ERROR_MESSAGE": {DataType: aws.String("String"), StringValue: aws.String("Unable to invoke Lambda function")}},
			why: "EventBridge could not deliver it: SDK_CLIENT_ERROR Unable to invoke Lambda function"},
		{name: "EventBridge dead letter without attributes", body: push, why: "EventBridge could not deliver it"},
		{name: "not JSON", body: "hello", err: "not JSON"},
		{name: "JSON but no event", body: `{"a": 1}`, err: "neither an EventBridge event, a command nor a Lambda failure record"},
		{name: "failure record around no event", body: `{"requestContext": {}, "requestPayload": {"x": 1}}`, err: "requestPayload of a Lambda failure record: neither"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Unwrap(tt.body, tt.attrs)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Why != tt.why {
				t.Errorf("why = %q, want %q", p.Why, tt.why)
			}
			var got, want any
			_ = json.Unmarshal(p.Event, &got)
			_ = json.Unmarshal([]byte(push), &want)
			if !jsonEqual(got, want) {
				t.Errorf("event = %s, want the original push", p.Event)
			}
			if d := p.Describe(); d != "push web:main-4f2a9c1 sha256:15794219de6d (event 1a0c4c1e-5b8f-4c2e-9d65-0c3e2f1a7b01)" {
				t.Errorf("describe = %q", d)
			}
		})
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// A command whose asynchronous invocation failed (a promotion's hand-off, a
// sweep request) lands in the deployer's failure queue as a Lambda failure
// record too: it unwraps to the command, is described by what it asks and
// where it came from, and is sent as it is — one this build cannot read
// too, as the deployer may be newer.
func TestUnwrapACommand(t *testing.T) {
	record, err := os.ReadFile("testdata/lambda-failure-record-command.json")
	if err != nil {
		t.Fatal(err)
	}
	inRecord := func(payload string) string {
		return `{"requestContext": {"condition": "RetriesExhausted", "approximateInvokeCount": 3}, "requestPayload": ` + payload + `}`
	}
	for _, tt := range []struct {
		name, body, payload, describe, why string
	}{
		{name: "push command", body: string(record),
			payload:  `{"kind":"push","v":1,"origin":"promotion of rule web-staging to tag verified-main-4f2a9c1","push":{"event_id":"autodeploy-promote-5d41402abc4b2a76","registry_account":"123456789012","registry_region":"eu-west-1","repository":"web","tag":"verified-main-4f2a9c1","digest":"sha256:15794219de6dc381cac7805b3e96683d02e81b9cb72265b5cb8c1f501c21d71c","pushed_at":"2026-11-25T10:12:31.777Z"}}`,
			describe: "push command web:verified-main-4f2a9c1 sha256:15794219de6d (promotion of rule web-staging to tag verified-main-4f2a9c1; event autodeploy-promote-5d41402abc4b2a76)",
			why:      "Lambda gave up (RetriesExhausted after 3 attempts): event autodeploy-promote-5d41402abc4b2a76: 1 of 1 targets failed and will be retried: prod/web: register task definition: ThrottlingException"},
		{name: "sweep command", body: inRecord(`{"kind":"sweep","v":1,"id":"after-rollback-ecs-svc-20","origin":"watcher, for rule web-prod on prod/web"}`),
			payload:  `{"kind":"sweep","v":1,"id":"after-rollback-ecs-svc-20","origin":"watcher, for rule web-prod on prod/web"}`,
			describe: "sweep command (watcher, for rule web-prod on prod/web; event after-rollback-ecs-svc-20)",
			why:      "Lambda gave up (RetriesExhausted after 3 attempts)"},
		{name: "a command of a newer writer", body: inRecord(`{"kind":"approve","v":3}`), payload: `{"kind":"approve","v":3}`,
			describe: `command this build cannot read (unknown command kind "approve" (version 3))`,
			why:      "Lambda gave up (RetriesExhausted after 3 attempts)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Unwrap(tt.body, nil)
			if err != nil {
				t.Fatal(err)
			}
			var got, want any
			if err := json.Unmarshal(p.Event, &got); err != nil {
				t.Fatal(err)
			}
			_ = json.Unmarshal([]byte(tt.payload), &want)
			if !jsonEqual(got, want) {
				t.Errorf("payload = %s, want %s", p.Event, tt.payload)
			}
			if p.Why != tt.why {
				t.Errorf("why = %q, want %q", p.Why, tt.why)
			}
			if d := p.Describe(); d != tt.describe {
				t.Errorf("describe = %q, want %q", d, tt.describe)
			}
		})
	}
}
