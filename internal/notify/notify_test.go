package notify

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

type fakeSNS struct {
	in  *sns.PublishInput
	err error
}

func (f *fakeSNS) Publish(_ context.Context, in *sns.PublishInput, _ ...func(*sns.Options)) (*sns.PublishOutput, error) {
	f.in = in
	return &sns.PublishOutput{}, f.err
}

var (
	pushed = time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	ended  = pushed.Add(3*time.Minute + 12*time.Second)
)

func deployment(outcome, reason string) Notice {
	return Notice{
		Outcome: outcome, Account: "123456789012", Region: "eu-west-1", Cluster: "prod", Service: "web", Rule: "prod-releases",
		Repository: "web", Tag: "v1.4.0", Digest: "sha256:4a5c0e1f9b2d3c4e5f60718293a4b5c6d7e8f9012a3b4c5d6e7f8091a2b3c4d5",
		TaskDefinition: "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:42", DeploymentID: "ecs-svc/1234567890123456789",
		EventID: "0f6a1e3c-3b7e-4a7d-9f39-2f1c2b0e9d11", Reason: reason, PushedAt: pushed, EndedAt: ended,
		ServiceARN: "arn:aws:ecs:eu-west-1:123456789012:service/prod/web",
	}
}

// The messages people read, as files: a change to them shows in review.
func TestGoldenMessages(t *testing.T) {
	for _, tt := range []struct {
		name   string
		notice Notice
	}{
		{"completed", deployment(Completed, "")},
		{"failed", deployment(Failed, "ECS deployment circuit breaker: 3 tasks failed to start")},
		{"rolled_back", deployment(RolledBack, "ECS deployment circuit breaker: rolling back to deploymentId ecs-svc/998877")},
		{"not_deployed", Notice{Outcome: NotDeployed, Cluster: "prod", Service: "web", Rule: "prod-releases", Repository: "web",
			Tag: "v1.4.0", Digest: "sha256:4a5c0e1f", EventID: "0f6a1e3c-3b7e-4a7d-9f39-2f1c2b0e9d11",
			Reason: "service prod/web has no container from repository web"}},
		{"not_published", Notice{Outcome: NotPublished, Account: "123456789012", Region: "eu-west-1", Cluster: "prod", Service: "web",
			Rule: "prod-releases", Repository: "web", Tag: "v1.4.0", Digest: "sha256:4a5c0e1f", EventID: "0f6a1e3c",
			TaskDefinition: "arn:aws:ecs:eu-west-1:123456789012:task-definition/web:42",
			Reason:         "publish 123456789012.dkr.ecr.eu-west-1.amazonaws.com/web@sha256:4a5c0e1f to /ecr-autodeploy/prod/web/app: AccessDeniedException"}},
		{"not_promoted", Notice{Outcome: NotPromoted, Rule: "staging", Repository: "web", Tag: "v1.4.0-rc.1",
			Digest: "sha256:4a5c0e1f", DeploymentID: "ecs-svc/1234567890123456789", PromotedTag: strings.Repeat("x", 130),
			Reason: "the promoted tag is 130 characters, over the 128 an image tag may have"}},
		{"paused", PausedNotice(deployment("", ""), Pause{Stage: "POST_TEST_TRAFFIC_SHIFT",
			HookID: "ecs-pause-e7tK9G_WRJqNF_EOMjztDXfKenlJuEUVjsNStf4WLKw", ExpiresAt: ended.Add(24 * time.Hour),
			ServiceDeploymentARN: "arn:aws:ecs:eu-west-1:123456789012:service-deployment/prod/web/0EYSiB0qap8xf0N76FsbE"})},
	} {
		t.Run(tt.name, func(t *testing.T) {
			chat, err := tt.notice.Chatbot()
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tt.name+".chatbot.json", string(chat)+"\n")
			golden(t, tt.name+".email.txt", tt.notice.Email())
			var m chatbotMessage
			if err := json.Unmarshal(chat, &m); err != nil {
				t.Fatal(err)
			}
			// What Chatbot requires, or it drops the message silently.
			if m.Version != "1.0" || m.Source != "custom" || m.Content.Title == "" || m.Content.Description == "" ||
				m.Content.TextType != "client-markdown" {
				t.Errorf("not a Chatbot custom notification: %+v", m)
			}
		})
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/notify -update to write it)", err)
	}
	if d := cmp.Diff(string(want), got); d != "" {
		t.Errorf("%s differs (-golden +got); rerun with -update if intended:\n%s", name, d)
	}
}

func TestOneThreadPerService(t *testing.T) {
	a, b := deployment(Completed, ""), deployment(RolledBack, "r")
	other := deployment(Completed, "")
	other.Service = "api"
	if a.threadID() != b.threadID() || a.threadID() == other.threadID() {
		t.Errorf("thread ids %q, %q, %q: want one per service", a.threadID(), b.threadID(), other.threadID())
	}
}

func TestNotify(t *testing.T) {
	f := &fakeSNS{}
	topic := NewTopic(f, "arn:aws:sns:eu-west-1:123456789012:notices")
	n := deployment(Completed, "")
	if err := topic.Notify(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	if aws.ToString(f.in.TopicArn) != "arn:aws:sns:eu-west-1:123456789012:notices" || aws.ToString(f.in.MessageStructure) != "json" {
		t.Errorf("input = %+v", f.in)
	}
	var per map[string]string
	if err := json.Unmarshal([]byte(aws.ToString(f.in.Message)), &per); err != nil {
		t.Fatalf("message is not SNS's per-protocol JSON: %v", err)
	}
	chat, _ := n.Chatbot()
	if d := cmp.Diff(map[string]string{"default": string(chat), "email": n.Email()}, per); d != "" {
		t.Errorf("per-protocol messages (-want +got):\n%s", d)
	}
	if got := aws.ToString(f.in.Subject); got != "[autodeploy] prod/web is running web:v1.4.0" {
		t.Errorf("subject = %q", got)
	}

	f.err = errors.New("KMS key disabled")
	if err := topic.Notify(context.Background(), n); err == nil || !strings.Contains(err.Error(), "publish to arn:aws:sns:eu-west-1:123456789012:notices: KMS key disabled") {
		t.Errorf("error = %v", err)
	}
}

func TestSubjectFitsSNS(t *testing.T) {
	for _, in := range []string{strings.Repeat("é", 150), "two\nlines", strings.Repeat("a", 200), "✅ ok"} {
		got := fitSubject(in)
		if len(got) >= 100 || strings.ContainsAny(got, "\n\r") {
			t.Errorf("fitSubject(%q) = %q: SNS wants ASCII, one line, under 100 characters", in, got)
		}
		for _, r := range got {
			if r > 0x7e {
				t.Errorf("fitSubject(%q) = %q has non-ASCII %q", in, got, r)
			}
		}
	}
}
