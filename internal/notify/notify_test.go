package notify

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
)

type fakeSNS struct {
	in  *sns.PublishInput
	err error
}

func (f *fakeSNS) Publish(_ context.Context, in *sns.PublishInput, _ ...func(*sns.Options)) (*sns.PublishOutput, error) {
	f.in = in
	return &sns.PublishOutput{}, f.err
}

func TestNotify(t *testing.T) {
	f := &fakeSNS{}
	topic := NewTopic(f, "arn:aws:sns:eu-west-1:123456789012:notices")
	if err := topic.Notify(context.Background(), "subject", "body"); err != nil {
		t.Fatal(err)
	}
	if aws.ToString(f.in.TopicArn) != "arn:aws:sns:eu-west-1:123456789012:notices" || aws.ToString(f.in.Subject) != "subject" || aws.ToString(f.in.Message) != "body" {
		t.Errorf("published %+v", f.in)
	}
	long := "[autodeploy] a-cluster-with-a-long-name/a-service-with-a-long-name is running\nrepository/with/a/long/path:main-0123456789abcdef"
	if err := topic.Notify(context.Background(), long, "b"); err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(f.in.Subject); len([]rune(got)) != 99 || strings.Contains(got, "\n") || !strings.HasSuffix(got, "…") {
		t.Errorf("subject not fit for SNS (one line, under 100 characters): %q", got)
	}
	f.err = errors.New("KMS key disabled")
	if err := topic.Notify(context.Background(), "s", "b"); err == nil || !strings.Contains(err.Error(), "publish to arn:aws:sns:eu-west-1:123456789012:notices: KMS key disabled") {
		t.Errorf("err = %v", err)
	}
}
