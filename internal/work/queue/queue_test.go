package queue

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/google/go-cmp/cmp"

	"github.com/ecr-autodeploy/ecr-autodeploy/internal/deploy"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/ecrevent"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/rules"
	"github.com/ecr-autodeploy/ecr-autodeploy/internal/work"
)

var (
	central = rules.Place{Account: "123456789012", Region: "eu-west-1"}
	other   = rules.Place{Account: "210987654321", Region: "us-east-1"}
)

// fakeSQS answers SendMessageBatch; fail says, per call, which entry ids
// SQS reports failed, and callErr fails whole calls.
type fakeSQS struct {
	mu    sync.Mutex
	calls []string            // queue: ids
	sent  map[string][]string // queue → bodies accepted
	fail  func(call int, id string) bool
	// senderFault, when set, says which entry ids SQS refuses as the
	// sender's fault.
	senderFault func(id string) bool
	callErr     error
}

func (f *fakeSQS) SendMessageBatch(_ context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for _, e := range in.Entries {
		ids = append(ids, aws.ToString(e.Id))
	}
	f.calls = append(f.calls, aws.ToString(in.QueueUrl)+": "+strings.Join(ids, ","))
	if f.callErr != nil {
		return nil, f.callErr
	}
	if len(in.Entries) > maxBatch {
		return nil, fmt.Errorf("TooManyEntriesInBatchRequest: %d", len(in.Entries))
	}
	out := &sqs.SendMessageBatchOutput{}
	for _, e := range in.Entries {
		if f.senderFault != nil && f.senderFault(aws.ToString(e.Id)) {
			out.Failed = append(out.Failed, types.BatchResultErrorEntry{Id: e.Id, SenderFault: true,
				Code: aws.String("InvalidParameterValue"), Message: aws.String("message too long")})
			continue
		}
		if f.fail != nil && f.fail(len(f.calls), aws.ToString(e.Id)) {
			out.Failed = append(out.Failed, types.BatchResultErrorEntry{Id: e.Id, Code: aws.String("InternalError"), Message: aws.String("try again")})
			continue
		}
		if f.sent == nil {
			f.sent = map[string][]string{}
		}
		f.sent[aws.ToString(in.QueueUrl)] = append(f.sent[aws.ToString(in.QueueUrl)], aws.ToString(e.MessageBody))
		out.Successful = append(out.Successful, types.SendMessageBatchResultEntry{Id: e.Id, MessageId: aws.String("m-" + aws.ToString(e.Id))})
	}
	return out, nil
}

// fleet is a rule with n targets in the central place and m in another.
func fleet(t *testing.T, n, m int) (*rules.Config, []deploy.Job, ecrevent.Push) {
	t.Helper()
	var b strings.Builder
	b.WriteString("version: 1\nrules:\n  - name: fleet\n    repository: web\n    tags: [\"main-*\"]\n    targets:\n")
	for i := range n {
		fmt.Fprintf(&b, "      - {cluster: c%d, service: s%d}\n", i%3, i)
	}
	for i := range m {
		fmt.Fprintf(&b, "      - {cluster: far, service: s%d, account: %q, region: %s, role: \"arn:aws:iam::%s:role/d\"}\n", i, other.Account, other.Region, other.Account)
	}
	cfg, err := rules.Parse("autodeploy.yaml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	push := ecrevent.Push{EventID: "ev-1", Account: central.Account, Region: central.Region, Repository: "web", Tag: "main-1",
		Digest: "sha256:" + strings.Repeat("ab", 32), Time: time.Date(2026, 12, 1, 10, 0, 0, 123_000_000, time.UTC)}
	jobs, why := deploy.Match(cfg, central, push)
	if why != "" {
		t.Fatal(why)
	}
	return cfg, jobs, push
}

func outcomes(sum deploy.Summary) map[string]int {
	out := map[string]int{}
	for _, r := range sum.Results {
		key := string(r.Outcome)
		if r.Retryable {
			key += " (retryable)"
		}
		out[key]++
	}
	return out
}

