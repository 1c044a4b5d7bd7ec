package queue

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
)

func TestQueueNames(t *testing.T) {
	central := rules.Place{Account: "111111111111", Region: "eu-west-1"}
	other := rules.Place{Account: "222222222222", Region: "ap-southeast-2"}
	base := "https://sqs.eu-west-1.amazonaws.com/111111111111/Autodeploy-work"
	got, err := Queues(base, central, []rules.Place{other})
	if err != nil {
		t.Fatal(err)
	}
	want := map[rules.Place]string{
		central: base,
		other:   base + "-222222222222-ap-southeast-2",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if n := len(NameFor(strings.Repeat("q", MaxBaseNameLen), central, other)); n > 80 {
		t.Errorf("longest name is %d characters, SQS allows 80", n)
	}
	if _, err := URLFor(base[:strings.LastIndex(base, "/")+1]+strings.Repeat("q", MaxBaseNameLen+1), central, other); err == nil {
		t.Error("a base name too long for the other places' names was accepted")
	}
	for _, bad := range []string{"", "Autodeploy-work", "https://sqs.eu-west-1.amazonaws.com/111111111111/"} {
		if _, err := URLFor(bad, central, other); err == nil {
			t.Errorf("URLFor(%q) accepted", bad)
		}
	}
	u, err := URLOfARN("http://127.0.0.1:5000/123456789012/x", "arn:aws:sqs:us-east-1:123456789012:Autodeploy-work-2")
	if err != nil || u != "http://127.0.0.1:5000/123456789012/Autodeploy-work-2" {
		t.Errorf("URLOfARN = %q, %v", u, err)
	}
	if _, err := URLOfARN(base, "arn:aws:sns:us-east-1:1:x"); err == nil {
		t.Error("an SNS ARN was taken for a queue")
	}
}

func TestURLForName(t *testing.T) {
	const dlq = "https://sqs.eu-west-1.amazonaws.com/111111111111/Stack-WorkDeadLetters-ABC"
	tests := []struct {
		name, url, queue, want string // want "": an error
	}{
		{"beside", dlq, "work-222222222222-us-east-1", "https://sqs.eu-west-1.amazonaws.com/111111111111/work-222222222222-us-east-1"},
		{"moto", "http://127.0.0.1:5000/123456789012/dlq", "work", "http://127.0.0.1:5000/123456789012/work"},
		{"a long name beside a short one", dlq, strings.Repeat("q", 80), "https://sqs.eu-west-1.amazonaws.com/111111111111/" + strings.Repeat("q", 80)},
		{"no name", dlq, "", ""},
		{"a path", dlq, "../x/work", ""},
		{"too long", dlq, strings.Repeat("q", 81), ""},
		{"not a queue URL", "Stack-WorkDeadLetters-ABC", "work", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := URLForName(tt.url, tt.queue)
			if tt.want == "" {
				if err == nil {
					t.Errorf("URLForName = %q, want an error", got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("URLForName = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
