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
		{name: "JSON but no event", body: `{"a": 1}`, err: "neither an EventBridge event nor a Lambda failure record"},
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