func TestDispatch(t *testing.T) {
	queues := map[rules.Place]string{central: "q-central", other: "q-other"}
	for _, tc := range []struct {
		name       string
		n, m       int
		queues     map[rules.Place]string
		sqs        *fakeSQS
		wantCalls  []string
		want       map[string]int
		wantErr    string
		wantReason string
	}{
		{name: "batches of ten, a queue per place", n: 12, m: 3, queues: queues, sqs: &fakeSQS{},
			wantCalls: []string{"q-central: 0,1,2,3,4,5,6,7,8,9", "q-central: 10,11", "q-other: 12,13,14"},
			want:      map[string]int{"queued": 15}},
		{name: "entries reported failed are sent again", n: 3, queues: queues,
			sqs:       &fakeSQS{fail: func(call int, id string) bool { return call == 1 && id != "0" }},
			wantCalls: []string{"q-central: 0,1,2", "q-central: 1,2"}, want: map[string]int{"queued": 3}},
		{name: "an entry failing every attempt fails the push transiently", n: 2, queues: queues,
			sqs:       &fakeSQS{fail: func(_ int, id string) bool { return id == "1" }},
			wantCalls: []string{"q-central: 0,1", "q-central: 1", "q-central: 1"},
			want:      map[string]int{"queued": 1, "failed (retryable)": 1}, wantErr: "1 of 2 targets not queued",
			wantReason: "not queued: InternalError: try again (will retry)"},
		{name: "a failed call fails its batch transiently", n: 2, queues: queues, sqs: &fakeSQS{callErr: errors.New("connection reset")},
			wantCalls: []string{"q-central: 0,1"}, want: map[string]int{"failed (retryable)": 2}, wantErr: "2 of 2 targets not queued"},
		{name: "an entry refused as the sender's fault fails permanently and is not sent again", n: 3, queues: queues,
			sqs:       &fakeSQS{senderFault: func(id string) bool { return id == "1" }},
			wantCalls: []string{"q-central: 0,1,2"}, want: map[string]int{"queued": 2, "failed": 1},
			wantReason: "not queued, SQS refused the entry as the sender's fault: InvalidParameterValue: message too long"},
		{name: "a place without a queue is a permanent failure", n: 1, m: 1, queues: map[rules.Place]string{central: "q-central"}, sqs: &fakeSQS{},
			wantCalls: []string{"q-central: 0"}, want: map[string]int{"queued": 1, "failed": 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, jobs, push := fleet(t, tc.n, tc.m)
			q := &Dispatcher{SQS: tc.sqs, Queues: tc.queues, Central: central, Backoff: time.Millisecond}
			sum, err := q.Dispatch(context.Background(), push, jobs)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("error = %v, want %q", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.wantCalls, tc.sqs.calls); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.want, outcomes(sum)); diff != "" {
				t.Errorf("outcomes (-want +got):\n%s", diff)
			}
			if len(sum.Results) != len(jobs) {
				t.Fatalf("%d results for %d jobs", len(sum.Results), len(jobs))
			}
			for i, r := range sum.Results {
				if r.Service != jobs[i].Target.Service || r.Rule != "fleet" {
					t.Errorf("result %d is %s/%s of %s", i, r.Cluster, r.Service, r.Rule)
				}
				if tc.wantReason != "" && r.Outcome == deploy.Failed && r.Reason != tc.wantReason {
					t.Errorf("reason %q, want %q", r.Reason, tc.wantReason)
				}
			}
		})
	}
}

// The bodies sent are the work items of the jobs, each naming its target.
func TestDispatchSendsWorkItems(t *testing.T) {
	cfg, jobs, push := fleet(t, 2, 1)
	f := &fakeSQS{}
	q := &Dispatcher{SQS: f, Queues: map[rules.Place]string{central: "q-central", other: "q-other"}, Central: central}
	if _, err := q.Dispatch(context.Background(), push, jobs); err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for url, bodies := range f.sent {
		for _, b := range bodies {
			it, err := work.Decode([]byte(b))
			if err != nil {
				t.Fatal(err)
			}
			job, err := it.Resolve(cfg, central)
			if err != nil {
				t.Fatal(err)
			}
			r, target := job.Rule, job.Target
			if !it.Push.PushedAt.Equal(push.Time) || it.Push.EventID != push.EventID {
				t.Errorf("push %+v", it.Push)
			}
			got[url] = append(got[url], fmt.Sprintf("%s[%d] %s/%s", r.Name, it.TargetIndex, target.Cluster, target.Service))
		}
	}
	want := map[string][]string{"q-central": {"fleet[0] c0/s0", "fleet[1] c1/s1"}, "q-other": {"fleet[2] far/s0"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("items (-want +got):\n%s", diff)
	}
}
